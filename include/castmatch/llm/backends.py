"""Choose the backend that turns an ``AgentRequest`` into a validated ``Deliverable``.

- ``offline``: deterministic, role-specific development answers (the seed's "auto-generate mock
  responses for development"), clearly labelled; the default when no Anthropic key is configured.
- ``live``: Claude through the Anthropic provider's ``AnthropicHook`` (connection
  ``anthropic_default``: key in the password, ``host`` as base URL).
- ``record``: live, and every answer saved as a cassette; ``replay``: cassettes, no network.

``CASTMATCH_LLM=offline|live|record|replay`` overrides the choice; ``CASTMATCH_CASSETTES`` names
the cassette folder (default: ``cassettes/`` in the roadmap folder).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from castmatch.llm.base import CallContext, LLMResult
from castmatch.llm.prompt import AgentRequest
from castmatch.llm.schema import Deliverable

OFFLINE_LABEL = "[OFFLINE DEVELOPMENT RESPONSE - generated without Claude, for development only]"
BACKENDS = ("offline", "live", "record", "replay")


class OfflineBackend:
    """Deterministic answers built from the agent's role and the work unit; no network."""

    name = "offline"

    def __init__(self, store=None, context: CallContext | None = None):
        self.store = store
        self.context = context or CallContext()

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
            parts.append("## Builds on\n" + "\n".join(f"- `{u.work_unit_id}` by {u.agent_id}" for u in request.upstream))
        if request.collaborators:
            parts.append("## With\n" + ", ".join(request.collaborators))
        deliverable = Deliverable(
            summary=f"{OFFLINE_LABEL} {request.work_unit_title}: development stand-in for '{request.deliverable}'"[:2000],
            content="\n\n".join(parts),
            status="blocked" if blocked else "done",
            blockers=[f"waiting for upstream work unit {m}" for m in request.missing_upstream],
            progress=0 if blocked else 100,
        )
        if self.store is not None:
            c = self.context
            self.store.record_llm_call(
                dag_id=c.dag_id, run_id=c.run_id, task_id=c.task_id, try_number=c.try_number, attempt=1,
                agent_id=request.agent_id, work_unit_id=c.work_unit_id or request.work_unit_id, week=c.week,
                model=request.model, backend=self.name, request_hash=request.request_hash, outcome="ok",
            )
        return LLMResult(deliverable, self.name, request.model, {})


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


def cassette_dir(config) -> Path:
    env = os.environ.get("CASTMATCH_CASSETTES")
    return Path(env) if env else Path(config.directory) / "cassettes"


def get_backend(config, store, *, name: str | None = None, context: CallContext | None = None, limiter=None):
    """The backend for ``config``'s LLM settings, auditing into ``store``."""
    settings = config.llm
    name = name or backend_name(settings.conn_id)
    if name == "offline":
        return OfflineBackend(store, context)
    from castmatch.llm.claude import ClaudeBackend
    from castmatch.llm.ratelimit import limiter_from_settings

    if limiter is None and name != "replay":
        limiter = limiter_from_settings(settings)
    return ClaudeBackend(name, settings=settings, store=store, limiter=limiter,
                         cassette_dir=cassette_dir(config), context=context)
