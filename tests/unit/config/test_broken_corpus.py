"""A corpus of broken roadmaps, each checked the way a person meets it: `castmatch validate DIR`
exits 1, names the file, the line and the field of the root cause, shows no traceback, and says it
in at most 3 lines (follow-on errors are counted, not listed)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "include" / "roadmaps" / "example"
CASTMATCH = ROOT / "include" / "roadmaps" / "castmatch"
CASTMATCH_BIN = Path(sys.executable).parent / "castmatch"

# case -> (roadmap, file, old text, new text (None: the file's whole new content), the root error:
# a regex matched against the first line printed; it must name file:line and the field)
CORPUS: dict[str, tuple[Path, str, str | None, str, str]] = {
    "unclosed_bracket_in_week": (CASTMATCH, "weeks/week_03.yaml", "title: ", "title: [",
                                 r"^weeks/week_03\.yaml:\d+: invalid YAML"),
    "bad_indentation": (EXAMPLE, "team.yaml", "    name: Backend Developer", "      name: Backend Developer",
                        r"^team\.yaml:\d+: invalid YAML"),
    "tab_indentation": (EXAMPLE, "kpis.yaml", "    threshold: 95", "\tthreshold: 95", r"^kpis\.yaml:\d+: invalid YAML"),
    "wrong_type_int": (EXAMPLE, "roadmap.yaml", "timezone: UTC", "timezone: UTC\ndays_per_week: seven",
                       r"^roadmap\.yaml:\d+: days_per_week: Input should be a valid integer"),
    "wrong_type_list": (EXAMPLE, "roadmap.yaml", "    weeks: [1, 2]", "    weeks: one-and-two",
                        r"^roadmap\.yaml:16: phases\[0\]\.weeks: Input should be a valid list"),
    "missing_agent_role": (CASTMATCH, "team.yaml", "    role: >-\n      You are the backend API developer",
                           "    notes: >-\n      You are the backend API developer",
                           r"^team\.yaml:\d+: agents\[1\]\.(notes: unknown field|role: field required)"),
    "unknown_field": (EXAMPLE, "weeks/week_01.yaml", "    priority: HIGH", "    prioirty: HIGH",
                      r"^weeks/week_01\.yaml:11: work_units\[0\]\.prioirty: unknown field"),
    "unknown_agent": (EXAMPLE, "weeks/week_01.yaml", "agents: [lead-developer]", "agents: [lead-develper]",
                      r"^weeks/week_01\.yaml:9: work_units\[0\]\.agents: unknown agent 'lead-develper' \(did you mean 'lead-developer'\?\)"),
    "unknown_work_unit": (EXAMPLE, "gates.yaml", "        work_units: [w01_lead_developer]\n      - id: foundation_reviewed",
                          "        work_units: [w01_lead_dev]\n      - id: foundation_reviewed",
                          r"^gates\.yaml:\d+: quality_gates\[0\]\.criteria\[0\]\.work_units: unknown work unit 'w01_lead_dev'"),
    "unknown_gate": (EXAMPLE, "gates.yaml", "    gates: [foundation_gate]", "    gates: [foundations_gate]",
                     r"^gates\.yaml:\d+: decision_points\[0\]\.gates: unknown gate 'foundations_gate'"),
    "unknown_chain_gate": (EXAMPLE, "operations.yaml", "      gates: [foundation_gate]", "      gates: [launch_gate]",
                           r"^operations\.yaml:10: chains\[0\]\.trigger\.gates: unknown gate 'launch_gate'"),
    "unit_cycle": (EXAMPLE, "weeks/week_01.yaml", "    priority: HIGH\n", "    priority: HIGH\n    depends_on: [w01_review]\n",
                   r"^weeks/week_01\.yaml:\d+: work_units\[0\]\.depends_on: dependency cycle: w01_lead_developer -> w01_review"),
    "agent_cycle": (EXAMPLE, "team.yaml", "    name: Lead Developer\n", "    name: Lead Developer\n    depends_on: [backend-developer]\n",
                    r"^team\.yaml:\d+: agents\[0\]\.depends_on: dependency cycle: lead-developer -> backend-developer"),
    "bad_cron": (EXAMPLE, "operations.yaml", 'cron: "0 9 * * 1-5"', 'cron: "0 9 * *"',
                 r"^operations\.yaml:17: standup\.cron: standup: cron '0 9 \* \*' needs 5 fields"),
    "bad_cron_value": (EXAMPLE, "operations.yaml", 'cron: "0 9 * * 1-5"', 'cron: "0 25 * * 1-5"',
                       r"^operations\.yaml:17: standup\.cron: standup: invalid cron '0 25 \* \* 1-5'"),
    "bad_checkpoint_cron": (EXAMPLE, "operations.yaml", "standup:", "checkpoints:\n  - id: weekly_review\n    name: Weekly review\n"
                            "    cadence: weekly\n    cron: every friday\nstandup:",
                            r"^operations\.yaml:\d+: checkpoints\[0\]\.cron: checkpoint 'weekly_review': cron 'every friday'"),
    "bad_timezone": (EXAMPLE, "roadmap.yaml", "timezone: UTC", "timezone: Asia/Mumbai",
                     r"^roadmap\.yaml:7: timezone: Value error, unknown timezone 'Asia/Mumbai'"),
    "bad_start_date": (EXAMPLE, "roadmap.yaml", 'start_date: "2026-12-07"', 'start_date: "07/12/2026"',
                       r"^roadmap\.yaml:8: start_date: Value error, not an ISO date"),
    "misspelt_metric": (EXAMPLE, "kpis.yaml", "metric: context_preservation_pct", "metric: context_preservation_pc",
                        r"^kpis\.yaml:13: kpis\[0\]\.source\.metric: unknown memory_check metric 'context_preservation_pc' "
                        r"\(known: context_preservation_pct\) \(did you mean 'context_preservation_pct'\?\)"),
    "kind_list_mismatch": (EXAMPLE, "gates.yaml", "    name: Foundation gate\n", "    name: Foundation gate\n    kind: success\n",
                           r"^gates\.yaml:7: quality_gates\[0\]\.kind: kind 'success' contradicts the list the gate is in"),
    "days_outside_week": (EXAMPLE, "weeks/week_01.yaml", "    days: 3-5\n", "    days: 6-9\n",
                          r"^weeks/week_01\.yaml:18: work_units\[1\]\.days: day 6-9 is outside week 1 \(days 1-7\)"),
    "days_backwards": (EXAMPLE, "weeks/week_01.yaml", "    days: 3-5\n", "    days: 5-3\n",
                       r"^weeks/week_01\.yaml:15: work_units\[1\]: Value error, days '5-3'"),
    "undeclared_priority": (EXAMPLE, "weeks/week_01.yaml", "    priority: HIGH", "    priority: URGENT",
                            r"^weeks/week_01\.yaml:11: work_units\[0\]\.priority: unknown priority 'URGENT'"),
    "veto_without_veto_agent": (EXAMPLE, "team.yaml", "    veto: true ", "    veto: false ",
                                r"^gates\.yaml:10: quality_gates\[0\]\.veto: no enforcer of gate 'foundation_gate' has veto power"),
    "unknown_track": (EXAMPLE, "team.yaml", "    track: quality", "    track: qa",
                      r"^team\.yaml:\d+: agents\[3\]\.track: unknown track 'qa'"),
    "duplicate_key": (EXAMPLE, "kpis.yaml", "    threshold: 95", "    threshold: 95\n    threshold: 90",
                      r"^kpis\.yaml:9: kpis\[0\]\.threshold: duplicate key \(first at line 8\)"),
    "empty_file": (EXAMPLE, "gates.yaml", None, "", r"^gates\.yaml:1: file is empty"),
    "not_a_mapping": (EXAMPLE, "kpis.yaml", None, "- just\n- a list\n", r"^kpis\.yaml:1: expected a mapping"),
    "oversized_file": (EXAMPLE, "operations.yaml", "standup:", "#" + "x" * 600_000 + "\nstandup:",
                       r"^operations\.yaml:1: file is \d+ KB, over the limit of 512 KB \(roadmap\.yaml limits\.max_file_kb\)"),
    "too_many_agents": (EXAMPLE, "roadmap.yaml", "phases:", "limits: {max_agents: 2}\nphases:",
                        r"^team\.yaml:\d+: agents: 4 agents, over the limit of 2 \(roadmap\.yaml limits\.max_agents\)"),
}


def validate(directory: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(CASTMATCH_BIN), "validate", str(directory)], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_one_root_cause_is_one_located_error(case, tmp_path):
    source, file, old, new, root = CORPUS[case]
    roadmap = tmp_path / "roadmap"
    shutil.copytree(source, roadmap)
    path = roadmap / file
    if old is None:
        path.write_text(new)
    else:
        text = path.read_text()
        assert old in text, f"{old!r} not in {file}"
        path.write_text(text.replace(old, new, 1))
    out = validate(roadmap)
    lines = out.stdout.strip().splitlines()
    assert out.returncode == 1, out.stdout + out.stderr
    assert "Traceback" not in out.stdout + out.stderr
    assert lines and re.match(root, lines[0]), "\n".join(lines)
    assert re.match(r"^[\w/.]+\.yaml:\d+: ", lines[0])  # file:line first, then the field
    assert len(lines) <= 3, "\n".join(lines)
    for follow_on in lines[1:]:
        assert follow_on.startswith(file) or re.search(r"further errors? suppressed", follow_on), follow_on


def test_the_corpus_is_broad():
    assert len(CORPUS) >= 20


def test_follow_on_errors_are_counted_not_listed(tmp_path):
    roadmap = tmp_path / "roadmap"
    shutil.copytree(CASTMATCH, roadmap)
    team = roadmap / "team.yaml"
    team.write_text(team.read_text().replace("  - id: backend-api-developer\n    name: Backend API Developer\n",
                                             "  - id: backend-api-developer\n", 1))
    out = validate(roadmap)
    lines = out.stdout.strip().splitlines()
    assert out.returncode == 1
    assert lines[0].startswith("team.yaml:") and "agents[1].name: field required" in lines[0]
    match = re.search(r"(\d+) further errors suppressed that depend on it", lines[-1])
    assert match and int(match.group(1)) > 100, lines  # every "unknown agent" that followed from it
    assert len(lines) == 2
