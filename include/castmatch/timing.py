"""Wall time of a task's steps: logged by the operators (one line per task) and read back by
bench/task_overhead.py, so the next person sees where a task's time goes without a profiler."""

from __future__ import annotations

import contextvars
import json
import time

MARKER = "castmatch step timings (ms): "


class Steps:
    """Laps of one task: ``mark(name)`` after each step books the time since the previous mark."""

    def __init__(self) -> None:
        self.started = self._last = time.perf_counter()
        self.cpu_started = time.process_time()
        self.spent: dict[str, float] = {}

    def mark(self, name: str) -> None:
        now = time.perf_counter()
        self.spent[name] = self.spent.get(name, 0.0) + now - self._last
        self._last = now

    def line(self) -> str:
        """One log line: the marker, then the steps in milliseconds as JSON, with their ``total``,
        the CPU the process used in them (``cpu``) and since it started (``process_cpu``: a task
        process is forked per task, so that is the whole task's so far)."""
        ms = {name: round(seconds * 1000, 1) for name, seconds in self.spent.items()}
        ms["total"] = round((self._last - self.started) * 1000, 1)
        now = time.process_time()
        ms["cpu"] = round((now - self.cpu_started) * 1000, 1)
        ms["process_cpu"] = round(now * 1000, 1)
        return MARKER + json.dumps(ms)


_current: contextvars.ContextVar[Steps | None] = contextvars.ContextVar("castmatch_steps", default=None)


def track() -> Steps:
    """Start timing this task's steps: ``mark`` anywhere below (the LLM layer too) books into them."""
    steps = Steps()
    _current.set(steps)
    return steps


def mark(name: str) -> None:
    """Book the time since the previous mark to ``name`` (nothing when no task is being timed)."""
    steps = _current.get()
    if steps is not None:
        steps.mark(name)


def parse_line(text: str) -> dict[str, float] | None:
    """The step timings of a log line written by ``Steps.line`` (None if the line has none)."""
    at = text.find(MARKER)
    if at < 0:
        return None
    found, _ = json.JSONDecoder().raw_decode(text[at + len(MARKER):])
    return found
