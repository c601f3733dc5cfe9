"""Load a roadmap folder into typed models, collecting every error with its file and line.

A roadmap folder holds ``team.yaml``, ``roadmap.yaml``, ``gates.yaml``, ``kpis.yaml``,
``operations.yaml`` and ``weeks/week_NN.yaml``. Each file is parsed and validated on its own, so
one broken file is reported without hiding the others; ``RoadmapConfig.issues_for`` tells a
DAG whether the files it is built from are sound.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from castmatch.config import models as m
from castmatch.config.errors import ConfigError, ConfigIssue, format_path

OPTIONAL_FILES = ("llm.yaml",)  # defaults apply when absent
# The files each family of DAGs is built from: an error elsewhere leaves the family loading.
FAMILY_FILES = {
    "week": frozenset({"team.yaml", "roadmap.yaml", "gates.yaml", "kpis.yaml", "llm.yaml"}),
    "chains": frozenset({"team.yaml", "roadmap.yaml", "operations.yaml"}),
    "probes": frozenset({"roadmap.yaml", "gates.yaml", "llm.yaml"}),
    "standup": frozenset({"team.yaml", "roadmap.yaml", "operations.yaml", "llm.yaml"}),
    "incidents": frozenset({"team.yaml", "roadmap.yaml", "operations.yaml", "gates.yaml"}),
    "checkpoints": frozenset({"team.yaml", "roadmap.yaml", "operations.yaml", "gates.yaml", "kpis.yaml", "llm.yaml"}),
}
WEEK_FILE = re.compile(r"^week_(\d+)\.ya?ml$")

Path_ = tuple[str | int, ...]


def default_roadmap_dir() -> Path:
    """The roadmap folder in use: ``$CASTMATCH_ROADMAP_DIR`` or the shipped CastMatch one."""
    env = os.environ.get("CASTMATCH_ROADMAP_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "roadmaps" / "castmatch"


@dataclass
class SourceFile:
    """One YAML file: its data, and the line of every path in it (1-based)."""

    name: str
    data: Any
    lines: dict[Path_, int]

    def line_of(self, path: Path_) -> int:
        """The line of ``path``, or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return 1


def _walk(node: yaml.Node, path: Path_, lines: dict[Path_, int], issues: list[ConfigIssue], name: str):
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key in seen:
                issues.append(
                    ConfigIssue(name, line, format_path(path + (key,)), f"duplicate key (first at line {seen[key]})")
                )
            seen[key] = line
            lines[path + (key,)] = line
            _walk(value_node, path + (key,), lines, issues, name)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, path + (index,), lines, issues, name)


def read_yaml(file: Path, display_name: str, issues: list[ConfigIssue], *, max_kb: int | None = None) -> SourceFile | None:
    """Parse one file safely; on failure append an issue and return None."""
    try:
        size = file.stat().st_size
        if max_kb is not None and size > max_kb * 1024:
            issues.append(ConfigIssue(display_name, 1, "", f"file is {size / 1024:.0f} KB, over the limit of {max_kb} KB "
                                      "(roadmap.yaml limits.max_file_kb)"))
            return None
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        issues.append(ConfigIssue(display_name, 1, "", f"not UTF-8 text (byte {exc.start})"))
        return None
    except OSError as exc:
        issues.append(ConfigIssue(display_name, 1, "", f"cannot read file: {exc.strerror or exc}"))
        return None
    loader_cls = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    loader = loader_cls(text)
    try:
        node = loader.get_single_node()
        if node is None:
            issues.append(ConfigIssue(display_name, 1, "", "file is empty"))
            return None
        data = loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark else 1
        problem = getattr(exc, "problem", None) or str(exc)
        issues.append(ConfigIssue(display_name, line, "", f"invalid YAML: {problem}"))
        return None
    finally:
        loader.dispose()
    lines: dict[Path_, int] = {}
    before = len(issues)
    _walk(node, (), lines, issues, display_name)
    if len(issues) > before:
        return None
    return SourceFile(display_name, data, lines)


def validate_model(source: SourceFile, model: type[BaseModel], issues: list[ConfigIssue]):
    """Validate ``source.data`` into ``model``; every pydantic error becomes a located issue."""
    if not isinstance(source.data, dict):
        issues.append(ConfigIssue(source.name, 1, "", "expected a mapping at the top of the file"))
        return None
    try:
        return model.model_validate(source.data)
    except ValidationError as exc:
        seen: set[tuple] = set()
        for error in exc.errors():
            path = tuple(error["loc"])
            # pydantic puts the union member or the failing validator name into loc; keep
            # only the parts that are keys or indices of the YAML document.
            path = _document_path(source.data, path)
            message = error["msg"]
            if error["type"] == "extra_forbidden":
                message = "unknown field"
            elif error["type"] == "missing":
                message = "field required"
            elif "input" in error and error["type"] not in ("missing", "value_error") and not isinstance(
                error["input"], dict | list
            ):
                message = f"{message} (got {error['input']!r})"
            # A union (``int | str``...) reports one error per member: the field is named once.
            if path in seen:
                continue
            seen.add(path)
            issues.append(ConfigIssue(source.name, source.line_of(path), format_path(path), message))
        return None


def _document_path(data: Any, loc: tuple) -> Path_:
    path: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
            path.append(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
            path.append(part)
        elif isinstance(node, dict) and isinstance(part, str):
            path.append(part)  # missing or extra key: still name it
            node = None
        else:
            continue
    return tuple(path)


@dataclass
class RoadmapConfig:
    """Everything a roadmap folder says, and every problem found in it."""

    directory: Path
    team: m.Team | None = None
    roadmap: m.Roadmap | None = None
    gates: m.GatesFile | None = None
    kpis: m.KpisFile | None = None
    operations: m.Operations | None = None
    llm: m.LlmSettings | None = None
    weeks: dict[int, m.Week] = field(default_factory=dict)
    week_files: dict[int, str] = field(default_factory=dict)
    sources: dict[str, SourceFile] = field(default_factory=dict)
    issues: list[ConfigIssue] = field(default_factory=list)
    # Files that could not be read, parsed or validated: what refers into them is not reported again.
    broken: set[str] = field(default_factory=set)

    # -- lookups -----------------------------------------------------------------------------

    @functools.cached_property
    def agents(self) -> dict[str, m.Agent]:
        return {a.id: a for a in (self.team.agents if self.team else [])}

    @functools.cached_property
    def work_units(self) -> dict[str, m.WorkUnit]:
        return {u.id: u for w in sorted(self.weeks) for u in self.weeks[w].work_units}

    @functools.cached_property
    def unit_week(self) -> dict[str, int]:
        return {u.id: w for w, week in self.weeks.items() for u in week.work_units}

    @property
    def all_gates(self) -> list[m.Gate]:
        if not self.gates:
            return []
        return [*self.gates.quality_gates, *self.gates.success_gates]

    def gate(self, gate_id: str) -> m.Gate | None:
        """The quality or success gate ``gate_id`` (None: no such gate)."""
        return next((g for g in self.all_gates if g.id == gate_id), None)

    @property
    def update_interval(self) -> dt.timedelta:
        """How often status and probes are refreshed (operations.yaml ``update_frequency_minutes``)."""
        return dt.timedelta(minutes=self.operations.update_frequency_minutes if self.operations else 15)

    @property
    def agent_pool(self) -> tuple[str, int]:
        """(name, slots) of the Airflow pool every agent task runs in: at most that many agents
        call Claude at once (``llm.yaml`` ``agent_pool`` / ``agent_pool_slots``)."""
        prefix = self.roadmap.dag_id_prefix if self.roadmap else "roadmap"
        settings = self.llm or m.LlmSettings()
        return settings.agent_pool or f"{prefix}_agents", settings.agent_pool_slots

    def agent_pool_of(self, agent_id: str) -> tuple[str, int]:
        """(name, slots) of agent ``agent_id``'s own Airflow pool: its week units run there, at most
        ``capacity`` at once (team.yaml)."""
        prefix = self.roadmap.dag_id_prefix if self.roadmap else "roadmap"
        agent = self.agents.get(agent_id)
        return f"{prefix}_agent_{agent_id}", agent.capacity if agent else 1

    @functools.cached_property
    def units_after(self) -> dict[str, int]:
        """Per unit, the length of the longest chain of units that depend on it (its critical path
        ahead): the tie-break between units of one priority."""
        dependants: dict[str, list[str]] = {u: [] for u in self.work_units}
        for unit in self.work_units.values():
            for dep in unit.depends_on:
                if dep in dependants:
                    dependants[dep].append(unit.id)
        memo: dict[str, int] = {}

        def after(unit_id: str, seen: frozenset) -> int:
            if unit_id not in memo:
                memo[unit_id] = max((1 + after(d, seen | {unit_id}) for d in dependants[unit_id] if d not in seen),
                                    default=0)
            return memo[unit_id]

        return {u: after(u, frozenset()) for u in self.work_units}

    @property
    def week_numbers(self) -> list[int]:
        """Every week the roadmap has, broken files included (from the phases or file names)."""
        numbers = set(self.week_files)
        if self.roadmap:
            numbers.update(w for p in self.roadmap.phases for w in p.weeks)
        return sorted(numbers)

    def kpis_due(self, point: m.DecisionPoint) -> list[m.Kpi]:
        """The KPIs validated at decision point ``point``: those due by its week, those it names,
        and those its gates' criteria name."""
        named = set(point.kpis) | {k for g in self.all_gates if g.id in point.gates for c in g.criteria for k in c.kpis}
        return [k for k in (self.kpis.kpis if self.kpis else [])
                if (k.by_week is not None and k.by_week <= point.week) or k.id in named]

    def phase_of_week(self, week: int) -> m.Phase | None:
        for phase in self.roadmap.phases if self.roadmap else []:
            if week in phase.weeks:
                return phase
        return None

    def week_of_day(self, day: int) -> int:
        per_week = self.roadmap.days_per_week if self.roadmap else 7
        return (day - 1) // per_week + 1

    def week_file(self, week: int) -> str:
        return self.week_files.get(week, f"weeks/week_{week:02d}.yaml")

    def issues_for(self, week: int | None = None, *, family: str | None = None) -> list[ConfigIssue]:
        """Issues in the files a DAG is built from: a week's DAG (``week``), the roadmap driver
        (None: every week file too, as it runs them all) or another ``family`` of DAGs."""
        files = FAMILY_FILES.get(family or "", FAMILY_FILES["week"])
        if family is None and week is None:
            files = FAMILY_FILES["week"] | {self.week_file(w) for w in self.week_numbers}
        elif week is not None:
            files = files | {self.week_file(week)}
        return [i for i in self.issues if i.file in files]

    def expand_agents(self, ids: list[str]) -> list[str]:
        """Agent ids with ``@enforcers`` replaced by every agent marked ``enforcer: true``."""
        out: list[str] = []
        for agent_id in ids:
            for one in ([a.id for a in self.agents.values() if a.enforcer] if agent_id == "@enforcers" else [agent_id]):
                if one not in out:
                    out.append(one)
        return out

    def priority_weight(self, unit: m.WorkUnit) -> int:
        return m.priority_weight(self.roadmap.priorities if self.roadmap else m.SEED_PRIORITIES, unit.priority)

    def task_weight(self, unit: m.WorkUnit) -> int:
        """Airflow ``priority_weight`` of the unit's task: its priority (IMMEDIATE > HIGH > MEDIUM >
        LOW), then the longer critical path ahead of it, when units compete for one agent's slots."""
        return self.priority_weight(unit) * 100 + min(self.units_after.get(unit.id, 0), 99)

    def raise_for_issues(self, week: int | None = None, *, all_files: bool = False) -> None:
        found = self.issues if all_files else self.issues_for(week)
        if found:
            raise ConfigError(found)

    def summary(self) -> str:
        return (
            f"agents={len(self.agents)} phases={len(self.roadmap.phases) if self.roadmap else 0} "
            f"weeks={len(self.weeks)} work_units={len(self.work_units)} gates={len(self.all_gates)} "
            f"kpis={len(self.kpis.kpis) if self.kpis else 0} "
            f"chains={len(self.operations.chains) if self.operations else 0}"
        )


def load_roadmap(directory: str | Path | None = None) -> RoadmapConfig:
    """Load and cross-check a roadmap folder. Never raises for bad content: see ``.issues``."""
    from castmatch.config.checks import cross_check

    directory = Path(directory) if directory else default_roadmap_dir()
    config = RoadmapConfig(directory=directory)
    if not directory.is_dir():
        config.issues.append(ConfigIssue(str(directory), 1, "", "roadmap folder not found"))
        return config

    targets: dict[str, tuple[str, type[BaseModel]]] = {
        "roadmap.yaml": ("roadmap", m.Roadmap),  # first: its limits apply to the other files
        "team.yaml": ("team", m.Team),
        "gates.yaml": ("gates", m.GatesFile),
        "kpis.yaml": ("kpis", m.KpisFile),
        "operations.yaml": ("operations", m.Operations),
        "llm.yaml": ("llm", m.LlmSettings),
    }
    limits = m.Limits()

    def load(file: Path, name: str, model: type[BaseModel]):
        source = read_yaml(file, name, config.issues, max_kb=limits.max_file_kb)
        if source is None:
            config.broken.add(name)
            return None
        config.sources[name] = source
        value = validate_model(source, model, config.issues)
        if value is None:
            config.broken.add(name)
        return value

    for name, (attr, model) in targets.items():
        if name in OPTIONAL_FILES and not (directory / name).exists():
            setattr(config, attr, model())
            continue
        setattr(config, attr, load(directory / name, name, model))
        if attr == "roadmap" and config.roadmap:
            limits = config.roadmap.limits

    weeks_dir = directory / "weeks"
    for file in sorted(weeks_dir.glob("*.y*ml")) if weeks_dir.is_dir() else []:
        name = f"weeks/{file.name}"
        match = WEEK_FILE.match(file.name)
        if not match:
            config.issues.append(ConfigIssue(name, 1, "", "week files are named week_NN.yaml"))
            continue
        number = int(match.group(1))
        config.week_files[number] = name
        week = load(file, name, m.Week)
        if week is None:
            continue
        if week.week != number:
            config.broken.add(name)
            config.issues.append(ConfigIssue(
                name, config.sources[name].line_of(("week",)), "week", f"says week {week.week} but the file is for week {number}"))
            continue
        config.weeks[number] = week

    _apply_defaults(config)
    cross_check(config)
    return config


def _apply_defaults(config: RoadmapConfig) -> None:
    """Defaults that depend on another file (a unit's priority on the roadmap's list, a gate's
    kind on the list it is in), applied once so every reader sees the effective value."""
    priorities = config.roadmap.priorities if config.roadmap else list(m.SEED_PRIORITIES)
    middle = priorities[len(priorities) // 2] if len(priorities) > 2 else priorities[-1]
    for week in config.weeks.values():
        for unit in week.work_units:
            if not unit.priority:
                object.__setattr__(unit, "priority", middle)
            if not unit.deliverable:
                object.__setattr__(unit, "deliverable", unit.title)
            if not unit.acceptance_criteria:  # the enforcers' reviews always have something to check
                object.__setattr__(unit, "acceptance_criteria", [
                    f"{unit.deliverable} is complete, correct and usable by the work that builds on it"])
    per_week = config.roadmap.days_per_week if config.roadmap else 7
    if config.gates:
        for group, kind in (("quality_gates", "quality"), ("success_gates", "success")):
            for gate in getattr(config.gates, group):
                if gate.kind is None:
                    object.__setattr__(gate, "kind", kind)
                if gate.deadline_day is None:
                    object.__setattr__(gate, "deadline_day", gate.week * per_week)
        for probe in config.gates.probes:
            if not probe.name:
                object.__setattr__(probe, "name", probe.id)
    if config.roadmap:
        for index, phase in enumerate(config.roadmap.phases, 1):
            if phase.number is None:
                object.__setattr__(phase, "number", index)
    for number, week in config.weeks.items():
        if not week.title:
            object.__setattr__(week, "title", f"Week {number}")


@functools.lru_cache(maxsize=8)
def _cached(directory: str, stamp: tuple) -> RoadmapConfig:
    return load_roadmap(directory)


def load_roadmap_cached(directory: str | Path | None = None) -> RoadmapConfig:
    """``load_roadmap`` memoised per process until a file in the folder changes."""
    directory = Path(directory) if directory else default_roadmap_dir()
    try:
        stamp = tuple(
            sorted((str(p), p.stat().st_mtime_ns) for p in directory.rglob("*.y*ml"))
        )
    except OSError:
        stamp = ()
    return _cached(str(directory), stamp)
