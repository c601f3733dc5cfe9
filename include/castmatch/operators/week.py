"""``WeekCompleteOperator``: the last task of a week DAG, so the run's state says the truth."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator


class WeekCompleteOperator(BaseOperator):
    """Runs whatever happened upstream (``all_done``): stores the week's outcome for the run and
    fails the task, and with it the DAG run, when a unit did not deliver, a veto stands or a
    decision point is NO-GO. The grid, the roadmap driver and any alerting on run state see it."""

    ui_color = "#e8fde9"

    def __init__(self, *, week: int, roadmap_dir: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("trigger_rule", "all_done")
        kwargs.setdefault("retries", 0)
        super().__init__(**kwargs)
        self.week = week
        self.roadmap_dir = roadmap_dir

    def execute(self, context) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from castmatch.operators.agent import scope_of
        from castmatch.runs import register
        from castmatch.store import Store
        from castmatch.weeks import week_outcome

        config, scope = scope_of(context, self.roadmap_dir)
        store = Store()
        register(store, scope, context, config)
        ti = context["ti"]
        outcome = week_outcome(config, store, scope.run_key, self.week)
        store.save_week_outcome(run_key=scope.run_key, week=self.week, dag_id=ti.dag_id, run_id=ti.run_id, **outcome)
        self.log.info("week %d of run %s: %s, %d/%d units delivered", self.week, scope.run_key, outcome["state"],
                      outcome["delivered"], outcome["total"])
        if outcome["problems"]:
            raise AirflowFailException(f"week {self.week} is not complete: " + "; ".join(outcome["problems"]))
        return {"week": self.week, **outcome}
