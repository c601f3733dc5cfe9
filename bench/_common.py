"""Shared set-up of the LLM benchmarks: the fake server, a throw-away store, the real Redis."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@contextmanager
def llm_bench_env(latency: float):
    """Yields the fake server; the Anthropic connection, a temporary SQLite store and a Redis key
    prefix of this run are set in the environment."""
    from tests.fakes.fake_anthropic import FakeAnthropic

    with tempfile.TemporaryDirectory() as tmp, FakeAnthropic(latency=latency) as server:
        os.environ.setdefault("AIRFLOW_HOME", tmp)
        os.environ["AIRFLOW_CONN_ANTHROPIC_DEFAULT"] = json.dumps(
            {"conn_type": "anthropic", "password": server.api_key, "host": server.url})
        os.environ["CASTMATCH_DATABASE_URL"] = f"sqlite:///{tmp}/bench.db"
        os.environ.setdefault("CASTMATCH_REDIS_URL", "redis://127.0.0.1:6379/0")
        os.environ["CASTMATCH_REDIS_PREFIX"] = f"cmbench:{uuid.uuid4().hex[:8]}"
        yield server


PG = os.environ.get("CASTMATCH_TEST_PG", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")


def pg_database(action: str, name: str) -> str:
    """Create (``create``: dropped first if left over) or drop database ``name`` on the local
    PostgreSQL; returns its URL."""
    import sqlalchemy as sa

    engine = sa.create_engine(PG, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if action == "create":
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return PG.rsplit("/", 1)[0] + f"/{name}"


def airflow_bench_env(server, prefix: str) -> dict:
    """What an Airflow of the benchmarks runs with: the live backend against the fake Messages API
    ``server``, the real Redis under key prefix ``prefix``, the compressed clock chosen per run."""
    return {
        "CASTMATCH_LLM": "live",
        "AIRFLOW_CONN_ANTHROPIC_DEFAULT": json.dumps({"conn_type": "anthropic", "password": server.api_key,
                                                      "host": server.url}),
        "AIRFLOW_CONN_CASTMATCH_REDIS": "redis://127.0.0.1:6379/0",
        "AIRFLOW_CONN_CASTMATCH_POSTGRES": "postgres://postgres@127.0.0.1:5432/postgres",
        "CASTMATCH_REDIS_URL": os.environ.get("CASTMATCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
        "CASTMATCH_REDIS_PREFIX": prefix,
        "CASTMATCH_CLOCK": "",  # parsed on the roadmap's own (real) clock: each run chooses compressed
    }


DATABASES = ("postgres", "sqlite")


@contextmanager
def bench_databases(kind: str, tag: str):
    """Yields the environment naming Airflow's metadata database and the CastMatch store:
    ``postgres`` (both on the local PostgreSQL, as docker-compose deploys them; created here and
    dropped after) or ``sqlite`` (both embedded files in the stack's home, as ``make run`` without
    a server)."""
    if kind not in DATABASES:
        raise SystemExit(f"BENCH_DATABASE must be one of {', '.join(DATABASES)}, not {kind!r}")
    if kind == "sqlite":
        yield {"CASTMATCH_DATABASE_URL": ""}
        return
    names = [f"cm_bench_{tag}_{os.getpid()}", f"cm_bench_{tag}_{os.getpid()}_af"]
    store, metadata = (pg_database("create", n) for n in names)
    try:
        yield {"CASTMATCH_DATABASE_URL": store, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata}
    finally:
        for name in names:
            pg_database("drop", name)
