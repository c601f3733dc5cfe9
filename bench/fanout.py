"""Many agent calls inside one task: 11 and 100 concurrent calls (async client, shared Redis rate
limiter) against the fake server at a fixed latency, against the same calls one after another.

Prints each time and, last, the ratio of 100 concurrent calls to one call.
Goal (issue 3): 100 calls in under 3x the time of one call.
Env: BENCH_LATENCY (default 2 s); BENCH_SEQUENTIAL_100=1 also times 100 calls one by one (200 s).
"""

from __future__ import annotations

import os
import time

from _common import llm_bench_env

LATENCY = float(os.environ.get("BENCH_LATENCY", "2"))


def main() -> None:
    with llm_bench_env(LATENCY):
        from castmatch.config import load_roadmap
        from castmatch.llm.claude import ClaudeBackend
        from castmatch.llm.prompt import build_request
        from castmatch.llm.ratelimit import limiter_from_settings
        from castmatch.store import Store

        config = load_roadmap()
        budgets = config.llm.budgets.model_copy(update={"roadmap": config.llm.budgets.roadmap.model_copy(
            update={"usd": None, "tokens": None}), "per_week": config.llm.budgets.per_week.model_copy(update={"usd": None}),
            "per_agent": config.llm.budgets.per_agent.model_copy(update={"usd": None}), "agents": {}})
        # Limits well above 100 calls a minute: this measures concurrency, not the throttle.
        from castmatch.config.models import RateLimit

        high = RateLimit(requests_per_minute=10_000, input_tokens_per_minute=10**9, output_tokens_per_minute=10**9)
        settings = config.llm.model_copy(update={"budgets": budgets, "stream": False, "rate_limits": {"default": high}})
        backend = ClaudeBackend("live", settings=settings, store=Store(), limiter=limiter_from_settings(settings))
        units = list(config.work_units.values())
        requests = [build_request(config, units[i % len(units)], {}, week=1) for i in range(100)]

        def timed(fn) -> float:
            started = time.perf_counter()
            results = fn()
            failed = [r for r in results if isinstance(r, BaseException)]
            if failed:
                raise SystemExit(f"{len(failed)} calls failed: {failed[0]!r}")
            return time.perf_counter() - started

        backend.generate(requests[0])  # warm-up: imports, connection lookup, first cache write
        one = timed(lambda: [backend.generate(requests[0])])
        print(f"1 call: {one:.2f} s (latency {LATENCY:g} s, warm)")
        seq11 = timed(lambda: [backend.generate(r) for r in requests[:11]])
        con11 = timed(lambda: backend.generate_many(requests[:11], concurrency=100))
        print(f"11 calls: one after another {seq11:.2f} s, concurrent {con11:.2f} s ({seq11 / con11:.1f}x faster)")
        con100 = timed(lambda: backend.generate_many(requests, concurrency=100))
        if os.environ.get("BENCH_SEQUENTIAL_100"):
            seq100 = timed(lambda: [backend.generate(r) for r in requests])
            print(f"100 calls: one after another {seq100:.2f} s, concurrent {con100:.2f} s ({seq100 / con100:.1f}x faster)")
        else:
            print(f"100 calls: concurrent {con100:.2f} s; one after another about {100 * one:.0f} s "
                  f"(100 x one call; BENCH_SEQUENTIAL_100=1 measures it)")
        print(f"ratio 100 concurrent / 1 call: {con100 / one:.2f} (goal < 3)")


if __name__ == "__main__":
    main()
