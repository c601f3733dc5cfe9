"""Measure a KPI from the source its config names, and store the value as a sample.

A source that cannot give a value now (no report file, no samples, a dead Redis, a missing
table) makes the KPI ``missing`` with the reason: never zero, never a crash. A gate that needs a
missing KPI fails closed with that reason.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from castmatch.config.models import KPI_METRICS
from castmatch.probes.checks import ProbeFailed, describe_error, get_connection, sqlalchemy_engine

log = logging.getLogger(__name__)

PROBE_WINDOW_HOURS = 24.0
# Backends whose latency is a measurement: offline and replay answer in ~0 ms and batch rows hold
# no per-message latency, so counting them would make "<2 s average" pass on nothing.
MEASURED_BACKENDS = ("live", "record")
LLM_AUDIT_METRICS = KPI_METRICS["llm_audit"]
SEVERE = frozenset({"HIGH", "CRITICAL"})
SQL_TIMEOUT_SECONDS = 30.0


class KpiMissing(Exception):
    """The source has no value now; the KPI is ``missing`` for this reason."""


@dataclass(frozen=True)
class Reading:
    value: float
    detail: str


@dataclass(frozen=True)
class SourceContext:
    config: Any
    store: Any
    base_dir: Path
    now: Any = None
    run_key: str | None = None  # the run the KPI is measured for (None: the roadmap as a whole)


# ---------------------------------------------------------------------------- pure readers


def llm_audit_metric(calls: Iterable[dict], metric: str) -> Reading:
    """``metric`` from audit-ledger rows (one per API attempt) of the measured backends."""
    if metric not in LLM_AUDIT_METRICS:
        raise KpiMissing(f"unknown llm_audit metric {metric!r} (known: {', '.join(LLM_AUDIT_METRICS)})")
    calls = list(calls)
    measured = [c for c in calls if c["backend"] in MEASURED_BACKENDS and not c.get("batch")]
    if not measured:
        others = f"; its {len(calls)} offline/replay/batch calls measure no response time" if calls else ""
        raise KpiMissing(f"no {'/'.join(MEASURED_BACKENDS)} Claude calls in the audit ledger{others}")
    ok = [c for c in measured if c["outcome"] == "ok"]
    if metric == "conversation_success_rate":
        return Reading(100.0 * len(ok) / len(measured), f"{len(ok)} ok of {len(measured)} attempts")
    if not ok:
        raise KpiMissing(f"none of {len(measured)} attempts succeeded: no response time to measure")
    seconds = sorted((c["latency_ms"] or 0) / 1000.0 for c in ok)
    if metric == "p95_latency_s":
        value = seconds[max(0, math.ceil(0.95 * len(seconds)) - 1)]  # nearest rank
        return Reading(value, f"p95 latency of {len(ok)} ok calls")
    return Reading(sum(seconds) / len(seconds), f"average latency of {len(ok)} ok calls")


COVERAGE_ATTRIBUTES = {"": "line-rate", "line_rate_pct": "line-rate", "branch_rate_pct": "branch-rate"}


def coverage_pct(path: Path, metric: str = "line_rate_pct") -> Reading:
    """Line (or branch) rate of a Cobertura XML report, in %."""
    import xml.etree.ElementTree as ET

    attribute = COVERAGE_ATTRIBUTES.get(metric)
    if attribute is None:
        raise KpiMissing(f"unknown coverage metric {metric!r} (known: {', '.join(k for k in COVERAGE_ATTRIBUTES if k)})")
    if not path.is_file():
        raise KpiMissing(f"no coverage report at {path}")
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise KpiMissing(f"{path} is not readable XML: {exc}") from None
    if root.tag != "coverage":
        raise KpiMissing(f"{path} is not a Cobertura report (root element <{root.tag}>, expected <coverage>)")
    raw = root.get(attribute)
    try:
        rate = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise KpiMissing(f"{path}: <coverage> has no numeric {attribute} (got {raw!r})") from None
    if not 0.0 <= rate <= 1.0:
        raise KpiMissing(f"{path}: {attribute}={raw} is outside 0..1")
    counts = f" ({root.get('lines-covered')}/{root.get('lines-valid')} lines)" if root.get("lines-valid") else ""
    return Reading(rate * 100.0, f"{attribute} {raw}{counts} in {path}")


def security_findings(path: Path, metric: str = "critical") -> Reading:
    """Count of HIGH/CRITICAL findings in a bandit or pip-audit JSON report.

    bandit has no CRITICAL level: HIGH counts. pip-audit reports no severity: every known
    vulnerability counts unless the entry carries a severity below HIGH.
    """
    if metric not in ("", "critical"):
        raise KpiMissing(f"unknown security metric {metric!r} (known: critical)")
    if not path.is_file():
        raise KpiMissing(f"no security report at {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise KpiMissing(f"{path} is not readable JSON: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("results"), list):
        severe = [r for r in data["results"] if str(r.get("issue_severity", "")).upper() in SEVERE]
        errors = data.get("errors") or []
        note = f"; bandit could not scan {len(errors)} file(s)" if errors else ""
        return Reading(float(len(severe)), f"bandit: {len(severe)} HIGH of {len(data['results'])} findings{note} in {path}")
    dependencies = data.get("dependencies") if isinstance(data, dict) else data
    if isinstance(dependencies, list) and all(isinstance(d, dict) for d in dependencies):
        vulns = [(d.get("name", "?"), v) for d in dependencies for v in d.get("vulns") or []]
        severe = [(n, v) for n, v in vulns if str(v.get("severity") or "CRITICAL").upper() in SEVERE]
        names = ", ".join(f"{n} {v.get('id', '?')}" for n, v in severe[:5])
        return Reading(float(len(severe)), f"pip-audit: {len(severe)} vulnerabilities counted as critical"
                                           f"{': ' + names if names else ''} in {path}")
    raise KpiMissing(f"{path}: unrecognised security report (expected bandit 'results' or pip-audit 'dependencies')")


def sql_value(conn_id: str, sql: str) -> Reading:
    """First column of the first row of ``sql`` on connection ``conn_id``, in a read-only transaction."""
    if not sql.strip():
        raise KpiMissing("no sql configured")
    try:
        engine = sqlalchemy_engine(get_connection(conn_id), read_only=True, statement_timeout_s=SQL_TIMEOUT_SECONDS)
    except ProbeFailed as exc:
        raise KpiMissing(str(exc)) from None
    try:
        # The DBAPI cursor runs the SQL as written: no bind-parameter parsing of ':' or '%'.
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute(sql)
            row = cursor.fetchone()
            raw.rollback()
        finally:
            raw.close()
    except Exception as exc:
        raise KpiMissing(f"{conn_id}: {describe_error(exc)}") from None
    finally:
        engine.dispose()
    if row is None:
        raise KpiMissing(f"{conn_id}: query returned no rows")
    if row[0] is None:
        raise KpiMissing(f"{conn_id}: query returned NULL")
    try:
        value = float(row[0])
    except (TypeError, ValueError):
        raise KpiMissing(f"{conn_id}: query returned {row[0]!r}, not a number") from None
    return Reading(value, f"query on {conn_id} returned {row[0]}")


# ---------------------------------------------------------------------------- per source kind


def _from_probes(source, ctx: SourceContext) -> Reading:
    probe_ids = list(source.probes)
    if not probe_ids:
        raise KpiMissing("no probes named")
    known = {p.id for p in ctx.config.gates.probes} if getattr(ctx.config, "gates", None) else set(probe_ids)
    unknown = [p for p in probe_ids if p not in known]
    if unknown:
        raise KpiMissing(f"unknown probe(s) {', '.join(unknown)}")
    per_probe = ctx.store.uptime_by_probe(probe_ids, PROBE_WINDOW_HOURS, ctx.now)
    silent = [p for p, (_, n) in per_probe.items() if n == 0]
    if silent:  # a probe never run is not a probe that passed
        raise KpiMissing(f"no samples of probe(s) {', '.join(silent)} in the last {PROBE_WINDOW_HOURS:g} h")
    pct, samples = ctx.store.uptime(probe_ids, PROBE_WINDOW_HOURS, ctx.now)
    parts = ", ".join(f"{p} {v:.1f}% of {n}" for p, (v, n) in per_probe.items())
    return Reading(pct, f"{pct:.2f}% ok of {samples} samples in {PROBE_WINDOW_HOURS:g} h ({parts})")


def _from_llm_audit(source, ctx: SourceContext) -> Reading:
    """Agents' own calls only (of the run, or of the roadmap): a probe's or a review's calls are
    not conversations."""
    from castmatch.runs import roadmap_id_of

    if ctx.run_key:
        calls = ctx.store.llm_calls(run_key=ctx.run_key, purpose="agent")
    else:
        calls = ctx.store.llm_calls(roadmap_id=roadmap_id_of(ctx.config), purpose="agent")
    return llm_audit_metric(calls, source.metric)


def _from_memory_check(source, ctx: SourceContext) -> Reading:
    """Context preservation of the agents' memory: the share of the run's delivered handoff
    artefacts that the memory recalls intact (same summary and content as the long-term store)."""
    from castmatch.memory import MAX_CONTENT_CHARS, agent_memory, artefact_hash

    if source.metric not in ("", "context_preservation_pct"):
        raise KpiMissing(f"unknown memory_check metric {source.metric!r} (known: context_preservation_pct)")
    if not ctx.run_key:
        raise KpiMissing("memory accuracy is measured on a run's handoff artefacts, and no run asked")
    delivered = [d for d in ctx.store.deliverables(run_key=ctx.run_key) if d["status"] == "done"]
    if not delivered:
        raise KpiMissing("no handoff artefacts delivered in this run yet")
    memory = agent_memory(ctx.config, ctx.store)
    if memory is None:
        raise KpiMissing("no agent memory: no Redis configured (connection castmatch_redis or CASTMATCH_REDIS_URL)")
    try:
        recalled = memory.recall(ctx.run_key, [d["work_unit_id"] for d in delivered])
    except Exception as exc:
        raise KpiMissing(f"agent memory (Redis) unreachable: {describe_error(exc)}") from None
    finally:
        memory.close()
    intact = sum(1 for d in delivered if recalled.get(d["work_unit_id"], {}).get("hash")
                 == artefact_hash(d["summary"], d["content"][:MAX_CONTENT_CHARS]))
    return Reading(100.0 * intact / len(delivered),
                   f"{intact} of {len(delivered)} handoff artefacts of this run recalled intact from agent memory")


def _report_path(source, ctx: SourceContext) -> Path:
    if not source.path:
        raise KpiMissing("no report path configured")
    path = Path(source.path)
    return path if path.is_absolute() else ctx.base_dir / path


def _from_coverage(source, ctx: SourceContext) -> Reading:
    return coverage_pct(_report_path(source, ctx), source.metric)


def _from_security(source, ctx: SourceContext) -> Reading:
    return security_findings(_report_path(source, ctx), source.metric)


def _from_sql(source, ctx: SourceContext) -> Reading:
    if not source.conn_id:
        raise KpiMissing("no conn_id configured")
    return sql_value(source.conn_id, source.sql)


def http_latency(url: str, samples: int = 5, timeout: float = 10.0) -> Reading:
    """Mean seconds of ``samples`` requests to ``url`` (a POST with a small JSON body to a
    conversation endpoint, else a GET), each measured end to end; any failed request makes the KPI
    missing rather than flattering it."""
    import time
    import urllib.error
    import urllib.request

    from castmatch.probes.checks import url_without_credentials

    shown = url_without_credentials(url)
    post = "conversation" in url
    seconds = []
    for i in range(samples):
        data = json.dumps({"text": f"latency probe {i}: lead actor, 30-40"}).encode() if post else None
        request = urllib.request.Request(url, data=data, method="POST" if post else "GET",
                                         headers={"Content-Type": "application/json", "User-Agent": "castmatch-kpi"})
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (configured URL)
                response.read()
                status = response.status
        except (urllib.error.URLError, OSError) as exc:
            raise KpiMissing(f"{'POST' if post else 'GET'} {shown}: {describe_error(exc)}") from None
        if not 200 <= status < 300:
            raise KpiMissing(f"{'POST' if post else 'GET'} {shown}: HTTP {status}")
        seconds.append(time.perf_counter() - started)
    return Reading(sum(seconds) / len(seconds), f"mean of {len(seconds)} timed requests to {shown} "
                   f"(max {max(seconds):.3f} s)")


def http_json_value(url: str, field: str, timeout: float = 10.0) -> Reading:
    """The number ``field`` of the JSON object ``url`` answers (a product's metrics endpoint)."""
    import urllib.request

    from castmatch.probes.checks import url_without_credentials

    shown = url_without_credentials(url)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (configured URL)
            data = json.loads(response.read() or b"{}")
    except (OSError, ValueError) as exc:
        raise KpiMissing(f"GET {shown}: {describe_error(exc)}") from None
    if not isinstance(data, dict) or field not in data:
        raise KpiMissing(f"GET {shown}: no field {field!r} in the answer")
    try:
        value = float(data[field])
    except (TypeError, ValueError):
        raise KpiMissing(f"GET {shown}: {field} is {data[field]!r}, not a number") from None
    label = f" [{data['label']}]" if isinstance(data.get("label"), str) else ""
    return Reading(value, f"{field} = {data[field]} from {shown}{label}")


def _from_http_latency(source, ctx: SourceContext) -> Reading:
    return http_latency(source.url, source.samples)


def _from_http_json(source, ctx: SourceContext) -> Reading:
    return http_json_value(source.url, source.metric)


COLLECTORS: dict[str, Callable[[Any, SourceContext], Reading]] = {
    "http_latency": _from_http_latency,
    "http_json": _from_http_json,
    "probe": _from_probes,
    "llm_audit": _from_llm_audit,
    "memory_check": _from_memory_check,
    "coverage_report": _from_coverage,
    "security_report": _from_security,
    "sql": _from_sql,
}


def describe_source(source, base_dir: Path) -> str:
    """``kind:where`` of a KPI source, as stored with every sample."""
    kind = source.kind
    if kind == "probe":
        return f"probe:{','.join(source.probes)} ({PROBE_WINDOW_HOURS:g} h)"
    if kind == "llm_audit":
        return f"llm_audit:{source.metric} (cm_llm_calls)"
    if kind == "memory_check":
        return "memory_check:agent memory (Redis) vs deliverables (store)"
    if kind in ("coverage_report", "security_report"):
        path = Path(source.path)
        return f"{kind}:{path if path.is_absolute() else base_dir / path}"
    if kind in ("http_latency", "http_json"):
        from castmatch.probes.checks import url_without_credentials

        return f"{kind}:{url_without_credentials(source.url)}" + (f" ({source.metric})" if source.metric else "")
    return f"sql:{source.conn_id}"


def demo_mode() -> bool:
    """Whether KPIs with a ``demo_source`` measure it instead (``CASTMATCH_DEMO=1``: ``make run``)."""
    return os.environ.get("CASTMATCH_DEMO", "").strip().lower() in ("1", "true", "yes")


def source_of(kpi, config, base_dir: Path) -> tuple[Any, Path, str]:
    """(the source to measure now, the folder its relative paths start from, a label prefix):
    the demo source in demo mode (paths from the roadmap folder, labelled ``demo:``), else the
    KPI's own."""
    if kpi.demo_source is not None and demo_mode():
        return kpi.demo_source, Path(config.directory), "demo:"
    return kpi.source, base_dir, ""


def collect_kpi(kpi, config, store, *, base_dir: str | Path, run_key: str | None = None, run_id: str | None = None,
                now=None) -> dict:
    """Measure ``kpi`` (a config ``Kpi``) now, for run ``run_key`` of its roadmap, and store the sample.

    ``base_dir`` anchors relative report paths (coverage, security). ``now`` moves the probe
    uptime window (tests, the compressed clock). Returns the stored sample: {kpi_id, ts, value,
    status ('ok' | 'missing'), source, detail, run_id, id}. Never raises for a source that has no
    value: that is a ``missing`` sample with the reason in ``detail``.
    """
    spec, base, label = source_of(kpi, config, Path(base_dir))
    source = label + describe_source(spec, base)
    try:
        reading = COLLECTORS[spec.kind](spec, SourceContext(config, store, base, now, run_key))
        value, status, detail = reading.value, "ok", reading.detail
    except KpiMissing as exc:
        value, status, detail = None, "missing", str(exc)
    except Exception as exc:  # a broken source must fail the KPI closed, not crash the check
        value, status, detail = None, "missing", f"collector error: {describe_error(exc)}"
    if value is not None and not math.isfinite(value):
        value, status, detail = None, "missing", f"not a finite number ({value}): {detail}"
    if label:
        detail = f"DEMO SOURCE (make run; not the product): {detail}"
    log.log(logging.INFO if status == "ok" else logging.WARNING, "KPI %s = %s (%s) from %s: %s",
            kpi.id, "missing" if value is None else f"{value:g} {kpi.unit}", status, source, detail)
    from castmatch.runs import roadmap_id_of

    return store.record_kpi_sample(kpi_id=kpi.id, value=value, status=status, source=source, detail=detail,
                                   run_key=run_key, roadmap_id=roadmap_id_of(config), run_id=run_id)


def collect_kpis(kpis: Iterable, config, store, *, base_dir: str | Path, run_key: str | None = None,
                 run_id: str | None = None, now=None) -> dict[str, dict]:
    """``collect_kpi`` for each KPI: {kpi_id: sample}."""
    return {k.id: collect_kpi(k, config, store, base_dir=base_dir, run_key=run_key, run_id=run_id, now=now)
            for k in kpis}


def sample_values(samples: dict[str, dict]) -> dict[str, float | None]:
    """{kpi_id: value or None}: the input of ``validate_kpis``."""
    return {kpi_id: s["value"] if s["status"] == "ok" else None for kpi_id, s in samples.items()}
