"""A second team's roadmap beside CastMatch in one PostgreSQL store and one Redis: a gate judged
on a KPI alone passes when the KPI is on target and fails with its value when not; and each
roadmap's reports show only its own rows."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
import redis

from tests.conftest import REDIS_URL
from tests.helpers import castmatch_json, dags_test, sample_history

SECOND = Path(__file__).resolve().parents[1] / "roadmaps" / "second"
COBERTURA = '<?xml version="1.0" ?><coverage line-rate="{rate}" branch-rate="0" version="7"><packages/></coverage>'


def second(*args: str, pg_url: str):
    return castmatch_json(*args, "--roadmap", str(SECOND), database_url=pg_url)


@pytest.mark.e2e
class TestSecondRoadmap:
    def test_kpi_gate_and_two_roadmaps_in_one_store(self, pg_url, airflow_db, redis_prefix, tmp_path):
        from castmatch.store import Store

        (tmp_path / "reports").mkdir()
        coverage = tmp_path / "reports" / "coverage.xml"
        env = {**os.environ, "CASTMATCH_ROADMAP_DIR": str(SECOND), "CASTMATCH_REPORTS_DIR": str(tmp_path)}

        coverage.write_text(COBERTURA.format(rate="0.62"))
        # the week DAG is parsed on the real clock; this run chooses the compressed one (as the roadmap does)
        low = dags_test("second_week_01", "2026-06-01T00:00:00+00:00", env, conf={"clock": "compressed"},
                        answers={"review_no_go_week1_check": ("Keep NO-GO", "coverage first", "sam")})
        assert "state=failed" in low.stdout, low.stdout[-3000:]
        [review] = low.answered  # a person's window follows the run's clock: minutes, not the real clock's day
        window = dt.datetime.fromisoformat(review.deadline) - dt.datetime.fromisoformat(review.created_at)
        assert dt.timedelta(minutes=4) < window < dt.timedelta(minutes=6)
        assert "compressed clock" in low.stdout
        gate = second("gates", pg_url=pg_url)["gates"][0]
        assert gate["status"] == "FAILED"
        assert gate["criteria"][0]["reason"] == "test_coverage: 62 %, needs > 80"

        coverage.write_text(COBERTURA.format(rate="0.93"))
        good = dags_test("second_week_01", "2026-06-08T00:00:00+00:00", env)
        assert "state=success" in good.stdout, good.stdout[-3000:]
        report = second("gates", pg_url=pg_url)
        assert report["gates"][0]["status"] == "PASSED"
        assert report["gates"][0]["criteria"][0]["reason"] == "test_coverage: 93 % meets > 80"
        assert report["decision_points"][0]["decision"] == "GO"
        assert report["decision_points"][0]["decided_by"] == "second-orchestrator"

        # CastMatch's week 1 in the same store and Redis
        sample_history(Store(pg_url), ["redis", "postgres"], hours=24.5)
        cast = dags_test("castmatch_week_01", "2026-06-08T00:00:00+00:00", dict(os.environ))
        assert "state=success" in cast.stdout, cast.stdout[-3000:]

        mine, theirs = second("status", pg_url=pg_url), castmatch_json("status", database_url=pg_url)
        assert {a["id"] for a in mine["agents"]} == {"lead-engineer", "analyst", "reviewer"}
        assert [w["done"] for w in mine["weeks"]] == [2, 0, 0]
        assert len(theirs["agents"]) == 11 and theirs["weeks"][0]["done"] == 19
        assert [g["id"] for g in second("gates", pg_url=pg_url)["gates"]] == ["coverage_gate"]
        cast_gates = castmatch_json("gates", database_url=pg_url)
        assert "coverage_gate" not in {g["id"] for g in cast_gates["gates"]}
        assert "test_coverage" not in {k["id"] for k in cast_gates["kpis"] if k["value"] is not None}
        assert {a["id"] for a in second("usage", pg_url=pg_url)["agents"]} == {"lead-engineer", "analyst"}
        assert "lead-engineer" not in {a["id"] for a in castmatch_json("usage", database_url=pg_url)["agents"]}
        assert [r["run_key"].split(":")[0] for r in second("runs", pg_url=pg_url)] == ["second", "second"]

        # Redis: each roadmap's agent memory under its own prefix
        client = redis.Redis.from_url(REDIS_URL)
        keys = {k.decode() for k in client.scan_iter(f"{redis_prefix}:*")}
        assert any(k.startswith(f"{redis_prefix}:second:memory:second:") for k in keys)
        assert any(k.startswith(f"{redis_prefix}:castmatch:memory:castmatch:") for k in keys)
        assert not any(":second:memory:castmatch" in k or ":castmatch:memory:second" in k for k in keys)
