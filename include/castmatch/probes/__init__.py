"""Probes: live checks of Redis, PostgreSQL, HTTP health URLs and the Claude backend, recorded as
samples so that gates judge uptime over a window (see ``castmatch.probes.checks``)."""

from castmatch.probes.checks import ProbeFailed, run_probe, run_probes

__all__ = ["ProbeFailed", "run_probe", "run_probes"]
