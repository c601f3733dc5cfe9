"""``IncidentSweepOperator``: the escalation ladder's durable clock (``castmatch.incidents.sweep``)."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator


class IncidentSweepOperator(BaseOperator):
    """Re-check every open incident of the roadmap: resolve those whose cause is gone, escalate the
    others whose time on the ladder has come. Idempotent: two sweeps at once escalate once."""

    ui_color = "#fde8e8"

    def __init__(self, *, roadmap_dir: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.roadmap_dir = roadmap_dir

    def execute(self, context) -> dict:
        from castmatch.config import load_roadmap_cached
        from castmatch.incidents import sweep
        from castmatch.store import Store

        counts = sweep(load_roadmap_cached(self.roadmap_dir), Store())
        self.log.info("incidents: %(open)d open before the sweep, %(resolved)d resolved, %(escalated)d escalated", counts)
        return counts
