"""People overruling the machine: a vetoed gate can be overridden, a NO-GO can be overturned.

The questions are asked through the standard provider's human-in-the-loop operators (Airflow's
Required Actions page); this module writes what is shown to the person and records the answer:
who, when and why. An unanswered request resolves to its default (the veto or the NO-GO stands)
and is recorded as such, with nobody named.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

NOBODY = "nobody (response window passed)"


def responder(event: dict[str, Any]) -> str:
    """The person who answered a HITL request, as the UI names them."""
    user = event.get("responded_by_user") or {}
    return user.get("name") or user.get("id") or NOBODY


def responded_at(event: dict[str, Any]) -> str | None:
    at = event.get("responded_at")
    return at.isoformat() if isinstance(at, dt.datetime) else at


def reason_of(event: dict[str, Any]) -> str:
    return str((event.get("params_input") or {}).get("reason") or "").strip() or "(no reason given)"


def _left_standing(what: str, event: dict[str, Any], who: str, when: str | None, why: str) -> str:
    if event.get("timedout"):
        return f"{what}: nobody answered within the response window"
    return f"{what} by {who} at {when}: {why}"


def newest_gate_result(store, *, run_key: str, gate_id: str) -> dict | None:
    rows = [r for r in store.gate_results(run_key) if r["gate_id"] == gate_id]
    return rows[-1] if rows else None


def newest_decision(store, *, run_key: str, point_id: str) -> dict | None:
    rows = [r for r in store.decisions(run_key) if r["decision_point"] == point_id]
    return rows[-1] if rows else None


def gate_override_body(gate, row: dict | None) -> str:
    failed = [c for c in (row or {}).get("criteria", []) if not c.get("ok")]
    lines = [f"**{gate.name}** was vetoed by {', '.join(gate.enforcers) or 'its enforcers'}.", "", "Criteria not met:"]
    lines += [f"- {c['text']}: {c['reason']}" for c in failed] or ["- (see the gate task's log)"]
    if gate.blocks:
        lines += ["", "Work it blocks: " + ", ".join(f"`{u}`" for u in gate.blocks)]
    lines += ["", "**Approve** overrides the veto and lets that work run; give the reason. **Reject** (or no "
              "answer) upholds it. Who answered, when and why is recorded."]
    return "\n".join(lines)


def record_gate_answer(store, gate, event: dict[str, Any], *, approved: bool, run_key: str, dag_id: str,
                       run_id: str) -> str:
    """Store the answer to a veto override: OVERRIDDEN (the guarded work runs) or the veto upheld."""
    who, why, when = responder(event), reason_of(event), responded_at(event)
    row = newest_gate_result(store, run_key=run_key, gate_id=gate.id) or {"criteria": [], "reason": ""}
    data = {"gate": gate.id, "by": who, "at": when, "reason": why, "veto": row["reason"]}
    if approved:
        message = f"{gate.name}: veto overridden by {who} at {when}: {why}"
        store.save_gate_result(run_key=run_key, gate_id=gate.id, status="OVERRIDDEN", criteria=row["criteria"],
                               blocked_units=[], dag_id=dag_id, run_id=run_id, decided_by=who,
                               reason=f"veto overridden by {who}: {why} (veto: {row['reason']})")
        store.record_event("gate_overridden", message, run_key=run_key, dag_id=dag_id, run_id=run_id, data=data)
    else:
        message = _left_standing(f"{gate.name}: veto upheld", event, who, when, why)
        store.record_event("gate_veto_upheld", message, run_key=run_key, dag_id=dag_id, run_id=run_id, data=data)
    return message


def no_go_review_body(point, row: dict | None) -> str:
    reason = row["reason"] if row else "(no stored decision)"
    return "\n".join([
        f"**{point.name}** (day {point.day}) was decided **NO-GO**{' by ' + row['decided_by'] if row else ''}.",
        "", f"Reason: {reason}", "", f"NO-GO path: {point.no_go}. GO path: {point.go}.", "",
        "**Overturn to GO** lets the roadmap proceed; give the reason. **Keep NO-GO** (or no answer): the "
        "roadmap extends the timeline for reassessment and decides again at the end of the extension. Who "
        "answered, when and why is recorded.",
    ])


def record_no_go_answer(store, point, event: dict[str, Any], *, overturned: bool, run_key: str, dag_id: str,
                        run_id: str) -> str:
    """Store the answer to a NO-GO review: the decision becomes GO (by that person) or stays NO_GO."""
    who, why, when = responder(event), reason_of(event), responded_at(event)
    row = newest_decision(store, run_key=run_key, point_id=point.id)
    before = row["reason"] if row else ""
    data = {"decision_point": point.id, "by": who, "at": when, "reason": why, "automatic_reason": before}
    if overturned:
        message = f"{point.name}: NO-GO overturned to GO by {who} at {when}: {why}"
        store.save_decision(run_key=run_key, decision_point=point.id, week=point.week, decision="GO", decided_by=who,
                            reason=f"overturned by {who}: {why} (was NO-GO: {before})",
                            gates=row["gates"] if row else {}, kpis_ok=row["kpis_ok"] if row else None)
        store.record_event("decision_overturned", message, run_key=run_key, dag_id=dag_id, run_id=run_id, data=data)
    else:
        message = _left_standing(f"{point.name}: NO-GO kept", event, who, when, why)
        store.record_event("no_go_upheld", message, run_key=run_key, dag_id=dag_id, run_id=run_id, data=data)
    return message
