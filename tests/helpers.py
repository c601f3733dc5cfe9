"""Helpers shared by tests and their worker processes (no side effects on import)."""

from __future__ import annotations


def fast_llm_settings(config, **updates):
    """The roadmap's LLM settings with short back-offs, for tests."""
    retry = config.llm.retry.model_copy(update={"backoff_seconds": 0.05, "task_retry_delay_seconds": 1})
    return config.llm.model_copy(update={"retry": retry, "timeout_seconds": 2.0, **updates})
