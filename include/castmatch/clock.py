"""The one roadmap clock: every day offset, week start and deadline is computed here.

``real``: Day 1 is the roadmap's ``start_date`` at midnight in its timezone (Asia/Kolkata for
CastMatch). ``compressed``: a roadmap day lasts ``compressed_day_seconds`` counted from an
origin (the roadmap run's start), so a twelve-week roadmap runs in minutes for a demo.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from typing import Literal

import pendulum

ClockMode = Literal["real", "compressed"]


def as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """A plain aware UTC ``datetime`` (None stays None): a naive value, as SQLite hands them back, is
    UTC; a pendulum value becomes a plain one, whose arithmetic keeps the zone."""
    if value is None:
        return None
    aware = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value
    return dt.datetime.fromtimestamp(aware.timestamp(), dt.UTC)


def clock_mode(default: str = "real") -> ClockMode:
    """``$CASTMATCH_CLOCK`` if set, else ``default`` (the config's mode)."""
    mode = os.environ.get("CASTMATCH_CLOCK") or default
    if mode not in ("real", "compressed"):
        raise ValueError(f"CASTMATCH_CLOCK must be 'real' or 'compressed', not {mode!r}")
    return mode  # type: ignore[return-value]


def default_clock_mode(roadmap) -> ClockMode:
    """The clock a run gets when it does not choose one (``params.clock``): the parse-time
    environment, else the roadmap's configured mode."""
    return clock_mode(roadmap.clock.mode if roadmap else "real")


@dataclass(frozen=True)
class RoadmapClock:
    start_date: str
    timezone: str
    days_per_week: int = 7
    mode: ClockMode = "real"
    day_seconds: float = 1.0
    origin: dt.datetime | None = None  # compressed mode: when Day 1 began
    shift_days: float = 0.0  # timeline extensions after NO-GOs: later days move this much later

    @classmethod
    def from_roadmap(cls, roadmap, *, mode: str | None = None, origin: dt.datetime | None = None,
                     shift_days: float = 0.0) -> RoadmapClock:
        return cls(
            start_date=roadmap.start_date,
            timezone=roadmap.timezone,
            days_per_week=roadmap.days_per_week,
            mode=mode or clock_mode(roadmap.clock.mode),
            day_seconds=roadmap.clock.compressed_day_seconds,
            origin=origin,
            shift_days=shift_days,
        )

    @property
    def tz(self):
        return pendulum.timezone(self.timezone)

    @property
    def roadmap_start(self) -> pendulum.DateTime:
        """Midnight of Day 1 in the roadmap's timezone (the real clock)."""
        day = dt.date.fromisoformat(self.start_date)
        return pendulum.datetime(day.year, day.month, day.day, tz=self.tz)

    def day_start(self, day: int) -> pendulum.DateTime:
        """When roadmap day ``day`` begins, after the extensions so far (``shift_days``)."""
        offset = day - 1 + self.shift_days
        if self.mode == "compressed":
            origin = pendulum.instance(self.origin) if self.origin else pendulum.now("UTC")
            return origin.add(seconds=offset * self.day_seconds)
        return self.roadmap_start + dt.timedelta(days=offset)

    def span(self, days: float) -> dt.timedelta:
        """A length of roadmap time: real days, or ``days`` compressed days."""
        if self.mode == "compressed":
            return dt.timedelta(seconds=days * self.day_seconds)
        return dt.timedelta(days=days)

    def week_start(self, week: int) -> pendulum.DateTime:
        return self.day_start((week - 1) * self.days_per_week + 1)

    def week_of(self, day: int) -> int:
        return (day - 1) // self.days_per_week + 1

    def day_of(self, moment: dt.datetime, last_day: int) -> int:
        """The roadmap day ``moment`` falls on (1 .. ``last_day``)."""
        moment = as_utc(moment)
        day = 1
        while day < last_day and self.day_start(day + 1) <= moment:
            day += 1
        return day
