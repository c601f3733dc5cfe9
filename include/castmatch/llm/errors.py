"""Errors of the LLM layer. Light on purpose: the Airflow retry policy names them at parse time."""

from __future__ import annotations


class LLMError(Exception):
    """Base of the LLM layer's errors."""


class LLMTransientError(LLMError):
    """Rate limits, overload, 5xx, timeouts that outlasted the in-task retries: Airflow retries."""


class LLMPermanentError(LLMError):
    """401/403, invalid requests, spend limits, missing cassettes: retrying cannot help."""


class MalformedAnswer(LLMError):
    """The answer did not match the deliverable schema after every repair attempt."""


class BudgetExceeded(LLMError):
    """A call would overspend a budget and the configured action is to stop."""


class RateLimiterUnavailable(LLMTransientError):
    """The rate limiter's Redis stayed down for its wait: the call was refused, not sent."""
