"""Go/no-go in the week DAGs, and the roadmap driver honouring the decisions."""

from __future__ import annotations

from typing import Any

from airflow.providers.standard.operators.branch import BaseBranchOperator
from airflow.providers.standard.operators.hitl import HITLBranchOperator
from airflow.sdk import BaseOperator

from castmatch.operators.human_review import human_review_defaults, record_answer

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


class GoNoGoOperator(BaseBranchOperator):
    """Collect and validate the KPIs due (Great Expectations), weigh the gates, record GO or NO_GO
    and follow the matching branch. The branch is one of two fixed task ids, never free text."""

    def __init__(self, *, decision_point: str, roadmap_dir: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.decision_point = decision_point
        self.roadmap_dir = roadmap_dir

    def choose_branch(self, context) -> str:
        from castmatch.config import load_roadmap_cached
        from castmatch.decisions import decide
        from castmatch.operators.agent import run_key_of
        from castmatch.store import Store

        config = load_roadmap_cached(self.roadmap_dir)
        point = next(d for d in config.gates.decision_points if d.id == self.decision_point)
        result = decide(config, point, Store(), run_key=run_key_of(context), run_id=context["ti"].run_id)
        for r in result["kpis"]:
            self.log.info("GE %s: %s observed %s (%s %s) -> %s", r["kpi_id"], r["expectation"], r["observed"],
                          r["comparator"], r["threshold"], "pass" if r["success"] else "FAIL")
        self.log.info("%s: %s - %s (gates %s)", point.name, result["decision"], result["reason"], result["gates"])
        return go_task_id(point.id) if result["decision"] == "GO" else no_go_task_id(point.id)


class NoGoOperator(BaseOperator):
    """The seed's NO-GO path: reassess and extend the timeline; recorded and announced."""

    def __init__(self, *, decision_point: str, roadmap_dir: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.decision_point = decision_point
        self.roadmap_dir = roadmap_dir

    def execute(self, context) -> dict:
        from castmatch.config import load_roadmap_cached
        from castmatch.store import Store

        config = load_roadmap_cached(self.roadmap_dir)
        point = next(d for d in config.gates.decision_points if d.id == self.decision_point)
        message = f"NO-GO at {point.name}: {point.no_go}; timeline extended by {point.no_go_extend_weeks} week(s)"
        Store().record_event("timeline_extended", message, dag_id=context["ti"].dag_id, run_id=context["ti"].run_id,
                             data={"decision_point": point.id, "weeks": point.no_go_extend_weeks})
        self.log.warning(message)
        return {"decision_point": point.id, "extend_weeks": point.no_go_extend_weeks}


class NoGoReviewOperator(HITLBranchOperator):
    """After a NO-GO: asks a person, on Airflow's Required Actions page, whether to keep it or
    overturn it to GO. The answer picks one of two fixed branches; an overturn is stored as the
    decision (GO, decided by that person, with the reason), which ``castmatch_roadmap`` honours.
    No answer within the response window keeps the NO-GO."""

    ui_color = "#f3e8fd"

    def __init__(self, *, decision_point: str, roadmap_dir: str | None = None, **kwargs: Any) -> None:
        ids = review_task_ids(decision_point)
        kwargs.setdefault("options", [KEEP_NO_GO, OVERTURN])
        kwargs.setdefault("options_mapping", {KEEP_NO_GO: ids[KEEP_NO_GO], OVERTURN: ids[OVERTURN]})
        kwargs.setdefault("defaults", KEEP_NO_GO)
        super().__init__(**human_review_defaults(kwargs, reason="Why the NO-GO is overturned (or kept)"))
        self.decision_point = decision_point
        self.roadmap_dir = roadmap_dir

    def _point(self):
        from castmatch.config import load_roadmap_cached

        config = load_roadmap_cached(self.roadmap_dir)
        return next(d for d in config.gates.decision_points if d.id == self.decision_point)

    def execute(self, context):
        from castmatch.operators.agent import run_key_of
        from castmatch.overrides import newest_decision, no_go_review_body
        from castmatch.store import Store

        point = self._point()
        self.body = no_go_review_body(point, newest_decision(Store(), run_key=run_key_of(context), point_id=point.id))
        return super().execute(context)

    def execute_complete(self, context, event: dict[str, Any]):
        from castmatch.overrides import record_no_go_answer

        point = self._point()
        record_answer(self, context, event, lambda store, ev, **where: record_no_go_answer(
            store, point, ev, overturned=ev["chosen_options"] == [OVERTURN], **where))
        return super().execute_complete(context, event)  # follows the chosen branch


class RoadmapDecisionCheck(BaseOperator):
    """In ``castmatch_roadmap`` after a week: the next week starts only on GO at every decision
    point of that week; a NO_GO stops the roadmap here with the seed's reason."""

    def __init__(self, *, week: int, roadmap_dir: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.week = week
        self.roadmap_dir = roadmap_dir

    def execute(self, context) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from castmatch.config import load_roadmap_cached
        from castmatch.store import Store

        config = load_roadmap_cached(self.roadmap_dir)
        run_key = f"roadmap:{context['ti'].run_id}"
        decisions = {d["decision_point"]: d for d in Store().decisions(run_key)}
        points = [p for p in config.gates.decision_points if p.week == self.week]
        missing = [p.id for p in points if p.id not in decisions]
        if missing:
            raise AirflowFailException(f"week {self.week}: no decision recorded for {', '.join(missing)}")
        no_go = [decisions[p.id] for p in points if decisions[p.id]["decision"] != "GO"]
        if no_go:
            raise AirflowFailException("; ".join(f"NO-GO at {d['decision_point']}: {d['reason']}" for d in no_go))
        self.log.info("week %d: GO at %s", self.week, ", ".join(p.id for p in points))
        return {"week": self.week, "decisions": {p.id: "GO" for p in points}}
