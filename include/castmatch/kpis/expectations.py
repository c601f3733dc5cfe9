"""Check KPI values against their thresholds with Great Expectations, before each go/no-go.

Great Expectations 1.x is called directly (the Airflow GE provider cannot be installed beside
Airflow 3.3): an ephemeral context, a pandas data source, one single-row DataFrame with a column
per KPI, and a suite built from the config's thresholds. Each KPI gets two expectations: not
null (a missing value fails, never passes: ``expect_column_values_to_be_between`` alone ignores
nulls) and between (the comparator as a strict or inclusive bound).

Importing great_expectations costs seconds; the import and the context are set up once per
process (module-level cache) and reused by every later check.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

DATA_SOURCE = "castmatch_kpis"
ASSET = "kpi_values"
BATCH_DEFINITION = "current_values"
NOT_NULL = "expect_column_values_to_not_be_null"
BETWEEN = "expect_column_values_to_be_between"

_lock = threading.Lock()
_gx: dict[str, Any] = {}  # "module", "batch_definition": set up once per process


def bounds(comparator: str, threshold: float) -> dict[str, Any]:
    """``expect_column_values_to_be_between`` arguments for ``value <comparator> threshold``."""
    threshold = float(threshold)
    return {
        ">": {"min_value": threshold, "strict_min": True},
        ">=": {"min_value": threshold},
        "<": {"max_value": threshold, "strict_max": True},
        "<=": {"max_value": threshold},
    }[comparator]


@dataclass(frozen=True)
class ValidationOutcome:
    """The check of a set of KPIs: overall success and one result per KPI."""

    run_key: str
    decision_point: str | None
    success: bool
    # [{kpi_id, expectation, observed, threshold, comparator, success}, ...] in the KPIs' order
    results: list[dict]
    seconds: float  # spent in this call, including the once-per-process set-up if it happened here

    @property
    def failed(self) -> list[dict]:
        return [r for r in self.results if not r["success"]]

    def summary(self) -> str:
        where = f" at {self.decision_point}" if self.decision_point else ""
        verdict = "PASSED" if self.success else "FAILED: " + ", ".join(r["kpi_id"] for r in self.failed)
        return f"KPI check of {len(self.results)} KPIs{where} ({self.run_key}) {verdict}"


def warm_up() -> float:
    """Import great_expectations, set up the context and validate one throw-away value now (GE
    builds its validation machinery on the first validation); seconds spent (0 once done).

    Call it in a long-lived parent process (the scheduler preloads it for the task processes it
    forks) so a decision point's check does not pay it.
    """
    started = time.perf_counter()
    batch_definition = _batch_definition()
    if "validated" not in _gx:
        import pandas as pd

        gx = _gx["module"]
        suite = gx.ExpectationSuite(name="castmatch_warm_up")
        suite.add_expectation(gx.expectations.ExpectColumnValuesToNotBeNull(column="value"))
        suite.add_expectation(gx.expectations.ExpectColumnValuesToBeBetween(column="value", min_value=0))
        with _lock:
            batch_definition.get_batch(batch_parameters={"dataframe": pd.DataFrame({"value": [1.0]})}).validate(suite)
            _gx["validated"] = True
    return time.perf_counter() - started


def _batch_definition():
    if "batch_definition" in _gx:
        return _gx["batch_definition"]
    with _lock:
        if "batch_definition" not in _gx:
            started = time.perf_counter()
            logging.getLogger("great_expectations").setLevel(logging.WARNING)
            # No usage analytics: KPI values stay on this machine (and the network may be closed).
            os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
            import great_expectations as gx
            from great_expectations.data_context.types.base import ProgressBarsConfig

            _quiet_great_expectations()
            context = gx.get_context(mode="ephemeral")
            # No tqdm bars in the task log.
            context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
            batch_definition = (context.data_sources.add_pandas(DATA_SOURCE).add_dataframe_asset(ASSET)
                                .add_batch_definition_whole_dataframe(BATCH_DEFINITION))
            _gx.update(module=gx, batch_definition=batch_definition)
            log.info("Great Expectations %s set up in %.2f s (once per process)",
                     gx.__version__, time.perf_counter() - started)
    return _gx["batch_definition"]


def _quiet_great_expectations() -> None:
    """Only warnings from GE in the task log: some of its modules set their loggers to INFO on import."""
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if name.startswith("great_expectations") and isinstance(logger, logging.Logger):
            if logger.level != logging.NOTSET and logger.level < logging.WARNING:
                logger.setLevel(logging.WARNING)


def _observed(value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _call(expectation_type: str, kwargs: dict[str, Any]) -> str:
    args = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in kwargs.items())
    return f"{expectation_type}({args})"


def validate_kpis(kpis: Sequence, values: Mapping[str, float | None], *, run_key: str,
                  decision_point: str | None = None, store=None) -> ValidationOutcome:
    """Validate ``values`` ({kpi_id: value or None}) of the config ``kpis`` against their thresholds.

    A KPI absent from ``values``, None or not a finite number fails, and so does an empty list of
    KPIs (a suite without expectations checks nothing). The outcome is stored with
    ``store.save_kpi_validation`` when a store is given (one per run key and decision point: a
    rerun replaces it) and every result is logged.
    """
    started = time.perf_counter()
    unique = list({k.id: k for k in kpis}.values())
    observed = {k.id: _observed(values.get(k.id)) for k in unique}
    checks: dict[tuple[str, str], tuple[bool, str]] = {}
    ge_success = True
    if unique:
        import pandas as pd

        batch_definition = _batch_definition()
        gx = _gx["module"]
        suite = gx.ExpectationSuite(name=f"castmatch_kpis:{run_key}:{decision_point or '-'}")
        for kpi in unique:
            suite.add_expectation(gx.expectations.ExpectColumnValuesToNotBeNull(column=kpi.id))
            suite.add_expectation(gx.expectations.ExpectColumnValuesToBeBetween(
                column=kpi.id, **bounds(kpi.comparator, kpi.threshold)))
        frame = pd.DataFrame({kpi.id: [math.nan if observed[kpi.id] is None else observed[kpi.id]]
                              for kpi in unique}, dtype="float64")
        with _lock:  # one shared context per process; GE does not promise thread safety
            batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
            result = batch.validate(suite)
            _gx["validated"] = True  # GE's validation machinery is built
        ge_success = bool(result.success)
        for item in result.results:
            config = item.expectation_config
            raised = bool((item.exception_info or {}).get("raised_exception"))
            checks[(config.kwargs["column"], config.type)] = (bool(item.success) and not raised, config.type)

    results = []
    for kpi in unique:
        not_null = checks.get((kpi.id, NOT_NULL), (False, NOT_NULL))[0]
        between = checks.get((kpi.id, BETWEEN), (False, BETWEEN))[0]
        expectation = _call(BETWEEN, bounds(kpi.comparator, kpi.threshold)) if not_null else _call(NOT_NULL, {})
        results.append({"kpi_id": kpi.id, "expectation": expectation, "observed": observed[kpi.id],
                        "threshold": float(kpi.threshold), "comparator": kpi.comparator,
                        "success": not_null and between})
    # An empty suite checks nothing: it is never a success.
    success = bool(results) and ge_success and all(r["success"] for r in results)
    if not results:
        log.error("no KPI to validate%s: an empty suite checks nothing, stored as failed",
                  f" at {decision_point}" if decision_point else "")
    outcome = ValidationOutcome(run_key, decision_point, success, results, time.perf_counter() - started)

    for r in results:
        observed_text = "missing" if r["observed"] is None else f"{r['observed']:g}"
        log.log(logging.INFO if r["success"] else logging.WARNING, "KPI %s: observed %s, target %s %g -> %s (%s)",
                r["kpi_id"], observed_text, r["comparator"], r["threshold"],
                "PASS" if r["success"] else "FAIL", r["expectation"])
    log.log(logging.INFO if success else logging.WARNING, "%s in %.3f s", outcome.summary(), outcome.seconds)
    if store is not None:
        store.save_kpi_validation(run_key=run_key, decision_point=decision_point, success=success, results=results)
    return outcome
