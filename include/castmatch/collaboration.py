"""Level 2 of the ladder, agent collaboration (seed: "Cross-agent problem solving, dependency
renegotiation"): the agents around an incident each answer, through a forced tool, with one proposal
of a fixed set; the orchestrator applies only proposals that are valid against the config, one at a
time, each recorded with who proposed it. The calls go through the LLM layer (budgets, rate
limits, the write-ahead ledger, purpose ``incident``).
"""

from __future__ import annotations

import logging
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger(__name__)
PROPOSAL_TOOL = "propose_resolution"


class Proposal(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["retry_with_changes", "renegotiate_dependency", "reassign", "workaround", "escalate"]
    reason: str = Field(description="Why this resolves the incident")
    unit: str = Field(default="", description="The work unit concerned (default: the incident's)")
    instructions: str = Field(default="", description="retry_with_changes / workaround: what to do differently")
    dependency: str = Field(default="", description="renegotiate_dependency: the dependency of the unit to drop")
    replacement: str = Field(default="", description="renegotiate_dependency: a delivered unit to depend on instead")
    agent: str = Field(default="", description="reassign: the agent who takes the unit over; workaround: who does it")


def proposal_tool() -> dict:
    schema = Proposal.model_json_schema()
    schema.pop("title", None)
    return {"name": PROPOSAL_TOOL, "description": "Propose one way to resolve the incident. Call exactly once.",
            "input_schema": schema}


def collaborators(config, incident: dict) -> list[str]:
    """Who is asked: the responsible agents, the agents they depend on and that depend on them,
    and the enforcers."""
    responsible = [a for a in incident["agents"] if a in config.agents]
    around = {d for a in responsible for d in config.agents[a].depends_on}
    around |= {other.id for other in config.agents.values() if set(other.depends_on) & set(responsible)}
    enforcers = {a.id for a in config.agents.values() if a.enforcer}
    ordered = responsible + sorted((around | enforcers) - set(responsible))
    return [a for a in ordered if a in config.agents]


def _unit_of(config, incident: dict, proposal: Proposal) -> str:
    return proposal.unit or (incident["subject"] if incident["subject"] in config.work_units else "")


def invalid(config, store, incident: dict, proposal: Proposal) -> str | None:
    """Why ``proposal`` cannot be applied to the config and the run, or None."""
    from castmatch.config.checks import _find_cycle

    if proposal.action == "escalate":
        return None
    unit_id = _unit_of(config, incident, proposal)
    unit = config.work_units.get(unit_id)
    if unit is None:
        return f"unknown work unit {unit_id or proposal.unit!r}"
    if proposal.action in ("retry_with_changes", "workaround") and not proposal.instructions.strip():
        return f"{proposal.action} without instructions"
    if proposal.action in ("reassign", "workaround"):
        agent = config.agents.get(proposal.agent)
        if agent is None:
            return f"unknown agent {proposal.agent!r}"
        if proposal.action == "reassign":
            if agent.id == unit.agents[0]:
                return f"{agent.id} already leads {unit.id}"
            if "*" not in agent.can_cover and unit.agents[0] not in agent.can_cover:
                return f"{agent.id} cannot cover {unit.agents[0]} (team.yaml can_cover)"
    if proposal.action == "renegotiate_dependency":
        from castmatch.incidents import effective_depends_on

        current = effective_depends_on(store, incident["run_key"], unit)
        if proposal.dependency not in current:
            return f"{proposal.dependency!r} is not a dependency of {unit.id}"
        if proposal.replacement:
            if proposal.replacement not in config.work_units:
                return f"unknown work unit {proposal.replacement!r}"
            graph = {u: list(config.work_units[u].depends_on) for u in config.work_units}
            graph[unit.id] = [d for d in current if d != proposal.dependency] + [proposal.replacement]
            if _find_cycle(graph):
                return f"depending on {proposal.replacement} would make a cycle"
    return None


def apply(config, store, incident: dict, proposal: Proposal, proposed_by: str) -> tuple[str, str | None]:
    """Apply a valid proposal; returns (what was done, the unit to run again or None)."""
    unit_id = _unit_of(config, incident, proposal)
    run_key = incident["run_key"]
    if proposal.action == "escalate":
        return "asked for level 3", None
    unit = config.work_units[unit_id]
    if proposal.action == "reassign":
        store.save_unit_override(run_key=run_key, work_unit_id=unit.id, lead_agent=proposal.agent, depends_on=None,
                                 incident_id=incident["id"], proposed_by=proposed_by)
        store.record_event("agent_notice", f"{unit.id} is now yours (proposed by {proposed_by}): {proposal.reason}",
                           run_key=run_key, agent_id=proposal.agent, data={"incident": incident["id"]})
        return f"{unit.id} reassigned from {unit.agents[0]} to {proposal.agent}", unit.id
    if proposal.action == "renegotiate_dependency":
        from castmatch.incidents import effective_depends_on

        current = effective_depends_on(store, run_key, unit)
        deps = [d for d in current if d != proposal.dependency] + ([proposal.replacement] if proposal.replacement else [])
        store.save_unit_override(run_key=run_key, work_unit_id=unit.id, lead_agent=None, depends_on=deps,
                                 incident_id=incident["id"], proposed_by=proposed_by)
        return f"{unit.id} no longer depends on {proposal.dependency}" + (
            f", but on {proposal.replacement}" if proposal.replacement else ""), unit.id
    # retry_with_changes / workaround: the lead (or the named agent) gets the instructions in its inbox
    agent = proposal.agent or unit.agents[0]
    store.record_event("agent_notice", f"{proposal.action.replace('_', ' ')} for {unit.id} (proposed by {proposed_by}): "
                       f"{proposal.instructions}", run_key=run_key, agent_id=agent, data={"incident": incident["id"]})
    return f"{unit.id} to be done again with {proposed_by}'s instructions", unit.id


def incident_request(config, agent_id: str, incident: dict, actions: list[dict], store):
    """What an agent is asked at level 2: the incident, what level 1 tried, the unit's deliverables
    so far (quoted as data)."""
    from castmatch.llm.prompt import AgentRequest, quote_data, system_prefix

    agent = config.agents[agent_id]
    unit = config.work_units.get(incident["subject"])
    related = [unit.id, *unit.depends_on] if unit else []
    delivered = store.upstream_deliverables(related, run_key=incident["run_key"]) if related else {}
    tried = "\n".join(f"- level {a['level']} {a['action']}: {a['outcome']} ({a['detail'][:200]})" for a in actions)
    message = "\n\n".join(part for part in [
        f"Incident #{incident['id']}: {incident['kind'].replace('_', ' ')} of {incident['subject']} "
        f"(responsible: {', '.join(incident['agents']) or 'none'}). Level 1 (automated) did not resolve it.",
        "<notices>\n<notice>" + quote_data(incident["detail"]) + "</notice>\n</notices>",
        "What was tried:\n" + tried if tried else "",
        ("The unit: " + f"`{unit.id}` {unit.title}, lead {unit.agents[0]}, depends on "
         + (", ".join(unit.depends_on) or "nothing") + ".") if unit else "",
        "<upstream_deliverables>\n" + "\n".join(
            f'<deliverable work_unit="{u}" agent="{d["agent_id"]}">\nsummary: {quote_data(d["summary"])}\n</deliverable>'
            for u, d in delivered.items()) + "\n</upstream_deliverables>" if delivered else "",
        "Agents who may take over a unit: " + "; ".join(
            f"{a.id} covers {', '.join(a.can_cover)}" for a in config.agents.values() if a.can_cover) + "."
        if any(a.can_cover for a in config.agents.values()) else "",
        f"Propose one way to resolve it with the {PROPOSAL_TOOL} tool: retry_with_changes, "
        "renegotiate_dependency, reassign, workaround or escalate (to people).",
    ] if part)
    return AgentRequest(
        agent_id=agent.id, agent_name=agent.name, model=agent.model, system_prefix=system_prefix(config, agent),
        user_message=message, work_unit_id=unit.id if unit else incident["subject"],
        work_unit_title=f"incident #{incident['id']}", deliverable="proposal", acceptance_criteria=(),
        responsibilities=tuple(agent.responsibilities),
    )


def run_level2(config, store, incident: dict) -> dict:
    """Ask the collaborators, apply the first valid proposal. Returns {"applied": str | None,
    "rerun": unit or None, "escalate": bool}."""
    from castmatch.llm.backends import backend_name, get_backend
    from castmatch.llm.base import CallContext
    from castmatch.runs import orchestrator_name, roadmap_of

    actor = orchestrator_name(roadmap_of(incident["run_key"]))
    asked = collaborators(config, incident)
    if not asked:
        store.incident_action(incident["id"], level=2, action="collaboration", outcome="skipped",
                              detail="no agent to ask (the incident names none)", actor=actor)
        return {"applied": None, "rerun": None, "escalate": True}
    if backend_name(config.llm.conn_id) == "offline":
        store.incident_action(incident["id"], level=2, action="collaboration", outcome="skipped",
                              detail=f"NOT ASKED: offline backend (no Claude); {', '.join(asked)} would be asked",
                              actor=actor)
        return {"applied": None, "rerun": None, "escalate": True}
    history = store.incidents(roadmap_id=roadmap_of(incident["run_key"]), run_key=incident["run_key"],
                              with_actions=True)
    actions = next((r["actions"] for r in history if r["id"] == incident["id"]), [])
    context = CallContext(run_key=incident["run_key"], purpose="incident",
                          work_unit_id=incident["subject"] if incident["subject"] in config.work_units else None)
    backend = get_backend(config, store, context=context)
    applied, rerun, wants_people = None, None, False
    for agent_id in asked:
        try:
            proposal = backend.generate(incident_request(config, agent_id, incident, actions, store),
                                        schema=Proposal, tool=proposal_tool()).deliverable
        except Exception as exc:
            from castmatch.describe import describe

            store.incident_action(incident["id"], level=2, action="proposal", outcome="failed",
                                  detail=f"{agent_id} could not be asked: {describe(exc)}", actor=actor)
            continue
        summary = f"{proposal.action}: " + ", ".join(
            f"{k}={v}" for k, v in proposal.model_dump().items() if v and k not in ("action",))
        problem = invalid(config, store, incident, proposal)
        if problem:
            store.incident_action(incident["id"], level=2, action=f"proposal:{proposal.action}", outcome="rejected",
                                  detail=f"{summary} - invalid: {problem}", actor=agent_id)
            continue
        if applied is not None or proposal.action == "escalate":  # one change at a time
            wants_people = wants_people or proposal.action == "escalate"
            store.incident_action(incident["id"], level=2, action=f"proposal:{proposal.action}", outcome="proposed",
                                  detail=summary + (" - kept for later: one change at a time" if applied else ""),
                                  actor=agent_id)
            continue
        applied, rerun = apply(config, store, incident, proposal, agent_id)
        store.incident_action(incident["id"], level=2, action=f"proposal:{proposal.action}", outcome="applied",
                              detail=f"{summary} - {applied}", actor=agent_id)
        log.warning("incident #%d level 2: applied %s's proposal: %s", incident["id"], agent_id, applied)
    return {"applied": applied, "rerun": rerun, "escalate": applied is None}
