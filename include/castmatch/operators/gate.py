"""``GateSensor`` re-evaluates a gate until every criterion holds or its deadline passes;
``GateOverrideOperator`` lets a person override its veto."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import BaseSensorOperator

from castmatch.operators.human_review import human_review_defaults, record_answer


class GateSensor(BaseSensorOperator):
    """Pokes in reschedule mode (no worker slot held between pokes).

    PASSED: succeeds. Deadline passed with a veto: fails without retry, so the work units it
    guards do not run, and the store records which gate blocked them and why. Without veto:
    records FAILED and succeeds (the decision points weigh it). A person reruns the gate by
    clearing this task in the Airflow UI, or overrides the veto in its ``override_`` task.
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
        clock = RoadmapClock.from_roadmap(config.roadmap, mode=self.clock_mode or None)
        evaluation = evaluate_gate(config, gate, store, run_id=ti.run_id, clock=clock)
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


class GateOverrideOperator(ApprovalOperator):
    """Runs only when its gate failed (a veto): asks a person, on Airflow's Required Actions page,
    whether to override the veto. Approve records the gate OVERRIDDEN with who, when and why and
    lets the guarded work run; Reject, or no answer within the response window, upholds the veto
    and skips that work."""

    ui_color = "#f3e8fd"

    def __init__(self, *, gate_id: str, roadmap_dir: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("trigger_rule", "all_failed")
        kwargs.setdefault("defaults", ApprovalOperator.REJECT)
        super().__init__(**human_review_defaults(kwargs, reason="Why the veto is overridden (or upheld)"))
        self.gate_id = gate_id
        self.roadmap_dir = roadmap_dir

    def _gate(self):
        from castmatch.config import load_roadmap_cached

        config = load_roadmap_cached(self.roadmap_dir)
        return next(g for g in config.all_gates if g.id == self.gate_id)

    def execute(self, context):
        from airflow.sdk.exceptions import AirflowSkipException

        from castmatch.operators.agent import run_key_of
        from castmatch.overrides import gate_override_body, newest_gate_result
        from castmatch.store import Store

        gate = self._gate()
        row = newest_gate_result(Store(), run_key=run_key_of(context), gate_id=gate.id)
        if row is None or row["status"] != "VETOED":  # e.g. its evidence failed, so it never judged
            raise AirflowSkipException(f"{gate.name} did not veto in this run (status "
                                       f"{row['status'] if row else 'not evaluated'}): nothing to override")
        self.body = gate_override_body(gate, row)
        return super().execute(context)

    def execute_complete(self, context, event: dict[str, Any]):
        from castmatch.overrides import record_gate_answer

        gate = self._gate()
        record_answer(self, context, event, lambda store, ev, **where: record_gate_answer(
            store, gate, ev, approved=ev["chosen_options"] == [self.APPROVE], **where))
        return super().execute_complete(context, event)  # on Reject: skips the release, ending the task
