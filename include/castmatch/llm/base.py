"""What every backend returns, and where a call comes from."""

from __future__ import annotations

from dataclasses import dataclass, field

from castmatch.llm.schema import Deliverable


@dataclass(frozen=True)
class CallContext:
    """Where a call comes from, for the audit ledger and the budgets."""

    dag_id: str | None = None
    run_id: str | None = None
    task_id: str | None = None
    try_number: int | None = None
    work_unit_id: str | None = None
    week: int | None = None
    run_key: str | None = None  # the roadmap run the call belongs to (castmatch.runs)
    purpose: str = "agent"  # agent | review | probe | standup


@dataclass
class LLMResult:
    deliverable: Deliverable
    backend: str  # offline | live | record | replay | cache
    model: str
    usage: dict = field(default_factory=dict)
