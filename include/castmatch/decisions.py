"""Go/no-go at the seed's decision points (Day 7, Day 14, each phase end).

GO when every gate the decision point names has PASSED (or was overridden) in this run and the
KPIs due by then pass their Great Expectations suite; otherwise NO_GO, which takes the seed's
path: reassess and extend the timeline. Only the run's own gate results count: a run never
inherits another run's PASSes. The decision is stored; the roadmap driver honours it, extends
the timeline on NO-GO and evaluates the point again at the end of each extension
(``reevaluate``).
"""

from __future__ import annotations

import os
from pathlib import Path

GOOD = {"PASSED", "OVERRIDDEN"}


def reports_dir() -> Path:
    """Where relative report paths (coverage, security) are found: ``$CASTMATCH_REPORTS_DIR``."""
    return Path(os.environ.get("CASTMATCH_REPORTS_DIR", "."))


def decide(config, point, store, *, run_key: str, run_id: str | None = None) -> dict:
    """Weigh the run's gates and validate the KPIs due at ``point``; store and return the decision."""
    from castmatch.kpis import collect_kpis, sample_values, validate_kpis
    from castmatch.runs import orchestrator_name, roadmap_of
    from castmatch.timing import mark

    latest = {row["gate_id"]: row["status"] for row in store.gate_results(run_key)}
    gates = {g: latest.get(g, "PENDING") for g in point.gates}
    kpis = config.kpis_due(point)
    samples = collect_kpis(kpis, config, store, base_dir=reports_dir(), run_key=run_key, run_id=run_id)
    mark("kpis_collected")
    outcome = validate_kpis(kpis, sample_values(samples), run_key=run_key, decision_point=point.id, store=store)
    mark("great_expectations")
    bad_gates = [f"{g}={s}" for g, s in gates.items() if s not in GOOD]
    failed_kpis = [f"{r['kpi_id']} ({r['observed'] if r['observed'] is not None else 'missing'})" for r in outcome.failed]
    problems = ["gates not passed: " + ", ".join(bad_gates) if bad_gates else "",
                "KPIs failed: " + ", ".join(failed_kpis) if failed_kpis else "",
                "no KPI validated (an empty suite checks nothing)" if not outcome.results else ""]
    decision = "GO" if not bad_gates and outcome.success else "NO_GO"
    reason = point.go if decision == "GO" else f"{point.no_go}: " + "; ".join(filter(None, problems))
    store.save_decision(run_key=run_key, decision_point=point.id, week=point.week, decision=decision,
                        decided_by=orchestrator_name(roadmap_of(run_key)), reason=reason, gates=gates,
                        kpis_ok=outcome.success)
    mark("decision_saved")
    return {"decision": decision, "reason": reason, "gates": gates, "kpis": outcome.results,
            "kpis_ok": outcome.success}


def reevaluate(config, point, store, *, run_key: str, run_id: str | None = None, clock=None) -> dict:
    """At the end of a timeline extension: judge the point's gates again as they stand now (their
    deadlines have passed; a gate a person overrode stays overridden), then decide again with the
    probe history and KPIs of now."""
    from castmatch.gates import judge_gate

    stored = {row["gate_id"]: row for row in store.gate_results(run_key)}
    for gate in config.all_gates:
        if gate.id in point.gates and stored.get(gate.id, {}).get("status") != "OVERRIDDEN":
            judge_gate(config, gate, store, run_key=run_key, dag_id=None, run_id=run_id, clock=clock,
                       deadline_passed=True)
    return decide(config, point, store, run_key=run_key, run_id=run_id)


def extension_days(config, point) -> float:
    """Length of one NO-GO extension of ``point``, in roadmap days."""
    if point.extension_days is not None:
        return point.extension_days
    return float(point.no_go_extend_weeks * (config.roadmap.days_per_week if config.roadmap else 7))
