"""The state store on the real PostgreSQL: migrations, idempotent upserts, reads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from castmatch.config import load_roadmap
from castmatch.store import Store
from castmatch.store.db import VERSION_TABLE, current_revision, get_engine, head_revision
from tests.helpers import in_a_task_process

CASTMATCH_BIN = Path(sys.executable).parent / "castmatch"
DONE = {"summary": "Redis fixed and documented", "content": "Root cause: pool exhaustion ...", "status": "done",
        "blockers": [], "progress": 100}


def keys(run_key="castmatch:castmatch_week_01:date:2026-01-01", unit="fix_redis_connection"):
    return {"dag_id": "castmatch_week_01", "run_key": run_key, "run_id": "manual__1", "work_unit_id": unit,
            "agent_id": "devops-infrastructure-developer"}


class TestMigrations:
    def test_db_upgrade_brings_an_empty_database_to_head(self, pg_url):
        out = subprocess.run([str(CASTMATCH_BIN), "db", "upgrade"], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        engine = get_engine(pg_url)
        assert current_revision(engine) == head_revision()
        tables = set(sa.inspect(engine).get_table_names())
        assert {"cm_agents", "cm_work_units", "cm_unit_runs", "cm_deliverables", "cm_events", VERSION_TABLE} <= tables
        # a second upgrade is a no-op
        again = subprocess.run([str(CASTMATCH_BIN), "db", "upgrade"], capture_output=True, text=True)
        assert again.returncode == 0 and head_revision() in again.stdout
        assert "postgres@" not in again.stdout  # no credentials echoed

    def test_an_unreachable_store_is_an_error_not_an_empty_database_to_migrate(self, monkeypatch):
        from castmatch.store import db

        upgrades = []
        monkeypatch.setattr(db, "upgrade", lambda *args, **kwargs: upgrades.append(args))
        nowhere = "postgresql+psycopg2://postgres@127.0.0.1:1/castmatch"  # nothing listens on port 1
        with pytest.raises(sa.exc.OperationalError, match="127.0.0.1"):
            db.ensure_schema(nowhere)
        assert upgrades == []  # failed once, at the connection, not again in a migration

    def test_the_default_store_and_its_url_named_are_one_engine(self, pg_url):
        from castmatch.store.db import database_url

        assert database_url() == pg_url and get_engine() is get_engine(pg_url)

    def test_older_database_is_upgraded_without_losing_rows(self, pg_url):
        from castmatch.store.db import upgrade

        upgrade(pg_url, "0001")
        engine = get_engine(pg_url)
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO cm_events (ts, kind, message) VALUES (now(), 'note', 'kept')"))
        upgrade(pg_url)
        assert current_revision(engine) == head_revision()
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT message FROM cm_events")).scalars().all() == ["kept"]


class TestStore:
    def test_retry_replaces_the_deliverable_never_duplicates(self, pg_url):
        store = Store(pg_url)
        store.unit_started(**keys(), try_number=1)
        store.save_deliverable(**keys(), week=1, deliverable=DONE, backend="offline", model="m", try_number=1)
        store.unit_started(**keys(), try_number=2)
        store.save_deliverable(**keys(), week=1, deliverable={**DONE, "summary": "second try summary"},
                               backend="offline", model="m", try_number=2)
        rows = store.deliverables()
        assert len(rows) == 1
        assert (rows[0]["summary"], rows[0]["try_number"]) == ("second try summary", 2)
        runs = store.unit_runs()
        assert len(runs) == 1 and runs[0]["state"] == "done" and runs[0]["try_number"] == 2
        # the event log keeps both tries on purpose
        assert [e["kind"] for e in store.events()] == ["unit_started", "deliverable_done"] * 2

    def test_upstream_comes_from_the_same_run_only(self, pg_url):
        store = Store(pg_url)
        store.save_deliverable(**keys("castmatch:roadmap:a"), week=1, deliverable={**DONE, "summary": "run a summary"},
                               backend="offline", model="m", try_number=1)
        store.save_deliverable(**keys("castmatch:roadmap:c"), week=1, deliverable={**DONE, "status": "blocked",
                               "summary": "run c blocked"}, backend="offline", model="m", try_number=1)
        upstream = store.upstream_deliverables(["fix_redis_connection"], run_key="castmatch:roadmap:a")
        assert upstream["fix_redis_connection"]["summary"] == "run a summary"
        # another run never inherits it (a run starts from the baselines), and a blocked one is not upstream
        assert store.upstream_deliverables(["fix_redis_connection"], run_key="castmatch:roadmap:b") == {}
        assert store.upstream_deliverables(["fix_redis_connection"], run_key="castmatch:roadmap:c") == {}

    def test_every_row_carries_its_roadmap(self, pg_url):
        store = Store(pg_url)
        store.unit_started(**keys("second:roadmap:x"), try_number=1)
        [run] = store.unit_runs("second:roadmap:x")
        assert run["roadmap_id"] == "second"
        assert {e["roadmap_id"] for e in store.events(run_key="second:roadmap:x")} == {"second"}

    def test_the_task_that_records_a_run_mirrors_the_config_once(self, pg_url):
        from castmatch.runs import RunScope, register

        store = Store(pg_url)
        config = load_roadmap()
        scope = RunScope(roadmap_id="castmatch", run_key="castmatch:roadmap:r1", kind="roadmap",
                         dag_id="castmatch_week_01", run_id="w1", clock="compressed")
        first = register(store, scope, {}, config)
        with store.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM cm_work_units")).scalar() == len(config.work_units)
            mirrored_at = conn.execute(sa.text("SELECT max(updated_at) FROM cm_work_units")).scalar()
        again = register(store, scope, {}, config)  # every later task of the run: no mirror again
        assert (first["new"], again["new"]) == (True, False) and again["started_at"] == first["started_at"]
        with store.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT max(updated_at) FROM cm_work_units")).scalar() == mirrored_at

    def test_sync_config_mirrors_agents_and_units_idempotently(self, pg_url):
        store = Store(pg_url)
        config = load_roadmap()
        store.sync_config(config)
        store.sync_config(config)
        with store.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM cm_agents")).scalar() == 11
            assert conn.execute(sa.text("SELECT count(*) FROM cm_work_units")).scalar() == len(config.work_units)


RESULT = "RESULT "
# A scheduler: prepares the store as the preload does, then forks three of week 1's agent tasks one
# after another; prints what each compiled, and what the rehearsal left stored.
SCHEDULER_FORKING_AGENT_TASKS = f"""
import collections, functools, json, types
import pendulum
import sqlalchemy as sa
from sqlalchemy.engine.default import CACHE_MISS
from castmatch.factory import build_dags
from castmatch.preload import prepare_store
from castmatch.store.db import get_engine
from tests.helpers import in_a_task_process

prepare_store()
engine = get_engine()
with engine.connect() as conn:
    stored = {{t: conn.execute(sa.text("SELECT count(*) FROM " + t)).scalar() for t in
              ("cm_runs", "cm_unit_runs", "cm_deliverables", "cm_events", "cm_llm_calls", "cm_agents")}}
engine.dispose()
dag = build_dags(family="weeks")["castmatch_week_01"]
logical = pendulum.datetime(2026, 1, 5, tz="UTC")

def run(task):
    compiled = []
    sa.event.listen(engine, "after_cursor_execute", lambda conn, cursor, statement, params, ctx, many:
                    ctx.cache_hit == CACHE_MISS and compiled.append(statement))
    ti = types.SimpleNamespace(dag_id=dag.dag_id, run_id="manual__1", try_number=1, task_id=task.task_id, max_tries=0)
    task.execute({{"ti": ti, "params": {{"clock": "compressed"}}, "logical_date": logical,
                  "dag_run": types.SimpleNamespace(start_date=logical),
                  "outlet_events": collections.defaultdict(lambda: types.SimpleNamespace(extra={{}}))}})
    return compiled

compiled_by_task = {{task.work_unit_id: in_a_task_process(functools.partial(run, task))
                    for task in [t for t in dag.topological_sort() if type(t).__name__ == "AgentOperator"][:3]}}
print("{RESULT}" + json.dumps({{"stored_by_the_rehearsal": stored, "compiled_by_task": compiled_by_task}}))
"""


class TestTaskProcessConnections:
    def test_the_scheduler_checks_the_schema_once_and_forked_tasks_ask_it_no_more(self, pg_url):
        from castmatch.preload import prepare_store

        prepare_store()  # the scheduler, before it forks task processes: an empty database is upgraded
        engine = get_engine(pg_url)
        with engine.connect() as conn:  # even a connection the parent pooled later stays the parent's
            parent_backend = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()
        def task():
            seen = []
            sa.event.listen(engine, "before_cursor_execute", lambda *args: seen.append(args[2]))
            store = Store(pg_url)
            store.register_run(run_key="castmatch:r1", roadmap_id="castmatch", kind="week", dag_id="d",
                               run_id="r1", clock="compressed")
            with engine.connect() as conn:
                backend = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()
            return {"statements": seen, "backend": backend}

        child = in_a_task_process(task)
        statements = child["statements"]
        assert statements and not any(VERSION_TABLE in s for s in statements), statements
        assert child["backend"] != parent_backend  # its own connection, not the parent's socket
        assert current_revision(engine) == head_revision()
        assert Store(pg_url).run("castmatch:r1")["run_id"] == "r1"  # the child's own connection wrote it

    def test_agent_tasks_forked_after_the_rehearsal_compile_none_of_their_statements(
            self, pg_url, redis_prefix, anthropic_conn):
        """The scheduler's preload rehearses an agent task's store statements, rolled back; task
        processes forked after it run their units (the real operator, Claude through the fake API,
        the real Redis) finding every statement compiled, and store what they did. The scheduler is a
        fresh process here, as in Airflow: forking this test's own process, which has threads,
        could leave a child stuck on a lock one of them held."""
        import json
        import os

        env = {**os.environ, "CASTMATCH_LLM": "live"}
        out = subprocess.run([sys.executable, "-c", SCHEDULER_FORKING_AGENT_TASKS], capture_output=True, text=True,
                             env=env, cwd=Path(__file__).resolve().parents[2], timeout=300)  # tests.helpers
        assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
        result = json.loads(out.stdout.rsplit(RESULT, 1)[1])
        assert result["stored_by_the_rehearsal"] == dict.fromkeys(result["stored_by_the_rehearsal"], 0)
        assert len(result["compiled_by_task"]) == 3
        assert result["compiled_by_task"] == dict.fromkeys(result["compiled_by_task"], [])
        delivered = {d["work_unit_id"] for d in Store(pg_url).deliverables(dag_id="castmatch_week_01")}
        assert delivered == set(result["compiled_by_task"])

    def test_a_pooled_connection_is_tested_only_after_idling_and_a_dead_one_replaced(self, pg_url, monkeypatch):
        from castmatch.store import db
        from tests.conftest import _admin_engine

        engine = db.make_engine(pg_url)
        pings = []
        ping = engine.dialect.do_ping
        monkeypatch.setattr(engine.dialect, "do_ping", lambda conn: pings.append(1) or ping(conn))

        def backend_pid():
            with engine.connect() as conn:
                return conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()

        first = backend_pid()
        assert backend_pid() == first and pings == []  # reused at once: no round trip to test it
        admin = _admin_engine()
        with admin.connect() as conn:  # the server ends it while it idles in the pool
            assert conn.execute(sa.text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": first}).scalar()
        admin.dispose()
        monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)
        second = backend_pid()  # tested, found dead, replaced: the caller never sees the error
        assert pings == [1] and second != first
        engine.dispose()

    def test_reads_and_single_writes_are_their_own_transaction_and_the_rest_stay_atomic(self, pg_url, monkeypatch):
        """A read, or a write that is one statement, is sent alone (no BEGIN before it, no COMMIT
        or ROLLBACK after: one round trip, not three); PostgreSQL then runs it as its own
        transaction, whose start is the statement's. The pooled connection is transactional again
        afterwards, even one a liveness ping left inside a transaction, and a write of several
        statements is still all or nothing."""
        from castmatch.store import db

        own = sa.select(sa.func.statement_timestamp() == sa.func.transaction_timestamp())
        store = Store(pg_url)
        with store._autocommit() as conn:
            assert conn.execute(own).scalar() is True
        with store.engine.begin() as conn:  # the same pooled connection, in a transaction again
            conn.execute(sa.text("SELECT 1"))
            assert conn.execute(own).scalar() is False
        monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)  # the ping's SELECT 1 opens a transaction
        with store._autocommit() as conn:
            assert conn.execute(own).scalar() is True
        run = store.register_run(run_key="castmatch:r1", roadmap_id="castmatch", kind="week", dag_id="d",
                                 run_id="r1", clock="compressed")
        assert run["new"] and store.run("castmatch:r1")["run_id"] == "r1"
        keys = {"dag_id": "d", "run_key": "castmatch:r1", "run_id": "r1", "work_unit_id": "u1", "agent_id": "a"}
        def no_event(conn, *args, **kwargs):  # the last of the write's three statements fails
            conn.execute(sa.text("SELECT no_such_column FROM cm_events"))

        monkeypatch.setattr(Store, "_event", staticmethod(no_event))
        with pytest.raises(sa.exc.ProgrammingError):
            store.save_deliverable(**keys, week=1, backend="live", model="m", try_number=1, deliverable={
                "status": "done", "summary": "kept?", "content": "c", "blockers": [], "progress": 100})
        assert store.deliverables(run_key="castmatch:r1") == [] and store.unit_runs("castmatch:r1") == []

    def test_an_agent_task_opens_its_store_connection_while_airflow_prepares_it(self, pg_url):
        """Airflow calls ``prepare_for_execution`` before it renders the task and reports to its API
        server; the agent task opens its store connection then, in the background, and its work
        finds it in the pool: its first statement opens none."""
        from castmatch.factory import build_dags
        from castmatch.store import db

        engine = db.ensure_schema(pg_url)  # as the scheduler's preload leaves it: checked, no connection kept
        engine.dispose()
        opened = []
        sa.event.listen(engine.pool, "connect", lambda *args: opened.append(1))
        task = build_dags(family="weeks")["castmatch_week_01"].get_task("fix_redis_connection")
        prepared = task.prepare_for_execution()
        assert prepared is not task and prepared.work_unit_id == task.work_unit_id  # Airflow's copy still
        store = Store()  # the task's own: waits for the connection being opened
        assert opened == [1] and engine.pool.checkedin() == 1
        assert store.run("castmatch:none") is None and opened == [1]  # the first statement used it

    def test_a_store_opened_ahead_that_cannot_be_reached_fails_at_its_first_statement(self, monkeypatch):
        from castmatch.store import db

        url = "postgresql+psycopg2://postgres@127.0.0.1:1/nothing?connect_timeout=1"
        db._upgraded.add(url)  # as the scheduler's preload leaves it: no schema check in the task process
        try:
            db.connect_ahead(url)  # no error here: the task's work reports it
            store = Store(url)
            with pytest.raises(sa.exc.OperationalError, match="127.0.0.1"):
                store.run("castmatch:none")
        finally:
            db._upgraded.discard(url)

    def test_recording_a_run_returns_its_row_on_sqlite_too(self, tmp_path):
        store = Store(f"sqlite:///{tmp_path / 'store.db'}")  # make run's embedded store
        first = store.register_run(run_key="castmatch:r1", roadmap_id="castmatch", kind="week", dag_id="d",
                                   run_id="r1", clock="compressed")
        again = store.register_run(run_key="castmatch:r1", roadmap_id="castmatch", kind="roadmap", dag_id="d2",
                                   run_id="r2", clock="real")
        assert (first["new"], again["new"]) == (True, False)
        assert (again["started_at"], again["kind"], again["run_id"]) == (first["started_at"], "week", "r1")
        assert again["updated_at"] > first["updated_at"]


class TestSchemaMatchesMigrations:
    def test_the_migrated_database_is_the_schema_the_code_uses(self, pg_url):
        """Every table, column, index and constraint of ``store/schema.py`` is made by the migrations."""
        from alembic.autogenerate import compare_metadata
        from alembic.migration import MigrationContext

        from castmatch.store.db import upgrade
        from castmatch.store.schema import metadata

        upgrade(pg_url)
        with get_engine(pg_url).connect() as conn:
            context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
            assert compare_metadata(context, metadata) == []


class TestHeadRevision:
    def test_the_quick_schema_check_knows_the_newest_migration(self):
        from castmatch.store.db import HEAD_REVISION

        assert HEAD_REVISION == head_revision()
