"""How much of a window the probe samples actually cover.

An uptime share alone cannot say "stable for 24+ hours": one good sample taken a minute ago is
100 % uptime. Each sample vouches for the service for ``max_gap`` after it (the next sampling
slot plus one missed); the window is covered where some sample vouches for it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

NEEDED_COVERAGE_PCT = 95.0


def history_coverage(timestamps: Iterable[dt.datetime], start: dt.datetime, end: dt.datetime,
                     max_gap: dt.timedelta) -> float:
    """Share (0-100) of ``[start, end]`` lying within ``max_gap`` after one of ``timestamps``."""
    window = (end - start).total_seconds()
    if window <= 0:
        return 100.0
    covered, reach = 0.0, start
    for ts in sorted(timestamps):
        lo, hi = max(ts, reach), min(ts + max_gap, end)
        if hi > lo:
            covered += (hi - lo).total_seconds()
            reach = hi
    return 100.0 * covered / window
