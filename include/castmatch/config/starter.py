"""``castmatch init``: a commented starter roadmap that validates and builds its DAGs, for a team to
edit into its own. Every file points editors at its JSON Schema (``.schema/``)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from castmatch.config.schema import SCHEMA_DIR, write_schemas

# Roles a starter team is made of, in order; the last agent is always the reviewer (enforcer).
BUILDERS = [
    ("lead-developer", "Lead Developer", "You are the lead developer. You set up the architecture, the repository "
     "and the conventions the others build on."),
    ("backend-developer", "Backend Developer", "You are the backend developer. You build the APIs and the data model "
     "and publish their contracts."),
    ("frontend-developer", "Frontend Developer", "You are the frontend developer. You build the user interface "
     "against the published API contracts."),
    ("data-engineer", "Data Engineer", "You are the data engineer. You build the pipelines and the reports."),
    ("devops-engineer", "DevOps Engineer", "You are the DevOps engineer. You own environments, deployment and "
     "monitoring."),
    ("qa-engineer", "QA Engineer", "You are the QA engineer. You write and run the tests."),
]
REVIEWER = ("reviewer", "Reviewer", "You are the reviewer. You check every deliverable against its acceptance "
            "criteria and can veto work that does not meet them.")


class StarterError(ValueError):
    """The starter cannot be written (a folder in the way, a bad option)."""


def _slug(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    if not slug or not slug[0].isalpha():
        slug = "team_" + slug
    return slug[:30]


def _header(kind: str, text: str) -> str:
    up = "../" if kind == "week" else ""  # week files live in weeks/
    return f"# yaml-language-server: $schema={up}{SCHEMA_DIR}/{kind}.schema.json\n# {text}\n"


def agents_for(count: int) -> list[tuple[str, str, str]]:
    builders = [BUILDERS[i % len(BUILDERS)] for i in range(count - 1)]
    out, seen = [], {}
    for agent_id, name, role in builders:
        n = seen[agent_id] = seen.get(agent_id, 0) + 1
        out.append((agent_id if n == 1 else f"{agent_id}-{n}", name if n == 1 else f"{name} {n}", role))
    return [*out, REVIEWER]


def render(name: str, agents: int, weeks: int, start: dt.date) -> dict[str, str]:
    """The starter's files (relative path -> text)."""
    if not 2 <= agents <= 50:
        raise StarterError(f"--agents must be between 2 and 50 (one is the reviewer), got {agents}")
    if not 1 <= weeks <= 52:
        raise StarterError(f"--weeks must be between 1 and 52, got {weeks}")
    prefix = _slug(name)
    team = agents_for(agents)
    builders, reviewer = team[:-1], team[-1]
    lead = builders[0][0]
    half = max(1, (weeks + 1) // 2)
    phases = [("build", "Build", list(range(1, half + 1)))]
    if weeks > half:
        phases.append(("launch", "Launch", list(range(half + 1, weeks + 1))))
    files: dict[str, str] = {}

    files["roadmap.yaml"] = _header("roadmap", f"{name}: the roadmap. Every field: docs/roadmap-schema.md.") + f"""
name: {name}
dag_id_prefix: {prefix}        # DAG ids: {prefix}_week_01 ..., {prefix}_roadmap
mission: Deliver the first version of {name} in {weeks} week{'s' if weeks > 1 else ''}
timezone: UTC                  # IANA name (e.g. Asia/Kolkata): days, deadlines and crons use it
start_date: "{start.isoformat()}"      # Day 1
clock:
  mode: real                   # `make run` runs the roadmap on the compressed clock (1 s a day)
# priorities: [IMMEDIATE, HIGH, MEDIUM, LOW]   # most urgent first; this is the default
# connections: {{redis: castmatch_redis, slack: castmatch_slack}}   # Airflow connection ids (defaults)
phases:
""" + "".join(f"  - id: {pid}\n    name: {pname}\n    weeks: {pweeks}\n" for pid, pname, pweeks in phases)

    agent_blocks = []
    for agent_id, agent_name, role in builders:
        depends = "" if agent_id == lead else f"\n    depends_on: [{lead}]"
        agent_blocks.append(f"""  - id: {agent_id}
    name: {agent_name}
    role: {role}{depends}
""")
    agent_blocks.append(f"""  - id: {reviewer[0]}
    name: {reviewer[1]}
    track: quality
    role: {reviewer[2]}
    enforcer: true               # reviews deliverables; gates name it (or '@enforcers')
    veto: true                   # its failed review can veto a gate
""")
    files["team.yaml"] = _header("team", "The agents. Only id, name and role are required.") + """
default_model: claude-sonnet-4-5     # an agent may set its own `model:`
tracks: [build, quality]             # the first is the default track
agents:
""" + "".join(agent_blocks)

    for week in range(1, weeks + 1):
        first = (week - 1) * 7 + 1
        units = [f"""  - id: w{week:02d}_{_slug(lead)}
    title: {'Set up the foundations' if week == 1 else f'Plan and unblock week {week}'}
    agents: [{lead}]
    days: {first}-{first + 1}               # a span of days; `day: {first}` for one day
    priority: HIGH
    deliverable: {'Architecture note, repository and conventions' if week == 1 else f'Week {week} plan with owners'}
    acceptance_criteria:
      - Every other agent can start from it
"""]
        for agent_id, agent_name, _ in builders[1:]:
            units.append(f"""  - id: w{week:02d}_{_slug(agent_id)}
    title: {agent_name} work of week {week}
    agents: [{agent_id}]
    days: {first + 2}-{first + 4}
    depends_on: [w{week:02d}_{_slug(lead)}]
    acceptance_criteria:
      - Works end to end and is documented
""")
        units.append(f"""  - id: w{week:02d}_review
    title: Review of week {week}
    agents: [{reviewer[0]}]
    day: {first + 5}
    priority: LOW
    depends_on: [{', '.join(f'w{week:02d}_{_slug(a[0])}' for a in builders)}]
    acceptance_criteria:
      - Every deliverable of the week is checked against its criteria
""")
        files[f"weeks/week_{week:02d}.yaml"] = _header("week", f"Week {week}: one Airflow task per work unit.") + f"""
week: {week}
title: {'Foundations' if week == 1 else f'Week {week}'}
work_units:
""" + "".join(units)

    guarded = [f"w01_{_slug(a[0])}" for a in builders[1:]]
    last = weeks * 7
    files["gates.yaml"] = _header("gates", "Gates (a veto blocks work until a person overrides it) and go/no-go.") + f"""
quality_gates:
  - id: foundation_gate
    name: Foundation gate
    week: 1                       # runs in week 1's DAG
    deadline_day: 2
    enforcers: ['@enforcers']     # every agent with enforcer: true
    veto: true
    blocks: [{', '.join(guarded) if guarded else ''}]
    criteria:
      - id: foundation_delivered
        text: The foundations are delivered
        kind: deliverable
        work_units: [w01_{_slug(lead)}]
      - id: foundation_reviewed
        text: The reviewer accepts the foundations
        kind: review
        reviewers: ['@enforcers']
        work_units: [w01_{_slug(lead)}]
decision_points:
  - id: final_check
    name: Final check
    day: {last}
    week: {weeks}
    gates: [foundation_gate]
    go: release
    no_go: extend by a week and decide again
"""
    files["kpis.yaml"] = _header("kpis", "KPIs, validated by Great Expectations at every decision point they are due.") + f"""
kpis:
  - id: memory_accuracy
    name: Agent memory accuracy
    comparator: ">="
    threshold: 95
    unit: "%"
    by_week: {weeks}
    source:
      kind: memory_check          # handoff artefacts recalled intact from the agents' memory (Redis)
      metric: context_preservation_pct
"""
    consumers = guarded
    files["operations.yaml"] = _header("operations", "Dependency chains and the daily standup.") + f"""
chains:
  - id: foundations_to_team
    name: Foundations to the team
    trigger:
      description: the foundations are delivered and the foundation gate passed
      all_of: [w01_{_slug(lead)}]
      gates: [foundation_gate]
    action:
      description: share the foundations with every builder
      notify: [{', '.join(a[0] for a in builders[1:]) or lead}]
      artifacts: [architecture note]
      consumers: [{', '.join(consumers)}]
standup:
  cron: "0 9 * * 1-5"             # 09:00 on weekdays, in the roadmap's timezone
"""
    return files


def write_starter(directory: Path, *, name: str, agents: int, weeks: int, start: dt.date | None = None,
                  force: bool = False) -> list[Path]:
    """Write the starter into ``directory`` (refused if it holds YAML, unless ``force``)."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise StarterError(f"{directory} is a file, not a folder")
    if directory.is_dir() and any(directory.rglob("*.y*ml")) and not force:
        raise StarterError(f"{directory} already holds a roadmap (YAML files); choose an empty folder or pass --force")
    start = start or (dt.date.today() + dt.timedelta(days=7 - dt.date.today().weekday()))  # next Monday
    files = render(name, agents, weeks, start)
    written = []
    for relative, text in files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written + write_schemas(directory)
