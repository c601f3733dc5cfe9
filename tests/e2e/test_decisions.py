"""Go/no-go at Day 7: gates and KPIs (validated by Great Expectations) decide; NO-GO takes the
seed's path and the roadmap driver stops on it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from castmatch.store import Store
from tests.helpers import castmatch_json, dags_test

BIN = Path(sys.executable).parent
DATE = "2026-05-04T03:30:00+00:00"
COBERTURA = '<?xml version="1.0" ?><coverage line-rate="{rate}" branch-rate="0" version="7"><packages/></coverage>'


def run_week(env: dict) -> str:
    out = dags_test("castmatch_week_01", DATE, env)
    return out.stdout + out.stderr


def day7(pg_url: str) -> dict:
    report = castmatch_json("gates", database_url=pg_url)
    return next(d for d in report["decision_points"] if d["id"] == "day7_check")


def coverage_due_in_week_one(roadmap: Path) -> None:
    kpis = roadmap / "kpis.yaml"
    text = kpis.read_text()
    start = text.index("- id: test_coverage")
    end = text.index("by_week: 2", start)
    kpis.write_text(text[:end] + "by_week: 1" + text[end + len("by_week: 2"):])


@pytest.mark.e2e
class TestDaySevenDecision:
    def test_healthy_week_one_is_go(self, pg_url, airflow_db):
        log = run_week(dict(os.environ))
        assert "state=success" in log, log[-3000:]
        decision = day7(pg_url)
        assert decision["decision"] == "GO"
        assert decision["gates_status"] == {"infrastructure_success": "PASSED", "ai_integration_success": "PASSED"}
        assert decision["great_expectations"]["success"] is True

    def test_kpi_below_threshold_fails_great_expectations_and_is_no_go(self, pg_url, airflow_db, roadmap_copy, tmp_path):
        coverage_due_in_week_one(roadmap_copy)
        reports = tmp_path / "reports"
        reports.mkdir()
        (reports / "coverage.xml").write_text(COBERTURA.format(rate="0.62"))
        env = {**os.environ, "CASTMATCH_ROADMAP_DIR": str(roadmap_copy), "CASTMATCH_REPORTS_DIR": str(tmp_path)}
        run_week(env)
        decision = day7(pg_url)
        assert decision["decision"] == "NO_GO"
        assert "reassess" in decision["reason"].lower() and "test_coverage (62" in decision["reason"]
        results = {r["kpi_id"]: r for r in decision["great_expectations"]["results"]}
        assert decision["great_expectations"]["success"] is False
        assert results["test_coverage"]["observed"] == pytest.approx(62.0) and results["test_coverage"]["success"] is False
        extended = Store(pg_url).events("timeline_extended")
        assert len(extended) == 1 and extended[0]["data"]["weeks"] >= 1

    def test_missing_coverage_report_is_missing_and_fails_closed(self, pg_url, airflow_db, roadmap_copy, tmp_path):
        coverage_due_in_week_one(roadmap_copy)
        env = {**os.environ, "CASTMATCH_ROADMAP_DIR": str(roadmap_copy), "CASTMATCH_REPORTS_DIR": str(tmp_path)}
        run_week(env)
        latest = Store(pg_url).latest_kpi_values()["test_coverage"]
        assert latest["status"] == "missing" and latest["value"] is None
        assert day7(pg_url)["decision"] == "NO_GO"
