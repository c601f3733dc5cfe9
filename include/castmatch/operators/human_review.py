"""What the two human-in-the-loop operators (veto override, NO-GO review) share: their defaults,
how they say what they wait for, and how an answer is recorded."""

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


def announce_waiting(operator, context) -> None:
    """Log what the task waits for and the exact commands that answer it from a terminal (an
    ``airflow dags test`` run has no UI to answer in); the Slack announcement carries them too."""
    import datetime as dt

    from castmatch.human import answer_command

    ti = context["ti"]
    operator.answer_command = answer_command(ti.dag_id, ti.task_id, operator.options[0], run_id=ti.run_id)
    window = operator.response_timeout
    until = f"{window.total_seconds() / 60:g} min" if isinstance(window, dt.timedelta) else "no limit"
    operator.log.warning(
        "WAITING FOR A PERSON (%s to answer, then the default %r applies): %s\n"
        "  answer in the Airflow UI (Required Actions), or from a terminal:\n    %s\n  options: %s",
        until, operator.defaults, operator.subject, operator.answer_command, " | ".join(operator.options))


def record_answer(operator, context, event: dict[str, Any], record: Callable[..., str]) -> None:
    """Store the answer with ``record(store, event, run_key=, dag_id=, run_id=)`` before the
    provider acts on it (on a skip or a branch the provider ends the task itself)."""
    if "error" in event:  # a timeout without defaults: the provider raises it
        return
    from castmatch.operators.agent import scope_of
    from castmatch.store import Store

    operator.validate_chosen_options(event["chosen_options"])
    ti = context["ti"]
    _, scope = scope_of(context, operator.roadmap_dir)
    operator.log.warning(record(Store(), event, run_key=scope.run_key, dag_id=ti.dag_id, run_id=ti.run_id))
