"""Checks that span files: unknown ids, duplicates, cycles, days outside their week, empty criteria."""

from __future__ import annotations

from collections.abc import Iterable

from castmatch.config import models as m
from castmatch.config.errors import ConfigIssue, format_path
from castmatch.config.loader import RoadmapConfig


class _Reporter:
    def __init__(self, config: RoadmapConfig):
        self.config = config
        # broken file -> errors not reported because they follow from it
        self.suppressed: dict[str, int] = {}

    def suppress(self, root: str) -> None:
        self.suppressed[root] = self.suppressed.get(root, 0) + 1

    def __call__(self, file: str, path: tuple, message: str) -> None:
        source = self.config.sources.get(file)
        line = source.line_of(path) if source else 1
        # Name the field, not the list index of a plain id: `agents[3].depends_on`.
        shown = path[:-1] if path and isinstance(path[-1], int) and _is_id_list(path) else path
        self.config.issues.append(ConfigIssue(file, line, format_path(shown), message))


_ID_LISTS = {
    "depends_on", "agents", "primary_agents", "weeks", "enforcers", "blocks", "probes", "work_units",
    "kpis", "reviewers", "gates", "all_of", "any_of", "notify", "consumers", "participants",
}


def _is_id_list(path: tuple) -> bool:
    return len(path) >= 2 and path[-2] in _ID_LISTS


def _duplicates(report, file: str, items: Iterable, prefix: tuple, what: str) -> None:
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        if item.id in seen:
            report(file, prefix + (index, "id"), f"duplicate {what} id {item.id!r} (also {format_path(prefix + (seen[item.id],))})")
        else:
            seen[item.id] = index


# Where the ids of each kind are defined: an unknown id is not reported again when one of these
# files is broken (the id may well be in it).
_DEFINED_IN = {"agent": ("team.yaml",), "gate": ("gates.yaml",), "probe": ("gates.yaml",), "KPI": ("kpis.yaml",),
               "work unit": ("weeks/",), "chain": ("operations.yaml",)}
ENFORCERS = "@enforcers"


def _broken_source(report, what: str) -> str | None:
    for prefix in _DEFINED_IN.get(what, ()):
        for name in sorted(report.config.broken):
            if name == prefix or (prefix.endswith("/") and name.startswith(prefix)):
                return name
    return None


def _unknown(report, file: str, path: tuple, values: list[str], known: Iterable[str], what: str) -> None:
    known = set(known)
    if what == "agent":
        known.add(ENFORCERS)
    for index, value in enumerate(values):
        if value not in known:
            root = _broken_source(report, what)
            if root:
                report.suppress(root)
            else:
                report(file, path + (index,), f"unknown {what} {value!r}" + _did_you_mean(value, known))


def _did_you_mean(value: str, known: Iterable[str]) -> str:
    import difflib

    close = difflib.get_close_matches(value, sorted(known), n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


PRESETS = {"@once", "@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly", "@annually", "@midnight"}


def cron_problem(expression: str) -> str | None:
    """Why ``expression`` is not a cron Airflow can schedule, or None."""
    from croniter import croniter

    if expression.strip() in PRESETS - {"@once"}:
        return None
    if len(expression.split()) != 5:
        return f"cron {expression!r} needs 5 fields (minute hour day month weekday), or a preset like @daily"
    if not croniter.is_valid(expression):
        return f"invalid cron {expression!r}"
    return None


def _find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """A cycle in ``graph`` as a list of nodes (first == last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, []):
            if nxt not in graph:
                continue
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for start in graph:
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def cross_check(config: RoadmapConfig) -> None:
    report = _Reporter(config)
    agents = config.agents

    _check_limits(config, report)
    if config.team:
        _duplicates(report, "team.yaml", config.team.tracks, ("tracks",), "track")
        tracks = {t.id for t in config.team.tracks}
        for i, agent in enumerate(config.team.agents):
            if agent.track not in tracks:
                report("team.yaml", ("agents", i, "track"), f"unknown track {agent.track!r} "
                       f"(team.yaml tracks: {', '.join(sorted(tracks))})" + _did_you_mean(agent.track, tracks))
        _duplicates(report, "team.yaml", config.team.agents, ("agents",), "agent")
        for i, agent in enumerate(config.team.agents):
            _unknown(report, "team.yaml", ("agents", i, "depends_on"), agent.depends_on, agents, "agent")
            _unknown(report, "team.yaml", ("agents", i, "can_cover"), [c for c in agent.can_cover if c != "*"], agents, "agent")
            if agent.id in agent.depends_on:
                report("team.yaml", ("agents", i, "depends_on"), f"agent {agent.id!r} depends on itself")
        cycle = _find_cycle({a.id: [d for d in a.depends_on if d != a.id] for a in config.team.agents})
        if cycle:
            index = next(i for i, a in enumerate(config.team.agents) if a.id == cycle[0])
            report("team.yaml", ("agents", index, "depends_on"), "dependency cycle: " + " -> ".join(cycle))

    if config.roadmap:
        _duplicates(report, "roadmap.yaml", config.roadmap.phases, ("phases",), "phase")
        if len(set(config.roadmap.priorities)) != len(config.roadmap.priorities):
            report("roadmap.yaml", ("priorities",), "a priority is listed twice")
        owner: dict[int, str] = {}
        for i, phase in enumerate(config.roadmap.phases):
            _unknown(report, "roadmap.yaml", ("phases", i, "primary_agents"), phase.primary_agents, agents, "agent")
            for j, week in enumerate(phase.weeks):
                if week in owner:
                    report("roadmap.yaml", ("phases", i, "weeks", j), f"week {week} is already in phase {owner[week]!r}")
                owner[week] = phase.id
        for number, file in sorted(config.week_files.items()):
            if number not in owner:
                report("roadmap.yaml", ("phases",), f"week {number} ({file}) belongs to no phase")
        for week in sorted(owner):
            if week not in config.week_files:
                # Charged to the missing file, so only that week's DAG is affected.
                config.issues.append(ConfigIssue(
                    f"weeks/week_{week:02d}.yaml", 1, "",
                    f"file not found (phase {owner[week]!r} in roadmap.yaml lists week {week})",
                ))

    _check_weeks(config, report)
    _check_gates(config, report)
    _check_kpis(config, report)
    _check_operations(config, report)
    _check_llm(config, report)
    _report_suppressed(config, report)


def _report_suppressed(config: RoadmapConfig, report) -> None:
    """One line per broken file saying how many follow-on errors were left out, placed after
    that file's own errors."""
    for root, count in sorted(report.suppressed.items()):
        last = max((i for i, issue in enumerate(config.issues) if issue.file == root), default=len(config.issues) - 1)
        line = config.issues[last].line if 0 <= last < len(config.issues) and config.issues[last].file == root else 1
        noun = "error" if count == 1 else "errors"
        config.issues.insert(last + 1, ConfigIssue(root, line, "", f"{count} further {noun} suppressed that depend on it"))


def _check_limits(config: RoadmapConfig, report) -> None:
    if not config.roadmap:
        return
    limits = config.roadmap.limits
    if config.team and len(config.team.agents) > limits.max_agents:
        report("team.yaml", ("agents",), f"{len(config.team.agents)} agents, over the limit of {limits.max_agents} "
               "(roadmap.yaml limits.max_agents)")
    if len(config.week_numbers) > limits.max_weeks:
        report("roadmap.yaml", ("phases",), f"{len(config.week_numbers)} weeks, over the limit of {limits.max_weeks} "
               "(roadmap.yaml limits.max_weeks)")
    units = sum(len(w.work_units) for w in config.weeks.values())
    if units > limits.max_work_units:
        report("roadmap.yaml", ("limits", "max_work_units"), f"{units} work units, over the limit of "
               f"{limits.max_work_units} (roadmap.yaml limits.max_work_units)")


def _check_weeks(config: RoadmapConfig, report) -> None:
    agents = config.agents
    if config.team:  # an idle agent's preparatory units must exist (they are work units of the roadmap)
        for i, agent in enumerate(config.team.agents):
            _unknown(report, "team.yaml", ("agents", i, "preparatory"), agent.preparatory, config.unit_week, "work unit")
    per_week = config.roadmap.days_per_week if config.roadmap else 7
    priorities = list(config.roadmap.priorities) if config.roadmap else []
    first_seen: dict[str, str] = {}
    for number, week in sorted(config.weeks.items()):
        file = config.week_files[number]
        _unknown(report, file, ("primary_agents",), week.primary_agents, agents, "agent")
        for i, unit in enumerate(week.work_units):
            here = ("work_units", i)
            if unit.id in first_seen:
                report(file, here + ("id",), f"duplicate work unit id {unit.id!r} (also in {first_seen[unit.id]})")
            else:
                first_seen[unit.id] = file
            _unknown(report, file, here + ("agents",), unit.agents, agents, "agent")
            first_day, last_day = (number - 1) * per_week + 1, number * per_week
            if not (first_day <= unit.first_day and unit.last_day <= last_day):
                field = "day" if unit.day is not None else "days"
                report(file, here + (field,), f"day {unit.day_label} is outside week {number} (days {first_day}-{last_day})")
            if priorities and unit.priority not in priorities:
                report(file, here + ("priority",), f"unknown priority {unit.priority!r} (roadmap.yaml priorities: "
                       f"{', '.join(priorities)})" + _did_you_mean(unit.priority, priorities))
            for j, dep in enumerate(unit.depends_on):
                if dep == unit.id:
                    report(file, here + ("depends_on", j), f"work unit {unit.id!r} depends on itself")
                elif dep not in config.unit_week:
                    root = _broken_source(report, "work unit")
                    if root:
                        report.suppress(root)
                    else:
                        report(file, here + ("depends_on", j), f"unknown work unit {dep!r}" + _did_you_mean(dep, config.unit_week))
                elif config.unit_week[dep] > number:
                    report(
                        file, here + ("depends_on", j),
                        f"work unit {dep!r} is in a later week ({config.unit_week[dep]})",
                    )
        graph = {u.id: [d for d in u.depends_on if d != u.id and config.unit_week.get(d) == number] for u in week.work_units}
        cycle = _find_cycle(graph)
        if cycle:
            index = next(i for i, u in enumerate(week.work_units) if u.id == cycle[0])
            report(file, ("work_units", index, "depends_on"), "dependency cycle: " + " -> ".join(cycle))


def _check_gates(config: RoadmapConfig, report) -> None:
    gates = config.gates
    if not gates:
        return
    file = "gates.yaml"
    units, agents = config.unit_week, config.agents
    probes = {p.id for p in gates.probes}
    kpis = {k.id for k in config.kpis.kpis} if config.kpis else set()
    _duplicates(report, file, gates.probes, ("probes",), "probe")
    for i, probe in enumerate(gates.probes):
        if probe.kind == "http" and not probe.url:
            report(file, ("probes", i, "url"), "an http probe needs a url")
        if probe.kind in ("redis", "postgres") and not probe.conn_id:
            report(file, ("probes", i, "conn_id"), f"a {probe.kind} probe needs a conn_id")
    all_ids: dict[str, str] = {}
    for group in ("quality_gates", "success_gates"):
        for i, gate in enumerate(getattr(gates, group)):
            here = (group, i)
            if gate.id in all_ids:
                report(file, here + ("id",), f"duplicate gate id {gate.id!r} (also in {all_ids[gate.id]})")
            all_ids[gate.id] = group
            if config.weeks and gate.week not in config.week_numbers:
                report(file, here + ("week",), f"unknown week {gate.week}")
            _unknown(report, file, here + ("enforcers",), gate.enforcers, agents, "agent")
            _unknown(report, file, here + ("blocks",), gate.blocks, units, "work unit")
            listed = "quality" if group == "quality_gates" else "success"
            if gate.kind != listed:
                report(file, here + ("kind",), f"kind {gate.kind!r} contradicts the list the gate is in ({group}): "
                       f"use kind {listed!r} or move the gate to {gate.kind}_gates")
            if config.team:
                named = config.expand_agents(gate.enforcers)
                for j, agent_id in enumerate(gate.enforcers):
                    agent = agents.get(agent_id)
                    if agent is not None and not agent.enforcer:
                        report(file, here + ("enforcers", j), f"agent {agent_id!r} is not an enforcer "
                               "(set enforcer: true in team.yaml)")
                if gate.veto and not named:
                    report(file, here + ("enforcers",), "a gate with veto power needs an enforcer")
                elif gate.veto and not any(agents[a].veto for a in named if a in agents):
                    report(file, here + ("veto",), f"no enforcer of gate {gate.id!r} has veto power "
                           f"({', '.join(named)}): set veto: true on one in team.yaml")
            if config.roadmap and config.week_of_day(gate.deadline_day) < gate.week:
                report(file, here + ("deadline_day",), f"deadline day {gate.deadline_day} is before week {gate.week} starts")
            criterion_ids: set[str] = set()
            for j, crit in enumerate(gate.criteria):
                at = here + ("criteria", j)
                if crit.id in criterion_ids:
                    report(file, at + ("id",), f"duplicate criterion id {crit.id!r}")
                criterion_ids.add(crit.id)
                needs = {"probe": "probes", "deliverable": "work_units", "review": "reviewers", "kpi": "kpis"}[crit.kind.value]
                if not getattr(crit, needs):
                    report(file, at, f"criterion {crit.id!r} of kind {crit.kind.value} names nothing: set {needs}")
                _unknown(report, file, at + ("probes",), crit.probes, probes, "probe")
                _unknown(report, file, at + ("work_units",), crit.work_units, units, "work unit")
                _unknown(report, file, at + ("kpis",), crit.kpis, kpis, "KPI")
                _unknown(report, file, at + ("reviewers",), crit.reviewers, agents, "agent")
                if config.team and crit.reviewers and not config.expand_agents(crit.reviewers):
                    report(file, at + ("reviewers",), f"'{ENFORCERS}' names no agent: no agent has enforcer: true")
    for i, point in enumerate(gates.decision_points):
        _unknown(report, file, ("decision_points", i, "gates"), point.gates, all_ids, "gate")
        _unknown(report, file, ("decision_points", i, "kpis"), point.kpis, kpis, "KPI")
        if config.kpis and not config.kpis_due(point):
            report(file, ("decision_points", i), f"decision point {point.id!r} validates no KPI (an empty Great "
                   f"Expectations suite checks nothing): name one in kpis, set a KPI's by_week <= {point.week}, "
                   "or give one of its gates a kpi criterion")
        if config.week_of_day(point.day) != point.week:
            report(file, ("decision_points", i, "day"), f"day {point.day} is not in week {point.week}")
    _duplicates(report, file, gates.decision_points, ("decision_points",), "decision point")


def _check_kpis(config: RoadmapConfig, report) -> None:
    if not config.kpis:
        return
    file = "kpis.yaml"
    probes = {p.id for p in config.gates.probes} if config.gates else set()
    _duplicates(report, file, config.kpis.kpis, ("kpis",), "KPI")
    for i, kpi in enumerate(config.kpis.kpis):
        for key in ("source", "demo_source"):
            src, at = getattr(kpi, key), ("kpis", i, key)
            if src is None:
                continue
            if src.kind == "probe":
                if not src.probes:
                    report(file, at, "a probe source names no probes")
                _unknown(report, file, at + ("probes",), src.probes, probes, "probe")
            if src.kind in ("coverage_report", "security_report") and not src.path:
                report(file, at + ("path",), f"a {src.kind} source needs a path")
            if src.kind == "sql" and not (src.conn_id and src.sql):
                report(file, at, "a sql source needs conn_id and sql")
            if src.kind in ("http_latency", "http_json") and not src.url.startswith(("http://", "https://")):
                report(file, at + ("url",), f"a {src.kind} source needs an http(s) url")
            if src.kind == "http_json" and not src.metric:
                report(file, at + ("metric",), "an http_json source needs the metric (the JSON field to read)")
            known = m.KPI_METRICS.get(src.kind)
            if known is not None and src.metric not in known:
                shown = [k for k in known if k] or ["none: leave metric out"]
                report(file, at + ("metric",), f"unknown {src.kind} metric {src.metric!r} (known: {', '.join(shown)})"
                       + _did_you_mean(src.metric, [k for k in known if k]))


def _check_operations(config: RoadmapConfig, report) -> None:
    ops = config.operations
    if not ops:
        return
    file = "operations.yaml"
    units, agents = config.unit_week, config.agents
    _duplicates(report, file, ops.chains, ("chains",), "chain")
    for i, chain in enumerate(ops.chains):
        at = ("chains", i)
        if not (chain.trigger.all_of or chain.trigger.any_of or chain.trigger.gates):
            report(file, at + ("trigger",), "a chain trigger names nothing: set all_of / any_of (work units) or gates")
        _unknown(report, file, at + ("trigger", "gates"), chain.trigger.gates, [g.id for g in config.all_gates], "gate")
        _unknown(report, file, at + ("trigger", "all_of"), chain.trigger.all_of, units, "work unit")
        _unknown(report, file, at + ("trigger", "any_of"), chain.trigger.any_of, units, "work unit")
        _unknown(report, file, at + ("action", "notify"), chain.action.notify, agents, "agent")
        _unknown(report, file, at + ("action", "consumers"), chain.action.consumers, units, "work unit")
    for i, checkpoint in enumerate(ops.checkpoints):
        problem = cron_problem(checkpoint.cron)
        if problem:
            report(file, ("checkpoints", i, "cron"), f"checkpoint {checkpoint.id!r}: {problem}")
    if ops.standup:
        problem = cron_problem(ops.standup.cron)
        if problem:
            report(file, ("standup", "cron"), f"standup: {problem}")
    if ops.standup and isinstance(ops.standup.participants, list):
        _unknown(report, file, ("standup", "participants"), ops.standup.participants, agents, "agent")
    _duplicates(report, file, ops.checkpoints, ("checkpoints",), "checkpoint")
    _duplicates(report, file, ops.auto_resolution, ("auto_resolution",), "protocol")
    from castmatch.incidents import KINDS

    probes = [p.id for p in config.gates.probes] if config.gates else []
    for i, protocol in enumerate(ops.auto_resolution):
        at = ("auto_resolution", i)
        if protocol.actions and protocol.when is None:
            report(file, at + ("when",), f"protocol {protocol.id!r} has actions but no `when` (the incidents it answers)")
        for j, kind in enumerate(protocol.when.kinds if protocol.when else []):
            if kind not in KINDS:
                report(file, at + ("when", "kinds", j), f"unknown incident kind {kind!r} (one of {', '.join(KINDS)})"
                       + _did_you_mean(kind, KINDS))
        for j, action in enumerate(protocol.actions):
            here = at + ("actions", j)
            _unknown(report, file, here + ("probes",), action.probes, probes, "probe")
            _unknown(report, file, here + ("agents",), action.agents, agents, "agent")
            if action.kind == "restart" and not action.command:
                report(file, here + ("command",), "a restart action needs the command to run")
            if action.kind == "fallback" and not (action.connection and action.fallback_connection):
                report(file, here, "a fallback action needs connection and fallback_connection")
            if action.kind == "notify" and not action.agents:
                report(file, here + ("agents",), "a notify action needs the agents to tell")
    _duplicates(report, file, ops.notifications, ("notifications",), "notification")
    chain_ids = [c.id for c in ops.chains]
    for i, notification in enumerate(ops.notifications):
        at = ("notifications", i)
        _unknown(report, file, at + ("notify",), notification.notify, set(agents) | set(m.ALERT_ROLES), "agent")
        if notification.when is None:
            continue
        _unknown(report, file, at + ("when", "chains"), notification.when.chains, chain_ids, "chain")
        for j, kind in enumerate(notification.when.incidents):
            if kind not in KINDS:
                report(file, at + ("when", "incidents", j), f"unknown incident kind {kind!r} (one of {', '.join(KINDS)})"
                       + _did_you_mean(kind, KINDS))
    levels = [e.level for e in ops.escalation]
    if levels and levels != list(range(1, len(levels) + 1)):
        report(file, ("escalation",), f"escalation levels must be 1..{len(levels)} in order, got {levels}")


def _check_llm(config: RoadmapConfig, report) -> None:
    llm = config.llm
    if not llm or "llm.yaml" not in config.sources:
        return
    file = "llm.yaml"
    if llm.prices:
        for agent_index, agent in enumerate(config.team.agents if config.team else []):
            if agent.model not in llm.prices:
                report("team.yaml", ("agents", agent_index, "model"), f"model {agent.model!r} has no price in llm.yaml")
        if llm.budgets.downgrade_to and llm.budgets.downgrade_to not in llm.prices:
            report(file, ("budgets", "downgrade_to"), f"model {llm.budgets.downgrade_to!r} has no price")
    if llm.budgets.on_exceed == "downgrade" and not llm.budgets.downgrade_to:
        report(file, ("budgets", "downgrade_to"), "on_exceed: downgrade needs downgrade_to")
    for agent_id in llm.budgets.agents:
        if agent_id not in config.agents:
            root = _broken_source(report, "agent")
            if root:
                report.suppress(root)
            else:
                report(file, ("budgets", "agents", agent_id), f"unknown agent {agent_id!r}" + _did_you_mean(agent_id, config.agents))
    for week in llm.budgets.weeks:
        if config.weeks and week not in config.week_numbers:
            report(file, ("budgets", "weeks", week), f"unknown week {week}")
