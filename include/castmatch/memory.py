"""Agents' short-term memory in Redis: the handoff artefacts of a run.

When a work unit delivers, its deliverable (summary and content: what the next agent builds on)
is remembered under the run in Redis, with a time to live and a size cap. A consuming unit
recalls its upstream work from this memory; PostgreSQL holds every deliverable for good (the
long-term store), so a recall that misses (expired, evicted, Redis down) falls back to it and
says so. The memory-accuracy KPI measures this memory: the share of a run's delivered artefacts
that recall intact (``castmatch.kpis.sources``).
"""

from __future__ import annotations

import hashlib
import logging

log = logging.getLogger(__name__)

TTL_SECONDS = 120 * 24 * 3600  # a roadmap is twelve weeks plus extensions
MAX_CONTENT_CHARS = 200_000  # the size cap of one artefact
TIMEOUT_SECONDS = 3.0


def artefact_hash(summary: str, content: str) -> str:
    return hashlib.sha256(f"{summary}\x1f{content}".encode()).hexdigest()


class AgentMemory:
    """Short-term memory of one roadmap's runs, in one Redis."""

    def __init__(self, client, roadmap_id: str, *, ttl_seconds: int = TTL_SECONDS):
        from castmatch.shared_redis import redis_prefix

        self.client = client
        self.prefix = f"{redis_prefix(roadmap_id)}:memory"
        self.ttl = ttl_seconds

    def key(self, run_key: str, unit_id: str) -> str:
        return f"{self.prefix}:{run_key}:{unit_id}"

    def remember(self, run_key: str, unit_id: str, *, agent_id: str, summary: str, content: str) -> None:
        """Keep one unit's handoff artefact for the run (a rerun replaces it)."""
        content = content[:MAX_CONTENT_CHARS]
        key = self.key(run_key, unit_id)
        pipe = self.client.pipeline()
        pipe.delete(key)
        pipe.hset(key, mapping={"agent_id": agent_id, "summary": summary, "content": content,
                                "hash": artefact_hash(summary, content)})
        pipe.expire(key, self.ttl)
        pipe.execute()

    def recall(self, run_key: str, unit_ids: list[str]) -> dict[str, dict]:
        """The remembered artefacts of ``unit_ids`` in the run: {unit_id: {agent_id, summary,
        content, hash}}; a unit not remembered (or whose artefact fails its hash) is absent."""
        if not unit_ids:
            return {}
        pipe = self.client.pipeline()
        for unit_id in unit_ids:
            pipe.hgetall(self.key(run_key, unit_id))
        found = {}
        for unit_id, raw in zip(unit_ids, pipe.execute(), strict=True):
            item = {k.decode(): v.decode() for k, v in (raw or {}).items()}
            if item and item.get("hash") == artefact_hash(item.get("summary", ""), item.get("content", "")):
                found[unit_id] = item
        return found

    def close(self) -> None:
        self.client.close()


def agent_memory(config, store=None, *, url: str | None = None) -> AgentMemory | None:
    """The memory of ``config``'s roadmap in the shared Redis (``url``, else connection
    ``castmatch_redis`` or ``$CASTMATCH_REDIS_URL``); None when no Redis is configured."""
    from castmatch.runs import roadmap_id_of
    from castmatch.shared_redis import client_from_url, shared_redis_url

    url = url or shared_redis_url(config, store)
    if not url:
        return None
    return AgentMemory(client_from_url(url, timeout=TIMEOUT_SECONDS), roadmap_id_of(config))


def recall_upstream(memory: AgentMemory | None, store, unit_ids: list[str], *, run_key: str) -> tuple[dict, list[str]]:
    """The upstream deliverables of a unit: from the agents' memory, else (and logged) from the
    long-term store. Returns ({unit_id: deliverable-like dict}, units recalled from the store)."""
    if not unit_ids:
        return {}, []
    recalled: dict[str, dict] = {}
    if memory is not None:
        try:
            recalled = memory.recall(run_key, list(unit_ids))
        except Exception as exc:  # memory is a cache of the store: never a reason to fail the unit
            log.warning("agent memory unavailable (%s): upstream work read from the long-term store", exc)
    missing = [u for u in unit_ids if u not in recalled]
    stored = store.upstream_deliverables(missing, run_key=run_key) if missing else {}
    if stored:
        log.info("recalled from the long-term store (not in agent memory): %s", ", ".join(sorted(stored)))
    return {**stored, **recalled}, sorted(stored)
