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
