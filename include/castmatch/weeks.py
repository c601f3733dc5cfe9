"""How a week of a run ended, and whether the roadmap may go on after it.

A week's run succeeds only when every work unit of the week delivered, no veto stands and no
decision point of the week is NO-GO (``week_outcome``, stored by the week's ``week_complete``
task, so Airflow's own run state tells the truth).

The roadmap driver then decides (``roadmap_step``): a week without a decision point must have
succeeded; a week with decision points goes on when they are GO. A NO-GO extends the timeline
(the point's ``extension_days``; the remaining weeks start that much later) and the point is
evaluated again at the end of the extension, with the probe history and KPIs of then; GO goes
on, NO-GO extends again until ``max_extensions``, then the roadmap stops saying why.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from castmatch.status import unit_states


def week_outcome(config, store, run_key: str, week: int) -> dict:
    """{state: success | failed, problems: [...], delivered, total} of ``week`` in the run."""
    units = config.weeks[week].work_units
    done, latest = unit_states(store, run_key)
    errors = {r["work_unit_id"]: r["error"] for r in store.unit_runs(run_key)}
    blocked_by = {e["work_unit_id"]: e["data"].get("gate") for e in store.events("unit_blocked_by_gate", run_key=run_key)
                  if e["data"]}
    problems = []
    for unit in units:
        if unit.id in done:
            continue
        state = latest.get(unit.id)
        if state is None:
            gate = blocked_by.get(unit.id)
            problems.append(f"{unit.id}: not run" + (f" (blocked by {gate})" if gate else " (upstream not delivered)"))
        else:
            error = (errors.get(unit.id) or "").splitlines()[0][:200] if errors.get(unit.id) else ""
            problems.append(f"{unit.id}: {state}" + (f" ({error})" if error else ""))
    gates = {row["gate_id"]: row for row in store.gate_results(run_key)}
    for gate in config.all_gates:
        row = gates.get(gate.id)
        if gate.week == week and row is not None and row["status"] == "VETOED":
            problems.append(f"{gate.id}: veto stands ({row['reason'][:300]})")
    decisions = {row["decision_point"]: row for row in store.decisions(run_key)}
    for point in config.gates.decision_points if config.gates else []:
        if point.week != week:
            continue
        row = decisions.get(point.id)
        if row is None:
            problems.append(f"{point.id}: no decision recorded")
        elif row["decision"] != "GO":
            problems.append(f"{point.id}: NO-GO ({row['reason'][:300]})")
    delivered = sum(1 for u in units if u.id in done)
    return {"state": "failed" if problems else "success", "problems": problems, "delivered": delivered,
            "total": len(units)}


@dataclass(frozen=True)
class Step:
    action: str  # proceed | wait | stop
    message: str


def roadmap_step(config, store, *, run_key: str, week: int, clock, run_id: str | None = None,
                 now: dt.datetime | None = None) -> Step:
    """What the roadmap does after ``week`` of run ``run_key``: proceed, wait (an extension is
    running), or stop (with the reason)."""
    now = now or dt.datetime.now(dt.UTC)
    outcome = store.week_outcomes(run_key).get(week)
    points = [p for p in (config.gates.decision_points if config.gates else []) if p.week == week]
    if outcome is None:
        return Step("stop", f"week {week} ended without an outcome (its week_complete task did not run)")
    if not points:
        if outcome["state"] != "success":
            return Step("stop", f"week {week} failed: " + "; ".join(outcome["problems"]))
        return Step("proceed", f"week {week}: {outcome['delivered']}/{outcome['total']} delivered")
    decisions = {row["decision_point"]: row for row in store.decisions(run_key)}
    waiting, going = [], []
    for point in points:
        if point.id not in decisions:
            return Step("stop", f"week {week}: no decision recorded for {point.id}")
        step = _decision_step(config, store, point, decisions[point.id], run_key=run_key, clock=clock, run_id=run_id,
                              now=now)
        if step.action == "stop":
            return step
        (waiting if step.action == "wait" else going).append(step.message)
    if waiting:
        return Step("wait", "; ".join(waiting))
    return Step("proceed", f"week {week}: " + "; ".join(going))


def _decision_step(config, store, point, decision: dict, *, run_key: str, clock, run_id, now) -> Step:
    from castmatch.decisions import extension_days, reevaluate

    extensions = store.extensions(run_key, point.id)
    current = extensions[-1] if extensions and extensions[-1]["outcome"] == "pending" else None
    if decision["decision"] == "GO":
        if current is not None:  # e.g. a person overturned the NO-GO during the extension
            store.close_extension(current["id"], outcome="GO", reason=f"decision changed to GO by {decision['decided_by']}")
        return Step("proceed", f"{point.id}: GO")
    if current is not None:
        if now < current["ends_at"]:
            return Step("wait", f"{point.id}: NO-GO, extension {current['number']} of {current['days']:g} day(s) "
                                f"ends {current['ends_at'].isoformat()}")
        result = reevaluate(config, point, store, run_key=run_key, run_id=run_id, clock=clock)
        store.close_extension(current["id"], outcome=result["decision"], reason=result["reason"])
        store.record_event(f"decision_reevaluated_{result['decision'].lower()}",
                           f"{point.name} after extension {current['number']}: {result['decision']}: {result['reason']}",
                           run_key=run_key, data={"decision_point": point.id, "extension": current["number"]})
        if result["decision"] == "GO":
            return Step("proceed", f"{point.id}: GO after extension {current['number']}")
        decision = {**decision, "reason": result["reason"]}
    days = extension_days(config, point)
    if days <= 0 or len(extensions) >= point.max_extensions:
        return Step("stop", f"NO-GO at {point.id} after {len(extensions)} extension(s) "
                            f"(at most {point.max_extensions}): {decision['reason']}")
    opened = store.open_extension(run_key=run_key, decision_point=point.id, days=days,
                                  ends_at=now + clock.span(days), reason=decision["reason"])
    return Step("wait", f"{point.id}: NO-GO, timeline extended by {days:g} day(s) (extension {opened['number']} "
                        f"of at most {point.max_extensions}); decided again at {opened['ends_at'].isoformat()}")
