"""Go/no-go at Day 7: gates and KPIs (validated by Great Expectations) decide; NO-GO takes the
seed's path and the roadmap driver stops on it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from castmatch.store import Store
from tests.helpers import castmatch_json, dags_test, sample_history

BIN = Path(sys.executable).parent
DATE = "2026-05-04T03:30:00+00:00"
COBERTURA = '<?xml version="1.0" ?><coverage line-rate="{rate}" branch-rate="0" version="7"><packages/></coverage>'


def run_week(env: dict, answers: dict | None = None) -> str:
    out = dags_test("castmatch_week_01", DATE, env, answers=answers)
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
        sample_history(Store(pg_url), ["redis", "postgres"], hours=24.5)  # the probe DAG's last day
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
        overturn = {"review_no_go_day7_check": ("Overturn to GO", "coverage plan agreed for week 2", "asha")}
        log = run_week(env, overturn)
        automatic = next(e for e in Store(pg_url).events("decision_no_go"))
        assert "reassess" in automatic["message"].lower() and "test_coverage (62" in automatic["message"]
        reassess = Store(pg_url).events("no_go_reassess")
        assert len(reassess) == 1 and reassess[0]["data"]["extension_days"] == 7  # the roadmap driver extends
        # Great Expectations failed the check, and that result stays stored
        decision = day7(pg_url)
        results = {r["kpi_id"]: r for r in decision["great_expectations"]["results"]}
        assert decision["great_expectations"]["success"] is False
        assert results["test_coverage"]["observed"] == pytest.approx(62.0) and results["test_coverage"]["success"] is False
        # a person overturned the NO-GO: the decision is GO, by them, with why and what it was
        assert decision["decision"] == "GO" and decision["decided_by"] == "asha" and decision["decided_at"]
        assert "coverage plan agreed for week 2" in decision["reason"] and "test_coverage (62" in decision["reason"]
        overturned = Store(pg_url).events("decision_overturned")
        assert [(e["data"]["by"], e["data"]["reason"]) for e in overturned] == [("asha", "coverage plan agreed for week 2")]
        assert "no_go_overturned_day7_check" in log

    def test_missing_coverage_report_is_missing_and_fails_closed(self, pg_url, airflow_db, roadmap_copy, tmp_path):
        coverage_due_in_week_one(roadmap_copy)
        env = {**os.environ, "CASTMATCH_ROADMAP_DIR": str(roadmap_copy), "CASTMATCH_REPORTS_DIR": str(tmp_path)}
        run_week(env, {"review_no_go_day7_check": ("Keep NO-GO", "", "asha")})
        latest = Store(pg_url).latest_kpi_values()["test_coverage"]
        assert latest["status"] == "missing" and latest["value"] is None
        decision = day7(pg_url)
        assert decision["decision"] == "NO_GO" and decision["decided_by"] == "castmatch-orchestrator"
        kept = Store(pg_url).events("no_go_upheld")
        assert [(e["data"]["by"], e["data"]["reason"]) for e in kept] == [("asha", "(no reason given)")]
