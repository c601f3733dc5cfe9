"""The Orchestrator Control Center (seed: REAL-TIME AGENT STATUS DASHBOARD, ORCHESTRATOR CONTROL
CENTER): every panel of one roadmap run as one JSON document, built from the same report
functions as the ``castmatch`` commands (so the page and the CLI never disagree).

Each panel reads its rows once (no query per unit or agent): a page load or refresh runs a
bounded number of store queries whatever the roadmap's size. ``plugins/castmatch_control_center.py``
serves it inside the Airflow UI.
"""

from __future__ import annotations

import datetime as dt
import logging

log = logging.getLogger(__name__)
DEFAULT_REFRESH_SECONDS = 15
TREND_POINTS = 20
PASSED = ("PASSED", "OVERRIDDEN")


def resolve_dag_run(store, roadmap_id: str, dag_id: str | None, run_id: str | None) -> str | None:
    """The run key an Airflow DAG run (the roadmap driver, a week, an incident run) works for."""
    if not (dag_id and run_id):
        return None
    for run in store.runs(roadmap_id):
        if (run["dag_id"], run["run_id"]) == (dag_id, run_id):
            return run["run_key"]
    return store.run_key_of_dag_run(dag_id=dag_id, run_id=run_id)


def _clock_panel(config, store, run: dict | None, now: dt.datetime) -> dict:
    from castmatch.runs import run_clock

    if run is None:
        return {"mode": None, "day": None, "label": "no run yet"}
    clock = run_clock(config, store, run["run_key"], run["clock"])
    if run["clock"] == "compressed" and run.get("origin") is None:
        return {"mode": run["clock"], "day": None, "label": "compressed clock, not started"}
    elapsed = (now - clock.day_start(1)).total_seconds() / clock.span(1).total_seconds()
    day = max(1, int(elapsed) + 1)
    last = len(config.week_numbers) * clock.days_per_week
    where = f"roadmap day {day} (week {clock.week_of(day)})" if day <= last else \
        f"roadmap day {day}, past its last day {last}"
    return {"mode": run["clock"], "day": day, "week": clock.week_of(day), "shift_days": clock.shift_days,
            "label": f"{run['clock']} clock, {where}"
                     + (f", timeline extended {clock.shift_days:g} day(s)" if clock.shift_days else "")}


def _weeks_panel(config, matrix: dict, latest: dict[str, str]) -> dict:
    started = {config.unit_week[u] for u in latest if u in config.unit_week}
    weeks = []
    for row in matrix["weeks"]:
        state = "done" if row["done"] == row["total"] else ("running" if row["week"] in started else "not started")
        weeks.append({**row, "state": state})
    running = [w["week"] for w in weeks if w["state"] == "running"]
    phases = []
    for phase in config.roadmap.phases if config.roadmap else []:
        mine = [w for w in weeks if w["week"] in phase.weeks]
        phases.append({"id": phase.id, "name": phase.name, "weeks": list(phase.weeks),
                       "done": sum(w["done"] for w in mine), "total": sum(w["total"] for w in mine)})
    return {"weeks": weeks, "phases": phases, "running": running[0] if running else None}


def _units_by_agent(config, done: set[str], latest: dict[str, str]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {a: [] for a in config.agents}
    for unit in config.work_units.values():
        state = "done" if unit.id in done else latest.get(unit.id, "not started")
        for agent_id in unit.agents[:1]:
            out.setdefault(agent_id, []).append({"id": unit.id, "title": unit.title, "week": config.unit_week[unit.id],
                                                 "days": unit.day_label, "state": state})
    return out


def _blocked_by_gates(config, gates: list[dict], done: set[str]) -> list[dict]:
    """Units a failed gate holds back, with the gate and why (what the grid's *skipped* hides)."""
    out = []
    for gate in gates:
        if gate["status"] in PASSED or not gate["blocked_units"]:
            continue
        reasons = [f"{c['text']}: {c['reason']}" for c in gate["criteria"] if c.get("ok") is False]
        for unit_id in gate["blocked_units"]:
            if unit_id in done:
                continue
            unit = config.work_units.get(unit_id)
            out.append({"unit": unit_id, "title": unit.title if unit else unit_id,
                        "agent": unit.agents[0] if unit else None, "gate": gate["id"], "gate_name": gate["name"],
                        "gate_status": gate["status"], "reason": "; ".join(reasons) or gate["reason"] or gate["status"],
                        "enforcers": gate["enforcers"]})
    return out


def _kpi_trends(store, run_key: str | None) -> dict[str, list[float]]:
    trends: dict[str, list[float]] = {}
    for row in store.kpi_samples(run_key=run_key) if run_key else []:
        if row["value"] is not None:
            trends.setdefault(row["kpi_id"], []).append(float(row["value"]))
    return {k: v[-TREND_POINTS:] for k, v in trends.items()}


def _usage_panel(config, store, run_key: str | None) -> dict:
    from castmatch.usage import usage_report

    report = usage_report(store.llm_calls(run_key=run_key) if run_key else [])
    budgets = config.llm.budgets if config.llm else None
    limits = {}
    if budgets is not None:
        limits = {"roadmap": budgets.roadmap.model_dump(), "per_week": budgets.per_week.model_dump(),
                  "per_agent": budgets.per_agent.model_dump(),
                  "agents": {a: b.model_dump() for a, b in budgets.agents.items()},
                  "weeks": {str(w): b.model_dump() for w, b in budgets.weeks.items()}}
    return {**report, "budgets": limits}


def _incidents_panel(config, store, run_key: str | None, now: dt.datetime) -> list[dict]:
    from castmatch.incidents import incident_clock, incidents_report, levels

    ladder = {n: after for n, _, after in levels(config)}
    out, clocks = [], {}
    for row in incidents_report(config, store, run_key, open_only=True):
        after = ladder.get(row["level"] + 1)
        next_at = None
        if after is not None and run_key:
            if row["run_key"] not in clocks:  # one read per run, not per incident
                clocks[row["run_key"]] = incident_clock(config, store, row["run_key"])
            opened = row["opened_at"] if row["opened_at"].tzinfo else row["opened_at"].replace(tzinfo=dt.UTC)
            next_at = opened + clocks[row["run_key"]].span(after / (24 * 60))
        out.append({**{k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in row.items()
                       if k != "actions"},
                    "actions": len(row["actions"]), "last_action": (row["actions"][-1]["action"] if row["actions"]
                                                                    else None),
                    "next_level_at": next_at.isoformat() if next_at else None,
                    "next_level_in_seconds": max(0, int((next_at - now).total_seconds())) if next_at else None})
    return out


def _pending_requests(config) -> dict:
    """People's pending answers (Airflow's HITL rows); the link opens Required Actions on the task."""
    try:
        from castmatch.human import pending_requests

        rows = pending_requests(config.roadmap.dag_id_prefix if config.roadmap else None)
    except Exception as exc:  # the Airflow database is not reachable from here
        from castmatch.describe import describe

        return {"available": False, "detail": describe(exc), "requests": []}
    from urllib.parse import quote

    return {"available": True, "requests": [{
        "dag_id": r.dag_id, "run_id": r.run_id, "task_id": r.task_id, "subject": r.subject,
        "options": r.options, "defaults": r.defaults, "created_at": r.created_at, "deadline": r.deadline,
        "href": f"dags/{quote(r.dag_id)}/runs/{quote(r.run_id, safe='')}/tasks/{quote(r.task_id)}/required_actions",
    } for r in rows]}


def _checkpoint_panel(config, store) -> dict | None:
    """The newest daily standup of the roadmap (the automated checkpoint that exists so far)."""
    from castmatch.runs import roadmap_id_of

    rows = store.standups(roadmap_id=roadmap_id_of(config))
    if not rows:
        return None
    newest = max(r["standup_date"] for r in rows)
    today = [r for r in rows if r["standup_date"] == newest]
    return {"kind": "daily standup", "date": newest, "agents": len(today),
            "blockers": sum(1 for r in today if (r.get("report") or {}).get("blockers_identified"))}


def refresh_seconds(config) -> int:
    """``operations.yaml`` ``dashboard_refresh_seconds`` (the seed's live-updated matrix)."""
    return config.operations.dashboard_refresh_seconds if config.operations else DEFAULT_REFRESH_SECONDS


def snapshot(config, store, run_key: str | None = None, *, now: dt.datetime | None = None,
             with_requests: bool = True) -> dict:
    """Every panel of run ``run_key`` (default: the newest roadmap run)."""
    from castmatch.alerts import alerts_report
    from castmatch.chains import chains_report
    from castmatch.gates import gates_report
    from castmatch.runs import resolve_run, roadmap_id_of
    from castmatch.status import status_matrix, unit_states

    now = now or dt.datetime.now(dt.UTC)
    roadmap_id = roadmap_id_of(config)
    run = resolve_run(store, roadmap_id, run_key)
    if run_key and run is None:
        raise LookupError(f"no run {run_key!r} of roadmap {roadmap_id!r}")
    key = run["run_key"] if run else None
    matrix = status_matrix(config, store, key)
    done, latest = unit_states(store, key)
    gates = gates_report(config, store, key)
    trends = _kpi_trends(store, key)
    return {
        "roadmap": {"id": roadmap_id, "name": config.roadmap.name if config.roadmap else roadmap_id,
                    "driver_dag": f"{config.roadmap.dag_id_prefix}_roadmap" if config.roadmap else None},
        "run": ({"run_key": key, "kind": run["kind"], "dag_id": run["dag_id"], "run_id": run["run_id"],
                 "clock": run["clock"], "started_at": run["started_at"].isoformat() if run["started_at"] else None}
                if run else None),
        "runs": [{"run_key": r["run_key"], "kind": r["kind"], "run_id": r["run_id"]} for r in store.runs(roadmap_id)[:20]],
        "generated_at": now.isoformat(),
        "refresh_seconds": refresh_seconds(config),
        "clock": _clock_panel(config, store, run, now),
        "matrix": {**matrix, "units": _units_by_agent(config, done, latest)},
        "progress": _weeks_panel(config, matrix, latest),
        "gates": gates["gates"],
        "decisions": gates["decision_points"],
        "blocked": _blocked_by_gates(config, gates["gates"], done),
        "chains": chains_report(config, store, key),
        "kpis": [{**k, "trend": trends.get(k["id"], [])} for k in gates["kpis"]],
        "usage": _usage_panel(config, store, key),
        "requests": _pending_requests(config) if with_requests else {"available": False, "requests": []},
        "incidents": _incidents_panel(config, store, key, now),
        "alerts": [{k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in a.items() if k != "text"}
                   for a in alerts_report(config, store, key)[-10:]],
        "checkpoint": _checkpoint_panel(config, store),
    }
