"""Go/no-go at the seed's decision points (Day 7, Day 14, each phase end).

GO when every gate the decision point names has PASSED (or was overridden) and the KPIs due by
then pass their Great Expectations suite; otherwise NO_GO, which takes the seed's path: reassess
and extend the timeline (``no_go_extend_weeks``). The decision is stored and the roadmap driver
honours it before starting the next week.
"""

from __future__ import annotations

import os
from pathlib import Path

GOOD = {"PASSED", "OVERRIDDEN"}


def kpis_due(config, point) -> list:
    """The KPIs checked at ``point``: those due by its week, and those its gates name."""
    named = {k for g in config.all_gates if g.id in point.gates for c in g.criteria for k in c.kpis}
    return [k for k in config.kpis.kpis if (k.by_week is not None and k.by_week <= point.week) or k.id in named]


def reports_dir() -> Path:
    """Where relative report paths (coverage, security) are found: ``$CASTMATCH_REPORTS_DIR``."""
    return Path(os.environ.get("CASTMATCH_REPORTS_DIR", "."))


def decide(config, point, store, *, run_key: str, run_id: str | None = None) -> dict:
    from castmatch.kpis import collect_kpis, sample_values, validate_kpis

    latest = {}
    for row in store.gate_results():
        if row["run_key"] == run_key:
            latest[row["gate_id"]] = row["status"]
    for row in store.gate_results():  # gates of earlier weeks ran under their own run key
        latest.setdefault(row["gate_id"], row["status"])
    gates = {g: latest.get(g, "PENDING") for g in point.gates}
    kpis = kpis_due(config, point)
    samples = collect_kpis(kpis, config, store, base_dir=reports_dir(), run_id=run_id)
    outcome = validate_kpis(kpis, sample_values(samples), run_key=run_key, decision_point=point.id, store=store)
    bad_gates = [f"{g}={s}" for g, s in gates.items() if s not in GOOD]
    failed_kpis = [f"{r['kpi_id']} ({r['observed'] if r['observed'] is not None else 'missing'})" for r in outcome.failed]
    decision = "GO" if not bad_gates and outcome.success else "NO_GO"
    reason = (f"{point.go}" if decision == "GO" else
              f"{point.no_go}: " + "; ".join(filter(None, [
                  "gates not passed: " + ", ".join(bad_gates) if bad_gates else "",
                  "KPIs failed: " + ", ".join(failed_kpis) if failed_kpis else ""])))
    store.save_decision(run_key=run_key, decision_point=point.id, week=point.week, decision=decision,
                        decided_by="castmatch", reason=reason, gates=gates, kpis_ok=outcome.success)
    return {"decision": decision, "reason": reason, "gates": gates, "kpis": outcome.results,
            "kpis_ok": outcome.success}
