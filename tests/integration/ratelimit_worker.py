"""A worker process for the rate-limiter test: N sequential calls through the shared limiter."""

from __future__ import annotations

import sys

from castmatch.config import load_roadmap
from castmatch.llm.claude import ClaudeBackend
from castmatch.llm.prompt import build_request
from castmatch.llm.ratelimit import Limit, RedisRateLimiter, redis_url
from castmatch.store import Store
from tests.helpers import fast_llm_settings

if __name__ == "__main__":
    window, limit, calls = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    config = load_roadmap()
    settings = fast_llm_settings(config)
    limiter = RedisRateLimiter(redis_url(), {"default": Limit(limit, 10**9, 10**9)}, window_seconds=window)
    backend = ClaudeBackend("live", settings=settings, store=Store(), limiter=limiter)
    unit = config.work_units["fix_redis_connection"]
    for _ in range(calls):
        backend.generate(build_request(config, unit, {}, week=1))
