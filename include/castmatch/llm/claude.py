"""Claude backends: ``live`` (AnthropicHook), ``record`` (live, and every answer saved as a
cassette) and ``replay`` (cassettes, byte for byte, no network).

One call = one or more API attempts, each one audited:
- the prompt's stable prefix carries ``cache_control``; the answer is a forced tool call
  validated against the deliverable schema, re-asked with the error a bounded number of times;
- before each attempt: the budgets (may downgrade the model or stop), then the shared Redis rate
  limiter;
- 429/529/5xx/timeouts are retried here with backoff (honouring ``retry-after``); when they
  outlast the attempts, the cached answer to the same request is served, labelled, or
  ``LLMTransientError`` hands over to Airflow's retries; 401/403/invalid requests/spend limits
  raise ``LLMPermanentError`` at once.

The core is async so that ``generate_many`` can run many calls of one task concurrently (async
client) within the rate limiter; ``generate`` runs one call on its own event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import time
from pathlib import Path

from pydantic import ValidationError

from castmatch.describe import describe
from castmatch.llm.base import CallContext, LLMResult
from castmatch.llm.budget import USAGE_KINDS, BudgetGuard, cost_usd, estimate_tokens
from castmatch.llm.errors import LLMPermanentError, LLMTransientError, MalformedAnswer
from castmatch.llm.prompt import AgentRequest
from castmatch.llm.schema import Deliverable, deliverable_tool
from castmatch.timing import mark

log = logging.getLogger(__name__)

CACHED_LABEL = "[CACHED RESPONSE - Claude was unavailable; served from the answer of {when}]"


def body_hash(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def classify(exc: BaseException) -> str | None:
    """``transient``, ``permanent``, ``garbage`` (an answer that is not a message: a body that is
    not JSON or an event stream without events) or None (not an API error)."""
    import anthropic

    if isinstance(exc, anthropic.APIConnectionError):  # includes timeouts
        return "transient"
    if isinstance(exc, anthropic.APIStatusError):
        return "transient" if exc.status_code in (408, 409, 429) or exc.status_code >= 500 else "permanent"
    if isinstance(exc, anthropic.APIResponseValidationError | ValueError | AssertionError):
        return "garbage"
    return None


def _explain(exc: Exception) -> str:
    """A short account of what is wrong with an answer, fit to send back to the model."""
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'input'}: {e['msg']}" for e in exc.errors())[:1000]
    return str(exc)[:1000]


def retry_after(exc: BaseException) -> float | None:
    """Seconds the API asked to wait (``retry-after-ms`` / ``retry-after``), if it said."""
    response = getattr(exc, "response", None)
    if response is None:
        return None
    headers = response.headers
    try:
        if headers.get("retry-after-ms"):
            return float(headers["retry-after-ms"]) / 1000
        if headers.get("retry-after"):
            return float(headers["retry-after"])
    except ValueError:
        return None
    return None


class GarbageAnswer(Exception):
    """The API answered with something that is not a message (not JSON, no events)."""


def backoff_delay(retry, attempt: int, asked: float | None) -> float:
    """Seconds before the next attempt: what the API asked (``retry-after``), else exponential
    from ``backoff_seconds`` with jitter; always within [``min_backoff_seconds``,
    ``max_backoff_seconds``], so ``retry-after: 0`` never fires attempts back to back."""
    if asked is None:
        asked = retry.backoff_seconds * 2 ** (attempt - 1) * (0.5 + random.random() / 2)
    return max(retry.min_backoff_seconds, min(asked, retry.max_backoff_seconds))


class ClaudeBackend:
    """A Claude backend in mode ``live``, ``record`` or ``replay`` (see the module doc)."""

    def __init__(self, mode: str, *, settings, store, limiter=None, cassette_dir: str | Path | None = None,
                 context: CallContext | None = None):
        if mode not in ("live", "record", "replay"):
            raise ValueError(f"unknown Claude backend mode {mode!r}")
        self.name = mode
        self.settings = settings
        self.store = store
        self.limiter = limiter
        self.cassettes = Path(cassette_dir) if cassette_dir else None
        self.context = context or CallContext()
        self.budget = BudgetGuard(settings, store)
        if mode in ("record", "replay") and self.cassettes is None:
            raise LLMPermanentError(f"the {mode} backend needs a cassette folder (CASTMATCH_CASSETTES)")

    # ---------------------------------------------------------------- public

    def generate(self, request: AgentRequest, **answer) -> LLMResult:
        """One call. ``answer`` may name another ``schema`` and forced ``tool`` than the deliverable's."""
        return asyncio.run(self._one(request, **answer))

    def generate_many(self, requests: list[AgentRequest], contexts: list[CallContext] | None = None,
                      concurrency: int = 16) -> list[LLMResult | BaseException]:
        """Run ``requests`` concurrently (bounded, within the rate limiter); results in order,
        an exception in place of each call that failed."""
        return asyncio.run(self._many(requests, contexts, concurrency))

    async def _one(self, request, **answer):
        mark("backend")  # asyncio's loop set-up
        client = await self._client()
        mark("client")
        try:
            return await self.agenerate(request, client=client, **answer)
        finally:
            await self._close(client)

    async def _many(self, requests, contexts, concurrency):
        client = await self._client()
        gate = asyncio.Semaphore(concurrency)

        async def run(i, request):
            async with gate:
                ctx = contexts[i] if contexts else None
                return await self.agenerate(request, client=client, context=ctx)

        try:
            return await asyncio.gather(*(run(i, r) for i, r in enumerate(requests)), return_exceptions=True)
        finally:
            await self._close(client)

    async def agenerate(self, request: AgentRequest, *, client=None, context: CallContext | None = None,
                        schema=Deliverable, tool: dict | None = None) -> LLMResult:
        context = context or self.context
        tool = tool or deliverable_tool()
        est = estimate_tokens(request.system_prefix, request.user_message) + 400  # + tool schema
        model = request.model
        if self.name != "replay":
            model = self.budget.check(run_key=context.run_key, agent_id=request.agent_id, week=context.week, model=model,
                                      input_tokens=est, max_tokens=self.settings.max_tokens)
            mark("budget")
        messages: list[dict] = [{"role": "user", "content": request.user_message}]
        usage = dict.fromkeys(USAGE_KINDS, 0)
        last_error = ""
        for repair in range(self.settings.repair_attempts + 1):
            body = self._body(request, model, messages, tool)
            try:
                message = await self._attempts(body, request, context, model, est, client)
            except LLMTransientError:
                cached = self._cached(request, context) if schema is Deliverable else None
                if cached is not None:
                    return cached
                raise
            except GarbageAnswer as exc:  # the same question again, within the repair budget
                last_error = str(exc)
                log.warning("garbage answer for %s (repair %d of %d): %s", request.work_unit_id, repair,
                            self.settings.repair_attempts, last_error)
                continue
            for key in USAGE_KINDS:
                usage[key] += int(getattr(message.usage, key, 0) or 0)
            tool_use = next((b for b in message.content if getattr(b, "type", "") == "tool_use"), None)
            try:
                if tool_use is None:
                    raise ValueError(f"the answer has no {tool['name']} tool call")
                deliverable = schema.model_validate(tool_use.input)
            except (ValidationError, ValueError) as exc:
                last_error = _explain(exc)
                self._audit_outcome(body, "malformed", last_error)
                log.warning("malformed answer for %s (repair %d of %d): %s", request.work_unit_id, repair,
                            self.settings.repair_attempts, last_error)
                assistant = [b.model_dump(exclude_none=True) for b in message.content]
                if tool_use is None:
                    feedback = {"role": "user", "content": f"Call the {tool['name']} tool. Problem: {last_error}"}
                else:
                    feedback = {"role": "user", "content": [{
                        "type": "tool_result", "tool_use_id": tool_use.id, "is_error": True,
                        "content": f"Invalid answer: {last_error}. Call {tool['name']} again with a valid one.",
                    }]}
                messages = [*messages, {"role": "assistant", "content": assistant or "(empty)"}, feedback]
                continue
            self.store.cache_response(request.request_hash, model, deliverable.model_dump())
            return LLMResult(deliverable, self.name, model, usage)
        raise MalformedAnswer(
            f"answer for {request.work_unit_id} still invalid after {self.settings.repair_attempts} repair(s): {last_error}"
        )

    # ---------------------------------------------------------------- one request, its attempts

    def _body(self, request: AgentRequest, model: str, messages: list[dict], tool: dict | None = None) -> dict:
        tool = tool or deliverable_tool()
        return {
            "model": model,
            "max_tokens": self.settings.max_tokens,
            "system": [{"type": "text", "text": request.system_prefix, "cache_control": {"type": "ephemeral"}}],
            "messages": messages,
            "tools": [tool],
            "tool_choice": {"type": "tool", "name": tool["name"]},
        }

    async def _attempts(self, body, request, context, model, est, client):
        """Send ``body`` until it is answered, within the retry policy. Write-ahead: each attempt's
        ledger row is inserted before the request goes out (no row, no request) and completed after;
        the raw answer is kept (per run and body) before anything else can fail, so a retry of the
        same request reuses it instead of paying again."""
        digest = body_hash(body)
        kept = self._kept_answer(context, digest)  # only a retry of this run can have one
        if kept is not None:
            self._ledger_reused(context, request, model, digest)
            log.info("%s: reusing the answer already paid for in this run (request %s)", request.work_unit_id,
                     digest[:12])
            return kept
        retry = self.settings.retry
        for attempt in range(1, retry.attempts + 1):
            ticket = None
            if self.limiter is not None and self.name != "replay":
                ticket = await self.limiter.aacquire(model, est)
                mark("rate_limiter")
            row = self._ledger_start(context, request, model, digest, attempt, est)  # raises: nothing is sent
            mark("ledger")
            started = time.perf_counter()
            try:
                message, raw = await self._send(client, body, digest)
                mark("llm_call")
            except Exception as exc:
                kind = classify(exc)
                latency = time.perf_counter() - started
                self._ledger_finish(row, latency, {}, "malformed" if kind == "garbage" else "error", exc)
                if ticket is not None:  # a failed attempt is still a request against the limit
                    await self._settle(ticket, 0, 0)
                if kind == "permanent":
                    raise LLMPermanentError(f"{request.work_unit_id}: Claude refused the request: {describe(exc)}") from None
                if kind == "garbage":
                    raise GarbageAnswer(f"the answer was not a message: {describe(exc)}") from None
                if kind is None:
                    raise
                if attempt == retry.attempts:
                    raise LLMTransientError(
                        f"{request.work_unit_id}: Claude unavailable after {attempt} attempt(s): {describe(exc)}"
                    ) from None
                delay = backoff_delay(retry, attempt, retry_after(exc))
                log.warning("attempt %d for %s failed (%s); retrying in %.1f s", attempt, request.work_unit_id,
                            describe(exc), delay)
                await asyncio.sleep(delay)
                continue
            latency = time.perf_counter() - started
            usage = {k: int(getattr(message.usage, k, 0) or 0) for k in USAGE_KINDS}
            # the paid answer is kept with its row, in one transaction, before anything else can fail
            keep = {"run_key": context.run_key, "request_hash": digest, "model": model, "raw": raw} \
                if context.run_key else None
            self._ledger_finish(row, latency, usage, "ok", None, model=model, keep=keep)
            mark("ledger")
            if ticket is not None:  # what the API counts: uncached input and cache writes
                await self._settle(ticket, usage["input_tokens"] + usage["cache_creation_input_tokens"],
                                   usage["output_tokens"])
                mark("rate_limiter")
            return message
        raise AssertionError("unreachable")

    def rehearse(self, request) -> None:
        """Run this backend's store statements of one answered call (the budget check, the ledger
        row started and completed with its kept answer, the response cache) on a rehearsing store
        (``Store.rehearsal``), for ``castmatch.operators.agent.rehearse_store_statements``."""
        context = self.context
        model = self.budget.check(run_key=context.run_key, agent_id=request.agent_id, week=context.week,
                                  model=request.model, input_tokens=1, max_tokens=self.settings.max_tokens)
        row = self._ledger_start(context, request, model, "rehearsal", 1, 1)
        self._ledger_finish(row, 0.0, dict.fromkeys(USAGE_KINDS, 0), "ok", None, model=model,
                            keep={"run_key": context.run_key, "request_hash": "rehearsal", "model": model, "raw": "{}"})
        self.store.cache_response("rehearsal", model, {})

    async def _settle(self, ticket, counted_input: int, output_tokens: int) -> None:
        """Settle a rate-limit reservation; a Redis error here never costs the paid answer (the
        reservation then simply expires with the window)."""
        try:
            await self.limiter.asettle(ticket, counted_input, output_tokens)
        except Exception as exc:
            log.warning("rate-limit reservation not settled (%s): it expires with the window", describe(exc))

    async def _client(self):
        if self.name == "replay":
            return None
        from castmatch.llm.hook import ClaudeHook

        client = await ClaudeHook(conn_id=self.settings.conn_id).get_async_conn()
        # Our attempts loop does the retries, so that every attempt is audited.
        return client.with_options(max_retries=0, timeout=self.settings.timeout_seconds)

    @staticmethod
    async def _close(client) -> None:
        if client is not None:
            await client.close()

    async def _send(self, client, body: dict, digest: str):
        from anthropic.types import Message

        if self.name == "replay":
            path = self.cassettes / f"{digest}.json"
            if not path.exists():
                raise LLMPermanentError(
                    f"no cassette for request {digest} in {self.cassettes}: record it with CASTMATCH_LLM=record"
                )
            content = path.read_bytes()
            return Message.model_validate_json(content), content.decode()
        if self.name == "record":
            raw = await client.messages.with_raw_response.create(**body)
            content = raw.http_response.content
            self.cassettes.mkdir(parents=True, exist_ok=True)
            (self.cassettes / f"{digest}.json").write_bytes(content)
            return Message.model_validate_json(content), content.decode()
        if self.settings.stream:
            async with client.messages.stream(**body) as stream:
                message = await stream.get_final_message()
        else:
            message = await client.messages.create(**body)
        return message, message.model_dump_json()

    # ---------------------------------------------------------------- audit and fallback

    def _row(self, context: CallContext, request, model, digest, attempt) -> dict:
        return {
            "run_key": context.run_key, "purpose": context.purpose,
            "dag_id": context.dag_id, "run_id": context.run_id, "task_id": context.task_id,
            "try_number": context.try_number, "attempt": attempt, "agent_id": request.agent_id,
            "work_unit_id": context.work_unit_id or request.work_unit_id, "week": context.week,
            "model": model, "backend": self.name, "request_hash": digest,
        }

    def _ledger_start(self, context, request, model, digest, attempt, est) -> int:
        """Book the attempt before sending it (outcome ``started``, priced at its worst case: the
        input estimate and ``max_tokens`` of output), so a process killed mid-call leaves a row
        that the next attempt of the unit, or ``castmatch reconcile``, turns into ``lost``."""
        worst = cost_usd(self.settings, model, {"input_tokens": est, "output_tokens": self.settings.max_tokens})
        return self.store.start_llm_call(**self._row(context, request, model, digest, attempt), input_estimate=est,
                                         cost_usd=worst)

    def _ledger_finish(self, row_id: int, latency, usage, outcome, exc, *, model: str | None = None,
                       keep: dict | None = None) -> None:
        """Complete an attempt's row (and keep the paid answer with it). Failing to (the store
        went away after a paid call) is logged, never fatal: the answer in hand goes on, and the row
        stays ``started`` for reconciliation."""
        try:
            self.store.finish_llm_call(
                row_id, keep=keep, outcome=outcome, latency_ms=int(latency * 1000),
                **{k: usage.get(k, 0) for k in USAGE_KINDS}, cost_usd=cost_usd(self.settings, model, usage) if model else 0.0,
                error_class=type(exc).__name__ if exc else None, error=describe(exc) if exc else None)
        except Exception as error:
            log.error("ledger row %s not completed%s (%s): it stays 'started' until reconciled", row_id,
                      " and the paid answer not kept" if keep else "", describe(error))

    def _ledger_reused(self, context, request, model, digest) -> None:
        self.store.record_llm_call(**self._row(context, request, model, digest, 0), outcome="reused",
                                   error="answer already paid for in this run (kept raw answer)")

    def _kept_answer(self, context, digest: str):
        """The answer to this very request already paid for in this run, by an earlier try of the
        task (a first try has none to look up)."""
        if not context.run_key or (context.try_number or 1) <= 1:
            return None
        from anthropic.types import Message

        raw = self.store.kept_llm_answer(run_key=context.run_key, request_hash=digest)
        return Message.model_validate_json(raw) if raw else None

    def _audit_outcome(self, body: dict, outcome: str, error: str) -> None:
        """Mark the latest attempt of ``body`` (answered, but unusable) with ``outcome``."""
        self.store.update_llm_call_outcome(body_hash(body), outcome, error)

    def _cached(self, request: AgentRequest, context: CallContext) -> LLMResult | None:
        if not self.settings.fallback_to_cache:
            return None
        row = self.store.cached_response(request.request_hash)
        if row is None:
            return None
        label = CACHED_LABEL.format(when=row["created_at"].isoformat() if row["created_at"] else "an earlier run")
        data = dict(row["deliverable"])
        data["summary"] = f"{label} {data['summary']}"[:2000]
        data["content"] = f"{label}\n\n{data['content']}"
        self.store.record_llm_call(**{**self._row(context, request, row["model"], request.request_hash, 0),
                                      "backend": "cache"}, outcome="cache_fallback")
        log.warning("Claude unavailable: serving the cached answer for %s", request.work_unit_id)
        return LLMResult(Deliverable.model_validate(data), "cache", row["model"], {})
