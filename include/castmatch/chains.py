"""Dependency chains (seed: "DEPENDENCY CHAIN AUTOMATION"): when a chain's trigger holds, the
consuming agents get the artifacts they need (connection configs, API contracts, Tailwind
configs ...) and their prompts include them.

Status of a chain, derived from stored state like the agent matrix:
- DONE: the trigger holds (all of ``all_of`` and one of ``any_of`` delivered, every gate of
  ``gates`` passed or its veto overridden);
- BLOCKED: a trigger unit ended blocked, failed, needs review or over budget;
- IN PROGRESS: a trigger unit is running or already delivered;
- WAITING: the trigger units wait on their own dependencies;
- PENDING: nothing of it has started.
Read for one run of the roadmap; before the run did anything the seed's own status is shown.
"""

from __future__ import annotations

from castmatch.status import PROBLEM_STATES, unit_states

PASSED_GATE = frozenset({"PASSED", "OVERRIDDEN"})


def passed_gates(store, run_key: str | None) -> set[str]:
    """Gates whose newest result in run ``run_key`` is a pass (or an overridden veto)."""
    newest: dict[str, str] = {}
    for row in store.gate_results(run_key) if run_key else []:
        newest[row["gate_id"]] = row["status"]
    return {gate for gate, status in newest.items() if status in PASSED_GATE}


def trigger_holds(chain, done: set[str], passed: set[str] = frozenset()) -> bool:
    return all(u in done for u in chain.trigger.all_of) and (
        not chain.trigger.any_of or any(u in done for u in chain.trigger.any_of)) and all(
        g in passed for g in chain.trigger.gates)


def chain_status(config, chain, done: set[str], latest: dict[str, str], passed: set[str] = frozenset()) -> str:
    units = [*chain.trigger.all_of, *chain.trigger.any_of]
    if trigger_holds(chain, done, passed):
        return "DONE"
    if not any(u in latest for u in units) and not any(g in passed for g in chain.trigger.gates):
        return "PENDING"
    if any(latest.get(u) in PROBLEM_STATES and u not in done for u in units):
        return "BLOCKED"
    if any(latest.get(u) == "running" or u in done for u in units):
        return "IN PROGRESS"
    return "WAITING"


def chains_report(config, store, run_key: str | None) -> list[dict]:
    """The chains' status in run ``run_key`` (the seed's own status before the run did anything)."""
    done, latest = unit_states(store, run_key)
    passed = passed_gates(store, run_key)
    ran_any = bool(latest)
    out = []
    for chain in config.operations.chains if config.operations else []:
        units = [*chain.trigger.all_of, *chain.trigger.any_of]
        status = chain_status(config, chain, done, latest, passed) if ran_any else _seed_status(chain.seed_status)
        out.append({
            "id": chain.id, "name": chain.name, "group": chain.group, "status": status,
            "trigger": chain.trigger.description, "action": chain.action.description,
            "timeline": chain.timeline.description, "notify": list(chain.action.notify),
            "artifacts": list(chain.action.artifacts), "consumers": list(chain.action.consumers),
            "trigger_units": [{"id": u, "done": u in done, "state": latest.get(u, "not started")} for u in units],
            "trigger_gates": [{"id": g, "passed": g in passed} for g in chain.trigger.gates],
        })
    return out


def _seed_status(text: str) -> str:
    for status in ("IN PROGRESS", "WAITING", "BLOCKED", "PENDING", "DONE"):
        if text.upper().startswith(status):
            return status
    return "PENDING"


def chain_artifacts(config, store, unit_id: str, *, run_key: str) -> list[dict]:
    """For a consuming work unit: the chains feeding it whose trigger holds, each with the
    artifacts to share and the trigger units' deliverables (quoted as data by the prompt)."""
    chains = [c for c in (config.operations.chains if config.operations else []) if unit_id in c.action.consumers]
    if not chains:
        return []
    done, _ = unit_states(store, run_key)
    passed = passed_gates(store, run_key) if any(c.trigger.gates for c in chains) else set()
    out = []
    for chain in chains:
        if not trigger_holds(chain, done, passed):
            continue
        units = [u for u in [*chain.trigger.all_of, *chain.trigger.any_of] if u in done]
        delivered = store.upstream_deliverables(units, run_key=run_key)
        out.append({"chain": chain.id, "name": chain.name, "artifacts": list(chain.action.artifacts),
                    "deliverables": [delivered[u] for u in units if u in delivered]})
    return out


def render_chains(report: list[dict]) -> str:
    icons = {"DONE": "✅", "IN PROGRESS": "🔄", "WAITING": "🟡", "BLOCKED": "🔴", "PENDING": "⚪"}
    lines = []
    for group in ("active", "pending"):
        lines.append(f"{group.upper()} DEPENDENCY CHAINS")
        for i, c in enumerate([c for c in report if c["group"] == group], 1):
            lines.append(f"  {i}. {c['name']}")
            lines.append(f"    Trigger:  {c['trigger']}")
            lines.append(f"    Action:   {c['action']}")
            lines.append(f"    Timeline: {c['timeline']}")
            units = ", ".join(f"{u['id']} ({'done' if u['done'] else u['state']})" for u in c["trigger_units"])
            lines.append(f"    Status:   {icons[c['status']]} {c['status']}  [{units}]")
        lines.append("")
    return "\n".join(lines).rstrip()
