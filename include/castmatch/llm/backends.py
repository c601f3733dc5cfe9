"""LLM backends that turn an ``AgentRequest`` into a validated ``Deliverable``.

- ``offline``: deterministic, role-specific development answers (the seed's "auto-generate mock
  responses for development"), clearly labelled; the default when no Anthropic key is configured.
- ``live``: Claude through the Anthropic provider's ``AnthropicHook`` (connection
  ``anthropic_default``: key in the password, ``host`` as base URL).

``CASTMATCH_LLM=offline|live`` overrides the choice.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from typing import Protocol

from pydantic import ValidationError

from castmatch.llm.prompt import AgentRequest
from castmatch.llm.schema import TOOL_NAME, Deliverable, deliverable_tool

log = logging.getLogger(__name__)

OFFLINE_LABEL = "[OFFLINE DEVELOPMENT RESPONSE - generated without Claude, for development only]"
BACKENDS = ("offline", "live")


class MalformedAnswer(Exception):
    """The model's answer did not match the deliverable schema after every repair attempt."""

    def __init__(self, message: str, raw: str = ""):
        super().__init__(message)
        self.raw = raw


@dataclass
class LLMResult:
    deliverable: Deliverable
    backend: str
    model: str
    usage: dict = field(default_factory=dict)


class Backend(Protocol):
    name: str

    def generate(self, request: AgentRequest) -> LLMResult: ...


class OfflineBackend:
    """Deterministic answers built from the agent's role and the work unit; no network."""

    name = "offline"

    def generate(self, request: AgentRequest) -> LLMResult:
        digest = hashlib.sha256(request.request_hash.encode()).hexdigest()[:12]
        blocked = bool(request.missing_upstream)
        focus = request.responsibilities[int(digest, 16) % len(request.responsibilities)]
        parts = [
            OFFLINE_LABEL,
            f"# {request.work_unit_title}",
            f"Agent: {request.agent_name} ({request.agent_id}); reference {digest}.",
            f"## Deliverable\n{request.deliverable}",
            f"## Approach\nFrom the {request.agent_name}'s responsibility for {focus.lower()}: "
            + "; ".join(r.lower() for r in request.responsibilities) + ".",
            "## Acceptance criteria\n" + "\n".join(
                f"- [{' ' if blocked else 'x'}] {c}" for c in request.acceptance_criteria
            ),
        ]
        if request.upstream:
            parts.append("## Builds on\n" + "\n".join(
                f"- `{u.work_unit_id}` by {u.agent_id}" for u in request.upstream
            ))
        if request.collaborators:
            parts.append("## With\n" + ", ".join(request.collaborators))
        deliverable = Deliverable(
            summary=f"{OFFLINE_LABEL} {request.work_unit_title}: development stand-in for '{request.deliverable}'"[:2000],
            content="\n\n".join(parts),
            status="blocked" if blocked else "done",
            blockers=[f"waiting for upstream work unit {m}" for m in request.missing_upstream],
            progress=0 if blocked else 100,
        )
        return LLMResult(deliverable, self.name, request.model, usage={})


class LiveBackend:
    """Claude through ``AnthropicHook``: a forced tool call returns the deliverable.

    A malformed answer is re-asked with the validation error up to ``repair_attempts`` times,
    then raised as ``MalformedAnswer`` (the unit ends ``needs_review``).
    """

    name = "live"

    def __init__(self, conn_id: str = "anthropic_default", *, max_tokens: int = 4096, repair_attempts: int = 2):
        self.conn_id = conn_id
        self.max_tokens = max_tokens
        self.repair_attempts = repair_attempts

    def _client(self):
        from airflow.providers.anthropic.hooks.anthropic import AnthropicHook

        return AnthropicHook(conn_id=self.conn_id).get_conn()

    def generate(self, request: AgentRequest) -> LLMResult:
        client = self._client()
        system = [{"type": "text", "text": request.system_prefix, "cache_control": {"type": "ephemeral"}}]
        messages: list[dict] = [{"role": "user", "content": request.user_message}]
        usage: dict[str, int] = {}
        last_error = ""
        for attempt in range(self.repair_attempts + 1):
            response = client.messages.create(
                model=request.model,
                max_tokens=self.max_tokens,
                system=system,
                messages=messages,
                tools=[deliverable_tool()],
                tool_choice={"type": "tool", "name": TOOL_NAME},
            )
            for key in ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"):
                usage[key] = usage.get(key, 0) + int(getattr(response.usage, key, 0) or 0)
            tool_use = next((b for b in response.content if getattr(b, "type", "") == "tool_use"), None)
            try:
                if tool_use is None:
                    raise ValueError("the answer has no submit_deliverable tool call")
                deliverable = Deliverable.model_validate(tool_use.input)
                return LLMResult(deliverable, self.name, request.model, usage)
            except (ValidationError, ValueError) as exc:
                last_error = str(exc)
                log.warning("malformed answer for %s (attempt %d): %s", request.work_unit_id, attempt + 1, last_error)
                if tool_use is None:
                    messages = [*messages, {"role": "assistant", "content": [b.model_dump() for b in response.content] or "(empty)"},
                                {"role": "user", "content": f"Call the {TOOL_NAME} tool. Error: {last_error}"}]
                else:
                    messages = [*messages, {"role": "assistant", "content": [b.model_dump() for b in response.content]},
                                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_use.id,
                                                              "is_error": True,
                                                              "content": f"Invalid deliverable: {last_error}. Call {TOOL_NAME} again with a valid one."}]}]
        raise MalformedAnswer(f"answer for {request.work_unit_id} still invalid after {self.repair_attempts} repairs: {last_error}")


def _anthropic_key_configured(conn_id: str) -> bool:
    try:
        from airflow.sdk import BaseHook

        return bool(BaseHook.get_connection(conn_id).password)
    except Exception:  # no such connection, or no Airflow context: no key
        return False


def backend_name(conn_id: str = "anthropic_default") -> str:
    """``$CASTMATCH_LLM`` if set, else ``live`` when the connection has a key, else ``offline``."""
    choice = os.environ.get("CASTMATCH_LLM", "").strip().lower()
    if choice:
        if choice not in BACKENDS:
            raise ValueError(f"CASTMATCH_LLM must be one of {', '.join(BACKENDS)}, not {choice!r}")
        return choice
    return "live" if _anthropic_key_configured(conn_id) else "offline"


def get_backend(name: str | None = None, *, conn_id: str = "anthropic_default") -> Backend:
    name = name or backend_name(conn_id)
    if name == "live":
        return LiveBackend(conn_id)
    return OfflineBackend()
