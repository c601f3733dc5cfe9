"""Sensors that wait on the run's roadmap clock (gates, week starts, week checks)."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseSensorOperator

from castmatch.operators.store_ahead import OpensStoreAhead


class RunClockSensor(OpensStoreAhead, BaseSensorOperator):
    """Pokes at the pace of the run's clock, chosen when the run starts (``params.clock``), not
    when the DAG was parsed: every update cycle (15 min) on the real clock, in reschedule mode
    (no worker slot held between pokes); every 5 s on the compressed clock, in poke mode. Seconds-
    long reschedules race Airflow's LocalExecutor: the previous try's exit can be reported after
    the task was queued again, and Airflow then fails it ("task state changed externally")."""

    def __init__(self, *, roadmap_dir: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("mode", "reschedule")
        super().__init__(**kwargs)
        self.roadmap_dir = roadmap_dir

    def execute(self, context):
        from castmatch.operators.agent import scope_of
        from castmatch.runs import poke_interval

        config, scope = scope_of(context, self.roadmap_dir)
        self.poke_interval = poke_interval(config, scope.clock)
        if scope.clock == "compressed":
            self.mode = "poke"
        return super().execute(context)
