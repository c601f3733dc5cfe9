"""Reconciliation of a run: nothing paid for is lost, nothing done is duplicated, nothing is left
hanging. The same query ends every fault scenario of the test suite and is ``castmatch reconcile``.

- Every started unit has exactly one deliverable (``done`` or ``blocked``) or a failure with its
  reason (``failed``, ``needs_review``, ``budget_exceeded``).
- No unit has two deliverables, and no deliverable is without its unit run.
- No unit run is left ``running`` after its week's run ended.
- Every API attempt has its ledger row: attempts left ``started`` by a process that ended during
  the call are booked ``lost`` (at their worst-case price) once they cannot be in flight any more;
  ``requests`` (rows that were sent: neither ``reused`` nor ``cache_fallback``) is what the API saw.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

ENDED = {"done", "blocked", "failed", "needs_review", "budget_exceeded"}
NO_REQUEST = {"reused", "cache_fallback"}


def in_flight_limit(config) -> dt.timedelta:
    """How long an attempt can be in flight at most: every in-task attempt timing out, plus the
    back-offs between them."""
    llm = config.llm
    return dt.timedelta(seconds=llm.timeout_seconds * llm.retry.attempts
                        + llm.retry.max_backoff_seconds * (llm.retry.attempts - 1) + 60)


def reconcile(config, store, run_key: str) -> dict:
    """Book lost attempts of run ``run_key``, then check it; ``problems`` is empty when it holds."""
    lost_now = store.reconcile_lost_calls(run_key=run_key, older_than=in_flight_limit(config))
    runs = store.unit_runs(run_key)
    deliverables = store.deliverables(run_key=run_key)
    ended_weeks = set(store.week_outcomes(run_key))
    problems: list[str] = []
    per_unit = Counter(d["work_unit_id"] for d in deliverables)
    problems += [f"{unit}: {n} deliverables" for unit, n in sorted(per_unit.items()) if n > 1]
    started = {r["work_unit_id"]: r for r in runs}
    problems += [f"{unit}: a deliverable without a unit run" for unit in sorted(set(per_unit) - set(started))]
    stored = {d["work_unit_id"]: d for d in deliverables}
    for unit_id, run in sorted(started.items()):
        state = run["state"]
        if state == "running":
            week = config.unit_week.get(unit_id)
            if week in ended_weeks:
                problems.append(f"{unit_id}: left running after its week's run ended (try {run['try_number']})")
            continue
        if state in ("done", "blocked"):
            if unit_id not in stored or stored[unit_id]["status"] != state:
                problems.append(f"{unit_id}: ended {state} without its {state} deliverable")
        elif state in ENDED:
            if not (run["error"] or "").strip():
                problems.append(f"{unit_id}: ended {state} without a reason")
            if unit_id in stored and stored[unit_id]["status"] == "done":
                problems.append(f"{unit_id}: ended {state} although a done deliverable is stored")
        else:
            problems.append(f"{unit_id}: unknown state {state!r}")
    calls = store.llm_calls(run_key=run_key)
    outcomes = Counter(c["outcome"] for c in calls)
    return {
        "run_key": run_key,
        "units_started": len(started),
        "deliverables": len(deliverables),
        "unit_states": dict(Counter(r["state"] for r in runs)),
        "calls": dict(outcomes),
        "requests": sum(n for outcome, n in outcomes.items() if outcome not in NO_REQUEST),
        "in_flight": outcomes.get("started", 0),
        "lost_booked_now": lost_now,
        "problems": problems,
    }


def render_reconcile(report: dict) -> str:
    lines = [
        f"run {report['run_key']}: {report['units_started']} units started, {report['deliverables']} deliverables "
        f"({', '.join(f'{k} {v}' for k, v in sorted(report['unit_states'].items())) or 'none'})",
        f"ledger: {report['requests']} requests sent ("
        + (", ".join(f"{k} {v}" for k, v in sorted(report["calls"].items())) or "no calls") + ")"
        + (f"; {report['lost_booked_now']} lost attempt(s) booked now" if report["lost_booked_now"] else ""),
    ]
    if report["problems"]:
        lines.append(f"{len(report['problems'])} discrepanc{'y' if len(report['problems']) == 1 else 'ies'}:")
        lines += [f"  - {p}" for p in report["problems"]]
    else:
        lines.append("0 discrepancies")
    return "\n".join(lines)
