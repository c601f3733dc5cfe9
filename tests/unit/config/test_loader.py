"""The CastMatch config loads completely; broken configs give messages naming file, line and field."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from castmatch.config import ConfigError, load_roadmap

CASTMATCH_BIN = Path(sys.executable).parent / "castmatch"


def line_of(path: Path, needle: str, occurrence: int = 1) -> int:
    """1-based line of the ``occurrence``-th line containing ``needle``."""
    hits = [i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line]
    assert len(hits) >= occurrence, f"{needle!r} not in {path}"
    return hits[occurrence - 1]


def replace(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, count))


class TestCastMatchConfig:
    def test_loads_without_issues_and_with_exact_counts(self):
        config = load_roadmap()
        assert [str(i) for i in config.issues] == []
        assert config.summary() == "agents=11 phases=3 weeks=12 work_units=151 gates=6 kpis=10 chains=6"

    def test_seed_agents_tracks_and_baseline(self):
        config = load_roadmap()
        tracks = [a.track for a in config.agents.values()]
        assert tracks.count("development") == 6 and tracks.count("design_quality") == 5
        devops = config.agents["devops-infrastructure-developer"]
        assert (devops.baseline_progress, devops.baseline_status, devops.depends_on) == (70, "ACTIVE", [])
        ai = config.agents["ai-ml-developer"]
        assert (ai.baseline_progress, ai.baseline_status) == (30, "BLOCKED")

    def test_every_week_has_work_and_every_agent_is_used(self):
        config = load_roadmap()
        assert sorted(config.weeks) == list(range(1, 13))
        used = {a for u in config.work_units.values() for a in u.agents}
        assert used == set(config.agents)
        phases = {p.number: p.weeks for p in config.roadmap.phases}
        assert phases == {1: [1, 2, 3, 4], 2: [5, 6, 7, 8], 3: [9, 10, 11, 12]}

    def test_week_one_critical_path(self):
        config = load_roadmap()
        units = config.work_units
        assert units["fix_redis_connection"].priority == "IMMEDIATE"
        assert units["fix_redis_connection"].agents == ["devops-infrastructure-developer"]
        assert units["create_short_term_memory_redis"].day == 3
        assert units["connect_chat_ui_to_claude"].day == 5
        assert units["e2e_conversation_flow_testing"].day == 7

    def test_gates_decisions_and_operations_are_encoded(self):
        config = load_roadmap()
        quality = {g.name: g for g in config.gates.quality_gates}
        assert len(quality) == 3 and all(g.veto for g in quality.values())
        assert [g.deadline_day for g in config.gates.success_gates] == [3, 7, 14]
        days = {d.day for d in config.gates.decision_points}
        assert {7, 14} <= days
        ops = config.operations
        assert ops.standup.cron == "0 9 * * *"
        assert [e.level for e in ops.escalation] == [1, 2, 3]
        assert config.roadmap.timezone == "Asia/Kolkata"


# (file, old text, new text, expected message as a format string with {line} of `line_needle`)
BROKEN = {
    "unknown_agent_dependency": (
        "team.yaml", "depends_on: [devops-infrastructure-developer]\n    depends_on_note: DevOps (GPU/vector infrastructure)",
        "depends_on: [backend-apii]\n    depends_on_note: DevOps (GPU/vector infrastructure)",
        "backend-apii", "team.yaml:{line}: agents[3].depends_on: unknown agent 'backend-apii'",
    ),
    "agent_dependency_cycle": (
        "team.yaml", "depends_on: []\n    depends_on_note: None (Foundation agent)",
        "depends_on: [ai-ml-developer]\n    depends_on_note: None (Foundation agent)",
        "depends_on: [ai-ml-developer]",
        "team.yaml:{line}: agents[0].depends_on: dependency cycle: devops-infrastructure-developer -> ai-ml-developer -> devops-infrastructure-developer",
    ),
    "duplicate_agent": (
        "team.yaml", "- id: layout-grid-engineer", "- id: design-review-qa", ("- id: design-review-qa", 2),
        "team.yaml:{line}: agents[10].id: duplicate agent id 'design-review-qa' (also agents[6])",
    ),
    "unit_dependency_cycle": (
        "weeks/week_01.yaml", "    day: 1\n    priority: IMMEDIATE\n    deliverable: Root cause",
        "    day: 1\n    priority: IMMEDIATE\n    depends_on: [restart_configure_containers]\n    deliverable: Root cause",
        "depends_on: [restart_configure_containers]",
        "weeks/week_01.yaml:{line}: work_units[0].depends_on: dependency cycle: fix_redis_connection -> restart_configure_containers -> fix_redis_connection",
    ),
    "day_outside_week": (
        "weeks/week_01.yaml", "    day: 5\n", "    day: 9\n", "day: 9",
        "weeks/week_01.yaml:{line}: work_units[WEEK1_DAY5_INDEX].day: day 9 is outside week 1 (days 1-7)",
    ),
    "unknown_work_unit": (
        "weeks/week_01.yaml", "depends_on: [fix_redis_connection]\n    deliverable: Container",
        "depends_on: [fix_redis_conection]\n    deliverable: Container", "fix_redis_conection",
        "weeks/week_01.yaml:{line}: work_units[1].depends_on: unknown work unit 'fix_redis_conection' (did you mean "
        "'fix_redis_connection'?)",
    ),
    "unknown_field": (
        "weeks/week_01.yaml", "    priority: IMMEDIATE\n    deliverable: Root", "    prioirty: IMMEDIATE\n    deliverable: Root",
        "prioirty", "weeks/week_01.yaml:{line}: work_units[0].prioirty: unknown field",
    ),
    "bad_priority": (
        "weeks/week_01.yaml", "    priority: IMMEDIATE\n    deliverable: Root", "    priority: URGENT\n    deliverable: Root",
        "URGENT", "weeks/week_01.yaml:{line}: work_units[0].priority: unknown priority 'URGENT' (roadmap.yaml priorities: IMMEDIATE, HIGH, "
        "MEDIUM, LOW)",
    ),
    "duplicate_key": (
        "weeks/week_01.yaml", "    title: Fix Redis connection issues\n", "    title: Fix Redis connection issues\n    title: again\n",
        "title: again", "weeks/week_01.yaml:{line}: work_units[0].title: duplicate key (first at line LINE_MINUS_1)",
    ),
    "invalid_yaml": (
        "weeks/week_01.yaml", "    title: Fix Redis connection issues\n", "    title: [Fix Redis connection issues\n",
        None, "weeks/week_01.yaml:",
    ),
    "unknown_timezone": (
        "roadmap.yaml", "timezone: Asia/Kolkata", "timezone: Asia/Bombay_Nowhere", "Asia/Bombay_Nowhere",
        "roadmap.yaml:{line}: timezone: Value error, unknown timezone 'Asia/Bombay_Nowhere'",
    ),
}


class TestBrokenConfigs:
    @pytest.mark.parametrize("case", sorted(BROKEN))
    def test_message_names_file_line_and_field(self, case, roadmap_copy):
        file, old, new, needle, expected = BROKEN[case]
        path = roadmap_copy / file
        replace(path, old, new)
        if "WEEK1_DAY5_INDEX" in expected:
            config = load_roadmap()
            index = [u.day for u in config.weeks[1].work_units].index(5)
            expected = expected.replace("WEEK1_DAY5_INDEX", str(index))
        if needle:
            text, occurrence = needle if isinstance(needle, tuple) else (needle, 1)
            line = line_of(path, text, occurrence)
            expected = expected.format(line=line).replace("LINE_MINUS_1", str(line - 1))
        messages = [str(i) for i in load_roadmap(roadmap_copy).issues]
        if needle:
            assert expected in messages, "\n".join(messages)
        else:
            assert any(m.startswith(expected) and "invalid YAML" in m for m in messages), messages

    def test_gate_criterion_naming_nothing(self, roadmap_copy):
        path = roadmap_copy / "gates.yaml"
        text = path.read_text()
        match = re.search(r"\n(\s+)work_units: \[[^\]]*\]\n", text)
        assert match, "gates.yaml has a deliverable criterion"
        path.write_text(text[: match.start()] + "\n" + match.group(1) + "work_units: []\n" + text[match.end():])
        messages = [str(i) for i in load_roadmap(roadmap_copy).issues]
        assert any(re.match(r"gates\.yaml:\d+: \w+\[\d+\]\.criteria\[\d+\]: criterion '\w+' of kind deliverable names nothing: set work_units", m)
                   for m in messages), messages

    def test_missing_week_file_is_charged_to_that_week_only(self, roadmap_copy):
        (roadmap_copy / "weeks" / "week_05.yaml").unlink()
        config = load_roadmap(roadmap_copy)
        assert "weeks/week_05.yaml:1: file not found (phase 'phase_2' in roadmap.yaml lists week 5)" in [
            str(i) for i in config.issues_for(5)
        ]
        assert config.issues_for(1) == [] and config.issues_for(4) == []

    def test_raise_for_issues_lists_every_problem(self, roadmap_copy):
        replace(roadmap_copy / "weeks" / "week_01.yaml", "    day: 5\n", "    day: 9\n")
        replace(roadmap_copy / "team.yaml", "    baseline_progress: 70", "    model: 7\n    baseline_progress: 70")
        config = load_roadmap(roadmap_copy)
        with pytest.raises(ConfigError) as err:
            config.raise_for_issues(1)
        text = str(err.value)
        assert "weeks/week_01.yaml" in text and "day 9 is outside week 1" in text
        assert "team.yaml" in text and "agents[0].model" in text


class TestValidateCommand:
    def test_success_prints_summary_last_and_exits_zero(self):
        out = subprocess.run([str(CASTMATCH_BIN), "validate"], capture_output=True, text=True)
        assert out.returncode == 0, out.stdout + out.stderr
        assert out.stdout.strip().splitlines()[-1] == load_roadmap().summary()
        assert out.stdout.strip().splitlines()[-1].startswith("agents=11 phases=3 weeks=12 ")

    def test_failure_lists_every_error_and_exits_one(self, roadmap_copy):
        replace(roadmap_copy / "weeks" / "week_01.yaml", "    day: 5\n", "    day: 9\n")
        replace(roadmap_copy / "team.yaml", "depends_on: [devops-infrastructure-developer]\n    depends_on_note: DevOps (GPU",
                "depends_on: [backend-apii]\n    depends_on_note: DevOps (GPU")
        out = subprocess.run([str(CASTMATCH_BIN), "validate", str(roadmap_copy)], capture_output=True, text=True)
        assert out.returncode == 1
        assert "day 9 is outside week 1" in out.stdout
        assert "unknown agent 'backend-apii'" in out.stdout

    def test_a_decision_point_that_validates_no_measured_kpi_is_rejected(self, roadmap_copy):
        # Day 7's only KPI due is service_uptime (by_week 1): make it due later and the Day 7
        # suite would be empty, which checks nothing
        replace(roadmap_copy / "kpis.yaml", "    by_week: 1\n", "    by_week: 2\n")
        out = subprocess.run([str(CASTMATCH_BIN), "validate", str(roadmap_copy)], capture_output=True, text=True)
        assert out.returncode == 1
        line = next(x for x in out.stdout.splitlines() if "day7_check" in x)
        assert line.startswith("gates.yaml:") and "validates no KPI" in line and "empty Great Expectations suite" in line
