"""Prices and budgets: what a call costs, and whether the next one may be sent."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from castmatch.llm.errors import BudgetExceeded

log = logging.getLogger(__name__)
USAGE_KINDS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


def cost_usd(settings, model: str, usage: dict, *, batch: bool = False) -> float:
    """USD of one call from the price table (per million tokens); 0 for an unpriced model."""
    price = settings.prices.get(model)
    if price is None:
        return 0.0
    total = (
        usage.get("input_tokens", 0) * price.input
        + usage.get("output_tokens", 0) * price.output
        + usage.get("cache_creation_input_tokens", 0) * price.cache_write
        + usage.get("cache_read_input_tokens", 0) * price.cache_read
    ) / 1_000_000
    return total * (settings.batch_discount if batch else 1.0)


def estimate_tokens(*texts: str) -> int:
    """A cheap, conservative token estimate (about four characters a token)."""
    return sum(len(t) for t in texts) // 4 + 1


@dataclass(frozen=True)
class Scope:
    name: str
    usd: float | None
    tokens: int | None
    spent_usd: float
    spent_tokens: int


class BudgetGuard:
    """Checks the roadmap, week and agent budgets of a run before a call, against the audit ledger.

    The worst case of the call (its input estimate plus ``max_tokens`` of output) must fit in
    every budget. Over budget: ``downgrade`` switches to the cheaper model (checked again),
    ``stop`` raises ``BudgetExceeded``.
    """

    def __init__(self, settings, store):
        self.settings = settings
        self.store = store

    def _scopes(self, run_key: str | None, agent_id: str, week: int | None) -> list[Scope]:
        b = self.settings.budgets
        spent = self.store.llm_spend_scopes(run_key=run_key, agent_id=agent_id, week=week)
        scopes = [Scope("roadmap", b.roadmap.usd, b.roadmap.tokens, *spent["run"])]
        if week is not None:
            limit = b.weeks.get(week, b.per_week)
            scopes.append(Scope(f"week {week}", limit.usd, limit.tokens, *spent["week"]))
        limit = b.agents.get(agent_id, b.per_agent)
        scopes.append(Scope(f"agent {agent_id}", limit.usd, limit.tokens, *spent["agent"]))
        return scopes

    def _overrun(self, scopes: list[Scope], model: str, input_tokens: int, max_tokens: int) -> str | None:
        worst = cost_usd(self.settings, model, {"input_tokens": input_tokens, "output_tokens": max_tokens})
        for s in scopes:
            if s.usd is not None and s.spent_usd + worst > s.usd:
                return f"{s.name} budget ${s.usd:.2f}: spent ${s.spent_usd:.4f}, this call up to ${worst:.4f} on {model}"
            if s.tokens is not None and s.spent_tokens + input_tokens + max_tokens > s.tokens:
                return f"{s.name} budget {s.tokens} tokens: spent {s.spent_tokens}, this call up to {input_tokens + max_tokens}"
        return None

    def check(self, *, agent_id: str, week: int | None, model: str, input_tokens: int, max_tokens: int,
              run_key: str | None = None) -> str:
        """The model to call with (``model`` or the downgrade); raises ``BudgetExceeded``. The
        budgets are those of the run ``run_key`` (a roadmap run is one program)."""
        scopes = self._scopes(run_key, agent_id, week)
        reason = self._overrun(scopes, model, input_tokens, max_tokens)
        if reason is None:
            return model
        b = self.settings.budgets
        if b.on_exceed == "downgrade" and b.downgrade_to and b.downgrade_to != model:
            cheaper = self._overrun(scopes, b.downgrade_to, input_tokens, max_tokens)
            if cheaper is None:
                log.warning("over budget (%s): switching %s -> %s", reason, model, b.downgrade_to)
                return b.downgrade_to
            reason = cheaper
        raise BudgetExceeded(f"call not sent: {reason}")
