"""Airflow local settings of CastMatch (on PYTHONPATH via `make run` and docker-compose).

Airflow imports this module in every one of its processes; in those that fork task processes we
preload the LLM stack once (see castmatch.preload).
"""

from castmatch.preload import preload_if_task_parent

preload_if_task_parent()
