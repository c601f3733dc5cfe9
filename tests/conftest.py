"""Shared fixtures. Tests use the real PostgreSQL and Redis of this machine (127.0.0.1); a test that
needs one and cannot reach it fails, it never skips.

Airflow gets a throw-away home (SQLite metadata DB) per test session, set before Airflow is imported.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_HOME = Path(tempfile.mkdtemp(prefix="castmatch-airflow-"))
os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(ROOT / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
os.environ.setdefault("CASTMATCH_LLM", "offline")
# Offline, the Claude probe checks nothing; tests accept that as `make run` does (a test of its own
# checks that a gate rejects it where offline runs are not allowed).
os.environ.setdefault("CASTMATCH_OFFLINE_CHECKS", "accept")
# The services the gates probe (airflow_settings.yaml defines the same for `make run`).
os.environ["AIRFLOW_CONN_CASTMATCH_REDIS"] = "redis://127.0.0.1:6379/0"
os.environ["AIRFLOW_CONN_CASTMATCH_POSTGRES"] = "postgres://postgres@127.0.0.1:5432/postgres"
os.environ.pop("CASTMATCH_ROADMAP_DIR", None)
os.environ.pop("CASTMATCH_CLOCK", None)

PG_ADMIN_URL = os.environ.get("CASTMATCH_TEST_PG", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("CASTMATCH_TEST_REDIS", "redis://127.0.0.1:6379/0")
BIN = Path(sys.executable).parent


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_HOME, ignore_errors=True)


def _admin_engine():
    import sqlalchemy as sa

    return sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")


def create_pg_database() -> str:
    """A fresh, empty PostgreSQL database; returns its URL."""
    import sqlalchemy as sa

    name = f"cm_test_{uuid.uuid4().hex[:10]}"
    engine = _admin_engine()
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def drop_pg_database(url: str) -> None:
    import sqlalchemy as sa

    from castmatch.store.db import forget_engines

    forget_engines()
    name = url.rsplit("/", 1)[1]
    engine = _admin_engine()
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@pytest.fixture
def pg_url(monkeypatch) -> str:
    """A fresh PostgreSQL database for one test, selected through CASTMATCH_DATABASE_URL."""
    url = create_pg_database()
    monkeypatch.setenv("CASTMATCH_DATABASE_URL", url)
    yield url
    drop_pg_database(url)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Airflow's metadata database in the session's throw-away home, migrated once."""
    subprocess.run([str(BIN / "airflow"), "db", "migrate"], check=True, capture_output=True, env=os.environ.copy())
    return _HOME


@pytest.fixture
def roadmap_copy(tmp_path) -> Path:
    """A writable copy of the CastMatch roadmap folder, for tests that break it."""
    dest = tmp_path / "roadmap"
    shutil.copytree(ROOT / "include" / "roadmaps" / "castmatch", dest)
    return dest


@pytest.fixture
def redis_prefix(monkeypatch) -> str:
    """A Redis key prefix of this test's own on the real Redis (deleted afterwards)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.ping()  # unreachable Redis fails the test, never skips it
    prefix = f"cmtest:{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("CASTMATCH_REDIS_URL", REDIS_URL)
    monkeypatch.setenv("CASTMATCH_REDIS_PREFIX", prefix)
    yield prefix
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)
    client.close()


@pytest.fixture
def fake_claude():
    """A fake Messages API server on 127.0.0.1, talked to by the real SDK."""
    from tests.fakes.fake_anthropic import FakeAnthropic

    with FakeAnthropic(retry_after=0.1, timeout_sleep=5.0) as server:
        yield server


@pytest.fixture
def anthropic_conn(monkeypatch, fake_claude):
    """Connection ``anthropic_default`` pointing at the fake server (key in the password)."""
    import json

    monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", json.dumps(
        {"conn_type": "anthropic", "password": fake_claude.api_key, "host": fake_claude.url}))
    return fake_claude


@pytest.fixture(autouse=True)
def _one_whole_airflow_at_a_time(request):
    """Under ``pytest -n 2`` (make test), the tests that start a whole Airflow (``STARTS_AIRFLOW``:
    tests.airflow_stack, the Celery stack) take turns: two at once would starve this machine's two
    cores and stretch the clocks they wait on. (xdist's own ``--dist loadgroup`` cannot group under
    pytest 9: it renames ``_nodeid``, which pytest 9 no longer reads.)"""
    if not getattr(request.module, "STARTS_AIRFLOW", False):
        yield
        return
    import fcntl

    run = os.environ.get("PYTEST_XDIST_TESTRUNUID", str(os.getpid()))
    with open(Path(tempfile.gettempdir()) / f"castmatch-whole-airflow-{run}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
