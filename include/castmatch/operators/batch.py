"""Work that can wait goes to Claude as one Message Batch (half price) and the task waits deferred.

Reuses the Anthropic provider's hook (``create_batch``, ``stream_batch_results``) and its
``AnthropicBatchTrigger``; the operators do not subclass ``AnthropicBatchOperator`` because that
module imports the SDK at DAG-parse time and its requests are fixed when the DAG is built, while
ours are built from the store when the task runs.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator


class ClaudeBatchMixin:
    """For an operator: ``defer_batch`` submits, ``batch_results`` reads the finished batch."""

    def defer_batch(self, context, config, requests: list[dict], *, method_name: str, timeout: float) -> None:
        from airflow.providers.anthropic.hooks.anthropic import AnthropicHook
        from airflow.providers.anthropic.triggers.batch import AnthropicBatchTrigger

        batch = AnthropicHook(conn_id=config.llm.conn_id).create_batch(requests)
        context["ti"].xcom_push(key="batch_id", value=batch.id)
        self.log.info("batch %s submitted with %d request(s): waiting deferred (half price)", batch.id, len(requests))
        self.defer(
            trigger=AnthropicBatchTrigger(conn_id=config.llm.conn_id, batch_id=batch.id,
                                          poll_interval=config.llm.batch_poll_seconds, end_time=time.time() + timeout),
            method_name=method_name,
            timeout=dt.timedelta(seconds=timeout + config.llm.batch_poll_seconds + 60),
        )

    def batch_results(self, config, event) -> Iterator[tuple[str, object | None, str | None]]:
        """(custom_id, message or None, why not) of each request of the finished batch."""
        from airflow.providers.anthropic.hooks.anthropic import AnthropicHook, validate_execute_complete_event
        from airflow.sdk.exceptions import AirflowException

        event = validate_execute_complete_event(event)
        if event["status"] != "success":
            raise AirflowException(f"batch {event.get('batch_id')}: {event.get('message')}")
        self.batch_id = event["batch_id"]
        for item in AnthropicHook(conn_id=config.llm.conn_id).stream_batch_results(event["batch_id"]):
            if item.result.type != "succeeded":
                yield item.custom_id, None, item.result.type
            else:
                yield item.custom_id, item.result.message, None


def tool_input(message) -> dict:
    """The input of the answer's (forced) tool call, or {}."""
    tool_use = next((b for b in message.content if getattr(b, "type", "") == "tool_use"), None)
    return tool_use.input if tool_use else {}


def book_batch_call(config, store, ti, message, *, run_key: str | None, purpose: str, agent_id: str,
                    batch_id: str, outcome: str, week: int | None = None) -> None:
    """One ledger row for one answer of a batch, at the batch price."""
    from castmatch.llm.budget import USAGE_KINDS, cost_usd
    from castmatch.runs import roadmap_id_of

    usage = {k: int(getattr(message.usage, k, 0) or 0) for k in USAGE_KINDS}
    store.record_llm_call(
        roadmap_id=roadmap_id_of(config), run_key=run_key, purpose=purpose,
        dag_id=ti.dag_id, run_id=ti.run_id, task_id=ti.task_id, try_number=ti.try_number, attempt=1,
        agent_id=agent_id, work_unit_id=None, week=week, model=message.model, backend="batch",
        request_hash=batch_id, **usage, cost_usd=cost_usd(config.llm, message.model, usage, batch=True),
        batch=True, outcome=outcome,
    )
