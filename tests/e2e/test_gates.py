"""Week 1's gates under `airflow dags test`: probes of the real Redis and PostgreSQL decide them."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from castmatch.config import load_roadmap
from castmatch.store import Store
from tests.helpers import castmatch_json, dags_test

BIN = Path(sys.executable).parent
DATE = "2026-04-06T03:30:00+00:00"


def run_week(env: dict) -> str:
    out = dags_test("castmatch_week_01", DATE, env)
    return out.stdout + out.stderr


def gates(pg_url: str) -> dict:
    return {g["id"]: g for g in castmatch_json("gates", database_url=pg_url)["gates"]}


@pytest.mark.e2e
class TestInfrastructureGate:
    def test_passes_on_healthy_services_vetoes_on_dead_redis_and_a_rerun_lets_work_through(self, pg_url, airflow_db):
        config = load_roadmap()
        infra = next(g for g in config.all_gates if g.id == "infrastructure_gate")

        dead = {**os.environ, "AIRFLOW_CONN_CASTMATCH_REDIS": "redis://127.0.0.1:1/0"}
        log = run_week(dead)
        assert "state=failed" in log
        gate = gates(pg_url)["infrastructure_gate"]
        assert gate["status"] == "VETOED"
        probe = next(c for c in gate["criteria"] if c["kind"] == "probe")
        assert probe["ok"] is False and "redis" in probe["reason"]
        ran = {r["work_unit_id"] for r in Store(pg_url).unit_runs()}
        assert not ran & set(infra.blocks)  # the guarded work did not run
        blocked = {e["work_unit_id"] for e in Store(pg_url).events("unit_blocked_by_gate")}
        assert blocked == set(infra.blocks)

        # Redis is back: the same run again (as clearing the gate does) passes and lets the work run
        log = run_week(dict(os.environ))
        assert "state=success" in log, log[-3000:]
        gate = gates(pg_url)["infrastructure_gate"]
        assert gate["status"] == "PASSED"
        assert all(c["ok"] for c in gate["criteria"])
        assert next(c for c in gate["criteria"] if c["kind"] == "probe")["reason"].startswith("all probes answered")
        ran = {d["work_unit_id"] for d in Store(pg_url).deliverables() if d["status"] == "done"}
        assert set(infra.blocks) <= ran
        samples = Store(pg_url).probe_samples("redis")
        assert [s["ok"] for s in samples][:1] == [False] and samples[-1]["ok"] is True
