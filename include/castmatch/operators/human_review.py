"""What the two human-in-the-loop operators (veto override, NO-GO review) share: their defaults
and how an answer is recorded."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def human_review_defaults(kwargs: dict[str, Any], *, reason: str) -> dict[str, Any]:
    """No retry of a person's answer, a reason field (``reason`` describes it), a Slack announcement."""
    from airflow.sdk import Param

    from castmatch.notify import human_review_announcement

    kwargs.setdefault("retries", 0)
    kwargs.setdefault("params", {"reason": Param("", type="string", title="Reason", description=reason)})
    kwargs.setdefault("notifiers", [human_review_announcement()])
    return kwargs


def record_answer(operator, context, event: dict[str, Any], record: Callable[..., str]) -> None:
    """Store the answer with ``record(store, event, run_key=, dag_id=, run_id=)`` before the
    provider acts on it (on a skip or a branch the provider ends the task itself)."""
    if "error" in event:  # a timeout without defaults: the provider raises it
        return
    from castmatch.operators.agent import run_key_of
    from castmatch.store import Store

    operator.validate_chosen_options(event["chosen_options"])
    ti = context["ti"]
    operator.log.warning(record(Store(), event, run_key=run_key_of(context), dag_id=ti.dag_id, run_id=ti.run_id))
