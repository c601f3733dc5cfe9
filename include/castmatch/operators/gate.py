"""``GateSensor`` re-evaluates a gate until every criterion holds or its deadline passes;
``GateOverrideOperator`` lets a person override its veto."""

from __future__ import annotations

from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator

from castmatch.operators.agent import scope_of
from castmatch.operators.clocked import RunClockSensor
from castmatch.operators.human_review import announce_waiting, human_review_defaults, record_answer


class GateSensor(RunClockSensor):
    """Re-evaluates the gate at the pace of the run's clock (``RunClockSensor``).

    PASSED: succeeds. Deadline passed with a veto: fails without retry, so the work units it
    guards do not run, and the store records which gate blocked them and why. Without veto:
    records FAILED and succeeds (the decision points weigh it). A person reruns the gate by
    clearing this task in the Airflow UI, or overrides the veto in its ``override_`` task.
    Enforcer reviews are stored per deliverable content, so pokes do not pay for them again.
    """

    ui_color = "#fdf2e8"

    def __init__(self, *, gate_id: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.gate_id = gate_id

    def poke(self, context) -> bool:
        import pendulum
        from airflow.sdk.exceptions import AirflowFailException

        from castmatch.gates import deadline_at, judge_gate
        from castmatch.runs import register, run_clock
        from castmatch.store import Store
        from castmatch.timing import track

        steps = track()
        config, scope = scope_of(context, self.roadmap_dir)
        gate = config.gate(self.gate_id)
        steps.mark("config")
        store = Store()
        steps.mark("store_connect")
        register(store, scope, context, config)
        ti = context["ti"]
        clock = run_clock(config, store, scope.run_key, scope.clock)
        deadline = deadline_at(clock, gate, week_started=context["dag_run"].start_date)
        steps.mark("run_state")
        result = judge_gate(config, gate, store, run_key=scope.run_key, dag_id=ti.dag_id, run_id=ti.run_id,
                            clock=clock, deadline_passed=pendulum.now("UTC") >= deadline)
        steps.mark("judge")
        for c in result["criteria"]:
            self.log.info("%s / %s [%s, %s]: %s - %s", gate.id, c["id"], c["kind"], c.get("checked_by", ""),
                          "ok" if c["ok"] else "NOT MET", c["reason"])
        self.log.info("gate %s: %s (deadline %s, %s clock, run %s)", gate.id, result["status"], deadline.isoformat(),
                      scope.clock, scope.run_key)
        steps.mark("log")
        self.log.info(steps.line())
        if result["status"] == "VETOED":
            raise AirflowFailException(
                f"{gate.name} VETOED by {', '.join(config.expand_agents(gate.enforcers))}: {'; '.join(result['failed'])}")
        done = result["status"] in ("PASSED", "FAILED")
        for asset in self.outlets if done else []:  # chains triggered by this gate: which run, and did it pass
            context["outlet_events"][asset].extra.update({"run_key": scope.run_key, "gate_status": result["status"]})
        return done


class GateOverrideOperator(ApprovalOperator):
    """Runs only when its gate failed (a veto): asks a person, on Airflow's Required Actions page
    (or ``castmatch answer``), whether to override the veto. Approve records the gate OVERRIDDEN
    with who, when and why and lets the guarded work run; Reject, or no answer within the
    response window (on the run's clock), upholds the veto and skips that work."""

    ui_color = "#f3e8fd"

    def __init__(self, *, gate_id: str, roadmap_dir: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("trigger_rule", "all_failed")
        kwargs.setdefault("defaults", ApprovalOperator.REJECT)
        super().__init__(**human_review_defaults(kwargs, reason="Why the veto is overridden (or upheld)"))
        self.gate_id = gate_id
        self.roadmap_dir = roadmap_dir

    def execute(self, context):
        from airflow.sdk.exceptions import AirflowSkipException

        from castmatch.overrides import gate_override_body, newest_gate_result
        from castmatch.runs import review_window
        from castmatch.store import Store

        config, scope = scope_of(context, self.roadmap_dir)
        gate = config.gate(self.gate_id)
        row = newest_gate_result(Store(), run_key=scope.run_key, gate_id=gate.id)
        if row is None or row["status"] != "VETOED":  # e.g. its evidence failed, so it never judged
            raise AirflowSkipException(f"{gate.name} did not veto in this run (status "
                                       f"{row['status'] if row else 'not evaluated'}): nothing to override")
        self.body = gate_override_body(gate, row)
        self.response_timeout = review_window(config, scope.clock)
        announce_waiting(self, context)
        return super().execute(context)

    def execute_complete(self, context, event: dict[str, Any]):
        from castmatch.overrides import record_gate_answer

        config, _ = scope_of(context, self.roadmap_dir)
        gate = config.gate(self.gate_id)
        record_answer(self, context, event, lambda store, ev, **where: record_gate_answer(
            store, gate, ev, approved=ev["chosen_options"] == [self.APPROVE], **where))
        return super().execute_complete(context, event)  # on Reject: skips the release, ending the task
