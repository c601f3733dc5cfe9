"""Probes and KPIs against the real Redis and PostgreSQL: samples, uptime windows, KPI sources and
the stored Great Expectations check."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from castmatch.config import load_roadmap
from castmatch.config.models import Kpi, KpiSource, Probe
from castmatch.kpis import collect_kpi, collect_kpis, sample_values, validate_kpis
from castmatch.probes import run_probe
from castmatch.store import Store
from castmatch.store.db import get_engine, upgrade
from tests.helpers import sample_history

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
DEAD_REDIS = json.dumps({"conn_type": "redis", "host": "127.0.0.1", "port": 1})
REDIS = json.dumps({"conn_type": "redis", "host": "127.0.0.1", "port": 6379, "extra": {"db": 0}})
COBERTURA = '<?xml version="1.0" ?>\n<coverage line-rate="0.934" branch-rate="0.8" lines-valid="1000" lines-covered="934"/>\n'


def pg_conn(url: str, port: int | None = None) -> str:
    """An Airflow connection (JSON) for the PostgreSQL database at ``url``."""
    parsed = sa.engine.make_url(url)
    return json.dumps({"conn_type": "postgres", "host": parsed.host, "port": port or parsed.port,
                       "login": parsed.username, "schema": parsed.database})


@pytest.fixture(scope="module")
def config():
    return load_roadmap()


@pytest.fixture
def store(pg_url) -> Store:
    return Store(pg_url)


def probe(config, probe_id: str) -> Probe:
    return next(p for p in config.gates.probes if p.id == probe_id)


def kpi(config, kpi_id: str) -> Kpi:
    return next(k for k in config.kpis.kpis if k.id == kpi_id)


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        self.send_response(200 if self.path == "/health" else 503)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def health_server():
    """A loopback HTTP server: /health answers 200, anything else 503."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class TestRedisProbe:
    def test_ok_against_the_real_redis_and_leaves_no_key(self, config, store, redis_prefix, monkeypatch):
        import redis

        monkeypatch.setenv("AIRFLOW_CONN_CASTMATCH_REDIS", REDIS)
        sample = run_probe(probe(config, "redis"), store=store, run_id="manual__1")
        assert sample["ok"], sample["detail"]
        assert sample["detail"] == "PING and SET/GET/DEL ok on 127.0.0.1:6379/0"
        assert not list(redis.Redis.from_url("redis://127.0.0.1:6379/0").scan_iter(f"{redis_prefix}:*"))
        [stored] = store.probe_samples("redis")
        assert (stored["ok"], stored["kind"], stored["run_id"]) == (True, "redis", "manual__1")
        assert stored["ts"].tzinfo is not None and stored["latency_ms"] > 0

    def test_dead_port_is_a_failed_sample_not_an_exception(self, config, store, monkeypatch):
        monkeypatch.setenv("AIRFLOW_CONN_CASTMATCH_REDIS", DEAD_REDIS)
        started = time.perf_counter()
        sample = run_probe(probe(config, "redis"), store=store)
        assert time.perf_counter() - started < 3.5
        assert not sample["ok"]
        assert "castmatch_redis (127.0.0.1:1/0)" in sample["detail"] and "refused" in sample["detail"]
        assert [s["ok"] for s in store.probe_samples("redis")] == [False]

    def test_unknown_host_and_undefined_connection_fail_clearly(self, config, store, monkeypatch):
        monkeypatch.setenv("AIRFLOW_CONN_CASTMATCH_REDIS", json.dumps({"conn_type": "redis", "host": "no-such-host.invalid"}))
        assert not run_probe(probe(config, "redis"), store=store)["ok"]
        monkeypatch.delenv("AIRFLOW_CONN_CASTMATCH_REDIS")
        sample = run_probe(probe(config, "redis"), store=store)
        assert not sample["ok"] and "'castmatch_redis' is not defined" in sample["detail"]


class TestPostgresProbe:
    def test_ok_and_dead_port(self, config, store, pg_url, monkeypatch):
        monkeypatch.setenv("AIRFLOW_CONN_CASTMATCH_POSTGRES", pg_conn(pg_url))
        ok = run_probe(probe(config, "postgres"), store=store)
        assert ok["ok"] and ok["detail"].startswith("SELECT 1 ok on 127.0.0.1:5432/cm_test_")
        monkeypatch.setenv("AIRFLOW_CONN_CASTMATCH_POSTGRES", pg_conn(pg_url, port=1))
        dead = run_probe(probe(config, "postgres"), store=store)
        assert not dead["ok"] and "OperationalError" in dead["detail"] and "port 1 failed" in dead["detail"]
        assert [s["ok"] for s in store.probe_samples("postgres")] == [True, False]


class TestHttpAndLlmProbes:
    def test_http_ok_on_2xx_only(self, store, health_server):
        up = Probe(id="platform_health", name="h", kind="http", url=f"{health_server}/health")
        down = Probe(id="platform_health", name="h", kind="http", url=f"{health_server}/down")
        dead = Probe(id="platform_health", name="h", kind="http", url="http://127.0.0.1:1/health")
        assert run_probe(up, store=store)["ok"]
        assert run_probe(down, store=None)["detail"].endswith("HTTP 503 Service Unavailable")
        assert "Connection refused" in run_probe(dead, store=None)["detail"]
        secret = Probe(id="platform_health", name="h", kind="http", url="http://ops:s3cret@127.0.0.1/health")
        assert "s3cret" not in run_probe(secret, store=None)["detail"]

    def test_llm_offline_backend_checks_nothing_and_says_so(self, config, store, monkeypatch):
        monkeypatch.setenv("CASTMATCH_LLM", "offline")
        sample = run_probe(probe(config, "claude"), store=store)
        assert (sample["status"], sample["ok"]) == ("offline", False)
        assert sample["detail"] == "backend offline: not checked against Claude (no request sent)"
        assert store.llm_calls() == []  # nothing was sent, nothing booked

    def test_llm_live_sends_one_minimal_query_booked_in_the_ledger(self, config, store, anthropic_conn, monkeypatch):
        claude = probe(config, "claude")
        monkeypatch.setenv("CASTMATCH_LLM", "live")
        sample = run_probe(claude, store=store, config=config, run_key="castmatch:roadmap:r1")
        assert sample["status"] == "ok" and "Claude answered a 1-token query on claude-sonnet-4-5" in sample["detail"]
        [request] = anthropic_conn.requests
        assert request.path == "/v1/messages" and request.body["max_tokens"] == 1
        [call] = store.llm_calls()
        assert (call["purpose"], call["backend"], call["outcome"], call["run_key"], call["roadmap_id"]) == (
            "probe", "live", "ok", "castmatch:roadmap:r1", "castmatch")
        assert call["input_tokens"] > 0 and call["cost_usd"] > 0

    def test_llm_live_takes_the_agents_fresh_answer_instead_of_paying_a_query(self, config, store, anthropic_conn,
                                                                             monkeypatch):
        from castmatch.llm.base import CallContext
        from castmatch.llm.claude import ClaudeBackend
        from castmatch.llm.prompt import build_request
        from castmatch.probes import checks
        from tests.helpers import fast_llm_settings

        monkeypatch.setenv("CASTMATCH_LLM", "live")
        claude = probe(config, "claude")
        unit = config.work_units["fix_redis_connection"]
        agents = ClaudeBackend("live", settings=fast_llm_settings(config), store=store, context=CallContext(
            dag_id="castmatch_week_01", run_id="r1", task_id=unit.id, try_number=1, week=1,
            run_key="castmatch:roadmap:r1"))
        anthropic_conn.enqueue("500")  # the unit's first attempt fails, its retry is answered
        agents.generate(build_request(config, unit, {}, week=1))
        sent = len(anthropic_conn.requests)
        sample = run_probe(claude, store=store, config=config, run_key="castmatch:roadmap:r1", run_id="r1")
        assert len(anthropic_conn.requests) == sent  # Claude just answered the agent: nothing is paid to ask again
        assert sample["ok"] and sample["detail"].startswith(
            "backend live: Claude answered an agent call of fix_redis_connection on claude-sonnet-4-5 in ")
        assert sample["detail"].endswith("s ago (no query sent)")
        assert [(s["ok"], s["run_id"]) for s in store.probe_samples("claude")] == [(True, "r1")]  # uptime counts it

        monkeypatch.setattr(checks, "LLM_PROBE_FRESH_SECONDS", 0.5)
        time.sleep(0.6)  # the probe's sample is too old to reuse
        agents.generate(build_request(config, config.work_units["restart_configure_containers"], {}, week=1))
        store.record_llm_call(attempt=1, model="claude-sonnet-4-5", backend="live", request_hash="e", outcome="error",
                              run_key="castmatch:roadmap:r2", error_class="InternalServerError")
        asked = run_probe(claude, store=store, config=config)  # the newest call failed: Claude is asked
        assert "Claude answered a 1-token query" in asked["detail"] and len(anthropic_conn.requests) == sent + 2

        time.sleep(0.6)
        agents.generate(build_request(config, config.work_units["setup_gpu_infrastructure"], {}, week=1))
        store.set_connection_override(roadmap_id="castmatch", conn_id="anthropic_default",
                                      active_conn_id="anthropic_fallback", reason="level 1 fallback")
        asked = run_probe(claude, store=store, config=config)  # the agents' answers came through another connection
        assert "Claude answered a 1-token query" in asked["detail"] and len(anthropic_conn.requests) == sent + 4

    def test_llm_live_query_counts_against_the_shared_rate_limit(self, config, store, anthropic_conn, redis_prefix,
                                                                monkeypatch):
        import redis

        monkeypatch.setenv("CASTMATCH_LLM", "live")
        requests_key = f"{redis_prefix}:castmatch:ratelimit:claude-sonnet-4-5:requests"
        client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        assert client.zcard(requests_key) == 0
        assert run_probe(probe(config, "claude"), store=store, config=config)["ok"]
        assert client.zcard(requests_key) == 1  # the agents' limiter saw the probe's request (one account)
        monkeypatch.setenv("CASTMATCH_REDIS_URL", "redis://127.0.0.1:1/0")  # the limiter's Redis down
        assert run_probe(probe(config, "claude"), store=store, config=config)["ok"]  # the probe still answers

    def test_llm_live_failures_are_failed_samples_without_the_key(self, config, store, anthropic_conn, monkeypatch):
        claude = probe(config, "claude")
        monkeypatch.setenv("CASTMATCH_LLM", "live")
        anthropic_conn.enqueue("401")
        refused = run_probe(claude, store=store, config=config)
        assert refused["status"] == "failed" and "did not answer a 1-token query: AuthenticationError (401)" in refused["detail"]
        assert anthropic_conn.api_key not in refused["detail"]
        assert [c["outcome"] for c in store.llm_calls()] == ["error"]  # the failed attempt is booked too
        monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", json.dumps(
            {"conn_type": "anthropic", "password": "sk-test", "host": "http://127.0.0.1:1"}))
        dead = run_probe(claude, store=None, config=config)
        assert dead["status"] == "failed" and "APIConnectionError" in dead["detail"] and "sk-test" not in dead["detail"]
        monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", json.dumps({"conn_type": "anthropic"}))
        assert "has no API key" in run_probe(claude, store=None)["detail"]


class TestOfflineChecks:
    def test_a_gate_rejects_an_unchecked_claude_criterion_unless_offline_runs_are_accepted(self, config, store,
                                                                                          monkeypatch):
        from castmatch.gates import evaluate_gate

        monkeypatch.setenv("CASTMATCH_LLM", "offline")
        gate = next(g for g in config.all_gates if g.id == "ai_integration_gate")

        def claude_criterion():
            return next(c for c in evaluate_gate(config, gate, store, run_key="castmatch:roadmap:r1")["criteria"]
                        if c["id"] == "claude_api_responding")

        monkeypatch.setenv("CASTMATCH_OFFLINE_CHECKS", "reject")  # the shipped gates.yaml: offline_checks: reject
        rejected = claude_criterion()
        assert rejected["ok"] is False and "offline runs may not pass it" in rejected["reason"]
        monkeypatch.setenv("CASTMATCH_OFFLINE_CHECKS", "accept")  # make run
        accepted = claude_criterion()
        assert accepted["ok"] is True and accepted["checked_by"] == "not checked: claude offline"


class TestUptime:
    def test_share_of_ok_samples_in_the_window(self, store):
        def at(hours_ago: float, probe_id: str, ok: bool):
            store.record_probe_sample(probe_id=probe_id, kind="redis", ok=ok, latency_ms=1.0,
                                      ts=NOW - dt.timedelta(hours=hours_ago))

        for h in range(1, 20):
            at(h, "redis", ok=h != 5)  # 18 of 19 ok
        at(30, "redis", ok=False)  # outside a 24 h window
        at(2, "postgres", ok=True)
        pct, samples = store.uptime(["redis"], 24, now=NOW)
        assert (round(pct, 2), samples) == (94.74, 19)
        assert store.uptime(["redis", "postgres"], 24, now=NOW) == (95.0, 20)
        assert store.uptime(["redis"], 48, now=NOW)[1] == 20
        assert store.uptime(["redis"], 0.5, now=NOW) == (None, 0)
        assert store.uptime(["platform_health"], 24, now=NOW) == (None, 0)
        assert store.uptime_by_probe(["postgres", "platform_health"], 24, now=NOW) == {
            "postgres": (100.0, 1), "platform_health": (None, 0)}
        assert len(store.probe_samples("redis", since=NOW - dt.timedelta(hours=3))) == 3  # 1, 2 and 3 h ago

    def test_probe_kpi_is_missing_until_every_named_probe_has_samples(self, config, store, tmp_path):
        uptime = kpi(config, "infrastructure_uptime")  # redis, postgres, platform_health
        for probe_id in ("redis", "postgres"):
            store.record_probe_sample(probe_id=probe_id, kind="x", ok=True, latency_ms=1, ts=NOW - dt.timedelta(hours=1))
        missing = collect_kpi(uptime, config, store, base_dir=tmp_path, now=NOW)
        assert (missing["status"], missing["value"]) == ("missing", None)
        assert "no samples of probe(s) platform_health" in missing["detail"]
        store.record_probe_sample(probe_id="platform_health", kind="http", ok=False, latency_ms=1,
                                  ts=NOW - dt.timedelta(hours=2))
        sample = collect_kpi(uptime, config, store, base_dir=tmp_path, now=NOW)
        assert sample["status"] == "ok" and sample["value"] == pytest.approx(200 / 3)
        assert sample["source"] == "probe:redis,postgres,platform_health (24 h)"


class TestKpiSources:
    def test_coverage_and_security_reports(self, config, store, tmp_path: Path):
        coverage, security = kpi(config, "test_coverage"), kpi(config, "critical_security_issues")
        absent = collect_kpi(coverage, config, store, base_dir=tmp_path)
        assert (absent["status"], absent["value"]) == ("missing", None)
        assert absent["detail"] == f"no coverage report at {tmp_path / 'reports/coverage.xml'}"
        (tmp_path / "reports").mkdir()
        (tmp_path / "reports/coverage.xml").write_text(COBERTURA)
        (tmp_path / "reports/security.json").write_text(json.dumps(
            {"results": [{"issue_severity": "HIGH"}, {"issue_severity": "LOW"}]}))
        samples = collect_kpis([coverage, security], config, store, base_dir=tmp_path, run_id="r1")
        assert sample_values(samples) == {"test_coverage": pytest.approx(93.4), "critical_security_issues": 1.0}
        assert samples["test_coverage"]["source"] == f"coverage_report:{tmp_path / 'reports/coverage.xml'}"
        assert [s["status"] for s in store.kpi_samples("test_coverage")] == ["missing", "ok"]
        latest = store.latest_kpi_values()
        assert latest["test_coverage"]["value"] == pytest.approx(93.4) and latest["test_coverage"]["run_id"] == "r1"

    def test_llm_audit_from_the_runs_agent_calls(self, config, store, tmp_path):
        response = kpi(config, "api_response_time")
        run = "castmatch:roadmap:r1"
        assert collect_kpi(response, config, store, base_dir=tmp_path, run_key=run)["status"] == "missing"
        for attempt, (ms, outcome) in enumerate([(1200, "ok"), (1800, "ok"), (30_000, "error")], start=1):
            store.record_llm_call(attempt=attempt, model="claude-sonnet-4-5", backend="live", request_hash=f"h{attempt}",
                                  latency_ms=ms, outcome=outcome, agent_id="ai-ml-developer", week=1, run_key=run)
        store.record_llm_call(attempt=1, model="m", backend="offline", request_hash="o", outcome="ok", run_key=run)
        # a probe's 1-token query and another run's calls are not this run's conversations
        store.record_llm_call(attempt=1, model="m", backend="live", request_hash="p", outcome="ok", latency_ms=90,
                              purpose="probe", run_key=run)
        store.record_llm_call(attempt=1, model="m", backend="live", request_hash="x", outcome="ok", latency_ms=9000,
                              run_key="castmatch:roadmap:other")
        sample = collect_kpi(response, config, store, base_dir=tmp_path, run_key=run)
        assert (sample["status"], sample["value"]) == ("ok", pytest.approx(1.5))
        assert sample["source"] == "llm_audit:avg_latency_s (cm_llm_calls)" and sample["run_key"] == run
        success = kpi(config, "api_response_time").model_copy(
            update={"source": KpiSource(kind="llm_audit", metric="conversation_success_rate")})
        assert collect_kpi(success, config, store, base_dir=tmp_path, run_key=run)["value"] == pytest.approx(200 / 3)

    def test_sql_on_the_configured_connection(self, config, store, pg_url, tmp_path, monkeypatch):
        beta, per_day = kpi(config, "beta_users_engaged"), kpi(config, "conversations_per_day")
        undefined = collect_kpi(beta, config, store, base_dir=tmp_path)
        assert undefined["status"] == "missing" and "'castmatch_product' is not defined" in undefined["detail"]
        monkeypatch.setenv("AIRFLOW_CONN_CASTMATCH_PRODUCT", pg_conn(pg_url))
        no_table = collect_kpi(beta, config, store, base_dir=tmp_path)
        assert no_table["status"] == "missing"
        assert no_table["detail"] == 'castmatch_product: UndefinedTable: relation "conversations" does not exist'
        with get_engine(pg_url).begin() as conn:
            conn.execute(sa.text("CREATE TABLE users (id int PRIMARY KEY, is_beta boolean)"))
            conn.execute(sa.text("CREATE TABLE conversations (id serial, user_id int, started_at timestamptz)"))
            conn.execute(sa.text("INSERT INTO users SELECT g, g % 2 = 0 FROM generate_series(1, 10) g"))
            conn.execute(sa.text("INSERT INTO conversations (user_id, started_at) "
                                 "SELECT 1 + g % 10, now() - g * interval '1 hour' FROM generate_series(1, 30) g"))
        samples = collect_kpis([beta, per_day], config, store, base_dir=tmp_path)
        assert sample_values(samples) == {"beta_users_engaged": 5.0, "conversations_per_day": 23.0}
        assert samples["beta_users_engaged"]["source"] == "sql:castmatch_product"

    def test_sql_kpis_cannot_write_to_the_product_database(self, config, store, pg_url, tmp_path, monkeypatch):
        monkeypatch.setenv("AIRFLOW_CONN_CASTMATCH_PRODUCT", pg_conn(pg_url))
        writer = kpi(config, "beta_users_engaged").model_copy(update={"source": KpiSource(
            kind="sql", conn_id="castmatch_product", sql="CREATE TABLE pwned AS SELECT 1 AS one")})
        sample = collect_kpi(writer, config, store, base_dir=tmp_path)
        assert sample["status"] == "missing" and "read-only transaction" in sample["detail"]
        assert "pwned" not in sa.inspect(get_engine(pg_url)).get_table_names()

    def test_memory_accuracy_compares_the_runs_artefacts_with_agent_memory(self, config, store, redis_prefix,
                                                                             tmp_path, monkeypatch):
        from castmatch.memory import agent_memory

        memory_kpi, run = kpi(config, "memory_accuracy"), "castmatch:roadmap:r1"
        monkeypatch.delenv("AIRFLOW_CONN_CASTMATCH_REDIS", raising=False)  # via $CASTMATCH_REDIS_URL
        nothing = collect_kpi(memory_kpi, config, store, base_dir=tmp_path, run_key=run)
        assert nothing["status"] == "missing" and "no handoff artefacts delivered in this run yet" in nothing["detail"]
        memory = agent_memory(config)
        units = ["fix_redis_connection", "restart_configure_containers", "setup_gpu_infrastructure",
                 "verify_postgresql_stability"]
        for unit in units:
            deliverable = {"summary": f"{unit} done", "content": f"how {unit} was done", "status": "done",
                           "blockers": [], "progress": 100}
            store.save_deliverable(dag_id="castmatch_week_01", run_key=run, run_id="r1", work_unit_id=unit,
                                   agent_id="devops-infrastructure-developer", week=1, deliverable=deliverable,
                                   backend="offline", model="m", try_number=1)
            if unit != "verify_postgresql_stability":  # one artefact never reached the memory
                memory.remember(run, unit, agent_id="devops-infrastructure-developer", summary=deliverable["summary"],
                                content=deliverable["content"])
        memory.client.hset(memory.key(run, "setup_gpu_infrastructure"), "content", "tampered")  # one corrupted
        sample = collect_kpi(memory_kpi, config, store, base_dir=tmp_path, run_key=run)
        assert (sample["status"], sample["value"]) == ("ok", 50.0)
        assert sample["detail"] == "2 of 4 handoff artefacts of this run recalled intact from agent memory"
        monkeypatch.setenv("CASTMATCH_REDIS_URL", "redis://127.0.0.1:1/0")
        dead = collect_kpi(memory_kpi, config, store, base_dir=tmp_path, run_key=run)
        assert (dead["status"], dead["value"]) == ("missing", None)
        assert "agent memory (Redis) unreachable: ConnectionError" in dead["detail"]
        memory.close()


class TestKpiValidationStore:
    def test_below_threshold_fails_and_the_result_is_stored_once_per_run_and_point(self, config, store):
        kpis = [kpi(config, "test_coverage"), kpi(config, "critical_security_issues")]
        first = validate_kpis(kpis, {"test_coverage": 72.0, "critical_security_issues": 0},
                              run_key="roadmap:r1", decision_point="day7_check", store=store)
        assert not first.success
        again = validate_kpis(kpis, {"test_coverage": 93.0, "critical_security_issues": 0},
                              run_key="roadmap:r1", decision_point="day7_check", store=store)
        assert again.success
        validate_kpis(kpis, {"test_coverage": None}, run_key="roadmap:r1", store=store)
        validate_kpis(kpis, {"test_coverage": None}, run_key="roadmap:r1", store=store)
        rows = store.kpi_validations(run_key="roadmap:r1")
        assert [(r["decision_point"], r["success"]) for r in rows] == [("day7_check", True), (None, False)]
        assert rows[0]["results"] == again.results
        assert rows[1]["results"][0]["observed"] is None and rows[1]["results"][0]["success"] is False


class TestMigration0004:
    def test_creates_and_drops_the_probe_and_kpi_tables(self, pg_url):
        engine = get_engine(pg_url)
        upgrade(pg_url)
        inspector = sa.inspect(engine)
        assert {"cm_probe_samples", "cm_kpi_samples", "cm_kpi_validations"} <= set(inspector.get_table_names())
        assert {i["name"]: i["column_names"] for i in inspector.get_indexes("cm_probe_samples")} == {
            "ix_cm_probe_samples_probe_ts": ["probe_id", "ts"]}
        assert [c["column_names"] for c in inspector.get_unique_constraints("cm_kpi_validations")] == [
            ["run_key", "decision_point"]]
        from alembic import command

        from castmatch.store.db import _alembic_config

        with engine.begin() as conn:
            cfg = _alembic_config(pg_url)
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0003")
        assert "cm_kpi_samples" not in sa.inspect(engine).get_table_names()


class TestStableForADay:
    """"All containers stable for 24+ hours": the share of ok samples over the window, and samples
    that cover the window. A fresh check is not a day of stability."""

    def criterion(self, config, monkeypatch):
        monkeypatch.setenv("AIRFLOW_CONN_CASTMATCH_REDIS", REDIS)
        gate = next(g for g in config.all_gates if g.id == "infrastructure_success")
        return gate, next(c for c in gate.criteria if c.id == "containers_stable_24h")

    def evaluate(self, config, gate, store, clock=None) -> dict:
        from castmatch.gates import evaluate_gate

        return next(c for c in evaluate_gate(config, gate, store, run_key="castmatch:roadmap:r1", clock=clock)["criteria"]
                    if c["id"] == "containers_stable_24h")

    def test_only_fresh_samples_are_not_a_day_of_history(self, config, store, pg_url, monkeypatch):
        gate, _ = self.criterion(config, monkeypatch)
        monkeypatch.setenv("AIRFLOW_CONN_CASTMATCH_POSTGRES", pg_conn(pg_url))
        sample_history(store, ["redis", "postgres"], hours=2)
        result = self.evaluate(config, gate, store)
        assert result["ok"] is False
        assert "uptime 100.0% over 24 h" in result["reason"]  # the share alone would pass
        assert "samples cover 1.8 h of the 24 h window" in result["reason"]  # from the oldest, 105 min ago

    def test_a_day_of_healthy_samples_passes_and_a_three_hour_hole_does_not(self, config, store, pg_url, monkeypatch):
        gate, _ = self.criterion(config, monkeypatch)
        monkeypatch.setenv("AIRFLOW_CONN_CASTMATCH_POSTGRES", pg_conn(pg_url))
        sample_history(store, ["redis", "postgres"], hours=24.5)
        assert self.evaluate(config, gate, store)["ok"] is True

        with_hole = Store(pg_url)
        with_hole.engine.dispose()
        with with_hole.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM cm_probe_samples"))
        sample_history(with_hole, ["redis", "postgres"], hours=24.5, skip=(6, 9))
        result = self.evaluate(config, gate, with_hole)
        assert result["ok"] is False and "cover 21.0 h of the 24 h window" in result["reason"]

    def test_the_compressed_clock_shrinks_the_window_and_checks_the_share(self, config, store, pg_url, monkeypatch):
        from castmatch.clock import RoadmapClock

        gate, _ = self.criterion(config, monkeypatch)
        monkeypatch.setenv("AIRFLOW_CONN_CASTMATCH_POSTGRES", pg_conn(pg_url))
        clock = RoadmapClock.from_roadmap(config.roadmap, mode="compressed")
        result = self.evaluate(config, gate, store, clock)  # its own probe sample is the whole window
        assert result["ok"] is True and "cover" not in result["reason"]


class TestHistoryCoverage:
    def test_each_sample_vouches_for_the_gap_after_it(self):
        from castmatch.probes.window import history_coverage

        end = NOW
        start = end - dt.timedelta(hours=24)
        gap = dt.timedelta(minutes=30)
        every_15 = [end - dt.timedelta(minutes=15 * i) for i in range(97)]
        assert history_coverage(every_15, start, end, gap) == pytest.approx(100.0)
        assert history_coverage([], start, end, gap) == 0.0
        assert history_coverage([end - dt.timedelta(hours=1)], start, end, gap) == pytest.approx(100 * 0.5 / 24)
        hourly = [end - dt.timedelta(hours=i) for i in range(25)]  # every hour: half of each hour vouched for
        assert history_coverage(hourly, start, end, gap) == pytest.approx(50.0, abs=0.1)
        assert history_coverage([start - dt.timedelta(minutes=10)], start, end, gap) == pytest.approx(100 * 20 / 1440)
