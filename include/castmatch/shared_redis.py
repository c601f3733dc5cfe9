"""The Redis CastMatch shares with its rate limiter, agent memory and probes, and where its keys
live in it."""

from __future__ import annotations

import os


def redis_prefix(roadmap_id: str | None = None) -> str:
    """The key prefix: ``$CASTMATCH_REDIS_PREFIX`` (default ``castmatch``), then the roadmap's id
    when the keys belong to one roadmap (rate limits, agent memory), so two roadmaps can share a
    Redis without touching each other's keys."""
    base = os.environ.get("CASTMATCH_REDIS_PREFIX", "castmatch")
    return f"{base}:{roadmap_id}" if roadmap_id else base


DEFAULT_CONN_ID = "castmatch_redis"


def client_from_url(url: str, *, timeout: float, fail_fast: bool = True):
    """A redis client for ``url`` with ``timeout`` on its socket, whose connections start without
    a handshake (``client_options``). ``fail_fast``: no retries and the same connect timeout (redis-py retries a refused connection
    with back-off for ~3 s by default); the rate limiter, which waits for a Redis that is down on
    its own terms, keeps redis-py's retries."""
    import redis

    return redis.Redis.from_url(url, **client_options(timeout, fail_fast))


def async_client_from_url(url: str, *, timeout: float, fail_fast: bool = True):
    """``client_from_url``'s asyncio twin (one per event loop: a client is bound to its loop)."""
    import redis.asyncio

    return redis.asyncio.Redis.from_url(url, **client_options(timeout, fail_fast))


def client_options(timeout: float, fail_fast: bool = True) -> dict:
    """What every redis client of ours is made with (``client_from_url``, the Redis probe's).
    ``fail_fast``: no retries, and ``timeout`` to connect too."""
    # A new connection is used at once, with no handshake: RESP2 (redis-py's default RESP3 costs a
    # HELLO and a CLIENT MAINT_NOTIFICATIONS round trip; we use neither push messages nor client-side
    # caching) and no CLIENT SETINFO identification (two more, and redis-py reading its own version
    # from the installed packages' metadata per client). An agent task opens two connections: eight
    # round trips of its twelve, each waiting for the server under load.
    options = {"socket_timeout": timeout, "protocol": 2, "driver_info": None}
    if fail_fast:
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        options.update(socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0))
    return options


def redis_conn_id(config=None, store=None) -> str:
    """The roadmap's Redis connection id (``roadmap.yaml`` ``connections.redis``), or the one that
    stands in for it after a level 1 fallback (recorded in ``store``)."""
    roadmap = getattr(config, "roadmap", None)
    conn_id = roadmap.connections.redis if roadmap else DEFAULT_CONN_ID
    if store is not None and roadmap is not None:
        from castmatch.runs import roadmap_id_of

        try:
            return store.active_connection(roadmap_id_of(config), conn_id)
        except Exception:  # the store's own failure shows where it is used; Redis is still named
            return conn_id
    return conn_id


def shared_redis_url(config=None, store=None) -> str | None:
    """The URL of the roadmap's Redis now (its connection, or the one standing in for it)."""
    return redis_url(redis_conn_id(config, store))


def redis_url(conn_id: str = DEFAULT_CONN_ID) -> str | None:
    """Airflow connection ``conn_id`` (default ``castmatch_redis``), else ``$CASTMATCH_REDIS_URL``;
    None when neither is configured."""
    url = os.environ.get("CASTMATCH_REDIS_URL")
    try:
        from airflow.sdk import BaseHook

        conn = BaseHook.get_connection(conn_id)
        db = (conn.extra_dejson or {}).get("db", 0)
        auth = f":{conn.password}@" if conn.password else ""
        return f"redis://{auth}{conn.host or '127.0.0.1'}:{conn.port or 6379}/{db}"
    except Exception:  # no Airflow context or no such connection
        return url
