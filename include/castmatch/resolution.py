"""Level 1 of the ladder, automated resolution (seed: AUTO-RESOLUTION PROTOCOLS): the protocols of
``operations.yaml`` whose ``when`` matches an incident run their ``actions`` in order, each recorded
on the incident with its outcome; then the check that opened the incident runs again and, if it
passes, the incident is resolved by level 1.

Actions: ``reprobe`` (sample the probes again), ``restart`` (run a configured command, no shell,
bounded), ``fallback`` (the roadmap's calls use another Airflow connection from now on, recorded in
the store), ``notify`` (agents' inbox: their next prompts say what changed); for work units:
``retry`` (run it again, its lead told why it failed), ``alternative_path`` (a blocked agent gets a
ready unit of theirs that does not depend on the blocked one), ``redistribute`` (to an agent whose
``can_cover`` names the lead). A unit to run is recorded as ``rerun_pending``; the next sweep
triggers it.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import shlex
import subprocess

log = logging.getLogger(__name__)
OUTPUT_LIMIT = 300


def matching_protocols(config, incident: dict) -> list:
    out = []
    for protocol in config.operations.auto_resolution if config.operations else []:
        when = protocol.when
        if when is None or not protocol.actions:
            continue
        if when.kinds and incident["kind"] not in when.kinds:
            continue
        if when.subjects and incident["subject"] not in when.subjects:
            continue
        out.append(protocol)
    return out


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _expand(arg: str) -> str:
    """``${VAR}`` / ``${VAR:-default}`` from the environment only: the command never takes text
    from an incident."""
    return _VAR.sub(lambda m: os.environ.get(m.group(1)) or (m.group(2) or ""), arg)


def restart_command(action) -> list[str]:
    """The command's words: a single word that expands to several (``${CASTMATCH_REDIS_RESTART}``)
    is split like a shell would split it, but never run by one."""
    words = [_expand(a) for a in action.command]
    return shlex.split(words[0]) if len(words) == 1 else words


def _reprobe(config, store, incident, action) -> tuple[str, str]:
    from castmatch.probes import run_probes

    ids = action.probes or ([incident["subject"]] if incident["kind"] == "probe_failed" else [])
    probes = [p for p in (config.gates.probes if config.gates else []) if p.id in ids]
    if not probes:
        return "skipped", "no probe to check"
    samples = run_probes(probes, store=store, run_id=f"incident-{incident['id']}", config=config,
                         run_key=incident["run_key"])
    ok = all(s["status"] == "ok" for s in samples)
    return ("ok" if ok else "failed"), "; ".join(f"{s['probe_id']}: {s['status']} ({s['detail'][:120]})" for s in samples)


def _restart(config, store, incident, action) -> tuple[str, str]:
    command = restart_command(action)
    if not command:
        return "skipped", "the restart command is empty here (its variable is not set)"
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=action.timeout_seconds,
                              stdin=subprocess.DEVNULL, check=False)
    except FileNotFoundError:
        return "failed", f"{command[0]}: not found"
    except subprocess.TimeoutExpired:
        return "failed", f"{' '.join(command)}: still running after {action.timeout_seconds:g} s (stopped)"
    output = (done.stdout + done.stderr).strip().replace("\n", " ")[:OUTPUT_LIMIT]
    return ("ok" if done.returncode == 0 else "failed"), f"{' '.join(command)} -> exit {done.returncode} {output}".strip()


def _fallback(config, store, incident, action) -> tuple[str, str]:
    """Switch only to a fallback that answers: a dead fallback would take the agents down with it."""
    from castmatch.probes import run_probe
    from castmatch.runs import roadmap_id_of

    for probe in [p for p in (config.gates.probes if config.gates else []) if p.conn_id == action.connection]:
        trial = run_probe(probe.model_copy(update={"conn_id": action.fallback_connection}), store=None)
        if trial["status"] != "ok":
            return "failed", f"{action.fallback_connection} does not answer either ({trial['detail'][:160]}): not switched"
    store.set_connection_override(roadmap_id=roadmap_id_of(config), conn_id=action.connection,
                                  active_conn_id=action.fallback_connection,
                                  reason=f"incident #{incident['id']}: {incident['kind']} {incident['subject']}")
    return "ok", f"{action.connection} -> {action.fallback_connection} for the roadmap's calls, memory and probes"


# ---------------------------------------------------------------------------- work (units of a run)


def _lead(store, incident: dict, unit) -> str:
    from castmatch.operators.agent import with_override

    return with_override(store, incident["run_key"], unit, log).agents[0]


def _retry(config, store, incident, action) -> tuple[str, str]:
    """The unit runs again (the next sweep triggers it) and its lead is told why it failed."""
    unit = config.work_units.get(incident["subject"])
    if unit is None:
        return "skipped", f"{incident['subject']} is not a work unit"
    lead = _lead(store, incident, unit)
    store.record_event("agent_notice", f"your work unit {unit.id} ended {incident['kind'].replace('unit_', '')}: "
                       f"{incident['detail'][:400]} - it runs again now; do not repeat that failure",
                       run_key=incident["run_key"], agent_id=lead, data={"incident": incident["id"]})
    store.incident_action(incident["id"], level=1, action="rerun_pending", outcome="ok", detail=unit.id,
                          actor=_actor(incident))
    return "ok", f"{unit.id} runs again with the failure reason in {lead}'s prompt"


def alternative_unit(config, store, run_key: str, *, blocked_id: str, lead: str) -> str | None:
    """The earliest unit ``lead`` leads in run ``run_key`` that has not started, is ready (every
    dependency delivered), lies no further than one week past the run's newest, and does not
    depend (directly or not) on ``blocked_id``; None when there is none."""
    from castmatch.incidents import run_depends_on, run_leads

    runs = store.unit_runs(run_key)
    started = {r["work_unit_id"] for r in runs}
    reached = max((config.unit_week.get(r["work_unit_id"], 0) for r in runs), default=0)
    deps = run_depends_on(config, store, run_key)  # read once: the walk below visits many units
    leads = run_leads(config, store, run_key)

    def needs_blocked(unit_id: str, seen: set[str]) -> bool:
        if unit_id == blocked_id:
            return True
        seen.add(unit_id)
        return any(d not in seen and needs_blocked(d, seen) for d in deps.get(unit_id, ()))

    candidates = [u for u in config.work_units.values()  # in roadmap order: the earliest ready one
                  if u.id not in started and config.unit_week[u.id] <= reached + 1
                  and leads[u.id] == lead and not needs_blocked(u.id, set())]
    delivered = set(store.upstream_deliverables(sorted({d for u in candidates for d in deps[u.id]}), run_key=run_key))
    return next((u.id for u in candidates if not set(deps[u.id]) - delivered), None)


def _alternative_path(config, store, incident, action) -> tuple[str, str]:
    """A blocked agent gets a ready unit of theirs that does not depend on the blocked one."""
    blocked = config.work_units.get(incident["subject"])
    if blocked is None:
        return "skipped", f"{incident['subject']} is not a work unit"
    run_key = incident["run_key"]
    lead = _lead(store, incident, blocked)
    unit = alternative_unit(config, store, run_key, blocked_id=blocked.id, lead=lead)
    if unit is None:
        return "failed", f"{lead} has no ready unit that does not depend on {blocked.id}"
    store.record_event("agent_notice", f"{blocked.id} is blocked ({incident['detail'][:200]}); meanwhile "
                       f"work on {unit}, which does not depend on it", run_key=run_key, agent_id=lead,
                       data={"incident": incident["id"]})
    store.incident_action(incident["id"], level=1, action="rerun_pending", outcome="ok", detail=unit,
                          actor=_actor(incident))
    return "ok", f"{lead} works on {unit} (ready, independent of {blocked.id}) meanwhile"


def _redistribute(config, store, incident, action) -> tuple[str, str]:
    """The unit goes to an agent whose ``can_cover`` names its lead (recorded as a reassignment)."""
    unit = config.work_units.get(incident["subject"])
    if unit is None:
        return "skipped", f"{incident['subject']} is not a work unit"
    lead = _lead(store, incident, unit)
    cover = next((a for a in config.agents.values() if a.id != lead and (lead in a.can_cover or "*" in a.can_cover)),
                 None)
    if cover is None:
        return "failed", f"no agent may cover {lead} (team.yaml can_cover)"
    store.save_unit_override(run_key=incident["run_key"], work_unit_id=unit.id, lead_agent=cover.id, depends_on=None,
                             incident_id=incident["id"], proposed_by=_actor(incident))
    store.record_event("agent_notice", f"{unit.id} is now yours (redistributed from {lead}: "
                       f"{incident['detail'][:200]})", run_key=incident["run_key"], agent_id=cover.id,
                       data={"incident": incident["id"]})
    store.incident_action(incident["id"], level=1, action="rerun_pending", outcome="ok", detail=unit.id,
                          actor=_actor(incident))
    return "ok", f"{unit.id} reassigned from {lead} to {cover.id} (can_cover)"


def _llm_history(config, store, incident, action) -> tuple[str, str]:
    """What the LLM layer already did for the unit (retries with back-off, rate limiting, kept and
    cached answers, the development stand-in), from its ledger: level 1's Claude remedies are the
    layer's own, recorded here rather than run a second time."""
    from collections import Counter

    calls = [c for c in store.llm_calls(run_key=incident["run_key"], purpose="agent")
             if c["work_unit_id"] == incident["subject"]]
    if not calls:
        return "skipped", f"no Claude call of {incident['subject']} in this run"
    outcomes = Counter(c["outcome"] for c in calls)
    errors = Counter(c["error_class"] for c in calls if c["error_class"])
    backends = sorted({c["backend"] for c in calls})
    detail = (f"{len(calls)} call(s) through the LLM layer (retries with back-off, rate limiter): "
              + ", ".join(f"{n} {o}" for o, n in sorted(outcomes.items()))
              + (f"; errors: {', '.join(f'{n}x {e}' for e, n in errors.most_common())}" if errors else "")
              + f"; backend: {', '.join(backends)}"
              + ("; the development stand-in answered (offline, not Claude)" if "offline" in backends else ""))
    answered = outcomes["ok"] + outcomes["reused"] + outcomes["cache_fallback"]
    return ("ok" if answered else "failed"), detail


def _actor(incident: dict) -> str:
    from castmatch.runs import orchestrator_name, roadmap_of

    return orchestrator_name(roadmap_of(incident["run_key"]))


ACTIONS = {"reprobe": _reprobe, "restart": _restart, "fallback": _fallback, "retry": _retry,
           "alternative_path": _alternative_path, "redistribute": _redistribute, "llm_history": _llm_history}


def run_level1(config, store, incident: dict) -> str | None:
    """Run the matching protocols' actions once for ``incident``; returns the resolution when the
    cause is gone afterwards (the incident is then resolved), else None."""
    from castmatch.incidents import cause_cleared
    from castmatch.runs import orchestrator_name, roadmap_of

    actor = orchestrator_name(roadmap_of(incident["run_key"]))
    done: list[str] = []
    cleared = None
    for protocol in matching_protocols(config, incident):
        for action in protocol.actions:
            if action.kind == "notify":
                message = (f"{incident['kind'].replace('_', ' ')} {incident['subject']}: " + (
                    "; ".join(done) if done else incident["detail"][:200]))
                for agent_id in action.agents:
                    store.record_event("agent_notice", message, run_key=incident["run_key"], agent_id=agent_id,
                                       data={"incident": incident["id"], "protocol": protocol.id})
                outcome, detail = "ok", f"told {', '.join(action.agents)}: {message}"
            elif cleared:  # "fallback if local fails": once the cause is gone the remedies stop
                continue
            else:
                try:
                    outcome, detail = ACTIONS[action.kind](config, store, incident, action)
                except Exception as exc:  # an action that breaks is recorded, the next one still runs
                    from castmatch.describe import describe

                    outcome, detail = "failed", describe(exc)
            store.incident_action(incident["id"], level=1, action=f"{protocol.id}:{action.kind}", outcome=outcome,
                                  detail=detail, actor=actor)
            log.warning("incident #%d level 1 %s %s: %s - %s", incident["id"], protocol.id, action.kind, outcome, detail)
            if outcome == "ok" and action.kind != "notify":
                done.append(f"{action.kind}: {detail[:160]}")
                cleared = cause_cleared(config, store, incident, now=dt.datetime.now(dt.UTC))
        if cleared:
            store.resolve_incident(incident["id"], resolution=f"level 1 ({protocol.id}): {cleared}", actor=actor)
            return cleared
    return None
