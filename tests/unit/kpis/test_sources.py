"""KPI source readers: Cobertura coverage, bandit / pip-audit reports, the LLM audit ledger."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from castmatch.config.models import KpiSource
from castmatch.kpis.sources import (
    KpiMissing,
    coverage_pct,
    describe_source,
    llm_audit_metric,
    security_findings,
)

COBERTURA = """<?xml version="1.0" ?>
<coverage version="7.6.1" timestamp="1767225600000" lines-valid="400" lines-covered="366" line-rate="0.915"
          branches-covered="30" branches-valid="40" branch-rate="0.75" complexity="0">
  <packages><package name="castmatch" line-rate="0.915" branch-rate="0.75" complexity="0"/></packages>
</coverage>
"""
BANDIT = {"errors": [], "metrics": {}, "results": [
    {"filename": "app/db.py", "issue_severity": "HIGH", "issue_confidence": "HIGH", "test_id": "B608"},
    {"filename": "app/auth.py", "issue_severity": "HIGH", "issue_confidence": "MEDIUM", "test_id": "B105"},
    {"filename": "app/util.py", "issue_severity": "MEDIUM", "issue_confidence": "HIGH", "test_id": "B301"},
    {"filename": "app/cli.py", "issue_severity": "LOW", "issue_confidence": "HIGH", "test_id": "B404"},
]}
PIP_AUDIT = {"dependencies": [
    {"name": "jinja2", "version": "3.1.2", "vulns": [{"id": "GHSA-h5c8-rqwp-cp95", "fix_versions": ["3.1.3"]}]},
    {"name": "requests", "version": "2.31.0", "vulns": [{"id": "GHSA-9wx4-h78v-vm56", "fix_versions": ["2.32.0"]},
                                                        {"id": "X-LOW", "severity": "low"}]},
    {"name": "pydantic", "version": "2.9.0", "vulns": []},
], "fixes": []}


def call(latency_ms=1000, outcome="ok", backend="live", batch=False):
    return {"latency_ms": latency_ms, "outcome": outcome, "backend": backend, "batch": batch}


class TestCoverage:
    def test_line_rate_of_a_cobertura_report(self, tmp_path: Path):
        report = tmp_path / "coverage.xml"
        report.write_text(COBERTURA)
        reading = coverage_pct(report)
        assert reading.value == pytest.approx(91.5)
        assert "366/400 lines" in reading.detail
        assert coverage_pct(report, "branch_rate_pct").value == pytest.approx(75.0)

    def test_an_absent_report_is_missing_not_zero(self, tmp_path: Path):
        with pytest.raises(KpiMissing, match="no coverage report at .*coverage.xml"):
            coverage_pct(tmp_path / "coverage.xml")

    @pytest.mark.parametrize(("text", "reason"), [
        ("<coverage line-rate='0.9'", "not readable XML"),
        ("<report line-rate='0.9'/>", "not a Cobertura report"),
        ("<coverage version='1'/>", "no numeric line-rate"),
        ("<coverage line-rate='91'/>", "outside 0..1"),
    ])
    def test_a_malformed_report_is_missing_with_the_reason(self, tmp_path: Path, text, reason):
        report = tmp_path / "coverage.xml"
        report.write_text(text)
        with pytest.raises(KpiMissing, match=reason):
            coverage_pct(report)


class TestSecurity:
    def test_bandit_counts_high_findings(self, tmp_path: Path):
        report = tmp_path / "security.json"
        report.write_text(json.dumps(BANDIT))
        reading = security_findings(report)
        assert reading.value == 2.0 and reading.detail.startswith("bandit: 2 HIGH of 4 findings")

    def test_bandit_without_findings_is_zero(self, tmp_path: Path):
        report = tmp_path / "security.json"
        report.write_text(json.dumps({"errors": [], "results": []}))
        assert security_findings(report).value == 0.0

    def test_pip_audit_counts_vulnerabilities_without_a_lower_severity(self, tmp_path: Path):
        report = tmp_path / "security.json"
        report.write_text(json.dumps(PIP_AUDIT))
        reading = security_findings(report)
        assert reading.value == 2.0
        assert "jinja2 GHSA-h5c8-rqwp-cp95" in reading.detail and "X-LOW" not in reading.detail

    @pytest.mark.parametrize(("text", "reason"), [
        (None, "no security report"), ("{not json", "not readable JSON"), ('{"issues": []}', "unrecognised"),
    ])
    def test_absent_or_unreadable_is_missing(self, tmp_path: Path, text, reason):
        report = tmp_path / "security.json"
        if text is not None:
            report.write_text(text)
        with pytest.raises(KpiMissing, match=reason):
            security_findings(report)


class TestLlmAudit:
    CALLS = [call(1000), call(2000), call(3000), call(10_000, outcome="error"), call(0, backend="offline"),
             call(0, backend="replay"), call(90_000, backend="batch", batch=True)]

    def test_latency_metrics_use_ok_calls_of_measured_backends(self):
        assert llm_audit_metric(self.CALLS, "avg_latency_s").value == pytest.approx(2.0)
        assert llm_audit_metric(self.CALLS, "avg_conversation_response_s").value == pytest.approx(2.0)
        assert llm_audit_metric(self.CALLS, "p95_latency_s").value == pytest.approx(3.0)

    def test_success_rate_is_ok_over_all_attempts(self):
        reading = llm_audit_metric(self.CALLS, "conversation_success_rate")
        assert reading.value == pytest.approx(75.0) and reading.detail == "3 ok of 4 attempts"

    def test_p95_is_the_nearest_rank(self):
        calls = [call(ms) for ms in range(100, 2100, 100)]  # 20 calls: 0.1 .. 2.0 s
        assert llm_audit_metric(calls, "p95_latency_s").value == pytest.approx(1.9)

    @pytest.mark.parametrize(("calls", "metric", "reason"), [
        ([], "avg_latency_s", "no live/record Claude calls"),
        ([call(0, backend="offline")], "avg_latency_s", "1 offline/replay/batch calls measure no response time"),
        ([call(outcome="error")], "avg_latency_s", "none of 1 attempts succeeded"),
        ([call()], "median_latency_s", "unknown llm_audit metric"),
    ])
    def test_missing_when_nothing_measures_it(self, calls, metric, reason):
        with pytest.raises(KpiMissing, match=reason):
            llm_audit_metric(calls, metric)


class TestDescribeSource:
    def test_names_kind_and_where(self, tmp_path: Path):
        assert describe_source(KpiSource(kind="coverage_report", path="reports/c.xml"), tmp_path) == \
            f"coverage_report:{tmp_path / 'reports/c.xml'}"
        assert describe_source(KpiSource(kind="probe", probes=["redis", "postgres"]), tmp_path) == "probe:redis,postgres (24 h)"
        assert describe_source(KpiSource(kind="sql", conn_id="castmatch_product", sql="SELECT 1"), tmp_path) == \
            "sql:castmatch_product"
