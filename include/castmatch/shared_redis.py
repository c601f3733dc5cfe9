"""The Redis CastMatch shares with its rate limiter, agent memory and probes, and where its keys
live in it."""

from __future__ import annotations

import functools
import os


def redis_prefix(roadmap_id: str | None = None) -> str:
    """The key prefix: ``$CASTMATCH_REDIS_PREFIX`` (default ``castmatch``), then the roadmap's id
    when the keys belong to one roadmap (rate limits, agent memory), so two roadmaps can share a
    Redis without touching each other's keys."""
    base = os.environ.get("CASTMATCH_REDIS_PREFIX", "castmatch")
    return f"{base}:{roadmap_id}" if roadmap_id else base


DEFAULT_CONN_ID = "castmatch_redis"


@functools.cache
def driver_info():
    """redis-py's identification of itself to the server (``CLIENT SETINFO``), made once per
    process: without it redis-py reads its own version from the installed packages' metadata for
    every client it makes (~5 ms of CPU each, two clients a task). Preloaded before task
    processes fork (``castmatch.preload``)."""
    from redis.driver_info import DriverInfo

    return DriverInfo()


def client_from_url(url: str, *, timeout: float, fail_fast: bool = True):
    """A redis client for ``url``, identified by ``driver_info()``, with ``timeout`` on its socket.
    ``fail_fast``: no retries and the same connect timeout (redis-py retries a refused connection
    with back-off for ~3 s by default); the rate limiter, which waits for a Redis that is down on
    its own terms, keeps redis-py's retries."""
    import redis

    return redis.Redis.from_url(url, **_client_options(timeout, fail_fast))


def async_client_from_url(url: str, *, timeout: float, fail_fast: bool = True):
    """``client_from_url``'s asyncio twin (one per event loop: a client is bound to its loop)."""
    import redis.asyncio

    return redis.asyncio.Redis.from_url(url, **_client_options(timeout, fail_fast))


def _client_options(timeout: float, fail_fast: bool) -> dict:
    options = {"socket_timeout": timeout, "driver_info": driver_info()}
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
