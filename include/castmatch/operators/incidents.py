"""``IncidentSweepOperator``: the escalation ladder's durable clock (``castmatch.incidents.sweep``)."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator

from castmatch.operators.agent import AgentOperator


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
        self.log.info("incidents: %d open before the sweep, %d resolved, %d escalated, %d unit(s) to run again: %s",
                      counts["open"], counts["resolved"], counts["escalated"], len(counts["rerun"]),
                      ", ".join(f"{r['conf']['work_unit']} ({r['conf']['run_key']})" for r in counts["rerun"]) or "-")
        return counts["rerun"]  # the runs to trigger (run_changed_units maps over them)


class IncidentWorkOperator(AgentOperator):
    """A unit run again in its original run after level 2 changed it (another lead, renegotiated
    dependencies, revised instructions): ``params.run_key`` and ``params.work_unit``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(work_unit_id="{{ params.work_unit }}", week=0, **kwargs)

    def execute(self, context) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from castmatch.config import load_roadmap_cached

        config = load_roadmap_cached(self.roadmap_dir)
        if self.work_unit_id not in config.unit_week:
            raise AirflowFailException(f"work unit {self.work_unit_id!r} is not in the roadmap {config.directory}")
        self.week = config.unit_week[self.work_unit_id]
        return super().execute(context)
