"""The LLM layer against the fake Messages API server (real SDK over HTTP), the real Redis rate
limiter and the real PostgreSQL ledger."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from castmatch.config import load_roadmap
from castmatch.llm.base import CallContext
from castmatch.llm.claude import CACHED_LABEL, ClaudeBackend
from castmatch.llm.errors import BudgetExceeded, LLMPermanentError, LLMTransientError, MalformedAnswer
from castmatch.llm.prompt import build_request
from castmatch.llm.ratelimit import limiter_from_settings
from castmatch.store import Store
from castmatch.usage import usage_report
from tests.helpers import fast_llm_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def config():
    return load_roadmap()


def backend(config, pg_url, mode="live", limiter=None, **updates):
    settings = fast_llm_settings(config, **updates)
    return ClaudeBackend(mode, settings=settings, store=Store(pg_url), limiter=limiter,
                         cassette_dir=None if mode == "live" else updates.get("_cassettes"),
                         context=CallContext(dag_id="castmatch_week_01", run_id="r1", task_id="t", try_number=1, week=1))


def request_for(config, unit="fix_redis_connection", upstream=None):
    return build_request(config, config.work_units[unit], upstream or {}, week=config.unit_week[unit])


class TestLiveCalls:
    def test_structured_output_cache_control_and_usage(self, config, pg_url, anthropic_conn):
        b = backend(config, pg_url)
        first = b.generate(request_for(config))
        second = b.generate(request_for(config, "restart_configure_containers",
                                        {"fix_redis_connection": {"agent_id": "devops-infrastructure-developer",
                                                                  "summary": "s", "content": "c"}}))
        assert first.deliverable.status == "done" and first.backend == "live"
        body = anthropic_conn.requests[0].body
        assert body["system"][0]["cache_control"] == {"type": "ephemeral"}
        assert body["tool_choice"] == {"type": "tool", "name": "submit_deliverable"}
        assert body["stream"] is True
        # the same agent's prefix is written once, then read from the cache
        assert first.usage["cache_creation_input_tokens"] > 0
        assert second.usage["cache_read_input_tokens"] == first.usage["cache_creation_input_tokens"]
        rows = Store(pg_url).llm_calls()
        assert [(r["backend"], r["outcome"]) for r in rows] == [("live", "ok"), ("live", "ok")]
        assert rows[0]["cost_usd"] > 0 and rows[0]["input_tokens"] > 0

    def test_clients_share_one_tls_context_and_still_map_the_connection(self, anthropic_conn, monkeypatch):
        import asyncio
        import ssl

        from castmatch.llm.hook import ClaudeHook, shared_tls_context

        shared_tls_context()
        parsed = []
        real = ssl.SSLContext.load_verify_locations
        monkeypatch.setattr(ssl.SSLContext, "load_verify_locations",
                            lambda self, *a, **k: parsed.append(a) or real(self, *a, **k))
        sync = ClaudeHook().get_conn()
        clients = [sync, asyncio.run(ClaudeHook().get_async_conn())]
        assert parsed == []  # no CA bundle parsed for either client
        for client in clients:  # the connection's key and host, as the provider's hook maps them
            assert client.api_key == anthropic_conn.api_key and str(client.base_url).rstrip("/") == anthropic_conn.url
        answer = sync.messages.create(model="claude-haiku-4-5", max_tokens=1, messages=[{"role": "user", "content": "hi"}])
        assert answer.usage.output_tokens >= 1 and anthropic_conn.requests[-1].path == "/v1/messages"
        sync.close()
        asyncio.run(clients[1].close())

    def test_429_and_529_recover_and_every_attempt_is_audited(self, config, pg_url, anthropic_conn):
        anthropic_conn.enqueue("429", "529")
        result = backend(config, pg_url).generate(request_for(config))
        assert result.deliverable.status == "done"
        rows = Store(pg_url).llm_calls()
        assert [(r["attempt"], r["outcome"], r["error_class"]) for r in rows] == [
            (1, "error", "RateLimitError"), (2, "error", "OverloadedError"), (3, "ok", None)]
        assert len(rows) == len(anthropic_conn.requests) == 3
        assert all(r["request_hash"] == rows[0]["request_hash"] for r in rows)
        report = usage_report(rows)
        assert report["total"]["calls"] == 3 and report["total"]["failed"] == 2

    @pytest.mark.parametrize("behaviour, reason", [
        ("401", "AuthenticationError (401)"), ("403", "PermissionDeniedError (403)"),
        ("spend_limit", "credit balance is too low"),
    ])
    def test_refusals_fail_at_once(self, config, pg_url, anthropic_conn, behaviour, reason):
        anthropic_conn.enqueue(behaviour)
        with pytest.raises(LLMPermanentError, match=reason.replace("(", r"\(").replace(")", r"\)")):
            backend(config, pg_url).generate(request_for(config))
        assert len(anthropic_conn.requests) == 1  # not retried
        assert Store(pg_url).llm_calls()[0]["outcome"] == "error"

    def test_timeouts_are_retried(self, config, pg_url, anthropic_conn):
        anthropic_conn.enqueue("timeout")
        result = backend(config, pg_url, timeout_seconds=0.5).generate(request_for(config))
        assert result.deliverable.status == "done"
        assert [r["error_class"] for r in Store(pg_url).llm_calls()] == ["APITimeoutError", None]

    def test_malformed_answer_is_repaired_with_the_error(self, config, pg_url, anthropic_conn):
        anthropic_conn.enqueue("malformed", "no_tool")
        result = backend(config, pg_url).generate(request_for(config))
        assert result.deliverable.status == "done"
        assert [r["outcome"] for r in Store(pg_url).llm_calls()] == ["malformed", "malformed", "ok"]
        repair = anthropic_conn.requests[1].body["messages"]
        assert repair[-1]["content"][0]["type"] == "tool_result" and repair[-1]["content"][0]["is_error"] is True
        assert "Field required" in repair[-1]["content"][0]["content"]

    def test_malformed_after_every_repair_needs_review(self, config, pg_url, anthropic_conn):
        anthropic_conn.enqueue("malformed", "malformed", "malformed")
        with pytest.raises(MalformedAnswer, match="still invalid after 2 repair"):
            backend(config, pg_url).generate(request_for(config))
        assert Store(pg_url).deliverables() == []  # nothing passed on as if it were good


class TestCachedFallback:
    def test_api_down_serves_the_cached_answer_labelled(self, config, pg_url, anthropic_conn):
        b = backend(config, pg_url)
        good = b.generate(request_for(config))
        anthropic_conn.enqueue("529", "529", "529")
        served = b.generate(request_for(config))
        assert served.backend == "cache"
        assert served.deliverable.summary.startswith(CACHED_LABEL.split("{")[0])
        assert served.deliverable.summary.endswith(good.deliverable.summary)
        last = Store(pg_url).llm_calls()[-1]
        assert (last["backend"], last["outcome"]) == ("cache", "cache_fallback")

    def test_api_down_without_cache_hands_over_to_airflow_retries(self, config, pg_url, anthropic_conn):
        anthropic_conn.enqueue("500", "529", "429")
        with pytest.raises(LLMTransientError, match="unavailable after 3 attempt"):
            backend(config, pg_url).generate(request_for(config))


class TestBudgets:
    def test_budget_stops_a_call_before_it_is_sent(self, config, pg_url, anthropic_conn):
        budgets = config.llm.budgets.model_copy(update={
            "per_agent": config.llm.budgets.per_agent.model_copy(update={"usd": 0.0001}), "agents": {},
            "on_exceed": "stop"})
        with pytest.raises(BudgetExceeded, match="agent devops-infrastructure-developer budget"):
            backend(config, pg_url, budgets=budgets).generate(request_for(config))
        assert anthropic_conn.requests == [] and Store(pg_url).llm_calls() == []

    def test_budget_downgrades_to_the_cheaper_model(self, config, pg_url, anthropic_conn):
        # room for the worst case of one haiku call, not of one sonnet call
        budgets = config.llm.budgets.model_copy(update={
            "per_agent": config.llm.budgets.per_agent.model_copy(update={"usd": 0.03}), "agents": {},
            "on_exceed": "downgrade", "downgrade_to": "claude-haiku-4-5"})
        result = backend(config, pg_url, budgets=budgets).generate(request_for(config))
        assert result.model == "claude-haiku-4-5"
        assert anthropic_conn.requests[0].body["model"] == "claude-haiku-4-5"


class TestRateLimiter:
    def test_two_worker_processes_together_stay_under_the_limit(self, config, pg_url, anthropic_conn, redis_prefix):
        window, limit, calls_each = 2.0, 4, 5
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        worker = ROOT / "tests" / "integration" / "ratelimit_worker.py"
        procs = [subprocess.Popen([sys.executable, str(worker), str(window), str(limit), str(calls_each)], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err[-2000:]
        times = sorted(r.time for r in anthropic_conn.requests)
        assert len(times) == 2 * calls_each
        for i, start in enumerate(times):
            in_window = [t for t in times[i:] if t < start + window - 0.2]  # slack for loopback jitter
            assert len(in_window) <= limit, f"{len(in_window)} requests within {window} s"
        assert times[-1] - times[0] >= window  # the limiter really made them wait


    def test_redis_connections_start_without_a_handshake_or_reading_package_metadata(
            self, config, pg_url, anthropic_conn, redis_prefix, monkeypatch):
        """A task's Redis connections (the rate limiter's, the agents' memory's) send their first
        command at once: RESP2 with no HELLO, no CLIENT SETINFO; and no client reads redis-py's
        version from the installed packages' metadata (~5 ms of CPU each)."""
        import importlib.metadata

        from castmatch.shared_redis import client_from_url

        version = importlib.metadata.version

        def no_redis_metadata(name):
            if name == "redis":
                raise AssertionError("redis-py read its package metadata")
            return version(name)

        monkeypatch.setattr(importlib.metadata, "version", no_redis_metadata)
        settings = fast_llm_settings(config)
        limiter = limiter_from_settings(settings)
        request = request_for(config)
        assert limiter.limit_for(request.model) is not None  # the call below goes through Redis
        result = backend(config, pg_url, limiter=limiter).generate(request)  # its async client
        assert result.deliverable.status == "done" and limiter._async  # made and used
        limiter.ping()  # its sync client
        memory = client_from_url(os.environ["CASTMATCH_REDIS_URL"], timeout=2)  # the agents' memory's
        # the server's own view of the connection: what a HELLO 3 would have set, and CLIENT SETINFO
        # (which servers before Redis 7.2, this machine's 7.0 included, neither take nor report)
        seen = dict(field.split("=", 1) for field in memory.execute_command("CLIENT", "INFO").decode().split())
        assert seen["resp"] == "2" and seen.get("lib-name", "") == seen.get("lib-ver", "") == "", seen
        assert memory.connection_pool.connection_kwargs["driver_info"] is None
        memory.close()


class TestFanOut:
    def test_many_calls_in_one_task_run_concurrently(self, config, pg_url, anthropic_conn, redis_prefix):
        anthropic_conn.latency = 0.5
        settings = fast_llm_settings(config)
        b = ClaudeBackend("live", settings=settings, store=Store(pg_url), limiter=limiter_from_settings(settings))
        requests = [request_for(config, u.id) for u in config.weeks[1].work_units[:11]]
        results = b.generate_many(requests)
        assert all(not isinstance(r, BaseException) and r.deliverable.status == "done" for r in results)
        # overlapping, not one after the other (counted by the server, not timed: a slow machine is no failure)
        assert anthropic_conn.max_in_flight >= 6, f"at most {anthropic_conn.max_in_flight} of 11 calls at once"
        assert len(Store(pg_url).llm_calls()) == 11


class TestRecordReplay:
    def test_recorded_cassettes_replay_byte_for_byte_without_network(self, config, pg_url, anthropic_conn, tmp_path):
        settings = fast_llm_settings(config)
        recorder = ClaudeBackend("record", settings=settings, store=Store(pg_url), cassette_dir=tmp_path)
        recorded = recorder.generate(request_for(config))
        files = list(tmp_path.glob("*.json"))
        assert len(files) == 1
        anthropic_conn.stop()
        player = ClaudeBackend("replay", settings=settings, store=Store(pg_url), cassette_dir=tmp_path)
        replayed = player.generate(request_for(config))
        assert replayed.deliverable == recorded.deliverable and replayed.backend == "replay"
        assert [r["backend"] for r in Store(pg_url).llm_calls()] == ["record", "replay"]
        with pytest.raises(LLMPermanentError, match="no cassette for request"):
            player.generate(request_for(config, "restart_configure_containers"))


class TestTokenSettlement:
    def test_cache_reads_free_the_input_token_reservation(self, redis_prefix):
        from castmatch.llm.ratelimit import Limit, RedisRateLimiter, redis_url

        limiter = RedisRateLimiter(redis_url(), {"m": Limit(100, 1000, 10**6)}, window_seconds=3)
        first = limiter.acquire("m", 800)
        assert first.waited == 0
        limiter.settle(first, counted_input=100, output_tokens=50)  # 700 of 800 were cache reads
        second = limiter.acquire("m", 800)
        assert second.waited == 0  # 100 + 800 fits in 1000
        third = limiter.acquire("m", 800)  # 900 + 800 does not: waits for the window to pass
        assert third.waited > 1.0


class TestWriteAheadLedger:
    def test_no_ledger_row_no_request(self, config, pg_url, anthropic_conn):
        b = backend(config, pg_url)

        def refuse(**row):
            raise ConnectionError("ledger unavailable")

        b.store.start_llm_call = refuse  # the store cannot book the attempt
        with pytest.raises(ConnectionError):
            b.generate(request_for(config))
        assert anthropic_conn.requests == []  # so nothing was sent, nothing paid

    def test_a_row_is_booked_started_before_the_answer_and_completed_after(self, config, pg_url, anthropic_conn):
        from tests.fakes.fake_anthropic import default_tool_input

        b = backend(config, pg_url)
        seen = []

        def look_at_the_ledger_while_answering(body):
            seen.append([c["outcome"] for c in Store(pg_url).llm_calls()])
            return default_tool_input(body["tools"][0], body)

        anthropic_conn.responder = look_at_the_ledger_while_answering
        b.generate(request_for(config))
        assert seen == [["started"]]  # while Claude was answering, the attempt was already booked
        [row] = Store(pg_url).llm_calls()
        assert row["outcome"] == "ok" and row["input_estimate"] > 0 and row["input_tokens"] > 0

    def test_a_kept_answer_is_reused_by_a_retry_in_the_same_run(self, config, pg_url, anthropic_conn):
        context = CallContext(dag_id="castmatch_week_01", run_id="r1", task_id="t", try_number=1, week=1,
                              run_key="castmatch:roadmap:r1")
        first = ClaudeBackend("live", settings=fast_llm_settings(config), store=Store(pg_url), context=context)
        answer = first.generate(request_for(config))
        # the task failed after the answer (say, storing the deliverable): its retry asks the same
        retry = ClaudeBackend("live", settings=fast_llm_settings(config), store=Store(pg_url),
                              context=CallContext(**{**context.__dict__, "try_number": 2}))
        again = retry.generate(request_for(config))
        assert again.deliverable == answer.deliverable and len(anthropic_conn.requests) == 1
        assert [(c["try_number"], c["outcome"]) for c in Store(pg_url).llm_calls()] == [(1, "ok"), (2, "reused")]
        # another run pays for its own answer
        other = ClaudeBackend("live", settings=fast_llm_settings(config), store=Store(pg_url),
                              context=CallContext(**{**context.__dict__, "run_key": "castmatch:roadmap:r2"}))
        other.generate(request_for(config))
        assert len(anthropic_conn.requests) == 2

    def test_the_budget_check_reads_run_week_and_agent_spend_in_one_query(self, pg_url):
        store = Store(pg_url)
        calls = [("castmatch:roadmap:r1", "a1", 1, 0.5, 100), ("castmatch:roadmap:r1", "a2", 1, 0.25, 30),
                 ("castmatch:roadmap:r1", "a1", 2, 0.125, 7), ("castmatch:roadmap:r2", "a1", 1, 4.0, 1000)]
        for run_key, agent, week, usd, tokens in calls:
            store.record_llm_call(run_key=run_key, agent_id=agent, week=week, attempt=1, try_number=1, model="m",
                                  backend="live", request_hash="h", cost_usd=usd, input_tokens=tokens,
                                  output_tokens=1, outcome="ok")
        spent = store.llm_spend_scopes(run_key="castmatch:roadmap:r1", agent_id="a1", week=1)
        assert spent == {"run": store.llm_spend(run_key="castmatch:roadmap:r1"),
                         "agent": store.llm_spend(run_key="castmatch:roadmap:r1", agent_id="a1"),
                         "week": store.llm_spend(run_key="castmatch:roadmap:r1", week=1)}
        assert spent["run"] == (pytest.approx(0.875), 140) and spent["agent"] == (pytest.approx(0.625), 109)
        assert spent["week"] == (pytest.approx(0.75), 132)
        assert store.llm_spend_scopes(run_key="castmatch:roadmap:r3", agent_id="a1", week=None) == {
            "run": (0.0, 0), "agent": (0.0, 0)}

    def test_a_started_row_of_a_dead_try_is_booked_lost_at_its_worst_case(self, config, pg_url):
        store = Store(pg_url)
        row = store.start_llm_call(run_key="castmatch:roadmap:r1", work_unit_id="fix_redis_connection", attempt=1,
                                   try_number=1, model="claude-sonnet-4-5", backend="live", request_hash="h",
                                   input_estimate=2000, cost_usd=0.07)
        assert store.llm_spend(run_key="castmatch:roadmap:r1")[0] == pytest.approx(0.07)  # budgets count it
        # the unit's next try books it lost as it starts, in the same transaction
        assert store.unit_started(dag_id="castmatch_week_01", run_key="castmatch:roadmap:r1", run_id="w1",
                                  work_unit_id="fix_redis_connection", agent_id="devops-infrastructure-developer",
                                  try_number=2, reconcile_purpose="agent") == 1
        assert store.reconcile_lost_calls(run_key="castmatch:roadmap:r1", work_unit_id="fix_redis_connection") == 0
        [call] = store.llm_calls()
        assert (call["id"], call["outcome"], call["cost_usd"]) == (row, "lost", pytest.approx(0.07))
        assert usage_report(store.llm_calls())["total"]["lost"] == 1
