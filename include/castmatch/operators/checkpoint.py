"""``CheckpointOperator``: takes the due moments of one checkpoint (``castmatch.checkpoints``)."""

from __future__ import annotations

import os
from typing import Any

from airflow.sdk import BaseOperator

from castmatch.operators.batch import ClaudeBatchMixin


def reports_dir() -> str:
    """Where the stakeholder-updates checkpoint writes its reports (they are kept in the store too)."""
    return os.environ.get("CASTMATCH_REPORTS_DIR") or os.path.join(os.environ.get("AIRFLOW_HOME", "."), "reports")


class CheckpointOperator(ClaudeBatchMixin, BaseOperator):
    """Take checkpoint ``checkpoint_id`` at every due moment not yet taken: of the run the DAG run
    names (``params.roadmap_run_id`` or ``params.run_key``: the roadmap driver on the compressed
    clock, or a person), else of every run on the real clock (the cron). Returns the DAG runs its
    actions start (units whose dependencies were delivered, workload moves), for ``start_unblocked``.

    The figures and actions are stored at once, with a summary written from the figures; on a Claude
    backend Claude then rewrites the summaries, all of this task's in one Message Batch (half price),
    while the task waits deferred."""

    ui_color = "#e8f0fd"

    def __init__(self, *, checkpoint_id: str, roadmap_dir: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.checkpoint_id = checkpoint_id
        self.roadmap_dir = roadmap_dir

    def execute(self, context) -> list[dict]:
        from castmatch.checkpoints import summary_body, take_due
        from castmatch.config import load_roadmap_cached
        from castmatch.llm.backends import backend_name
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
        triggers, taken_all = [], []
        for run_key in run_keys:
            taken, started = take_due(config, store, run_key, self.checkpoint_id, reports_dir=reports_dir())
            for record in taken:
                self.log.info("  day %d: %s", record["day"], record["summary"])
            taken_all += [(run_key, record) for record in taken]
            triggers += started
        self.log.info("checkpoint %s: %d unit(s) to start: %s", self.checkpoint_id, len(triggers),
                      ", ".join(t["conf"]["work_unit"] for t in triggers) or "none")
        backend = backend_name(config.llm.conn_id)
        if not taken_all or backend == "offline":
            return triggers
        requests = [{"custom_id": f"{i}", "params": summary_body(config, record)} for i, (_, record) in enumerate(taken_all)]
        context["ti"].xcom_push(key="summarised", value=[[k, r["checkpoint_id"], r["day"]] for k, r in taken_all])
        context["ti"].xcom_push(key="triggers", value=triggers)
        self.defer_batch(context, config, requests, method_name="execute_complete", timeout=24 * 3600)

    def execute_complete(self, context, event: Any = None) -> list[dict]:
        from castmatch.checkpoints import summary_writer
        from castmatch.config import load_roadmap_cached
        from castmatch.operators.batch import book_batch_call, tool_input
        from castmatch.store import Store

        config = load_roadmap_cached(self.roadmap_dir)
        store = Store()
        ti = context["ti"]
        summarised = ti.xcom_pull(task_ids=self.task_id, key="summarised") or []
        writer = summary_writer(config).id
        written = 0
        for custom_id, message, why_not in self.batch_results(config, event):
            run_key, checkpoint_id, day = summarised[int(custom_id)]
            if message is None:
                self.log.warning("checkpoint %s day %s: no summary from Claude (%s): the figures' one stays",
                                 checkpoint_id, day, why_not)
                continue
            summary = str(tool_input(message).get("summary") or "").strip()
            if summary:
                store.set_checkpoint_summary(run_key=run_key, checkpoint_id=checkpoint_id, day=day, summary=summary,
                                             written_by=f"Claude ({writer}, {message.model}, Message Batch)")
                written += 1
            book_batch_call(config, store, ti, message, run_key=run_key, purpose="checkpoint", agent_id=writer,
                            batch_id=self.batch_id, outcome="ok" if summary else "malformed")
        self.log.info("checkpoint %s: %d of %d summaries written by Claude (batch %s)", self.checkpoint_id, written,
                      len(summarised), self.batch_id)
        return ti.xcom_pull(task_ids=self.task_id, key="triggers") or []
