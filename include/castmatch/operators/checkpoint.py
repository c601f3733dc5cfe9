"""``CheckpointOperator``: takes the due moments of one checkpoint (``castmatch.checkpoints``)."""

from __future__ import annotations

import os
from typing import Any

from airflow.sdk import BaseOperator


def reports_dir() -> str:
    """Where the stakeholder-updates checkpoint writes its reports (they are kept in the store too)."""
    return os.environ.get("CASTMATCH_REPORTS_DIR") or os.path.join(os.environ.get("AIRFLOW_HOME", "."), "reports")


class CheckpointOperator(BaseOperator):
    """Take checkpoint ``checkpoint_id`` at every due moment not yet taken: of the run the DAG run
    names (``params.roadmap_run_id`` or ``params.run_key``: the roadmap driver on the compressed
    clock, or a person), else of every run on the real clock (the cron). Returns the DAG runs its
    actions start (units whose dependencies were delivered), for ``start_unblocked`` to trigger."""

    ui_color = "#e8f0fd"

    def __init__(self, *, checkpoint_id: str, roadmap_dir: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.checkpoint_id = checkpoint_id
        self.roadmap_dir = roadmap_dir

    def execute(self, context) -> list[dict]:
        from castmatch.checkpoints import take_due
        from castmatch.config import load_roadmap_cached
        from castmatch.runs import roadmap_id_of, run_scope
        from castmatch.store import Store

        config = load_roadmap_cached(self.roadmap_dir)
        store = Store()
        params = dict(context.get("params") or {})
        if params.get("run_key") or params.get("roadmap_run_id"):
            run_keys = [run_scope(context, config).run_key]
        else:
            run_keys = [r["run_key"] for r in store.runs(roadmap_id_of(config)) if r["clock"] == "real"]
        self.log.info("checkpoint %s: runs %s", self.checkpoint_id, ", ".join(run_keys) or "(none on the real clock)")
        triggers = []
        for run_key in run_keys:
            taken, started = take_due(config, store, run_key, self.checkpoint_id, reports_dir=reports_dir())
            for record in taken:
                self.log.info("  day %d: %s", record["day"], record["summary"])
            triggers += started
        self.log.info("checkpoint %s: %d unit(s) to start: %s", self.checkpoint_id, len(triggers),
                      ", ".join(t["conf"]["work_unit"] for t in triggers) or "none")
        return triggers
