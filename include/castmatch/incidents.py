"""Incidents (seed: AUTO-RESOLUTION PROTOCOLS, ESCALATION PROCEDURES): one per problem of a run,
kept in the store with every action taken on it, and moved up the ladder on the roadmap clock.

Opened where the problem shows: a unit that fails for good, ends blocked, needs review or runs out
of budget (``AgentOperator``); a vetoed gate (``judge_gate``); a NO-GO (``NoGoOperator``); a failing
probe (``SampleProbesOperator``). Opening is idempotent: the same (run, kind, subject) never opens
two incidents.

The sweep (``<prefix>_incidents``, every ``update_frequency_minutes``) re-checks each open incident's
cause and resolves it when the check that opened it passes; otherwise it escalates it one level once
the level's time (``operations.yaml`` ``escalation[].after_minutes``, on the run's clock) has
passed. The timer is the stored ``level_since``, not a process: a restart delays an escalation by at
most one sweep and never loses it.
"""

from __future__ import annotations

import datetime as dt
import logging

log = logging.getLogger(__name__)

UNIT_KINDS = {"failed": "unit_failed", "blocked": "unit_blocked", "needs_review": "needs_review",
              "budget_exceeded": "budget_exceeded"}
KINDS = (*UNIT_KINDS.values(), "gate_vetoed", "no_go", "probe_failed", "chain_blocked", "budget_near_limit")
DEFAULT_LEVELS = ((1, "Automated Resolution", 0), (2, "Agent Collaboration", 30), (3, "Human Oversight", 120))


def operations_key(roadmap_id: str) -> str:
    """Where problems outside any roadmap run (a failing probe) are kept."""
    return f"{roadmap_id}:operations"


def levels(config) -> list[tuple[int, str, int]]:
    """(level, name, after_minutes) of the ladder: ``operations.yaml`` ``escalation``, else the seed's."""
    configured = config.operations.escalation if config.operations else []
    return [(e.level, e.name, e.after_minutes) for e in configured] or list(DEFAULT_LEVELS)


def open_incident(config, store, *, run_key: str, kind: str, subject: str, agents, detail: str,
                  reopen: bool = True) -> dict:
    """Open (once) the incident of ``kind`` about ``subject`` in run ``run_key``; logged."""
    from castmatch.runs import orchestrator_name, roadmap_of

    row, opened = store.open_incident(run_key=run_key, kind=kind, subject=subject, agents=list(agents),
                                      detail=detail, actor=orchestrator_name(roadmap_of(run_key)), reopen=reopen)
    if opened:
        log.warning("incident #%d opened (level 1, %s): %s %s: %s", row["id"], levels(config)[0][1], kind, subject,
                    detail[:300])
        from castmatch.alerts import on_incident_opened
        from castmatch.resolution import run_level1

        on_incident_opened(config, store, row)  # e.g. Quality Gate Failures: told once, before level 1 acts
        resolved = run_level1(config, store, row)  # level 1 acts at once
        if resolved:
            log.warning("incident #%d resolved at level 1: %s", row["id"], resolved)
            row = {**row, "state": "resolved"}
    return {**row, "opened_now": opened}


def report_blocker(config, store, *, run_key: str, unit_id: str, state: str, source: str) -> dict:
    """A blocker a checkpoint or a standup names: it opens its unit's incident, or joins the one
    already open (the join is recorded on it, so people see who else reported it)."""
    from castmatch.runs import orchestrator_name, roadmap_of

    unit = config.work_units[unit_id]
    row = open_incident(config, store, run_key=run_key, kind=UNIT_KINDS.get(state, "unit_blocked"), subject=unit_id,
                        agents=unit.agents, detail=f"{source}: {unit_id} is {state}")
    detail = f"{source} reports {unit_id} ({state})"
    if not row["opened_now"]:
        [current] = [i for i in store.incidents(roadmap_id=roadmap_of(run_key), run_key=run_key, with_actions=True)
                     if i["id"] == row["id"]]
        if not any(a["action"] == "joined" and a["detail"] == detail for a in current["actions"]):  # a rerun joins once
            store.incident_action(row["id"], level=row["level"], action="joined", outcome="ok", detail=detail,
                                  actor=orchestrator_name(roadmap_of(run_key)))
    return {"incident": row["id"], "outcome": "opened" if row["opened_now"] else "joined"}


# ---------------------------------------------------------------------------- the causes' checks


def cause_cleared(config, store, incident: dict, *, now: dt.datetime) -> str | None:
    """Why the incident's cause is gone (the check that opened it now passes), or None."""
    kind, subject, run_key = incident["kind"], incident["subject"], incident["run_key"]
    if kind in UNIT_KINDS.values():
        delivered = store.upstream_deliverables([subject], run_key=run_key)
        return f"{subject} delivered" if subject in delivered else None
    if kind == "gate_vetoed":
        newest = [r for r in store.gate_results(run_key) if r["gate_id"] == subject]
        status = newest[-1]["status"] if newest else None
        return f"gate {subject} {status}" if status in ("PASSED", "OVERRIDDEN") else None
    if kind == "no_go":
        newest = [r for r in store.decisions(run_key) if r["decision_point"] == subject]
        return f"{subject} decided GO" if newest and newest[-1]["decision"] == "GO" else None
    if kind == "probe_failed":
        samples = store.probe_samples(subject, since=now - dt.timedelta(days=1))
        return f"probe {subject} ok again" if samples and samples[-1]["status"] == "ok" else None
    if kind == "chain_blocked":
        from castmatch.chains import chains_report

        status = next((c["status"] for c in chains_report(config, store, run_key) if c["id"] == subject), None)
        return f"chain {subject} {status}" if status in (None, "DONE") else None
    if kind == "budget_near_limit":
        share = dict(budget_shares(config, store, run_key)).get(subject)
        warn_at = config.llm.budgets.warn_at if config.llm else 0.8
        return f"{subject} budget at {share:.0%}" if share is not None and share < warn_at else None
    return None


# ---------------------------------------------------------------------------- problems seen by watching a run


def chain_deadline(clock, chain):
    """When a chain's timeline ends on the run's clock (the end of its day, else of its week)."""
    timeline = chain.timeline
    if timeline.week is None:
        return None
    day = (timeline.week - 1) * clock.days_per_week + (timeline.day or clock.days_per_week)
    return clock.day_start(day + 1)


def budget_shares(config, store, run_key: str) -> list[tuple[str, float]]:
    """(scope, share of its limit spent) of the run's LLM budgets that have a limit."""
    if not config.llm:
        return []
    b = config.llm.budgets
    scopes = [("roadmap", b.roadmap, {})]
    scopes += [(f"week {w}", b.weeks.get(w, b.per_week), {"week": w}) for w in config.week_numbers]
    scopes += [(f"agent {a}", b.agents.get(a, b.per_agent), {"agent_id": a}) for a in config.agents]
    out = []
    for name, limit, where in scopes:
        if limit.usd is None and limit.tokens is None:
            continue
        usd, tokens = store.llm_spend(run_key=run_key, **where)
        share = max(usd / limit.usd if limit.usd else 0.0, tokens / limit.tokens if limit.tokens else 0.0)
        out.append((name, share))
    return out


def watch_run(config, store, run_key: str, *, now: dt.datetime) -> None:
    """Open the incidents only a watch shows: a chain BLOCKED past its timeline, a budget nearing
    its limit (``llm.yaml`` ``budgets.warn_at``). Idempotent: an open incident is left as it is."""
    from castmatch.chains import chains_report

    clock = incident_clock(config, store, run_key)
    chains = {c.id: c for c in config.operations.chains} if config.operations else {}
    for report in chains_report(config, store, run_key):
        chain = chains[report["id"]]
        deadline = chain_deadline(clock, chain)
        if report["status"] != "BLOCKED" or deadline is None or now < deadline:
            continue
        stuck = [u["id"] + f" ({u['state']})" for u in report["trigger_units"] if not u["done"]]
        leads = [config.work_units[u].agents[0] for u in [*chain.trigger.all_of, *chain.trigger.any_of]
                 if u in config.work_units]
        open_incident(config, store, run_key=run_key, kind="chain_blocked", subject=chain.id,
                            agents=list(dict.fromkeys([*leads, *chain.action.notify])),
                            detail=f"{chain.name} is BLOCKED past its timeline ({chain.timeline.description}, "
                                   f"ended {deadline.isoformat()}): {', '.join(stuck) or 'its trigger'}", reopen=False)
    warn_at = config.llm.budgets.warn_at if config.llm else 0.8
    for scope, share in budget_shares(config, store, run_key):
        if share >= warn_at:
            agents = [scope.split(" ", 1)[1]] if scope.startswith("agent ") else []
            open_incident(config, store, run_key=run_key, kind="budget_near_limit", subject=scope, agents=agents,
                          detail=f"{scope} budget {share:.0%} spent (warn at {warn_at:.0%}): calls stop at 100%",
                          reopen=False)


# ---------------------------------------------------------------------------- the sweep


def incident_clock(config, store, run_key: str):
    """The clock an incident of run ``run_key`` escalates on: the run's (an operations incident, or
    a run not recorded: the real clock)."""
    from castmatch.clock import RoadmapClock
    from castmatch.runs import run_clock

    run = store.run(run_key)
    if run is None:
        return RoadmapClock.from_roadmap(config.roadmap, mode="real")
    return run_clock(config, store, run_key, run["clock"])


def due_level(config, clock, incident: dict, now: dt.datetime) -> int | None:
    """The next level when its time has come (``after_minutes`` after opening, in roadmap time),
    else None. One level per sweep: each level gets at least one sweep to act."""
    ladder = levels(config)
    following = [(n, name, after) for n, name, after in ladder if n == incident["level"] + 1]
    if not following:
        return None
    _, _, after = following[0]
    opened = incident["opened_at"] if incident["opened_at"].tzinfo else incident["opened_at"].replace(tzinfo=dt.UTC)
    return following[0][0] if now >= opened + clock.span(after / (24 * 60)) else None


def _rerun(config, store, incident: dict, unit: str, actor: str, level: int) -> dict:
    """The trigger of ``<prefix>_incident_work`` for ``unit`` in the incident's run (recorded; one
    run id per incident and unit, so a retried trigger never runs it twice)."""
    from castmatch.factory import incident_work_dag_id

    earlier = sum(1 for a in incident.get("actions", []) if a["action"] == "rerun_requested")
    store.incident_action(incident["id"], level=level, action="rerun_requested", outcome="ok", detail=unit, actor=actor)
    run_id = f"incident_{incident['id']}__{unit}" + (f"__{earlier + 1}" if earlier else "")
    return {"trigger_dag_id": incident_work_dag_id(config), "trigger_run_id": run_id,
            "conf": {"run_key": incident["run_key"], "work_unit": unit,
                     "clock": _run_clock_mode(store, incident["run_key"])}}


def _run_clock_mode(store, run_key: str) -> str:
    run = store.run(run_key)
    return run["clock"] if run else "real"


def _pending_rerun(incident: dict) -> str | None:
    """A unit to run again (level 1 retry, level 3 reassignment) that was not triggered yet."""
    pending = None
    for action in incident.get("actions", []):
        if action["action"] == "rerun_pending":
            pending = action["detail"]
        elif action["action"] == "rerun_requested" and action["detail"] == pending:
            pending = None
    return pending


def sweep(config, store, *, now: dt.datetime | None = None) -> dict:
    """Resolve every open incident of the roadmap whose cause is gone; escalate the others whose
    time has come (level 2 asks the agents, level 3 the people). Returns the counts and the DAG
    runs to trigger (``triggers``: units to run again, incident reviews), each logged."""
    from castmatch.runs import orchestrator_name, roadmap_id_of

    now = now or dt.datetime.now(dt.UTC)
    roadmap_id = roadmap_id_of(config)
    actor = orchestrator_name(roadmap_id)
    names = {n: name for n, name, _ in levels(config)}
    counts = {"open": 0, "resolved": 0, "escalated": 0, "triggers": []}
    clocks: dict[str, object] = {}  # one read per run, not per incident
    newest = store.runs(roadmap_id)
    if newest:  # the run in progress: problems no task reports (late chains, budgets running out)
        watch_run(config, store, newest[0]["run_key"], now=now)
    for incident in store.incidents(roadmap_id=roadmap_id, open_only=True, with_actions=True):
        counts["open"] += 1
        cleared = cause_cleared(config, store, incident, now=now)
        if cleared:
            if store.resolve_incident(incident["id"], resolution=f"the cause is gone: {cleared}", actor=actor):
                counts["resolved"] += 1
                log.info("incident #%d resolved: %s", incident["id"], cleared)
            continue
        pending = _pending_rerun(incident)
        if pending:  # the level's remedy runs first: the ladder waits for it one sweep
            counts["triggers"].append(_rerun(config, store, incident, pending, actor, incident["level"]))
            continue
        if incident["run_key"] not in clocks:
            clocks[incident["run_key"]] = incident_clock(config, store, incident["run_key"])
        level = due_level(config, clocks[incident["run_key"]], incident, now)
        if level is None:
            log.info("incident #%d (%s %s) stays at level %d (%s)", incident["id"], incident["kind"],
                     incident["subject"], incident["level"], names.get(incident["level"], "?"))
            continue
        detail = (f"unresolved after level {incident['level']} ({names.get(incident['level'], '?')}): "
                  f"{incident['detail'][:300]}")
        if not store.escalate_incident(incident["id"], from_level=incident["level"], to_level=level, detail=detail,
                                       actor=actor):
            continue  # another sweep did it
        counts["escalated"] += 1
        log.warning("incident #%d escalated to level %d (%s): %s %s", incident["id"], level, names.get(level, "?"),
                    incident["kind"], incident["subject"])
        if level == 2:  # the agents around it are asked now; a valid proposal is applied
            from castmatch.collaboration import run_level2

            outcome = run_level2(config, store, {**incident, "level": 2})
            if outcome["rerun"]:
                counts["triggers"].append(_rerun(config, store, incident, outcome["rerun"], actor, 2))
        elif level == max(names):  # the top of the ladder: people are asked
            from castmatch.factory import incident_review_dag_id

            store.incident_action(incident["id"], level=level, action="people_asked", outcome="ok",
                                  detail=f"Required Actions: {incident_review_dag_id(config)}", actor=actor)
            counts["triggers"].append({"trigger_dag_id": incident_review_dag_id(config),
                                       "trigger_run_id": f"incident_{incident['id']}__review",
                                       "conf": {"run_key": incident["run_key"], "incident": incident["id"],
                                                "clock": _run_clock_mode(store, incident["run_key"])}})
    return counts


# ---------------------------------------------------------------------------- dependency unblocked


def _depends_on(unit, override: dict | None) -> list[str]:
    return list(override["depends_on"]) if override and override["depends_on"] is not None else list(unit.depends_on)


def effective_depends_on(store, run_key: str, unit) -> list[str]:
    """The unit's dependencies in run ``run_key`` (as level 2 or 3 renegotiated them, else configured)."""
    return _depends_on(unit, store.unit_override(run_key=run_key, work_unit_id=unit.id))


def run_depends_on(config, store, run_key: str) -> dict[str, list[str]]:
    """Every unit's dependencies in run ``run_key`` (``effective_depends_on`` of all of them, in one read)."""
    overrides = store.unit_overrides(run_key)
    return {u.id: _depends_on(u, overrides.get(u.id)) for u in config.work_units.values()}


def run_leads(config, store, run_key: str) -> dict[str, str]:
    """Every unit's lead agent in run ``run_key`` (as an incident or a person reassigned it, else configured)."""
    overrides = store.unit_overrides(run_key)
    return {u.id: (overrides.get(u.id) or {}).get("lead_agent") or u.agents[0] for u in config.work_units.values()}


def waiting_units(config, store, *, run_key: str, blocker: str, finished_weeks_only: bool = False) -> list[str]:
    """Units of run ``run_key`` that waited on ``blocker`` and can start now it is delivered: they
    depend on it, every dependency is delivered, their week has run (its DAG skipped them as
    upstream_failed) and they have not started. ``finished_weeks_only``: only weeks whose run has
    ended (a checkpoint or a standup, which may look while a week still runs its units itself)."""
    runs = store.unit_runs(run_key)
    started = {r["work_unit_id"] for r in runs}
    weeks_run = {config.unit_week[r["work_unit_id"]] for r in runs if r["work_unit_id"] in config.unit_week}
    if finished_weeks_only:
        weeks_run &= set(store.week_outcomes(run_key))
    deps = run_depends_on(config, store, run_key)
    candidates = [u.id for u in config.work_units.values()
                  if u.id not in started and config.unit_week[u.id] in weeks_run and blocker in deps[u.id]]
    if not candidates:
        return []
    delivered = set(store.upstream_deliverables(sorted({d for u in candidates for d in deps[u]}), run_key=run_key))
    return [u for u in candidates if set(deps[u]) <= delivered]


def unblocked_triggers(config, store, *, run_key: str, blocker: str, clock: str, dag_id: str | None = None,
                       run_id: str | None = None, finished_weeks_only: bool = False) -> list[dict]:
    """Dependency Unblocked: the waiting units start (one ``<prefix>_incident_work`` run each, with a
    run id fixed by run and unit, so a retry never starts one twice) and their agents are told."""
    import hashlib

    from castmatch.alerts import on_units_unblocked
    from castmatch.factory import incident_work_dag_id

    units = waiting_units(config, store, run_key=run_key, blocker=blocker, finished_weeks_only=finished_weeks_only)
    if not units:
        log.info("%s delivered in run %s: no unit was waiting on it", blocker, run_key)
        return []
    log.warning("%s delivered in run %s: %s waited on it and start now", blocker, run_key, ", ".join(units))
    on_units_unblocked(config, store, run_key=run_key, blocker=blocker, units=units, dag_id=dag_id, run_id=run_id)
    run_hash = hashlib.sha1(run_key.encode()).hexdigest()[:10]
    return [{"trigger_dag_id": incident_work_dag_id(config), "trigger_run_id": f"unblocked_{run_hash}__{unit}",
             "conf": {"run_key": run_key, "work_unit": unit, "clock": clock}} for unit in units]


# ---------------------------------------------------------------------------- report


def incidents_report(config, store, run_key: str | None, *, open_only: bool = False) -> list[dict]:
    """The incidents of run ``run_key`` (and the roadmap's run-less ones), with their actions."""
    from castmatch.runs import roadmap_id_of

    names = {n: name for n, name, _ in levels(config)}
    rows = store.incidents(roadmap_id=roadmap_id_of(config), run_key=run_key, open_only=open_only, with_actions=True)
    return [{
        "id": r["id"], "run_key": r["run_key"], "kind": r["kind"], "subject": r["subject"], "agents": r["agents"],
        "state": r["state"], "level": r["level"], "level_name": names.get(r["level"], ""), "detail": r["detail"],
        "resolution": r["resolution"], "opened_at": r["opened_at"], "level_since": r["level_since"],
        "resolved_at": r["resolved_at"],
        "actions": [{"at": a["at"], "level": a["level"], "action": a["action"], "outcome": a["outcome"],
                     "actor": a["actor"], "detail": a["detail"]} for a in r.get("actions", [])],
    } for r in rows]


def render_incidents(report: list[dict]) -> str:
    if not report:
        return "no incidents"
    icons = {"open": "🔴", "resolved": "✅"}
    lines = []
    for r in report:
        lines.append(f"{icons.get(r['state'], '?')} #{r['id']} {r['state'].upper():<8} L{r['level']} {r['level_name']}: "
                     f"{r['kind']} {r['subject']} ({', '.join(r['agents']) or '-'})")
        lines.append(f"    {r['detail'][:160]}")
        for a in r["actions"]:
            lines.append(f"    - L{a['level']} {a['action']} [{a['outcome']}] by {a['actor']}: {a['detail'][:120]}")
        if r["resolution"]:
            lines.append(f"    resolution: {r['resolution']}")
    return "\n".join(lines)
