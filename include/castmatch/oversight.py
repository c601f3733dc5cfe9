"""Level 3 of the ladder, human oversight (seed: "Strategic decisions, resource allocation changes,
timeline adjustments"): people are asked on Airflow's Required Actions page (the standard
provider's HITL operator, ``<prefix>_incident_review``), with the incident's history. Their answer
is applied and recorded; without an answer in the window the work stays stopped, and that is said.
"""

from __future__ import annotations

from typing import Any

KEEP_STOPPED = "Keep stopped"
ACCEPT_RISK = "Accept risk"
EXTEND = "Extend timeline"
REASSIGN = "Reassign"
OPTIONS = [KEEP_STOPPED, ACCEPT_RISK, EXTEND, REASSIGN]


def review_body(config, incident: dict) -> str:
    lines = [f"**Incident #{incident['id']}**: {incident['kind'].replace('_', ' ')} of `{incident['subject']}` "
             f"(run `{incident['run_key']}`, responsible: {', '.join(incident['agents']) or 'none'}).", "",
             incident["detail"][:600], "", "What was done so far:"]
    lines += [f"- L{a['level']} {a['action']} [{a['outcome']}] by {a['actor']}: {a['detail'][:200]}"
              for a in incident.get("actions", [])]
    lines += ["", f"**{KEEP_STOPPED}** (the default, also without an answer): the work stays stopped. "
              f"**{ACCEPT_RISK}**: close the incident and go on. **{EXTEND}**: the remaining weeks start `days` "
              f"later (as after a NO-GO). **{REASSIGN}**: the unit goes to `agent` and runs again."]
    return "\n".join(lines)


def apply_answer(config, store, incident: dict, event: dict[str, Any]) -> tuple[str, dict | None]:
    """Apply a person's answer (or the default when nobody answered). Returns (what was done,
    the run to trigger for a reassigned unit or None)."""
    import datetime as dt

    from castmatch.collaboration import Proposal, apply, invalid
    from castmatch.overrides import reason_of, responder

    option = (event.get("chosen_options") or [KEEP_STOPPED])[0]
    who, why = responder(event), reason_of(event)
    params = event.get("params_input") or {}
    if event.get("timedout") or option == KEEP_STOPPED:
        done = ("nobody answered within the response window: the work stays stopped" if event.get("timedout")
                else f"{who} keeps the work stopped: {why}")
        store.incident_action(incident["id"], level=3, action="decision:keep_stopped", outcome="kept", detail=done,
                              actor=who)
        return done, None
    if option == ACCEPT_RISK:
        store.resolve_incident(incident["id"], resolution=f"risk accepted by {who}: {why}", actor=who)
        return f"risk accepted by {who}", None
    if option == EXTEND:
        days = float(params.get("days") or 0)
        if days <= 0:
            done = f"{who} chose {EXTEND} without a number of days > 0: nothing extended, the work stays stopped"
            store.incident_action(incident["id"], level=3, action="decision:extend", outcome="rejected", detail=done,
                                  actor=who)
            return done, None
        point = f"incident_{incident['id']}"
        row = store.open_extension(run_key=incident["run_key"], decision_point=point, days=days,
                                   ends_at=dt.datetime.now(dt.UTC), reason=f"{who}: {why}")
        store.close_extension(row["id"], outcome="applied", reason=f"extended by {who} (incident #{incident['id']})")
        store.resolve_incident(incident["id"], resolution=f"timeline extended by {days:g} day(s) by {who}: {why}",
                               actor=who)
        return f"timeline extended by {days:g} day(s)", None
    proposal = Proposal(action="reassign", reason=why, agent=str(params.get("agent") or ""))
    problem = invalid(config, store, incident, proposal)
    if problem:
        done = f"{who} chose {REASSIGN}, which cannot be applied: {problem}; the work stays stopped"
        store.incident_action(incident["id"], level=3, action="decision:reassign", outcome="rejected", detail=done,
                              actor=who)
        return done, None
    done, unit = apply(config, store, incident, proposal, who)
    store.incident_action(incident["id"], level=3, action="decision:reassign", outcome="applied", detail=done, actor=who)
    return done, {"conf": {"run_key": incident["run_key"], "work_unit": unit}}
