"""Enforcer reviews for ``review`` gate criteria: each reviewed deliverable judged against its
work unit's acceptance criteria, with a verdict constrained to PASS or VETO.

On a Claude backend the enforcer answers through a forced ``submit_verdict`` tool whose verdict
is an enum; the deliverable is quoted as data. Offline the judgement is a *rule check*: every
acceptance criterion must be answered with evidence (a specific statement that is not the
criterion's own words), and no blocker open; echoing ``[x] <criterion>`` is not evidence. In both,
text inside a deliverable cannot choose the verdict.

Each verdict is stored once per (reviewer, deliverable content, method): later gate pokes and
reruns reuse it, so a gate re-checking every few seconds does not pay for the same review twice,
and a changed deliverable is reviewed again.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from castmatch.llm.prompt import AgentRequest, quote_data, system_prefix

VERDICT_TOOL = "submit_verdict"
RULE_METHOD = "rule:evidence-v2"
RULE_LABEL = "rule check (offline), not a Claude review"
EVIDENCE_MIN_WORDS = 8
EVIDENCE_MIN_NEW_WORDS = 4  # content words the criterion itself does not contain
_STOPWORDS = frozenset("""a an and are as at be by for from has have in into is it its of on or that the this to was
were will with all any each every not no than then there these those which who what when where how""".split())
_SEPARATORS = re.compile(r"^\s*(?:[-\u2013\u2014:]+|evidence\s*:)\s*", re.IGNORECASE)


class Verdict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    verdict: Literal["PASS", "VETO"]
    reasons: list[str] = Field(default_factory=list, description="One per acceptance criterion not met")


@dataclass
class ReviewResult:
    """The verdict of all reviewers on all units, and how each was reached."""

    verdict: str
    reasons: list[str] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)  # e.g. ["claude:claude-sonnet-4-5"] or [RULE_METHOD]
    reused: int = 0  # verdicts taken from the store instead of asked again

    @property
    def checked_by(self) -> str:
        if not self.methods:
            return "nothing delivered to review"
        if all(m == RULE_METHOD for m in self.methods):
            return RULE_LABEL
        models = sorted({m.split(":", 1)[1] for m in self.methods if m.startswith("claude:")})
        label = f"Claude review ({', '.join(models)})"
        return label + (f" and {RULE_LABEL}" if RULE_METHOD in self.methods else "")


def verdict_tool() -> dict:
    schema = Verdict.model_json_schema()
    schema.pop("title", None)
    return {"name": VERDICT_TOOL, "description": "Submit your verdict on the deliverable. Call exactly once.",
            "input_schema": schema}


def content_hash(deliverable: dict) -> str:
    """Identity of what is reviewed: the deliverable's summary, content, status and blockers."""
    blob = "\x1f".join([deliverable["status"], deliverable["summary"], deliverable["content"],
                        "\x1e".join(deliverable.get("blockers") or [])])
    return hashlib.sha256(blob.encode()).hexdigest()


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9][a-z0-9'_-]*", text.lower())


def _content_words(text: str) -> set[str]:
    return {w for w in _words(text) if len(w) >= 4 and w not in _STOPWORDS}


def evidence_for(criterion: str, content: str) -> str | None:
    """The evidence a deliverable gives for ``criterion``: the text after ``[x] <criterion>`` on
    its line (after a dash or "evidence:"), or on the next line starting with "evidence:". None
    when the criterion is not ticked at all."""
    lines = content.splitlines()
    marker = f"[x] {criterion}".lower()
    for i, line in enumerate(lines):
        at = line.lower().find(marker)
        if at < 0:
            continue
        rest = _SEPARATORS.sub("", line[at + len(marker):]).strip()
        if not rest and i + 1 < len(lines) and lines[i + 1].strip().lower().startswith("evidence:"):
            rest = lines[i + 1].strip()[len("evidence:"):].strip()
        return rest
    return None


def evidence_problem(criterion: str, evidence: str | None, seen: set[str]) -> str | None:
    """Why ``evidence`` does not show ``criterion`` is met, or None when it is specific enough."""
    if evidence is None:
        return "not reported met"
    normal = " ".join(_words(evidence))
    if not normal:
        return "ticked with no evidence"
    if normal == " ".join(_words(criterion)):
        return "the evidence only repeats the criterion"
    if len(_words(evidence)) < EVIDENCE_MIN_WORDS:
        return f"the evidence is too thin ({len(_words(evidence))} words, needs {EVIDENCE_MIN_WORDS})"
    new = _content_words(evidence) - _content_words(criterion)
    if len(new) < EVIDENCE_MIN_NEW_WORDS:
        return "the evidence restates the criterion instead of saying what was done"
    if normal in seen:
        return "the same evidence is given for another criterion"
    seen.add(normal)
    return None


def rule_verdict(unit, deliverable: dict | None) -> Verdict:
    """The offline rule check of one deliverable against its unit's acceptance criteria."""
    if deliverable is None or deliverable["status"] != "done":
        return Verdict(verdict="VETO", reasons=[f"{unit.id}: not delivered"])
    reasons = [f"{unit.id}: open blocker: {b}" for b in deliverable.get("blockers") or []]
    seen: set[str] = set()
    for criterion in unit.acceptance_criteria:
        problem = evidence_problem(criterion, evidence_for(criterion, deliverable["content"]), seen)
        if problem:
            reasons.append(f"{unit.id}: {criterion}: {problem}")
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
        f"summary: {quote_data(deliverable['summary'])}\n{quote_data(deliverable['content'])}\n</deliverable>\n"
        "</upstream_deliverables>",
        f"Answer with the {VERDICT_TOOL} tool.",
    ])
    return AgentRequest(
        agent_id=enforcer.id, agent_name=enforcer.name, model=enforcer.model,
        system_prefix=system_prefix(config, enforcer), user_message=message, work_unit_id=unit.id,
        work_unit_title=f"review of {unit.title}", deliverable="verdict",
        acceptance_criteria=tuple(unit.acceptance_criteria), responsibilities=tuple(enforcer.responsibilities),
    )


def review_units(config, store, reviewers: list[str], unit_ids: list[str], *, run_key: str,
                 context=None) -> ReviewResult:
    """PASS when every reviewer passes every unit's deliverable in run ``run_key``; else VETO
    with all reasons. Verdicts already stored for the same content are reused, not asked again."""
    from castmatch.llm.backends import backend_name, get_backend
    from castmatch.llm.base import CallContext
    from castmatch.runs import roadmap_of

    roadmap_id = roadmap_of(run_key)
    delivered = store.upstream_deliverables(unit_ids, run_key=run_key)
    offline = backend_name(config.llm.conn_id) == "offline"
    context = context or CallContext(run_key=run_key, purpose="review")
    result = ReviewResult("PASS")
    backend = None
    for unit_id in unit_ids:
        unit = config.work_units[unit_id]
        deliverable = delivered.get(unit_id)
        for reviewer in reviewers:
            if deliverable is None:
                verdict = rule_verdict(unit, None)
            else:
                method = RULE_METHOD if offline else f"claude:{config.agents[reviewer].model}"
                digest = content_hash(deliverable)
                stored = store.review_verdict(roadmap_id=roadmap_id, reviewer=reviewer, work_unit_id=unit_id,
                                              content_hash=digest, method=method)
                if stored is not None:
                    verdict = Verdict(verdict=stored["verdict"], reasons=list(stored["reasons"]))
                    result.reused += 1
                else:
                    if offline:
                        verdict = rule_verdict(unit, deliverable)
                    else:
                        backend = backend or get_backend(config, store, context=context)
                        verdict = backend.generate(review_request(config, reviewer, unit, deliverable),
                                                   schema=Verdict, tool=verdict_tool()).deliverable
                    store.save_review_verdict(roadmap_id=roadmap_id, reviewer=reviewer, work_unit_id=unit_id,
                                              content_hash=digest, method=method, verdict=verdict.verdict,
                                              reasons=verdict.reasons, run_key=run_key)
                result.methods.append(method)
            if verdict.verdict == "VETO":
                result.reasons += [f"{reviewer}: {r}" for r in verdict.reasons] or [f"{reviewer}: {unit_id}: VETO"]
    result.verdict = "VETO" if result.reasons else "PASS"
    return result
