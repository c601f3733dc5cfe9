"""``IncidentSweepOperator``: the escalation ladder's durable clock (``castmatch.incidents.sweep``)."""

from __future__ import annotations

from typing import Any

from airflow.providers.standard.operators.hitl import HITLOperator
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
        self.log.info("incidents: %d open before the sweep, %d resolved, %d escalated; to trigger: %s",
                      counts["open"], counts["resolved"], counts["escalated"],
                      ", ".join(f"{t['trigger_dag_id']} {t['conf']}" for t in counts["triggers"]) or "nothing")
        return counts["triggers"]  # the DAG runs to trigger (trigger_incident_runs maps over them)


class IncidentWorkOperator(AgentOperator):
    """A unit run again in its original run after level 2 changed it (another lead, renegotiated
    dependencies, revised instructions): ``params.run_key`` and ``params.work_unit``."""

    defer_to_delivered = False

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


class StartUnblockedOperator(BaseOperator):
    """Dependency Unblocked: once ``params.work_unit`` is delivered in ``params.run_key``, the units
    that waited on it start (returns their ``<prefix>_incident_work`` triggers) and are told."""

    ui_color = "#e8fde8"

    def __init__(self, *, roadmap_dir: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.roadmap_dir = roadmap_dir

    def execute(self, context) -> list[dict]:
        from castmatch.incidents import unblocked_triggers
        from castmatch.operators.agent import scope_of
        from castmatch.store import Store

        config, scope = scope_of(context, self.roadmap_dir)
        ti = context["ti"]
        return unblocked_triggers(config, Store(), run_key=scope.run_key, blocker=context["params"]["work_unit"],
                                  clock=scope.clock, dag_id=ti.dag_id, run_id=ti.run_id)


def _incident(config, store, scope, incident_id: int) -> dict | None:
    from castmatch.runs import roadmap_id_of

    rows = store.incidents(roadmap_id=roadmap_id_of(config), run_key=scope.run_key, with_actions=True)
    return next((r for r in rows if r["id"] == incident_id), None)


class IncidentReviewOperator(HITLOperator):
    """Level 3: asks people (Required Actions, or ``castmatch answer``) what to do about incident
    ``params.incident``: keep the work stopped (the default, also when nobody answers), accept the
    risk, extend the timeline by ``days``, or reassign the unit to ``agent``."""

    ui_color = "#f3e8fd"

    def __init__(self, *, roadmap_dir: str | None = None, **kwargs: Any) -> None:
        from airflow.sdk import Param

        from castmatch.operators.human_review import human_review_defaults
        from castmatch.oversight import KEEP_STOPPED, OPTIONS

        kwargs.setdefault("options", OPTIONS)
        kwargs.setdefault("defaults", [KEEP_STOPPED])
        kwargs.setdefault("params", {
            "reason": Param("", type="string", title="Reason", description="Why (recorded with the decision)"),
            "days": Param(3, type="number", title="Days", description="Extend timeline: roadmap days the remaining "
                          "weeks start later"),
            "agent": Param("", type="string", title="Agent", description="Reassign: the agent who takes the unit over"),
        })
        super().__init__(**human_review_defaults(kwargs, reason="Why (recorded with the decision)"))
        self.roadmap_dir = roadmap_dir

    def execute(self, context):
        from airflow.sdk.exceptions import AirflowSkipException

        from castmatch.operators.agent import scope_of
        from castmatch.operators.human_review import announce_waiting
        from castmatch.oversight import review_body
        from castmatch.runs import review_window
        from castmatch.store import Store

        config, scope = scope_of(context, self.roadmap_dir)
        incident_id = int(context["params"]["incident"])
        incident = _incident(config, Store(), scope, incident_id)
        if incident is None:
            raise AirflowSkipException(f"no incident #{incident_id} in run {scope.run_key}")
        if incident["state"] != "open":
            raise AirflowSkipException(f"incident #{incident_id} was {incident['state']} before anyone was asked: "
                                       f"{incident['resolution']}")
        self.subject = f"Incident #{incident_id}: {incident['kind'].replace('_', ' ')} of {incident['subject']}"
        self.body = review_body(config, incident)
        self.response_timeout = review_window(config, scope.clock)
        announce_waiting(self, context)
        return super().execute(context)

    def execute_complete(self, context, event: dict[str, Any]):
        from castmatch.operators.agent import scope_of
        from castmatch.oversight import apply_answer
        from castmatch.store import Store

        if "error" not in event:
            config, scope = scope_of(context, self.roadmap_dir)
            store = Store()
            self.validate_chosen_options(event["chosen_options"])
            incident = _incident(config, store, scope, int(context["params"]["incident"]))
            if incident is not None and incident["state"] == "open":
                done, rerun = apply_answer(config, store, incident, event)
                if rerun:  # the next sweep runs it again (durable: it is in the store)
                    store.incident_action(incident["id"], level=3, action="rerun_pending", outcome="ok",
                                          detail=rerun["conf"]["work_unit"], actor="castmatch")
                self.log.warning("incident #%d: %s", incident["id"], done)
        return super().execute_complete(context, event)
