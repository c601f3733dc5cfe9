"""A distributed rate limiter in Redis: requests and input/output tokens per window, per model,
shared by every worker process (sliding window, one atomic Lua script, Redis's own clock)."""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from dataclasses import dataclass

log = logging.getLogger(__name__)

# KEYS: requests, input tokens, output tokens (sorted sets scored by time; token members "id:n")
# ARGV: window_s, rpm, itpm, otpm, estimated input tokens, member id
# Returns 0 when admitted (and records the request), else the milliseconds to wait.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local window = tonumber(ARGV[1])
local cutoff = now - window
for i = 1, 3 do redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', cutoff) end
local function tokens(key)
  local sum = 0
  for _, m in ipairs(redis.call('ZRANGE', key, 0, -1)) do
    sum = sum + tonumber(string.match(m, ':(%d+)$'))
  end
  return sum
end
local function wait_for(key)
  local oldest = redis.call('ZRANGE', KEYS[key], 0, 0, 'WITHSCORES')
  if #oldest == 0 then return 50 end
  return math.max(10, math.ceil((tonumber(oldest[2]) + window - now) * 1000))
end
local est = tonumber(ARGV[5])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return wait_for(1) end
local used_in = tokens(KEYS[2])
if used_in > 0 and used_in + est > tonumber(ARGV[3]) then return wait_for(2) end
if tokens(KEYS[3]) >= tonumber(ARGV[4]) then return wait_for(3) end
redis.call('ZADD', KEYS[1], now, ARGV[6])
redis.call('ZADD', KEYS[2], now, ARGV[6] .. ':' .. est)
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], math.ceil(window * 2)) end
return 0
"""

_RECORD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZADD', KEYS[1], now, ARGV[1] .. ':' .. ARGV[2])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[3]) * 2))
return 0
"""


@dataclass(frozen=True)
class Limit:
    requests: int
    input_tokens: int
    output_tokens: int


def redis_url() -> str | None:
    """The Redis of the rate limiter: Airflow connection ``castmatch_redis``, else
    ``$CASTMATCH_REDIS_URL``; None when neither is configured."""
    url = os.environ.get("CASTMATCH_REDIS_URL")
    try:
        from airflow.sdk import BaseHook

        conn = BaseHook.get_connection("castmatch_redis")
        db = (conn.extra_dejson or {}).get("db", 0)
        auth = f":{conn.password}@" if conn.password else ""
        return f"redis://{auth}{conn.host or '127.0.0.1'}:{conn.port or 6379}/{db}"
    except Exception:  # no Airflow context or no such connection
        return url


def key_prefix() -> str:
    return os.environ.get("CASTMATCH_REDIS_PREFIX", "castmatch")


class RedisRateLimiter:
    """``acquire`` blocks (or awaits) until a call of ``model`` fits every limit in the window."""

    def __init__(self, url: str, limits: dict[str, Limit], *, window_seconds: float = 60.0, prefix: str | None = None):
        self.url = url
        self.limits = limits
        self.window = window_seconds
        self.prefix = prefix or key_prefix()
        self._sync = None
        self._async: dict[int, object] = {}

    def limit_for(self, model: str) -> Limit | None:
        return self.limits.get(model) or self.limits.get("default")

    def _keys(self, model: str) -> list[str]:
        base = f"{self.prefix}:ratelimit:{model}"
        return [f"{base}:requests", f"{base}:input_tokens", f"{base}:output_tokens"]

    def _args(self, limit: Limit, tokens: int) -> list:
        return [self.window, limit.requests, limit.input_tokens, limit.output_tokens, int(tokens), uuid.uuid4().hex]

    # ---------------------------------------------------------------- sync

    def _client(self):
        if self._sync is None:
            import redis

            self._sync = redis.Redis.from_url(self.url, socket_timeout=10)
        return self._sync

    def acquire(self, model: str, input_tokens: int) -> float:
        """Wait until admitted; returns the seconds waited."""
        limit = self.limit_for(model)
        if limit is None:
            return 0.0
        script = self._client().register_script(_ACQUIRE)
        waited = 0.0
        while True:
            wait_ms = int(script(keys=self._keys(model), args=self._args(limit, input_tokens)))
            if wait_ms == 0:
                return waited
            log.info("rate limit for %s: waiting %d ms", model, wait_ms)
            time.sleep(wait_ms / 1000)
            waited += wait_ms / 1000

    def record_output(self, model: str, output_tokens: int) -> None:
        if self.limit_for(model) is None or output_tokens <= 0:
            return
        self._client().register_script(_RECORD)(keys=[self._keys(model)[2]], args=[uuid.uuid4().hex, int(output_tokens), self.window])

    # ---------------------------------------------------------------- async (fan-out inside one task)

    def _aclient(self):
        loop = id(asyncio.get_running_loop())
        if loop not in self._async:
            import redis.asyncio as aredis

            self._async[loop] = aredis.Redis.from_url(self.url, socket_timeout=10)
        return self._async[loop]

    async def aacquire(self, model: str, input_tokens: int) -> float:
        limit = self.limit_for(model)
        if limit is None:
            return 0.0
        script = self._aclient().register_script(_ACQUIRE)
        waited = 0.0
        while True:
            wait_ms = int(await script(keys=self._keys(model), args=self._args(limit, input_tokens)))
            if wait_ms == 0:
                return waited
            await asyncio.sleep(wait_ms / 1000)
            waited += wait_ms / 1000

    async def arecord_output(self, model: str, output_tokens: int) -> None:
        if self.limit_for(model) is None or output_tokens <= 0:
            return
        script = self._aclient().register_script(_RECORD)
        await script(keys=[self._keys(model)[2]], args=[uuid.uuid4().hex, int(output_tokens), self.window])

    async def aclose(self) -> None:
        client = self._async.pop(id(asyncio.get_running_loop()), None)
        if client is not None:
            await client.aclose()


def limiter_from_settings(settings) -> RedisRateLimiter | None:
    """The shared limiter for the LLM settings; None (with a warning) when no Redis is configured."""
    url = redis_url()
    if not url:
        log.warning("no Redis configured (connection castmatch_redis / CASTMATCH_REDIS_URL): LLM calls are not rate limited")
        return None
    limits = {
        model: Limit(rl.requests_per_minute, rl.input_tokens_per_minute, rl.output_tokens_per_minute)
        for model, rl in settings.rate_limits.items()
    }
    return RedisRateLimiter(url, limits, window_seconds=settings.rate_limit_window_seconds)
