"""The agent status matrix and per-week progress, derived from stored state (never typed in).

- ACTIVE: a work unit of the agent is running.
- BLOCKED: a unit of theirs ended blocked, failed or needs review and has no accepted deliverable.
- WAITING: their next unit waits on dependencies that are not delivered yet.
- STANDBY: nothing of theirs runs or waits (ready for the next assignment).
A unit reassigned in the run (an incident, a standup, workload balancing) counts for its new lead;
both agents' rows name it (``moved_in`` / ``moved_out``). Everything is read for one run of the roadmap (``castmatch.runs``): a new run starts from the
seed's baselines. Until an agent has worked in the run, the seed's baseline status and task label
are shown. Progress = baseline + (100 - baseline) x accepted weight / assigned weight.
A unit is late once its last day (``day``, or the end of ``days: a-b``) has ended on the run's clock
and it has no accepted deliverable.
"""

from __future__ import annotations

from castmatch.config import RoadmapConfig
from castmatch.store import Store

PROBLEM_STATES = {"blocked", "failed", "needs_review", "budget_exceeded"}


def unit_states(store: Store, run_key: str | None) -> tuple[set[str], dict[str, str]]:
    """In run ``run_key``: (units with an accepted deliverable, latest state of every unit that
    ran). No run: nothing done, nothing ran."""
    if not run_key:
        return set(), {}
    done = {d["work_unit_id"] for d in store.deliverables(run_key=run_key) if d["status"] == "done"}
    latest: dict[str, tuple] = {}
    for run in store.unit_runs(run_key):
        stamp = (run["ended_at"] or run["started_at"], run["id"])
        current = latest.get(run["work_unit_id"])
        if current is None or (stamp[0] is not None and (current[0][0] is None or stamp >= current[0])):
            latest[run["work_unit_id"]] = (stamp, run["state"])
    return done, {unit: state for unit, (_, state) in latest.items()}


def status_matrix(config: RoadmapConfig, store: Store, run_key: str | None) -> dict:
    from castmatch.incidents import run_leads

    done, latest = unit_states(store, run_key)
    units = config.work_units
    leads = run_leads(config, store, run_key) if run_key else {u.id: u.agents[0] for u in units.values()}
    agents_out = []
    for agent in config.agents.values():
        # a unit moved to another agent (an incident, a standup, workload balancing) is theirs now
        mine = [u for u in units.values() if leads[u.id] == agent.id or (agent.id in u.agents[1:])]
        total = sum(u.weight for u in mine) or 1.0
        accepted = sum(u.weight for u in mine if u.id in done)
        progress = round(agent.baseline_progress + (100 - agent.baseline_progress) * accepted / total)
        ran = [u for u in mine if u.id in latest]
        running = [u for u in mine if latest.get(u.id) == "running" and u.id not in done]
        problems = [u for u in mine if latest.get(u.id) in PROBLEM_STATES and u.id not in done]
        pending = sorted((u for u in mine if u.id not in done), key=lambda u: (config.unit_week[u.id], u.first_day))
        if not ran:
            status, task = agent.baseline_status, agent.baseline_task or agent.current_task
        elif running:
            status, task = "ACTIVE", running[0].title
        elif problems:
            status, task = "BLOCKED", problems[0].title
        elif pending and any(d not in done for d in pending[0].depends_on):
            status, task = "WAITING", pending[0].title
        else:
            status, task = "STANDBY", pending[0].title if pending else "All assigned work delivered"
        agents_out.append({
            "id": agent.id, "short_name": agent.label, "status": status,
            "progress": progress, "current_task": task,
            "moved_in": sorted(u for u, lead in leads.items() if lead == agent.id and units[u].agents[0] != agent.id),
            "moved_out": sorted(u for u, lead in leads.items() if lead != agent.id and units[u].agents[0] == agent.id),
        })
    late = late_units(config, store, run_key, done, weeks={config.unit_week[u] for u in latest if u in config.unit_week})
    weeks_out = [
        {"week": w, "done": sum(1 for u in config.weeks[w].work_units if u.id in done),
         "total": len(config.weeks[w].work_units)}
        for w in sorted(config.weeks)
    ]
    return {"run_key": run_key, "agents": agents_out, "weeks": weeks_out, "late": late}


def late_units(config: RoadmapConfig, store: Store, run_key: str | None, done: set[str], *, weeks: set[int],
               now=None) -> list[dict]:
    """Units of the ``weeks`` run ``run_key`` has started that are not delivered after their last
    day, on the run's clock (compressed or real, after the NO-GO extensions so far)."""
    import pendulum

    from castmatch.runs import run_clock

    run = store.run(run_key) if run_key else None
    if run is None or (run["clock"] == "compressed" and run["origin"] is None):
        return []
    clock = run_clock(config, store, run_key, run["clock"])
    now = now or pendulum.now("UTC")
    out = []
    for unit in config.work_units.values():
        if config.unit_week[unit.id] not in weeks:
            continue
        due = clock.day_start(unit.last_day + 1)
        if unit.id not in done and now >= due:
            out.append({"id": unit.id, "agent": unit.agents[0], "days": unit.day_label,
                        "started": clock.day_start(unit.first_day).isoformat(), "due": due.isoformat()})
    return out


ICONS = {"ACTIVE": "🟢", "WAITING": "🟡", "BLOCKED": "🔴", "STANDBY": "⚪"}


def render_matrix(matrix: dict) -> str:
    """The seed's AGENT STATUS MATRIX as a box-drawn table, then weeks done/total."""
    widths = (25, 12, 10, 34)
    def row(cells):
        return "│" + "│".join(f" {str(c)[:w - 2]:<{w - 2}} " for c, w in zip(cells, widths, strict=True)) + "│"
    def rule(left, mid, right):
        return left + mid.join("─" * w for w in widths) + right
    title = "AGENT STATUS MATRIX" + (f"  (run {matrix['run_key']})" if matrix.get("run_key") else "  (no run yet: seed baselines)")
    lines = [title, rule("┌", "┬", "┐"), row(("Agent", "Status", "Progress", "Current Task")),
             rule("├", "┼", "┤")]
    for a in matrix["agents"]:
        lines.append(row((a["short_name"], f"{ICONS[a['status']]} {a['status']}", f"{a['progress']}%", a["current_task"])))
    lines.append(rule("└", "┴", "┘"))
    lines.append("")
    lines.append("WEEKS  " + "  ".join(f"W{w['week']:02d} {w['done']}/{w['total']}" for w in matrix["weeks"]))
    moves = [(u, a["short_name"]) for a in matrix["agents"] for u in a.get("moved_in", [])]
    if moves:
        lines.append("MOVED  " + ", ".join(f"{u} -> {who}" for u, who in moves))
    late = matrix.get("late") or []
    if late:
        lines.append(f"LATE   {len(late)} unit(s) past their last day: " + ", ".join(
            f"{u['id']} (day {u['days']}, {u['agent']})" for u in late[:10]) + (" ..." if len(late) > 10 else ""))
    return "\n".join(lines)
