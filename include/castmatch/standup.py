"""Daily standups (seed: "Daily Standup Automation"): each agent reports yesterday's completed
work, today's plan, blockers and help needed, from the stored state. Work that can wait: on a
Claude backend they go through the Message Batches API (half price)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

from castmatch.clock import as_utc
from castmatch.llm.prompt import quote_data, system_prefix
from castmatch.status import PROBLEM_STATES, late_units, unit_states

TOOL_NAME = "submit_standup"


class Redistribution(BaseModel):
    model_config = ConfigDict(extra="forbid")

    unit: str = Field(description="A work unit you lead and cannot do now")
    to_agent: str = Field(description="The colleague who takes it over (one whose can_cover names you)")
    reason: str = Field(default="", description="Why")


class StandupReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    yesterday_completed: list[str] = Field(default_factory=list)
    today_planned: list[str] = Field(default_factory=list)
    blockers_identified: list[str] = Field(default_factory=list,
                                           description="Each starts with the id of the work unit that blocks you")
    help_needed: list[str] = Field(default_factory=list)
    redistribution: list[Redistribution] = Field(default_factory=list,
                                                 description="Units of yours to hand to a colleague (task redistribution)")


def standup_tool() -> dict:
    schema = StandupReport.model_json_schema()
    schema.pop("title", None)
    return {"name": TOOL_NAME, "description": "Submit your standup report. Call exactly once.", "input_schema": schema}


def standup_facts(config, store, agent_id: str, since: dt.datetime, run_key: str | None) -> dict:
    """What the store says about an agent in run ``run_key`` for its standup: done since
    ``since``, next, blocked."""
    done, latest = unit_states(store, run_key)
    recent = [d for d in (store.deliverables(run_key=run_key) if run_key else [])
              if d["agent_id"] == agent_id and d["status"] == "done"
              and d["updated_at"] and as_utc(d["updated_at"]) >= since]
    mine = [u for u in config.work_units.values() if agent_id in u.agents]
    pending = sorted((u for u in mine if u.id not in done), key=lambda u: (config.unit_week[u.id], u.first_day))
    blocked = [u for u in mine if latest.get(u.id) in PROBLEM_STATES and u.id not in done]
    return {
        "completed": [f"{d['work_unit_id']}: {d['summary']}" for d in recent],
        "planned": [f"{u.id}: {u.title}" for u in pending[:3]],
        "waiting_on": sorted({d for u in pending[:1] for d in u.depends_on if d not in done}),
        "blocked": [f"{u.id}: {u.title}" for u in blocked],
    }


def standup_body(config, agent, facts: dict, standup_date: str, max_tokens: int = 1024) -> dict:
    """A Messages API request for one agent's standup (same cached prefix as its work)."""
    fmt = ", ".join(config.operations.standup.format) if config.operations and config.operations.standup else ""
    lines = [
        f"Daily standup for {standup_date} (format: {fmt}).",
        "Facts from the orchestrator's store, quoted as data:",
        "<upstream_deliverables>",
        *(f"completed: {quote_data(c)}" for c in facts["completed"] or ["(nothing since the last standup)"]),
        *(f"planned: {quote_data(p)}" for p in facts["planned"] or ["(no assigned work left)"]),
        *(f"waiting on: {w}" for w in facts["waiting_on"]),
        *(f"blocked: {quote_data(b)}" for b in facts["blocked"]),
        "</upstream_deliverables>",
        f"Answer with the {TOOL_NAME} tool.",
    ]
    return {
        "model": agent.model,
        "max_tokens": max_tokens,
        "system": [{"type": "text", "text": system_prefix(config, agent), "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "\n".join(lines)}],
        "tools": [standup_tool()],
        "tool_choice": {"type": "tool", "name": TOOL_NAME},
    }


def offline_report(facts: dict) -> StandupReport:
    """The development answer: the facts themselves, deterministic."""
    return StandupReport(
        yesterday_completed=[c.split(":")[0] for c in facts["completed"]],
        today_planned=[p.split(":")[0] for p in facts["planned"]],
        blockers_identified=[b.split(":")[0] for b in facts["blocked"]] + [f"waiting on {w}" for w in facts["waiting_on"]],
        help_needed=[],
    )


# ---------------------------------------------------------------------------- automated actions


def named_unit(config, text: str) -> str | None:
    """The work unit a blocker line names (the first word that is a unit id), or None."""
    import re

    return next((w for w in re.findall(r"[a-z][a-z0-9_]*", text) if w in config.work_units), None)


def apply_actions(config, store, *, run_key: str, standup_date: str, reports: dict[str, dict], clock: str,
                  since: dt.datetime) -> tuple[list[dict], list[dict]]:
    """The standup's ``automated_actions`` on run ``run_key``, each recorded: a reported blocker (a
    unit that failed, or is late: past its last day undelivered) opens or joins its unit's incident
    (blocker_escalation); a redistribution a colleague may take
    is applied, as a level-2 reassignment would be (task_redistribution); units whose dependencies
    were delivered since ``since`` start (dependency_updates). Returns (actions, DAG runs to start)."""
    import hashlib

    from castmatch.collaboration import Proposal, apply, invalid
    from castmatch.factory import incident_work_dag_id
    from castmatch.incidents import report_blocker, run_leads, unblocked_triggers

    automated = set(config.operations.standup.automated_actions) if config.operations.standup else set()
    done, latest = unit_states(store, run_key)
    late = {u["id"] for u in late_units(config, store, run_key, done, weeks=set(config.weeks))}
    actions: list[dict] = []
    triggers: list[dict] = []
    run_hash = hashlib.sha1(run_key.encode()).hexdigest()[:10]
    if "blocker_escalation" in automated:
        for agent_id, report in sorted(reports.items()):
            for line in report.get("blockers_identified", []):
                unit = named_unit(config, line)
                action = {"kind": "blocker_escalation", "agent": agent_id, "blocker": line[:200], "unit": unit}
                if unit is None:
                    action["outcome"] = "names no work unit: not escalated"
                elif unit in done:
                    action["outcome"] = "already delivered"
                elif latest.get(unit) not in PROBLEM_STATES and unit not in late:
                    action["outcome"] = f"{unit} is neither failed nor late ({latest.get(unit, 'not started')}): not escalated"
                else:
                    state = latest[unit] if latest.get(unit) in PROBLEM_STATES else "blocked"  # late: past its last day
                    action.update(report_blocker(config, store, run_key=run_key, unit_id=unit, state=state,
                                                 source=f"standup {standup_date} ({agent_id})"))
                actions.append(action)
    if "task_redistribution" in automated:
        leads = run_leads(config, store, run_key)
        for agent_id, report in sorted(reports.items()):
            for move in report.get("redistribution", []):
                proposal = Proposal(action="reassign", unit=move["unit"], agent=move["to_agent"],
                                    reason=move.get("reason") or "standup redistribution")
                action = {"kind": "task_redistribution", "agent": agent_id, "unit": move["unit"], "to": move["to_agent"]}
                why = invalid(config, store, {"run_key": run_key, "subject": move["unit"], "id": None}, proposal)
                if why is None and leads.get(move["unit"]) != agent_id:
                    why = f"{agent_id} does not lead {move['unit']}"
                if why is None and move["unit"] in done:
                    why = f"{move['unit']} is already delivered"
                if why:
                    action["outcome"] = f"refused: {why}"
                else:
                    what, unit = apply(config, store, {"run_key": run_key, "subject": move["unit"], "id": None},
                                       proposal, proposed_by=agent_id)
                    action["outcome"] = what
                    if latest.get(unit) in PROBLEM_STATES:  # it stopped: it runs again as the new lead
                        triggers.append({"trigger_dag_id": incident_work_dag_id(config),
                                         "trigger_run_id": f"standup_{run_hash}__{standup_date}__{unit}",
                                         "conf": {"run_key": run_key, "work_unit": unit, "clock": clock}})
                actions.append(action)
    if "dependency_updates" in automated:
        fresh = sorted({d["work_unit_id"] for d in store.deliverables(run_key=run_key)
                        if d["status"] == "done" and as_utc(d["updated_at"]) >= since})
        for blocker in fresh:
            for trigger in unblocked_triggers(config, store, run_key=run_key, blocker=blocker, clock=clock,
                                              finished_weeks_only=True):
                triggers.append(trigger)
                actions.append({"kind": "dependency_update", "unit": trigger["conf"]["work_unit"], "after": blocker,
                                "outcome": "started"})
    return actions, triggers
