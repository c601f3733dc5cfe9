"""``GateSensor``: re-evaluates a gate until every criterion holds or its deadline passes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseSensorOperator


class GateSensor(BaseSensorOperator):
    """Pokes in reschedule mode (no worker slot held between pokes).

    PASSED: succeeds. Deadline passed with a veto: fails without retry, so the work units it
    guards do not run, and the store records which gate blocked them and why. Without veto:
    records FAILED and succeeds (the decision points weigh it). A person reruns the gate by
    clearing this task in the Airflow UI.
    """

    template_fields: Sequence[str] = ("clock_mode",)
    ui_color = "#fdf2e8"

    def __init__(self, *, gate_id: str, roadmap_dir: str | None = None, clock_mode: str = "real", **kwargs: Any):
        kwargs.setdefault("mode", "reschedule")
        super().__init__(**kwargs)
        self.gate_id = gate_id
        self.roadmap_dir = roadmap_dir
        self.clock_mode = clock_mode

    def poke(self, context) -> bool:
        import pendulum
        from airflow.sdk.exceptions import AirflowFailException

        from castmatch.clock import RoadmapClock
        from castmatch.config import load_roadmap_cached
        from castmatch.gates import deadline_at, decide, evaluate_gate
        from castmatch.operators.agent import run_key_of
        from castmatch.store import Store

        config = load_roadmap_cached(self.roadmap_dir)
        gate = next(g for g in config.all_gates if g.id == self.gate_id)
        store = Store()
        ti = context["ti"]
        evaluation = evaluate_gate(config, gate, store, run_id=ti.run_id)
        clock = RoadmapClock.from_roadmap(config.roadmap, mode=self.clock_mode or None)
        deadline = deadline_at(clock, gate, week_started=context["dag_run"].start_date)
        status = decide(gate, evaluation, deadline_passed=pendulum.now("UTC") >= deadline)
        for c in evaluation["criteria"]:
            self.log.info("%s / %s [%s]: %s - %s", gate.id, c["id"], c["kind"], "ok" if c["ok"] else "NOT MET", c["reason"])
        failed = [f"{c['id']}: {c['reason']}" for c in evaluation["criteria"] if not c["ok"]]
        blocked = list(gate.blocks) if status == "VETOED" else []
        run_key = run_key_of(context)
        store.save_gate_result(run_key=run_key, gate_id=gate.id, status=status, criteria=evaluation["criteria"],
                               blocked_units=blocked, dag_id=ti.dag_id, run_id=ti.run_id, reason="; ".join(failed))
        self.log.info("gate %s: %s (deadline %s)", gate.id, status, deadline.isoformat())
        if status == "VETOED":
            for unit_id in blocked:
                store.record_event("unit_blocked_by_gate", f"{gate.name} vetoed: {'; '.join(failed)}",
                                   dag_id=ti.dag_id, run_id=ti.run_id, work_unit_id=unit_id,
                                   data={"gate": gate.id, "enforcers": list(gate.enforcers)})
            store.record_event("gate_vetoed", "; ".join(failed), dag_id=ti.dag_id, run_id=ti.run_id,
                               data={"gate": gate.id, "blocks": blocked})
            raise AirflowFailException(f"{gate.name} VETOED by {', '.join(gate.enforcers)}: {'; '.join(failed)}")
        return status in ("PASSED", "FAILED")
