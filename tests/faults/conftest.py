"""The fault suite: the second team's week 1 (two work units, a KPI gate, a decision) on the live
backend against the fake Messages API, with fast retries, under faults. Every scenario ends with
the same reconciliation (``castmatch reconcile``): one deliverable or one failure with a reason per
started unit, no duplicates, nothing left running, and one ledger row per request the fake saw."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
COBERTURA = '<?xml version="1.0" ?><coverage line-rate="0.95" branch-rate="0" version="7"><packages/></coverage>'
# Fast, bounded retries: 10 attempts a try (back-off 0.05-0.2 s), 3 tries 1 s apart, 2 s timeouts.
LLM_YAML = """conn_id: anthropic_default
max_tokens: 1024
stream: true
timeout_seconds: 2
repair_attempts: 1
retry:
  attempts: 10
  backoff_seconds: 0.05
  min_backoff_seconds: 0.05
  max_backoff_seconds: 0.2
  task_retry_delay_seconds: 1
rate_limit_redis_wait_seconds: 6
rate_limits:
  default: {requests_per_minute: 10000, input_tokens_per_minute: 100000000, output_tokens_per_minute: 100000000}
prices:
  claude-sonnet-4-5: {input: 3.00, output: 15.00, cache_write: 3.75, cache_read: 0.30}
"""


@pytest.fixture
def fault_roadmap(tmp_path) -> Path:
    """The second roadmap with fast retries, and a coverage report on target (so its decision is GO)."""
    roadmap = tmp_path / "roadmap"
    shutil.copytree(ROOT / "tests" / "roadmaps" / "second", roadmap)
    (roadmap / "llm.yaml").write_text(LLM_YAML)
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "coverage.xml").write_text(COBERTURA)
    return roadmap


@pytest.fixture
def live(fault_roadmap, pg_url, redis_prefix, fake_claude, airflow_db) -> dict:
    """The environment of a live run of the fault roadmap against the fake server."""
    return {**os.environ, "CASTMATCH_LLM": "live", "CASTMATCH_ROADMAP_DIR": str(fault_roadmap),
            "CASTMATCH_REPORTS_DIR": str(fault_roadmap.parent), "CASTMATCH_DATABASE_URL": pg_url,
            "AIRFLOW_CONN_ANTHROPIC_DEFAULT": json.dumps(
                {"conn_type": "anthropic", "password": fake_claude.api_key, "host": fake_claude.url})}


def run_key(date: str) -> str:
    return f"second:second_week_01:date:{date}"


def messages(server) -> int:
    """Requests the fake Messages API received."""
    return sum(1 for r in server.requests if r.path == "/v1/messages")


def reconciled(env: dict, key: str, server, requests_before: int = 0) -> dict:
    """``castmatch reconcile`` of the run: no discrepancy, and one ledger row per request the fake saw
    (after ``requests_before``, the requests of earlier runs)."""
    out = subprocess.run([str(BIN / "castmatch"), "reconcile", "--run", key, "--json"], capture_output=True,
                         text=True, env=env)
    assert "Traceback" not in out.stderr, out.stderr
    report = json.loads(out.stdout)
    assert report["problems"] == [] and out.returncode == 0, report
    assert report["requests"] == messages(server) - requests_before, (report, messages(server), requests_before)
    assert report["in_flight"] == 0, report
    return report


def unit_runs(pg_url: str, key: str) -> dict[str, dict]:
    from castmatch.store import Store

    return {r["work_unit_id"]: r for r in Store(pg_url).unit_runs(key)}
