"""Operators of the roadmap driver: wait for a week's start on the roadmap clock; report a
broken configuration as a failing task instead of hiding the DAG."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator, BaseSensorOperator


class RoadmapWeekSensor(BaseSensorOperator):
    """Succeeds once week ``week`` has started on the roadmap clock.

    ``clock_mode`` (templated, usually ``{{ params.clock }}``): ``real`` waits for the calendar
    date in the roadmap's timezone; ``compressed`` counts roadmap days in seconds from the start
    of this DAG run.
    """

    template_fields: Sequence[str] = ("clock_mode",)

    def __init__(self, *, week: int, clock_mode: str = "real", roadmap_dir: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("mode", "reschedule")
        super().__init__(**kwargs)
        self.week = week
        self.clock_mode = clock_mode
        self.roadmap_dir = roadmap_dir

    def poke(self, context) -> bool:
        import pendulum

        from castmatch.clock import RoadmapClock
        from castmatch.config import load_roadmap_cached

        config = load_roadmap_cached(self.roadmap_dir)
        config.raise_for_issues()
        if self.clock_mode not in ("real", "compressed"):
            raise ValueError(f"clock must be 'real' or 'compressed', not {self.clock_mode!r}")
        origin = context["dag_run"].start_date
        clock = RoadmapClock.from_roadmap(config.roadmap, mode=self.clock_mode, origin=origin)
        start = clock.week_start(self.week)
        now = pendulum.now("UTC")
        self.log.info("week %d starts %s (%s clock); now %s", self.week, start.isoformat(), self.clock_mode, now.isoformat())
        return now >= start


class ConfigErrorOperator(BaseOperator):
    """Stands in for a DAG whose configuration is broken: fails, listing every problem."""

    def __init__(self, *, problems: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.problems = problems

    def execute(self, context) -> None:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException("roadmap configuration is broken:\n" + "\n".join(self.problems))
