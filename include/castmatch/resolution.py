"""Level 1 of the ladder, automated resolution (seed: AUTO-RESOLUTION PROTOCOLS): the protocols of
``operations.yaml`` whose ``when`` matches an incident run their ``actions`` in order, each recorded
on the incident with its outcome; then the check that opened the incident runs again and, if it
passes, the incident is resolved by level 1.

Actions: ``reprobe`` (sample the probes again), ``restart`` (run a configured command, no shell,
bounded), ``fallback`` (the roadmap's calls use another Airflow connection from now on, recorded in
the store), ``notify`` (agents' inbox: their next prompts say what changed).
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


ACTIONS = {"reprobe": _reprobe, "restart": _restart, "fallback": _fallback}


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
