"""A distributed rate limiter in Redis: requests and input/output tokens per window, per model,
shared by every worker process (sliding window, one atomic Lua script, Redis's own clock)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass

from castmatch.shared_redis import redis_prefix, redis_url

log = logging.getLogger(__name__)

REDIS_RETRY_SECONDS = 2.0  # between attempts to reach a Redis that is down

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

# After the answer: replace the input-token reservation by what the API counts against the
# limit (uncached input + cache writes; cache reads do not count), and book the output tokens.
# KEYS: input tokens, output tokens. ARGV: member id, estimated, counted input, output, window_s
_SETTLE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local score = redis.call('ZSCORE', KEYS[1], ARGV[1] .. ':' .. ARGV[2])
if score then
  redis.call('ZREM', KEYS[1], ARGV[1] .. ':' .. ARGV[2])
  redis.call('ZADD', KEYS[1], score, ARGV[1] .. ':' .. ARGV[3])
end
if tonumber(ARGV[4]) > 0 then redis.call('ZADD', KEYS[2], now, ARGV[1] .. ':' .. ARGV[4]) end
for i = 1, 2 do redis.call('EXPIRE', KEYS[i], math.ceil(tonumber(ARGV[5]) * 2)) end
return 0
"""


@dataclass
class Ticket:
    """An admitted call: its reservation, to be settled with the real token counts."""

    model: str
    member: str
    estimated: int
    waited: float = 0.0


@dataclass(frozen=True)
class Limit:
    requests: int
    input_tokens: int
    output_tokens: int


class RedisRateLimiter:
    """``acquire`` blocks (or awaits) until a call of ``model`` fits every limit in the window."""

    def __init__(self, url: str, limits: dict[str, Limit], *, window_seconds: float = 60.0, prefix: str | None = None,
                 redis_wait_seconds: float = 30.0, retry_later_seconds: float | None = None):
        self.url = url
        self.limits = limits
        self.window = window_seconds
        self.prefix = prefix or redis_prefix()
        self.redis_wait = redis_wait_seconds  # how long a call waits for a Redis that is down
        self.retry_later = retry_later_seconds  # when Airflow tries the unit again (for the message)
        self._sync = None
        self._async: dict[int, object] = {}

    def limit_for(self, model: str) -> Limit | None:
        return self.limits.get(model) or self.limits.get("default")

    def _keys(self, model: str) -> list[str]:
        base = f"{self.prefix}:ratelimit:{model}"
        return [f"{base}:requests", f"{base}:input_tokens", f"{base}:output_tokens"]

    def _args(self, limit: Limit, tokens: int, member: str) -> list:
        return [self.window, limit.requests, limit.input_tokens, limit.output_tokens, int(tokens), member]

    def _redis_down(self, exc: BaseException, since: float | None) -> float:
        """Redis is unreachable: no call goes out without a rate limit. Say so and how long it
        waits; after ``redis_wait`` seconds refuse the call (``RateLimiterUnavailable``, a
        transient error: Airflow tries the unit again later)."""
        from castmatch.describe import describe
        from castmatch.llm.errors import RateLimiterUnavailable
        from castmatch.probes.checks import url_without_credentials

        now = time.monotonic()
        where = url_without_credentials(self.url)
        if since is None:
            log.warning("rate limiter: Redis at %s is down (%s); no Claude call is sent without a rate limit: "
                        "waiting up to %g s for it", where, describe(exc), self.redis_wait)
            return now
        if now - since >= self.redis_wait:
            later = f"; Airflow tries the unit again in {self.retry_later:g} s" if self.retry_later is not None else ""
            raise RateLimiterUnavailable(
                f"call refused: the rate limiter's Redis at {where} has been down for {self.redis_wait:g} s "
                f"({describe(exc)}){later}")
        return since

    # ---------------------------------------------------------------- sync

    def _client(self):
        if self._sync is None:
            from castmatch.shared_redis import client_from_url

            self._sync = client_from_url(self.url, timeout=10, fail_fast=False)
        return self._sync

    def ping(self) -> None:
        """Raise at once when Redis does not answer (acquire would wait for it)."""
        self._client().ping()

    def acquire(self, model: str, input_tokens: int) -> Ticket:
        """Wait until admitted (reserving ``input_tokens``); settle the ticket after the call."""
        limit = self.limit_for(model)
        ticket = Ticket(model, uuid.uuid4().hex, int(input_tokens))
        if limit is None:
            return ticket
        down_since = None
        while True:
            try:
                script = self._client().register_script(_ACQUIRE)
                wait_ms = int(script(keys=self._keys(model), args=self._args(limit, input_tokens, ticket.member)))
            except Exception as exc:
                down_since = self._redis_down(exc, down_since)
                time.sleep(REDIS_RETRY_SECONDS)
                continue
            if wait_ms == 0:
                return ticket
            log.info("rate limit for %s: waiting %d ms", model, wait_ms)
            time.sleep(wait_ms / 1000)
            ticket.waited += wait_ms / 1000

    def settle(self, ticket: Ticket, counted_input: int, output_tokens: int) -> None:
        if self.limit_for(ticket.model) is None:
            return
        self._client().register_script(_SETTLE)(
            keys=self._keys(ticket.model)[1:], args=self._settle_args(ticket, counted_input, output_tokens))

    def _settle_args(self, ticket: Ticket, counted_input: int, output_tokens: int) -> list:
        return [ticket.member, ticket.estimated, int(counted_input), int(output_tokens), self.window]

    # ---------------------------------------------------------------- async (fan-out inside one task)

    def _aclient(self):
        loop = id(asyncio.get_running_loop())
        if loop not in self._async:
            from castmatch.shared_redis import async_client_from_url

            self._async[loop] = async_client_from_url(self.url, timeout=10, fail_fast=False)
        return self._async[loop]

    async def aacquire(self, model: str, input_tokens: int) -> Ticket:
        limit = self.limit_for(model)
        ticket = Ticket(model, uuid.uuid4().hex, int(input_tokens))
        if limit is None:
            return ticket
        down_since = None
        while True:
            try:
                script = self._aclient().register_script(_ACQUIRE)
                wait_ms = int(await script(keys=self._keys(model), args=self._args(limit, input_tokens, ticket.member)))
            except Exception as exc:
                down_since = self._redis_down(exc, down_since)
                await asyncio.sleep(REDIS_RETRY_SECONDS)
                continue
            if wait_ms == 0:
                return ticket
            await asyncio.sleep(wait_ms / 1000)
            ticket.waited += wait_ms / 1000

    async def asettle(self, ticket: Ticket, counted_input: int, output_tokens: int) -> None:
        if self.limit_for(ticket.model) is None:
            return
        script = self._aclient().register_script(_SETTLE)
        await script(keys=self._keys(ticket.model)[1:], args=self._settle_args(ticket, counted_input, output_tokens))

    async def aclose(self) -> None:
        client = self._async.pop(id(asyncio.get_running_loop()), None)
        if client is not None:
            await client.aclose()


def limiter_from_settings(settings, roadmap_id: str | None = None, *, redis_conn_id: str = "castmatch_redis",
                          url: str | None = None) -> RedisRateLimiter | None:
    """The limiter for the LLM settings, shared by every process of the roadmap ``roadmap_id``
    (its keys carry the roadmap's id), in the Redis at ``url`` (default: connection
    ``redis_conn_id``); None (with a warning) when no Redis is configured."""
    url = url or redis_url(redis_conn_id)
    if not url:
        log.warning("no Redis configured (connection %s / CASTMATCH_REDIS_URL): LLM calls are not rate limited", redis_conn_id)
        return None
    limits = {
        model: Limit(rl.requests_per_minute, rl.input_tokens_per_minute, rl.output_tokens_per_minute)
        for model, rl in settings.rate_limits.items()
    }
    return RedisRateLimiter(url, limits, window_seconds=settings.rate_limit_window_seconds,
                            prefix=redis_prefix(roadmap_id), redis_wait_seconds=settings.rate_limit_redis_wait_seconds,
                            retry_later_seconds=settings.retry.task_retry_delay_seconds)
