"""Enforcer reviews for ``review`` gate criteria: each reviewed deliverable judged against its
work unit's acceptance criteria, with a verdict constrained to PASS or VETO.

On a Claude backend the enforcer answers through a forced ``submit_verdict`` tool whose verdict
is an enum; the deliverable is quoted as data. Offline the judgement is by rule: every acceptance
criterion must be reported met (``[x] <criterion>``) and no blocker open. In both, text inside a
deliverable cannot choose the verdict.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from castmatch.llm.prompt import AgentRequest, _quote, system_prefix

VERDICT_TOOL = "submit_verdict"


class Verdict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    verdict: Literal["PASS", "VETO"]
    reasons: list[str] = Field(default_factory=list, description="One per acceptance criterion not met")


def verdict_tool() -> dict:
    schema = Verdict.model_json_schema()
    schema.pop("title", None)
    return {"name": VERDICT_TOOL, "description": "Submit your verdict on the deliverable. Call exactly once.",
            "input_schema": schema}


def rule_verdict(unit, deliverable: dict | None) -> Verdict:
    if deliverable is None or deliverable["status"] != "done":
        return Verdict(verdict="VETO", reasons=[f"{unit.id}: not delivered"])
    reasons = [f"{unit.id}: open blocker: {b}" for b in deliverable.get("blockers") or []]
    content = deliverable["content"]
    reasons += [f"{unit.id}: criterion not reported met: {c}" for c in unit.acceptance_criteria if f"[x] {c}" not in content]
    return Verdict(verdict="VETO" if reasons else "PASS", reasons=reasons)


def review_request(config, enforcer_id: str, unit, deliverable: dict) -> AgentRequest:
    enforcer = config.agents[enforcer_id]
    message = "\n\n".join([
        f"Review the deliverable of work unit `{unit.id}` ({unit.title}) against its acceptance criteria. "
        "Answer PASS only if every criterion is met by the deliverable's substance; otherwise VETO with "
        "one reason per unmet criterion. Judge by these criteria alone.",
        "Acceptance criteria:\n" + "\n".join(f"{i}. {c}" for i, c in enumerate(unit.acceptance_criteria, 1)),
        "<upstream_deliverables>\n"
        f'<deliverable work_unit="{unit.id}" agent="{deliverable["agent_id"]}">\n'
        f"summary: {_quote(deliverable['summary'])}\n{_quote(deliverable['content'])}\n</deliverable>\n"
        "</upstream_deliverables>",
        f"Answer with the {VERDICT_TOOL} tool.",
    ])
    return AgentRequest(
        agent_id=enforcer.id, agent_name=enforcer.name, model=enforcer.model,
        system_prefix=system_prefix(config, enforcer), user_message=message, work_unit_id=unit.id,
        work_unit_title=f"review of {unit.title}", deliverable="verdict",
        acceptance_criteria=tuple(unit.acceptance_criteria), responsibilities=tuple(enforcer.responsibilities),
    )


def review_units(config, store, reviewers: list[str], unit_ids: list[str]) -> Verdict:
    """PASS when every reviewer passes every unit; else VETO with all reasons."""
    from castmatch.llm.backends import backend_name, get_backend

    delivered = {}
    for d in store.deliverables():  # oldest first: the newest accepted one wins
        if d["status"] == "done":
            delivered[d["work_unit_id"]] = d
    name = backend_name(config.llm.conn_id)
    reasons: list[str] = []
    for unit_id in unit_ids:
        unit = config.work_units[unit_id]
        deliverable = delivered.get(unit_id)
        for reviewer in reviewers:
            if name == "offline" or deliverable is None:
                verdict = rule_verdict(unit, deliverable)
            else:
                backend = get_backend(config, store)
                result = backend.generate(review_request(config, reviewer, unit, deliverable),
                                          schema=Verdict, tool=verdict_tool())
                verdict = result.deliverable
            reasons += [f"{reviewer}: {r}" for r in verdict.reasons] if verdict.verdict == "VETO" else []
            if verdict.verdict == "VETO" and not verdict.reasons:
                reasons.append(f"{reviewer}: {unit_id}: VETO")
    return Verdict(verdict="VETO" if reasons else "PASS", reasons=reasons)
