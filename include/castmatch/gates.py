"""Quality and success gates: evaluate each criterion by its kind, decide, record.

- ``probe``: the named services are checked now through their Airflow connections (samples are
  stored); with ``window_hours`` the uptime over the window must reach ``min_uptime_pct``;
- ``deliverable``: the named work units have an accepted (done) deliverable;
- ``review``: the enforcers judge the named units against their acceptance criteria, with a
  verdict constrained to PASS or VETO (``castmatch.review``), so no text inside a deliverable
  can pick the outcome;
- ``kpi``: the newest sample of each KPI meets its threshold; a missing KPI fails closed.

A gate is PASSED when every criterion holds. Otherwise it stays PENDING until its deadline, then
it is VETOED (veto power: dependent work does not run) or FAILED (no veto: recorded only).
"""

from __future__ import annotations

import datetime as dt

from castmatch.status import unit_states

COMPARE = {">": lambda v, t: v > t, ">=": lambda v, t: v >= t, "<": lambda v, t: v < t, "<=": lambda v, t: v <= t}


def _probe_window(config, criterion, store, clock, failing: list[str]) -> dict:
    """Uptime over the window from the stored samples. On the real clock the samples must also
    cover the window (the probe DAG samples every ``update_frequency_minutes``), so "stable for
    24+ hours" needs 24 hours of history; the compressed clock shrinks the window with the days
    and checks the share only."""
    from castmatch.probes.window import NEEDED_COVERAGE_PCT, history_coverage
    from castmatch.store.repository import utcnow

    window = clock.span(criterion.window_hours / 24) if clock else dt.timedelta(hours=criterion.window_hours)
    hours = window.total_seconds() / 3600
    pct, count = store.uptime(criterion.probes, hours)
    need = criterion.min_uptime_pct if criterion.min_uptime_pct is not None else 100.0
    ok = pct is not None and pct >= need and not failing
    reasons = [f"uptime {pct:.1f}% over {criterion.window_hours:g} h from {count} samples (need {need:g}%)"
               if pct is not None else "no probe samples in the window"]
    if clock is None or clock.mode == "real":
        end = utcnow()
        start = end - window
        every = config.update_interval
        covered = {p: history_coverage(store.probe_times(p, since=start), start, end, 2 * every)
                   for p in criterion.probes}
        worst = min(covered, key=covered.get)
        if covered[worst] < NEEDED_COVERAGE_PCT:
            ok = False
            reasons.append(f"{worst} samples cover {covered[worst] * hours / 100:.1f} h of the {criterion.window_hours:g} h "
                           f"window (need {NEEDED_COVERAGE_PCT:g}%, one every {every.total_seconds() / 60:g} min)")
    return {"ok": ok, "reason": "; ".join([*reasons, *failing])}


def _criterion(config, gate, criterion, store, *, run_id: str | None, done: set[str], clock=None) -> dict:
    kind = criterion.kind.value
    if kind == "probe":
        from castmatch.probes import run_probe

        probes = {p.id: p for p in config.gates.probes}
        samples = [run_probe(probes[p], store=store, run_id=run_id) for p in criterion.probes]
        failing = [f"{s['probe_id']}: {s['detail']}" for s in samples if not s["ok"]]
        if criterion.window_hours:
            return _probe_window(config, criterion, store, clock, failing)
        return {"ok": not failing, "reason": "; ".join(failing) or "all probes answered: " + ", ".join(criterion.probes)}
    if kind == "deliverable":
        missing = [u for u in criterion.work_units if u not in done]
        return {"ok": not missing, "reason": f"not delivered: {', '.join(missing)}" if missing
                else "delivered: " + ", ".join(criterion.work_units)}
    if kind == "review":
        from castmatch.review import review_units

        verdict = review_units(config, store, criterion.reviewers, criterion.work_units)
        reviewers = ", ".join(criterion.reviewers)
        return {"ok": verdict.verdict == "PASS", "verdict": verdict.verdict,
                "reason": f"{verdict.verdict} by {reviewers}: "
                + ("; ".join(verdict.reasons) or "every reviewed unit meets its acceptance criteria")}
    latest = store.latest_kpi_values()
    kpis = {k.id: k for k in config.kpis.kpis}
    reasons, ok = [], True
    for kpi_id in criterion.kpis:
        row, kpi = latest.get(kpi_id), kpis[kpi_id]
        if row is None or row["status"] != "ok" or row["value"] is None:
            ok = False
            reasons.append(f"{kpi_id}: missing ({row['detail'] if row else 'never measured'})")
        elif not COMPARE[kpi.comparator](row["value"], kpi.threshold):
            ok = False
            reasons.append(f"{kpi_id}: {row['value']:g} {kpi.unit}, needs {kpi.comparator} {kpi.threshold:g}")
        else:
            reasons.append(f"{kpi_id}: {row['value']:g} {kpi.unit} meets {kpi.comparator} {kpi.threshold:g}")
    return {"ok": ok, "reason": "; ".join(reasons)}


def evaluate_gate(config, gate, store, *, run_id: str | None = None, clock=None) -> dict:
    """Every criterion of ``gate`` with ok and reason, and whether all hold (``clock``: the
    roadmap clock the windows are measured on; real when None)."""
    done, _ = unit_states(store)
    criteria = []
    for criterion in gate.criteria:
        result = _criterion(config, gate, criterion, store, run_id=run_id, done=done, clock=clock)
        criteria.append({"id": criterion.id, "text": criterion.text, "kind": criterion.kind.value, **result})
    return {"gate": gate.id, "all_ok": all(c["ok"] for c in criteria), "criteria": criteria}


def decide(gate, evaluation: dict, *, deadline_passed: bool) -> str:
    if evaluation["all_ok"]:
        return "PASSED"
    if not deadline_passed:
        return "PENDING"
    return "VETOED" if gate.veto else "FAILED"


def deadline_at(clock, gate, *, week_started: dt.datetime) -> dt.datetime:
    """When the gate's deadline day ends: on the real clock its date; on the compressed clock
    counted from the start of the week's run."""
    if clock.mode == "compressed":
        first_day = (gate.week - 1) * clock.days_per_week + 1
        return week_started + dt.timedelta(seconds=(gate.deadline_day - first_day + 1) * clock.day_seconds)
    return clock.day_start(gate.deadline_day + 1)


def gates_report(config, store) -> dict:
    """Every gate with its newest result, the KPI values and the decision points."""
    latest: dict[str, dict] = {}
    for row in store.gate_results():  # oldest first: the newest wins
        latest[row["gate_id"]] = row
    gates = []
    for gate in config.all_gates:
        row = latest.get(gate.id)
        gates.append({
            "id": gate.id, "name": gate.name, "kind": gate.kind, "week": gate.week, "deadline_day": gate.deadline_day,
            "veto": gate.veto, "enforcers": list(gate.enforcers), "status": row["status"] if row else "PENDING",
            "criteria": row["criteria"] if row else [{"id": c.id, "text": c.text, "kind": c.kind.value, "ok": None,
                                                      "reason": "not evaluated yet"} for c in gate.criteria],
            "blocked_units": row["blocked_units"] if row else [], "reason": row["reason"] if row else "",
            "decided_by": row["decided_by"] if row else None,
            "evaluated_at": row["evaluated_at"].isoformat() if row and row["evaluated_at"] else None,
        })
    values = store.latest_kpi_values()
    kpis = []
    for kpi in config.kpis.kpis if config.kpis else []:
        row = values.get(kpi.id)
        ok = None
        if row and row["status"] == "ok" and row["value"] is not None:
            ok = COMPARE[kpi.comparator](row["value"], kpi.threshold)
        kpis.append({"id": kpi.id, "name": kpi.name, "target": f"{kpi.comparator} {kpi.threshold:g} {kpi.unit}",
                     "value": row["value"] if row else None, "status": row["status"] if row else "missing",
                     "ok": ok, "source": row["source"] if row else kpi.source.kind})
    status = {g["id"]: g["status"] for g in gates}
    made = {row["decision_point"]: row for row in store.decisions()}  # oldest first: newest wins
    validations = {row["decision_point"]: row for row in store.kpi_validations()}
    decisions = []
    for d in config.gates.decision_points if config.gates else []:
        row, check = made.get(d.id), validations.get(d.id)
        decisions.append({
            "id": d.id, "name": d.name, "day": d.day, "gates": list(d.gates),
            "decision": row["decision"] if row else "pending", "reason": row["reason"] if row else "",
            "decided_by": row["decided_by"] if row else None,
            "decided_at": row["decided_at"].isoformat() if row and row["decided_at"] else None,
            "gates_status": row["gates"] if row else {g: status.get(g, "PENDING") for g in d.gates},
            "great_expectations": {"success": check["success"], "results": check["results"]} if check else None,
            "go": d.go, "no_go": d.no_go,
        })
    return {"gates": gates, "kpis": kpis, "decision_points": decisions}


def render_gates(report: dict) -> str:
    icons = {"PASSED": "✅", "VETOED": "⛔", "FAILED": "❌", "PENDING": "⏳", "OVERRIDDEN": "🟣"}
    lines = []
    for g in report["gates"]:
        lines.append(f"{icons.get(g['status'], '?')} {g['status']:<10} {g['name']} (week {g['week']}, day {g['deadline_day']}"
                     f"{', veto' if g['veto'] else ''})")
        for c in g["criteria"]:
            mark = "[x]" if c["ok"] else ("[ ]" if c["ok"] is None else "[!]")
            lines.append(f"    {mark} {c['text']}  — {c['reason']}")
        if g["blocked_units"]:
            lines.append(f"    blocks: {', '.join(g['blocked_units'])}")
        if g["status"] == "OVERRIDDEN":
            lines.append(f"    {g['reason']} ({g['evaluated_at']})")
    lines.append("")
    lines.append("KPIs")
    for k in report["kpis"]:
        value = "missing" if k["value"] is None else f"{k['value']:g}"
        lines.append(f"    {k['name']}: {value} (target {k['target']})")
    lines.append("")
    lines.append("DECISION POINTS")
    for d in report["decision_points"]:
        by = f" by {d['decided_by']}" if d["decided_by"] not in (None, "castmatch") else ""
        lines.append(f"    {d['name']} (day {d['day']}): {d['decision']}{by}  "
                     + ", ".join(f"{g}={s}" for g, s in d["gates_status"].items()))
        if d["reason"]:
            lines.append(f"        {d['reason']}")
    return "\n".join(lines)
