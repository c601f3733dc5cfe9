"""Operators of the roadmap driver: open the run, wait for a week's start on the run's clock,
judge the week (and extend the timeline after a NO-GO); report a broken configuration as a
failing task instead of hiding the DAG."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator

from castmatch.operators.agent import scope_of
from castmatch.operators.clocked import RunClockSensor


class StartRunOperator(BaseOperator):
    """The roadmap run's first task: records the run (its clock from ``params.clock`` and, on the
    compressed clock, its Day 1 = the DAG run's start). Every row of the program carries its key."""

    def __init__(self, *, roadmap_dir: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.roadmap_dir = roadmap_dir

    def execute(self, context) -> dict:
        from castmatch.runs import register
        from castmatch.store import Store

        config, scope = scope_of(context, self.roadmap_dir)
        config.raise_for_issues()
        run = register(Store(), scope, context, config)
        self.log.info("roadmap run %s on the %s clock (Day 1: %s)", scope.run_key, run["clock"],
                      run["origin"].isoformat() if run["origin"] else config.roadmap.start_date)
        return {"run_key": scope.run_key, "clock": run["clock"]}


class RoadmapWeekSensor(RunClockSensor):
    """Succeeds once week ``week`` has started on the run's clock: ``real`` waits for the calendar
    date in the roadmap's timezone; ``compressed`` counts roadmap days in seconds from the run's
    start. Timeline extensions after a NO-GO move the start later by their days."""

    def __init__(self, *, week: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.week = week

    def poke(self, context) -> bool:
        import pendulum

        from castmatch.runs import run_clock
        from castmatch.store import Store

        config, scope = scope_of(context, self.roadmap_dir)
        config.raise_for_issues()
        store = Store()
        clock = run_clock(config, store, scope.run_key, scope.clock)
        start = clock.week_start(self.week)
        now = pendulum.now("UTC")
        self.log.info("week %d starts %s (%s clock, timeline extended by %g day(s)); now %s", self.week,
                      start.isoformat(), scope.clock, clock.shift_days, now.isoformat())
        if now < start:
            return False
        store.record_event("week_started", f"week {self.week} starts", run_key=scope.run_key,
                           data={"week": self.week, "planned_start": start.isoformat(), "started": now.isoformat(),
                                 "extension_days": clock.shift_days, "clock": scope.clock})
        return True


class WeekCheckSensor(RunClockSensor):
    """After a week's run: the roadmap goes on when the week succeeded (or, for a week with
    decision points, when they are GO). A NO-GO extends the timeline and waits for the end of the
    extension, then the point is decided again; after ``max_extensions`` the roadmap stops here,
    saying why (``castmatch.weeks.roadmap_step``)."""

    def __init__(self, *, week: int, **kwargs: Any) -> None:
        # (its upstream, the trigger, succeeds whether the week's run succeeded or failed)
        kwargs.setdefault("retries", 0)
        super().__init__(**kwargs)
        self.week = week

    def poke(self, context) -> bool:
        from airflow.sdk.exceptions import AirflowFailException

        from castmatch.runs import run_clock
        from castmatch.store import Store
        from castmatch.weeks import roadmap_step

        config, scope = scope_of(context, self.roadmap_dir)
        store = Store()
        clock = run_clock(config, store, scope.run_key, scope.clock)
        step = roadmap_step(config, store, run_key=scope.run_key, week=self.week, clock=clock,
                            run_id=context["ti"].run_id)
        self.log.info("after week %d: %s - %s", self.week, step.action, step.message)
        if step.action == "stop":
            store.record_event("roadmap_stopped", step.message, run_key=scope.run_key, data={"week": self.week})
            raise AirflowFailException(step.message)
        return step.action == "proceed"
