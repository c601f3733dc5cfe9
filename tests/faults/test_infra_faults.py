"""Infrastructure failing under a running week: Redis stopped and started again, the store's
PostgreSQL connections cut in the middle of a write, a task process SIGKILLed in the middle of a
paid call under the real scheduler. Paid work is never lost or paid twice, every attempt is in the
ledger, and the run reconciles."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time

import pytest
import sqlalchemy as sa

from castmatch.store import Store
from tests.airflow_stack import AirflowStack, free_port, wait_until
from tests.faults.conftest import messages, reconciled, run_key, unit_runs
from tests.helpers import dags_test

STARTS_AIRFLOW = True  # tests/conftest.py: one whole Airflow at a time under pytest -n 2

DATE = "2026-08-03T00:00:00+00:00"


def in_background(target, *args, **kwargs):
    """Run ``target`` in a thread; returns (thread, result holder)."""
    result: dict = {}

    def run():
        try:
            result["value"] = target(*args, **kwargs)
        except BaseException as exc:  # surfaced by the test
            result["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def redis_server(port: int) -> subprocess.Popen:
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import redis

    wait_until(lambda: redis.Redis(port=port, socket_connect_timeout=0.5).ping(), 20, f"redis on {port}", every=0.1)
    return proc


@pytest.mark.faults
class TestRedisStopped:
    def test_redis_stopped_mid_week_and_started_again(self, live, pg_url, fake_claude, redis_prefix):
        port = free_port()
        url = f"redis://127.0.0.1:{port}/0"
        env = {**live, "AIRFLOW_CONN_CASTMATCH_REDIS": url, "CASTMATCH_REDIS_URL": url}
        fake_claude.latency = 1.5
        redis = redis_server(port)
        try:
            thread, result = in_background(dags_test, "second_week_01", DATE, env)
            wait_until(lambda: messages(fake_claude) >= 1, 120, "the first paid call to be in flight", every=0.05)
            redis.send_signal(signal.SIGKILL)  # down while the call is paid for
            redis.wait()
            time.sleep(3.5)  # the next unit waits for it (up to 6 s), saying so
            redis = redis_server(port)
            thread.join(300)
            log = result["value"].stdout
        finally:
            redis.kill()
            redis.wait()
        assert "state=success" in log, log[-4000:]
        # the paid answer survived the limiter's Redis error; the next unit waited for Redis, then went on
        assert "rate-limit reservation not settled" in log
        assert f"rate limiter: Redis at redis://127.0.0.1:{port}/0 is down" in log and "waiting up to 6 s" in log
        runs = unit_runs(pg_url, run_key(DATE))
        assert {u: (r["state"], r["try_number"]) for u, r in runs.items()} == {
            "pipeline_skeleton": ("done", 1), "metric_definitions": ("done", 1)}
        assert reconciled(env, run_key(DATE), fake_claude)["calls"] == {"ok": 2}


@pytest.mark.faults
class TestStoreConnectionsCut:
    def test_connections_cut_mid_write_lose_nothing_and_pay_nothing_twice(self, live, pg_url, fake_claude):
        from tests.conftest import PG_ADMIN_URL

        store = Store(pg_url)  # the schema exists before the trigger goes in
        database = pg_url.rsplit("/", 1)[1]
        with store.engine.begin() as conn:  # a slow write: a window to cut the connection in
            conn.execute(sa.text("CREATE FUNCTION cm_slow_write() RETURNS trigger AS $$ BEGIN PERFORM pg_sleep(5); "
                                 "RETURN NEW; END $$ LANGUAGE plpgsql"))
            conn.execute(sa.text("CREATE TRIGGER cm_slow BEFORE INSERT ON cm_deliverables FOR EACH ROW "
                                 "EXECUTE FUNCTION cm_slow_write()"))
        admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        thread, result = in_background(dags_test, "second_week_01", DATE, live)

        def sleeping_write():
            with admin.connect() as conn:
                return conn.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE datname = :db AND "
                                            "query LIKE 'INSERT INTO cm_deliverables%'"), {"db": database}).scalar()

        wait_until(sleeping_write, 120, "the deliverable's write to hang in the trigger", every=0.1)
        with admin.connect() as conn:  # cut every connection of the store mid-write
            cut = conn.execute(sa.text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                       "WHERE datname = :db AND pid <> pg_backend_pid()"), {"db": database}).scalar()
        admin.dispose()
        assert cut >= 1
        store.engine.dispose()
        with store.engine.begin() as conn:
            conn.execute(sa.text("DROP TRIGGER cm_slow ON cm_deliverables"))
        thread.join(300)
        log = result["value"].stdout
        assert "state=success" in log, log[-4000:]
        runs = unit_runs(pg_url, run_key(DATE))
        # the first try failed with the reason; the retry reused the answer already paid for
        assert runs["pipeline_skeleton"]["try_number"] == 2 and runs["pipeline_skeleton"]["state"] == "done"
        failed = [e for e in store.events("unit_failed", run_key=run_key(DATE))]
        assert failed and "OperationalError" in failed[0]["message"]
        report = reconciled(live, run_key(DATE), fake_claude)
        assert report["calls"] == {"ok": 2, "reused": 1} and messages(fake_claude) == 2


@pytest.mark.faults
class TestTaskKilled:
    def test_a_task_process_killed_mid_call_books_it_lost_and_the_retry_delivers(self, fault_roadmap, pg_url,
                                                                                 redis_prefix, fake_claude):
        env = {"CASTMATCH_LLM": "live", "CASTMATCH_ROADMAP_DIR": str(fault_roadmap), "CASTMATCH_DATABASE_URL": pg_url,
               "CASTMATCH_REPORTS_DIR": str(fault_roadmap.parent), "CASTMATCH_CLOCK": "compressed",
               "AIRFLOW_CONN_ANTHROPIC_DEFAULT": json.dumps(
                   {"conn_type": "anthropic", "password": fake_claude.api_key, "host": fake_claude.url})}
        fake_claude.latency = 5.0
        with AirflowStack(env) as airflow:
            airflow.unpause("second_week_01")
            run_id = airflow.trigger("second_week_01", {"clock": "compressed"})
            wait_until(lambda: messages(fake_claude) >= 1, 180, "the first paid call to be in flight", every=0.1)
            ti = airflow.request("GET", f"/api/v2/dags/second_week_01/dagRuns/{run_id}/taskInstances/pipeline_skeleton")
            assert ti["state"] == "running" and ti["pid"]
            os.kill(ti["pid"], signal.SIGKILL)  # the task process dies while Claude is answering
            fake_claude.latency = 0.2
            state = airflow.wait_run("second_week_01", run_id, 300)
            assert state == "success", [(t["task_id"], t["state"]) for t in airflow.task_instances("second_week_01",
                                                                                                   run_id)]
        [run] = Store(pg_url).runs("second")  # a triggered week run, keyed by its logical date
        key = run["run_key"]
        runs = unit_runs(pg_url, key)
        assert runs["pipeline_skeleton"]["try_number"] == 2 and runs["pipeline_skeleton"]["state"] == "done"
        calls = Store(pg_url).llm_calls(run_key=key)
        lost = [c for c in calls if c["outcome"] == "lost"]
        assert len(lost) == 1 and lost[0]["try_number"] == 1 and lost[0]["cost_usd"] > 0  # priced at its worst case
        report = reconciled({**os.environ, **env}, key, fake_claude)
        assert report["calls"] == {"lost": 1, "ok": 2} and messages(fake_claude) == 3
