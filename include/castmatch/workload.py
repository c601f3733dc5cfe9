"""Workload balancing (seed: RESOURCE CONFLICT RESOLUTION - Agent Workload Management), evaluated
at each checkpoint that lists the ``workload`` job and recorded there as decisions.

An agent's load in a run is its ready units (led by it in the run, not started, every dependency
delivered, in a week the run has started) plus its running ones; its capacity is team.yaml
``capacity`` (also the slots of its Airflow pool, so it never runs more at once). The rules:

- **overloaded** (load over capacity for ``operations.yaml`` ``workload.overloaded_after_minutes``
  of roadmap time): its lowest-priority ready unit (then the shortest critical path ahead) moves to
  an agent whose ``can_cover`` names it and who has room, and starts now as that agent;
- **idle** (nothing ready, running or blocked): its first ``preparatory`` unit that is ready starts,
  else its next LOW-priority unit of a later week whose dependencies are met is pulled forward;
- **blocked** (a unit of theirs failed and nothing else is ready or running): a ready unit of theirs
  that does not depend on the blocked one starts (the same search as the incidents' level 1);
- **conflict** (more ready units than free slots): they run in the seed's priority order
  (IMMEDIATE > HIGH > MEDIUM > LOW), then the longer critical path first - the order Airflow's
  ``priority_weight`` gives them inside the agent's pool; the order is recorded.

A unit started here runs in its run through ``<prefix>_incident_work`` as its (new) lead: its
prompt, its budget; its week task later finds it delivered and does not do it again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging

log = logging.getLogger(__name__)
ACTOR = "workload balancing"


def run_state(config, store, run_key: str) -> dict:
    """What the rules read of run ``run_key``, read once per evaluation: delivered units, each unit's
    latest state, lead and dependencies, the weeks the run has started."""
    from castmatch.incidents import run_depends_on, run_leads
    from castmatch.runs import active_weeks
    from castmatch.status import unit_states

    done, latest = unit_states(store, run_key)
    return {"done": done, "latest": latest, "leads": run_leads(config, store, run_key),
            "deps": run_depends_on(config, store, run_key), "weeks": active_weeks(config, store, run_key)}


def loads(config, state: dict) -> dict[str, dict[str, list[str]]]:
    """Per agent: its ready, running and blocked units (``state``: ``run_state``)."""
    from castmatch.status import PROBLEM_STATES

    done, latest, leads, deps = state["done"], state["latest"], state["leads"], state["deps"]
    out = {a: {"ready": [], "running": [], "blocked": []} for a in config.agents}
    for unit in config.work_units.values():
        lead, status = leads[unit.id], latest.get(unit.id)
        if lead not in out or unit.id in done:
            continue
        if status == "running":
            out[lead]["running"].append(unit.id)
        elif status in PROBLEM_STATES:
            out[lead]["blocked"].append(unit.id)
        elif status is None and config.unit_week[unit.id] in state["weeks"] and all(d in done for d in deps[unit.id]):
            out[lead]["ready"].append(unit.id)
    return out


def competing_order(config, units: list[str]) -> list[str]:
    """Units competing for one agent, in the order they run: priority, then critical path ahead."""
    return sorted(units, key=lambda u: (-config.task_weight(config.work_units[u]), u))


def _start(config, run_key: str, unit: str, clock: str, rule: str) -> dict:
    from castmatch.factory import incident_work_dag_id

    run_hash = hashlib.sha1(run_key.encode()).hexdigest()[:10]
    return {"trigger_dag_id": incident_work_dag_id(config), "trigger_run_id": f"workload_{run_hash}__{unit}",
            "conf": {"run_key": run_key, "work_unit": unit, "clock": clock}}


def _assign(store, run_key: str, unit: str, agent: str, why: str) -> None:
    store.save_unit_override(run_key=run_key, work_unit_id=unit, lead_agent=agent, depends_on=None, incident_id=None,
                             proposed_by=ACTOR)
    store.record_event("agent_notice", f"{unit} is now yours ({ACTOR}: {why})", run_key=run_key, agent_id=agent,
                       data={"workload": why})


def balance(config, store, run_key: str, *, moment: dt.datetime, clock, overloaded_since: dict[str, str]
            ) -> tuple[dict, list[dict], list[dict]]:
    """Apply the four rules to run ``run_key`` at ``moment``. Returns (figures, decisions, DAG runs
    to start); ``overloaded_since`` is the previous evaluation's (agent -> ISO time)."""
    from castmatch.resolution import alternative_unit

    state = run_state(config, store, run_key)
    current = loads(config, state)
    load = {a: len(v["ready"]) + len(v["running"]) for a, v in current.items()}
    capacity = {a: config.agents[a].capacity for a in config.agents}
    wait = clock.span(config.operations.workload.overloaded_after_minutes / (24 * 60))
    decisions, triggers, since_out, started, idle = [], [], {}, set(), []
    for agent_id in config.agents:  # overloaded
        if load[agent_id] <= capacity[agent_id]:
            continue
        since = dt.datetime.fromisoformat(overloaded_since[agent_id]) if agent_id in overloaded_since else moment
        since_out[agent_id] = since.isoformat()
        if moment - since < wait:
            decisions.append({"rule": "overloaded", "agent": agent_id, "outcome": f"over capacity since {since.isoformat()}"
                              ": waiting before moving work"})
            continue
        movable = competing_order(config, current[agent_id]["ready"])
        if not movable:
            continue
        unit = movable[-1]  # the lowest priority, then the shortest critical path ahead
        peers = sorted((a for a in config.agents.values()
                        if a.id != agent_id and (agent_id in a.can_cover or "*" in a.can_cover)
                        and load[a.id] < capacity[a.id]), key=lambda a: (load[a.id], a.id))
        if not peers:
            decisions.append({"rule": "overloaded", "agent": agent_id, "unit": unit,
                              "outcome": "no agent whose can_cover names it has room"})
            continue
        peer = peers[0].id
        _assign(store, run_key, unit, peer, f"{agent_id} has {load[agent_id]} units for {capacity[agent_id]} slot(s)")
        load[agent_id] -= 1
        load[peer] += 1
        triggers.append(_start(config, run_key, unit, clock.mode, "overloaded"))
        started.add(unit)
        decisions.append({"rule": "overloaded", "agent": agent_id, "unit": unit, "to": peer, "outcome": "moved"})
    for agent_id, agent in config.agents.items():  # idle and blocked
        if load[agent_id]:
            continue
        if current[agent_id]["blocked"]:
            blocked = current[agent_id]["blocked"][0]
            unit = alternative_unit(config, store, run_key, blocked_id=blocked, lead=agent_id)
            if unit and unit not in started:
                triggers.append(_start(config, run_key, unit, clock.mode, "blocked"))
                started.add(unit)
                load[agent_id] += 1
            decisions.append({"rule": "blocked", "agent": agent_id, "unit": unit, "blocked_on": blocked,
                              "outcome": "alternative unit started" if unit else "no alternative ready unit"})
            continue
        unit, outcome = _idle_unit(config, state, agent_id, agent, started)
        if unit is None:  # idle with nothing to give: a figure, not a decision
            idle.append(agent_id)
            continue
        if outcome == "preparatory unit started":
            _assign(store, run_key, unit, agent_id, "preparatory work while idle")
        triggers.append(_start(config, run_key, unit, clock.mode, "idle"))
        started.add(unit)
        load[agent_id] += 1
        decisions.append({"rule": "idle", "agent": agent_id, "unit": unit, "outcome": outcome})
    for agent_id in config.agents:  # conflicts: more ready units than free slots
        ready = [u for u in current[agent_id]["ready"] if u not in started]
        free = capacity[agent_id] - len(current[agent_id]["running"])
        if len(ready) > max(free, 0) and len(ready) > 1:
            decisions.append({"rule": "conflict", "agent": agent_id, "order": competing_order(config, ready),
                              "outcome": "priority order, then the critical path"})
    figures = {"agents": {a: {"load": load[a], "capacity": capacity[a], **{k: v for k, v in current[a].items()}}
                          for a in config.agents}, "overloaded_since": since_out, "idle_unassigned": idle}
    for decision in decisions:
        log.info("workload of run %s: %s", run_key, decision)
    return figures, decisions, triggers


def _idle_unit(config, state: dict, agent_id: str, agent, started: set[str]) -> tuple[str | None, str]:
    """An idle agent's next work: its first ready preparatory unit, else a LOW-priority unit of a
    later week whose dependencies are met (pulled forward)."""
    done, latest, deps = state["done"], state["latest"], state["deps"]

    def ready(unit_id: str) -> bool:
        return unit_id not in done and unit_id not in latest and unit_id not in started and all(
            d in done for d in deps[unit_id])

    for unit_id in agent.preparatory:
        if ready(unit_id):
            return unit_id, "preparatory unit started"
    lowest = (config.roadmap.priorities or ["LOW"])[-1]
    newest = max(state["weeks"], default=0)
    for unit in config.work_units.values():
        if (state["leads"][unit.id] == agent_id and config.unit_week[unit.id] > newest and unit.priority == lowest
                and ready(unit.id)):
            return unit.id, f"{lowest}-priority unit of week {config.unit_week[unit.id]} pulled forward"
    return None, "nothing to assign"
