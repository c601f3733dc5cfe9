"""``SampleProbesOperator``: samples every configured probe, so uptime windows have history."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator


class SampleProbesOperator(BaseOperator):
    """Checks each probe of the roadmap's gates once and stores the samples. A failing service
    is a sample, not a task failure: the gates and KPIs judge the samples."""

    ui_color = "#e8f4fd"

    def __init__(self, *, roadmap_dir: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.roadmap_dir = roadmap_dir

    def execute(self, context) -> dict:
        from castmatch.config import load_roadmap_cached
        from castmatch.probes import run_probes
        from castmatch.store import Store

        config = load_roadmap_cached(self.roadmap_dir)
        samples = run_probes(config.gates.probes if config.gates else [], store=Store(), run_id=context["ti"].run_id,
                             config=config)
        by_status = {status: [s["probe_id"] for s in samples if s["status"] == status]
                     for status in ("ok", "offline", "failed")}
        self.log.info("%d probes sampled: %s", len(samples), ", ".join(
            f"{len(ids)} {status}" + (f" ({', '.join(ids)})" if ids and status != "ok" else "")
            for status, ids in by_status.items()))
        from castmatch.incidents import open_incident, operations_key
        from castmatch.runs import roadmap_id_of

        for sample in samples:  # a failing service is an incident of the roadmap, outside any run
            if sample["status"] == "failed":
                open_incident(config, Store(), run_key=operations_key(roadmap_id_of(config)), kind="probe_failed",
                              subject=sample["probe_id"], agents=[], detail=sample.get("detail") or "probe failed")
        return {s["probe_id"]: s["status"] for s in samples}
