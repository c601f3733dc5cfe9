"""Where tasks run on a CeleryExecutor deployment: the queues a roadmap's tasks use (the workers
must listen on them) and the name a worker records on the task instances it runs."""

from __future__ import annotations

import os
import socket

DEFAULT_QUEUE = "default"  # Airflow's [operators] default_queue: gates, probes, reports


def worker_hostname() -> str:
    """Airflow's ``[core] hostname_callable`` (config/celery.env): ``$CASTMATCH_WORKER_HOSTNAME``
    when set, so that two workers on one host are told apart in the task instances, else the
    host's fully qualified name (Airflow's default)."""
    return os.environ.get("CASTMATCH_WORKER_HOSTNAME") or socket.getfqdn()


def roadmap_queues(config) -> list[str]:
    """Every queue the roadmap's tasks are sent to: the default one, then each track's
    (team.yaml ``tracks[].queue``) in the order the tracks are listed."""
    queues = [os.environ.get("AIRFLOW__OPERATORS__DEFAULT_QUEUE") or DEFAULT_QUEUE]
    for track in (config.team.tracks if config.team else []):
        if track.queue and track.queue not in queues:
            queues.append(track.queue)
    return queues
