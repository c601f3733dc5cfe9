"""KPI checks through Great Expectations: thresholds from the config, missing values fail."""

from __future__ import annotations

import pytest

from castmatch.config import load_roadmap
from castmatch.config.models import Kpi, KpiSource
from castmatch.kpis import expectations
from castmatch.kpis.expectations import BETWEEN, NOT_NULL, bounds, validate_kpis

GOOD = {"service_uptime": 99.0, "infrastructure_uptime": 99.5, "api_response_time": 1.2, "memory_accuracy": 100.0, "test_coverage": 91.0,
        "critical_security_issues": 0.0, "beta_users_engaged": 50.0, "conversations_per_day": 120.0,
        "active_users": 200.0, "conversation_response_time": 2.9}


def kpi(kpi_id: str, comparator: str, threshold: float) -> Kpi:
    return Kpi(id=kpi_id, name=kpi_id, category="technical", comparator=comparator, threshold=threshold, unit="x",
               source=KpiSource(kind="coverage_report", path="reports/coverage.xml"))


@pytest.fixture(scope="module")
def kpis():
    return load_roadmap().kpis.kpis


class TestBounds:
    def test_comparators_map_to_strict_or_inclusive_bounds(self):
        assert bounds(">", 99) == {"min_value": 99.0, "strict_min": True}
        assert bounds(">=", 50) == {"min_value": 50.0}
        assert bounds("<", 2) == {"max_value": 2.0, "strict_max": True}
        assert bounds("<=", 0) == {"max_value": 0.0}


class TestValidateKpis:
    def test_all_good_passes(self, kpis):
        outcome = validate_kpis(kpis, GOOD, run_key="r1", decision_point="day14_check")
        assert outcome.success and outcome.failed == []
        assert [r["kpi_id"] for r in outcome.results] == [k.id for k in kpis]
        uptime = next(r for r in outcome.results if r["kpi_id"] == "infrastructure_uptime")
        assert uptime == {"kpi_id": "infrastructure_uptime", "observed": 99.5, "threshold": 99.0, "comparator": ">",
                          "expectation": f"{BETWEEN}(min_value=99, strict_min=True)", "success": True}

    def test_an_empty_suite_is_never_a_success(self, pg_url):
        from castmatch.store import Store

        store = Store(pg_url)
        outcome = validate_kpis([], {}, run_key="castmatch:roadmap:r1", decision_point="day7_check", store=store)
        assert not outcome.success and outcome.results == []
        [stored] = store.kpi_validations("castmatch:roadmap:r1")
        assert stored["success"] is False

    def test_a_kpi_below_its_threshold_fails_it_and_the_whole_check(self, kpis):
        outcome = validate_kpis(kpis, {**GOOD, "test_coverage": 72.5}, run_key="r1")
        assert not outcome.success
        assert [(r["kpi_id"], r["observed"]) for r in outcome.failed] == [("test_coverage", 72.5)]
        assert "FAILED: test_coverage" in outcome.summary()

    @pytest.mark.parametrize("values", [
        {**GOOD, "memory_accuracy": None},
        {k: v for k, v in GOOD.items() if k != "memory_accuracy"},
        {**GOOD, "memory_accuracy": float("nan")},
    ], ids=["none", "absent", "nan"])
    def test_a_missing_value_fails_never_passes(self, kpis, values):
        outcome = validate_kpis(kpis, values, run_key="r1")
        assert not outcome.success
        [failed] = outcome.failed
        assert failed["kpi_id"] == "memory_accuracy" and failed["observed"] is None
        assert failed["expectation"] == f"{NOT_NULL}()"

    def test_a_missing_value_fails_even_for_an_upper_bound(self):
        # `between` alone ignores nulls: "<= 0 critical issues" must not pass on no report.
        outcome = validate_kpis([kpi("critical", "<=", 0)], {"critical": None}, run_key="r1")
        assert not outcome.success

    @pytest.mark.parametrize(("comparator", "threshold", "value", "passes"), [
        (">", 99, 99.0, False), (">", 99, 99.01, True),
        (">=", 50, 50.0, True), (">=", 50, 49.9, False),
        ("<", 2, 2.0, False), ("<", 2, 1.99, True),
        ("<=", 0, 0.0, True), ("<=", 0, 1.0, False),
    ])
    def test_boundaries_follow_the_comparator(self, comparator, threshold, value, passes):
        outcome = validate_kpis([kpi("k", comparator, threshold)], {"k": value}, run_key="r1")
        assert outcome.success is passes and outcome.results[0]["success"] is passes

    def test_great_expectations_is_set_up_once_per_process(self, kpis, monkeypatch):
        validate_kpis(kpis, GOOD, run_key="warm")
        batch_definition = expectations._gx["batch_definition"]
        gx = expectations._gx["module"]

        def set_up_again(*args, **kwargs):
            raise AssertionError("a second Great Expectations context was set up in this process")

        # Checked by what is called, not by how long it took: a timed assertion fails on a slow machine.
        monkeypatch.setattr(gx, "get_context", set_up_again)
        outcome = validate_kpis(kpis, {**GOOD, "active_users": 10}, run_key="again")
        assert not outcome.success and [r["kpi_id"] for r in outcome.failed] == ["active_users"]
        assert expectations._gx["batch_definition"] is batch_definition
        # Once warm, warming up again validates nothing.
        monkeypatch.setattr(type(batch_definition), "get_batch", set_up_again)
        expectations.warm_up()
