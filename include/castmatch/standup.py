"""Daily standups (seed: "Daily Standup Automation"): each agent reports yesterday's completed
work, today's plan, blockers and help needed, from the stored state. Work that can wait: on a
Claude backend they go through the Message Batches API (half price)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

from castmatch.llm.prompt import quote_data, system_prefix
from castmatch.status import PROBLEM_STATES, unit_states

TOOL_NAME = "submit_standup"


class StandupReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    yesterday_completed: list[str] = Field(default_factory=list)
    today_planned: list[str] = Field(default_factory=list)
    blockers_identified: list[str] = Field(default_factory=list)
    help_needed: list[str] = Field(default_factory=list)


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
              and d["updated_at"] and _aware(d["updated_at"]) >= since]
    mine = [u for u in config.work_units.values() if agent_id in u.agents]
    pending = sorted((u for u in mine if u.id not in done), key=lambda u: (config.unit_week[u.id], u.first_day))
    blocked = [u for u in mine if latest.get(u.id) in PROBLEM_STATES and u.id not in done]
    return {
        "completed": [f"{d['work_unit_id']}: {d['summary']}" for d in recent],
        "planned": [f"{u.id}: {u.title}" for u in pending[:3]],
        "waiting_on": sorted({d for u in pending[:1] for d in u.depends_on if d not in done}),
        "blocked": [f"{u.id}: {u.title}" for u in blocked],
    }


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


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
