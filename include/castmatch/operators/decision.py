"""Go/no-go in the week DAGs: decide, take the NO-GO path, let a person overturn it."""

from __future__ import annotations

from typing import Any

from airflow.providers.standard.operators.branch import BaseBranchOperator
from airflow.providers.standard.operators.hitl import HITLBranchOperator
from airflow.sdk import BaseOperator

from castmatch.operators.human_review import announce_waiting, human_review_defaults, record_answer
from castmatch.operators.store_ahead import OpensStoreAhead

KEEP_NO_GO = "Keep NO-GO"
OVERTURN = "Overturn to GO"


def go_task_id(point_id: str) -> str:
    return f"go_{point_id}"


def no_go_task_id(point_id: str) -> str:
    return f"no_go_{point_id}"


def review_task_ids(point_id: str) -> dict[str, str]:
    """The NO-GO review task and the branch each answer takes."""
    return {"review": f"review_no_go_{point_id}", KEEP_NO_GO: f"no_go_kept_{point_id}",
            OVERTURN: f"no_go_overturned_{point_id}"}


class GoNoGoOperator(OpensStoreAhead, BaseBranchOperator):
    """Collect and validate the KPIs due (Great Expectations), weigh the run's gates, record GO or
    NO_GO and follow the matching branch. The branch is one of two fixed task ids, never free text."""

    def __init__(self, *, decision_point: str, roadmap_dir: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.decision_point = decision_point
        self.roadmap_dir = roadmap_dir

    def choose_branch(self, context) -> str:
        from castmatch.decisions import decide
        from castmatch.operators.agent import scope_of
        from castmatch.runs import register
        from castmatch.store import Store
        from castmatch.timing import track

        steps = track()
        config, scope = scope_of(context, self.roadmap_dir)
        point = next(d for d in config.gates.decision_points if d.id == self.decision_point)
        steps.mark("config")
        store = Store()
        steps.mark("store_connect")
        register(store, scope, context, config)
        steps.mark("run_state")
        result = decide(config, point, store, run_key=scope.run_key, run_id=context["ti"].run_id)
        for r in result["kpis"]:
            self.log.info("GE %s: %s observed %s (%s %s) -> %s", r["kpi_id"], r["expectation"], r["observed"],
                          r["comparator"], r["threshold"], "pass" if r["success"] else "FAIL")
        self.log.info("%s: %s - %s (gates %s, run %s)", point.name, result["decision"], result["reason"],
                      result["gates"], scope.run_key)
        steps.mark("log")
        self.log.info(steps.line())
        return go_task_id(point.id) if result["decision"] == "GO" else no_go_task_id(point.id)


class NoGoOperator(BaseOperator):
    """The seed's NO-GO path: reassess. Recorded and announced; the roadmap driver extends the
    timeline and evaluates the point again at the end of the extension."""

    def __init__(self, *, decision_point: str, roadmap_dir: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.decision_point = decision_point
        self.roadmap_dir = roadmap_dir

    def execute(self, context) -> dict:
        from castmatch.decisions import extension_days
        from castmatch.operators.agent import scope_of
        from castmatch.store import Store

        config, scope = scope_of(context, self.roadmap_dir)
        point = next(d for d in config.gates.decision_points if d.id == self.decision_point)
        days = extension_days(config, point)
        message = (f"NO-GO at {point.name}: {point.no_go}; the roadmap extends the timeline by {days:g} day(s) "
                   f"(at most {point.max_extensions} time(s)) and decides again at the end of each extension")
        Store().record_event("no_go_reassess", message, run_key=scope.run_key, dag_id=context["ti"].dag_id,
                             run_id=context["ti"].run_id,
                             data={"decision_point": point.id, "extension_days": days,
                                   "max_extensions": point.max_extensions})
        from castmatch.incidents import open_incident

        week_agents = sorted({a for u in (config.weeks[point.week].work_units if point.week in config.weeks else [])
                              for a in u.agents})
        open_incident(config, Store(), run_key=scope.run_key, kind="no_go", subject=point.id, agents=week_agents,
                      detail=message)
        self.log.warning(message)
        return {"decision_point": point.id, "extension_days": days}


class NoGoReviewOperator(HITLBranchOperator):
    """After a NO-GO: asks a person, on Airflow's Required Actions page (or ``castmatch
    answer``), whether to keep it or overturn it to GO. The answer picks one of two fixed
    branches; an overturn is stored as the decision (GO, decided by that person, with the
    reason), which the roadmap driver honours. No answer within the response window (on the run's
    clock) keeps the NO-GO."""

    ui_color = "#f3e8fd"

    def __init__(self, *, decision_point: str, roadmap_dir: str | None = None, **kwargs: Any) -> None:
        ids = review_task_ids(decision_point)
        kwargs.setdefault("options", [KEEP_NO_GO, OVERTURN])
        kwargs.setdefault("options_mapping", {KEEP_NO_GO: ids[KEEP_NO_GO], OVERTURN: ids[OVERTURN]})
        kwargs.setdefault("defaults", KEEP_NO_GO)
        super().__init__(**human_review_defaults(kwargs, reason="Why the NO-GO is overturned (or kept)"))
        self.decision_point = decision_point
        self.roadmap_dir = roadmap_dir

    def execute(self, context):
        from castmatch.operators.agent import scope_of
        from castmatch.overrides import newest_decision, no_go_review_body
        from castmatch.runs import review_window
        from castmatch.store import Store

        config, scope = scope_of(context, self.roadmap_dir)
        point = next(d for d in config.gates.decision_points if d.id == self.decision_point)
        self.body = no_go_review_body(point, newest_decision(Store(), run_key=scope.run_key, point_id=point.id))
        self.response_timeout = review_window(config, scope.clock)
        announce_waiting(self, context)
        return super().execute(context)

    def execute_complete(self, context, event: dict[str, Any]):
        from castmatch.operators.agent import scope_of
        from castmatch.overrides import record_no_go_answer

        config, _ = scope_of(context, self.roadmap_dir)
        point = next(d for d in config.gates.decision_points if d.id == self.decision_point)
        record_answer(self, context, event, lambda store, ev, **where: record_no_go_answer(
            store, point, ev, overturned=ev["chosen_options"] == [OVERTURN], **where))
        return super().execute_complete(context, event)  # follows the chosen branch
