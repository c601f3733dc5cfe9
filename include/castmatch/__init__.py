"""CastMatch Orchestrator: a team of Claude-powered agents run through a roadmap on Airflow 3."""

__version__ = "0.1.0"
