"""Typed models of a roadmap folder: the team, the roadmap, gates, KPIs and operations.

Pure data: no store, no LLM, no Airflow. Field-level checks live here; checks that span
files (unknown ids, cycles, a day outside its week) live in ``castmatch.config.checks``.
"""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ID_PATTERN = r"^[a-z][a-z0-9_-]*$"


class Strict(BaseModel):
    """Base for config models: unknown keys are errors, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


SEED_PRIORITIES = ("IMMEDIATE", "HIGH", "MEDIUM", "LOW")
DEFAULT_TRACK = "default"
DAY_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+))?\s*$")


def priority_weight(priorities: list[str] | tuple[str, ...], priority: str) -> int:
    """Airflow ``priority_weight`` of ``priority`` in the team's ordered list (first = most
    urgent): higher runs first when slots are scarce. The seed's four give 40, 30, 20, 10."""
    ordered = list(priorities) or list(SEED_PRIORITIES)
    index = ordered.index(priority) if priority in ordered else len(ordered)
    return (len(ordered) - index) * 10


# ---------------------------------------------------------------------------- team


def _id_or_object(schema: dict, _cls) -> None:
    """JSON Schema of a model that may also be written as its bare id (``tracks: [dev, qa]``)."""
    as_object = dict(schema)
    schema.clear()
    schema["anyOf"] = [{"type": "string", "pattern": ID_PATTERN}, as_object]


class Track(Strict):
    """A line of work (CastMatch: development, design_quality): groups agents in reports, and may
    send their tasks to their own Airflow queue (CeleryExecutor workers listening on it)."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_id_or_object)

    id: str = Field(pattern=ID_PATTERN, description="Unique track id; agents name it in `track`")
    name: str = Field(default="", description="Shown in reports (default: the id)")
    queue: str = Field(default="", description="Airflow queue of the track's agent tasks (default: the executor's)")

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value):
        return {"id": value} if isinstance(value, str) else value


class Agent(Strict):
    id: str = Field(pattern=ID_PATTERN, description="Unique id; other files name the agent by it")
    name: str = Field(description="Display name")
    role: str = Field(min_length=1, description="System prompt: who the agent is and what it owns")
    responsibilities: list[str] = Field(default_factory=list, description="Added to the system prompt")
    track: str = Field(default="", description="One of team.yaml tracks (default: the first track)")
    model: str = Field(default="", description="Claude model (default: team.yaml default_model)")
    depends_on: list[str] = Field(default_factory=list, description="Agents whose work this agent builds on")
    enforcer: bool = Field(default=False, description="Reviews other agents' deliverables; gates may name it as "
                           "an enforcer or reviewer ('@enforcers' names every enforcer)")
    veto: bool = Field(default=False, description="An enforcer whose failed review can veto a gate (needs enforcer: true)")
    can_cover: list[str] = Field(default_factory=list, description="Agents whose units this agent may take over when "
                                 "an incident reassigns them ('*': anyone's)")
    capacity: int = Field(default=2, ge=1, description="Units the agent works on at once: its Airflow pool "
                          "<prefix>_agent_<id> has this many slots (workload balancing moves work beyond it)")
    preparatory: list[str] = Field(default_factory=list, description="Work units the agent takes up when idle (seed: "
                                   "Idle Agents - assign preparatory tasks), in order")
    short_name: str = Field(default="", description="Label in the status matrix (default: the id)")
    current_task: str = Field(default="", description="Shown until the agent's first stored deliverable")
    next_milestone: str = Field(default="", description="Told to the agent in its prompt")
    depends_on_note: str = Field(default="", description="Free text about the dependencies")
    # Optional extras: the seed's snapshot of a project already under way, shown until the
    # agent's first stored run.
    baseline_progress: int = Field(default=0, ge=0, le=100, description="Snapshot: % done before the first run")
    baseline_status: Literal["ACTIVE", "WAITING", "BLOCKED", "STANDBY"] = Field(
        default="STANDBY", description="Snapshot: status before the first run")
    baseline_task: str = Field(default="", description="Snapshot: short current-task label of the status matrix")
    registry_status: str = Field(default="", description="Snapshot: the registry's wording, e.g. 'PARTIALLY ACTIVE'")

    @model_validator(mode="after")
    def _veto_needs_enforcer(self):
        if self.veto and not self.enforcer:
            raise ValueError("veto: true needs enforcer: true")
        return self

    @property
    def label(self) -> str:
        return self.short_name or self.id


class Team(Strict):
    default_model: str = Field(default="claude-sonnet-4-5", description="Model of every agent that sets none")
    tracks: list[Track] = Field(default_factory=lambda: [Track(id=DEFAULT_TRACK)],
                                description="Lines of work agents belong to (a name, or id/name/queue)")
    agents: list[Agent] = Field(min_length=1, description="The agents (at least one)")

    @model_validator(mode="after")
    def _defaults(self):
        # Applied once here, so every reader sees the agent's effective model and track.
        first_track = self.tracks[0].id if self.tracks else DEFAULT_TRACK
        for agent in self.agents:
            if not agent.model:
                object.__setattr__(agent, "model", self.default_model)
            if not agent.track:
                object.__setattr__(agent, "track", first_track)
        return self

    def track(self, track_id: str) -> Track | None:
        return next((t for t in self.tracks if t.id == track_id), None)


# ---------------------------------------------------------------------------- roadmap


class ClockConfig(Strict):
    mode: Literal["real", "compressed"] = Field(default="real", description="real: Day 1 is start_date; compressed: days last compressed_day_seconds (demos, tests); a run may choose")
    # In compressed mode one roadmap day lasts this many seconds.
    compressed_day_seconds: float = Field(default=1.0, gt=0, description="Length of one roadmap day on the compressed clock")


class Phase(Strict):
    id: str = Field(pattern=ID_PATTERN, description="Unique phase id")
    number: int | None = Field(default=None, ge=1, description="Default: its place in the list (1, 2, ...)")
    name: str = Field(description="Display name")
    weeks: list[int] = Field(min_length=1, description="Week numbers of the phase; every week file belongs to exactly one phase")
    primary_agents: list[str] = Field(default_factory=list, description="Agents leading the phase (reports only)")
    objective: str = Field(default="", description="Told to every agent in its prompt")


class Connections(Strict):
    """Airflow connection ids, so two roadmaps in one Airflow can use different services. The
    Claude connection is ``llm.yaml`` ``conn_id``."""

    redis: str = Field(default="castmatch_redis", description="Rate limiter, agent memory, Redis probes")
    slack: str = Field(default="castmatch_slack", description="Announcements (webhook URL in the password or host)")
    slack_api: str = Field(default="castmatch_slack_api", description="Alerts through chat.postMessage (bot token in "
                           "the password; used instead of the webhook when it is defined)")
    slack_channel: str = Field(default="#castmatch-alerts", description="chat.postMessage channel (the connection's "
                               "extra `channel` wins)")


class Limits(Strict):
    """Refuse a folder beyond these sizes (a runaway generator, a pasted log) before building DAGs."""

    max_file_kb: int = Field(default=512, ge=1, description="Largest YAML file")
    max_agents: int = Field(default=100, ge=1, description="Most agents in team.yaml")
    max_weeks: int = Field(default=104, ge=1, description="Most weeks in the roadmap")
    max_work_units: int = Field(default=2000, ge=1, description="In the whole roadmap")


class Roadmap(Strict):
    name: str = Field(description="Display name of the program")
    dag_id_prefix: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="Prefix of every DAG id (<prefix>_week_01, <prefix>_roadmap ...) and of stored state")
    mission: str = Field(default="", description="One sentence every agent's prompt starts from")
    target: str = Field(default="", description="What success looks like (prompt and reports)")
    platform: str = Field(default="", description="What is being built on (prompt)")
    timezone: str = Field(default="UTC", description="IANA name, e.g. Asia/Kolkata; days and crons use it")
    start_date: str = Field(description="ISO date of Day 1, in the roadmap's timezone")
    clock: ClockConfig = Field(default=ClockConfig(), description="How roadmap days map to time")
    days_per_week: int = Field(default=7, ge=1, le=7, description="Roadmap days per week (week N = days (N-1)*d+1 .. N*d)")
    priorities: list[str] = Field(default_factory=lambda: list(SEED_PRIORITIES), min_length=1,
                                  description="Work-unit priorities, most urgent first (default: the seed's four)")
    connections: Connections = Field(default_factory=lambda: Connections(),
                                     description="Airflow connection ids this roadmap uses")
    limits: Limits = Field(default_factory=lambda: Limits(), description="Sizes beyond which the folder is refused")
    phases: list[Phase] = Field(min_length=1, description="The phases, in order")

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r}") from None
        return value

    @field_validator("start_date")
    @classmethod
    def _iso_date(cls, value: str) -> str:
        import datetime as dt

        try:
            dt.date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"not an ISO date (YYYY-MM-DD): {value!r}") from None
        return value


class WorkUnit(Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="Unique in the roadmap; also the Airflow task id")
    title: str = Field(description="What the unit is, in a few words")
    agents: list[str] = Field(min_length=1, description="First is the lead, the others collaborate")
    day: int | None = Field(default=None, ge=1, description="Roadmap day (Day 1 = start_date); or use days")
    days: str | None = Field(default=None, description="A span of roadmap days, e.g. '1-3' (late after its last day)")
    priority: str = Field(default="", description="One of roadmap.yaml priorities (default: the middle one)")
    estimate_hours: float | None = Field(default=None, gt=0, description="Optional estimate (reports)")
    depends_on: list[str] = Field(default_factory=list, description="Work units delivered before this one starts")
    deliverable: str = Field(default="", description="What the unit produces (default: the title)")
    acceptance_criteria: list[str] = Field(default_factory=list, description="Checked by the enforcers' reviews (default: one saying the deliverable is complete and usable)")
    weight: float = Field(default=1.0, gt=0, description="Share of the agent's progress")
    source: str = Field(default="", description="Optional: where in the source plan this unit comes from")

    @model_validator(mode="after")
    def _one_day_field(self):
        if (self.day is None) == (self.days is None):
            raise ValueError("set either day (e.g. 3) or days (e.g. '1-3')")
        if self.days is not None:
            match = DAY_RANGE.match(self.days)
            if not match:
                raise ValueError(f"days must look like '1-3', got {self.days!r}")
            first, last = int(match.group(1)), int(match.group(2) or match.group(1))
            if first < 1 or last < first:
                raise ValueError(f"days {self.days!r}: the first day must be >= 1 and not after the last")
        return self

    @property
    def first_day(self) -> int:
        if self.day is not None:
            return self.day
        return int(DAY_RANGE.match(self.days).group(1))

    @property
    def last_day(self) -> int:
        if self.day is not None:
            return self.day
        match = DAY_RANGE.match(self.days)
        return int(match.group(2) or match.group(1))

    @property
    def day_label(self) -> str:
        return str(self.first_day) if self.first_day == self.last_day else f"{self.first_day}-{self.last_day}"


class Week(Strict):
    week: int = Field(ge=1, description="Must match the file name: weeks/week_NN.yaml")
    title: str = Field(default="", description="Theme of the week (default: 'Week N')")
    focus: list[str] = Field(default_factory=list, description="Bullet points shown in the week DAG's docs")
    primary_agents: list[str] = Field(default_factory=list, description="Agents leading the week (reports only)")
    work_units: list[WorkUnit] = Field(min_length=1, description="The week's work: one Airflow task each")


# ---------------------------------------------------------------------------- gates and KPIs


class CriterionKind(StrEnum):
    PROBE = "probe"
    DELIVERABLE = "deliverable"
    REVIEW = "review"
    KPI = "kpi"


class GateCriterion(Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="Unique within the gate")
    text: str = Field(description="The criterion as people say it")
    kind: CriterionKind = Field(description="probe (a service answers), deliverable (units delivered), review (enforcers accept units), kpi (KPIs hold)")
    # What the criterion looks at; which of these must be set depends on `kind`
    # (checked in checks.py so that the message can name the file and line).
    probes: list[str] = Field(default_factory=list, description="probe: probe ids of gates.yaml")
    work_units: list[str] = Field(default_factory=list, description="deliverable / review: the work units judged")
    kpis: list[str] = Field(default_factory=list, description="kpi: KPI ids of kpis.yaml")
    reviewers: list[str] = Field(default_factory=list, description="review: agents who judge ('@enforcers' for every enforcer)")
    window_hours: float | None = Field(default=None, gt=0, description="probe: must have held this long (e.g. 24 for 'stable for 24+ hours')")
    min_uptime_pct: float | None = Field(default=None, ge=0, le=100, description="probe: least share of ok samples in the window")


class Gate(Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="Unique gate id (task gate_<id>)")
    name: str = Field(description="Display name")
    kind: Literal["quality", "success"] | None = Field(
        default=None, description="Must match the list the gate is in (default: that list's kind)")
    owner: str = Field(default="", description="Who answers for the gate (reports)")
    week: int = Field(ge=1, description="The week DAG the gate runs in")
    deadline_day: int | None = Field(default=None, ge=1, description="Default: the last day of its week")
    enforcers: list[str] = Field(default_factory=list, description="Agents enforcing the gate; "
                                 "'@enforcers' names every agent with enforcer: true")
    veto: bool = Field(default=False, description="A failed gate blocks `blocks` (needs an enforcer with veto: true)")
    blocks: list[str] = Field(default_factory=list, description="Work units the gate guards")
    blocks_note: str = Field(default="", description="Free text about what the gate blocks")
    go_criteria: str = Field(default="", description="Free text summary of the criteria")
    criteria: list[GateCriterion] = Field(min_length=1, description="All must hold for the gate to pass")


class DecisionPoint(Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="Unique id (task decide_<id>)")
    name: str = Field(description="Display name, e.g. 'Day 7 check'")
    day: int = Field(ge=1, description="Roadmap day of the decision (must be in `week`)")
    week: int = Field(ge=1, description="The week DAG the decision runs at the end of")
    gates: list[str] = Field(min_length=1, description="Gates that must have passed for GO")
    kpis: list[str] = Field(default_factory=list, description="KPIs validated here besides those due by this week")
    go: str = Field(default="proceed", description="What GO means")
    no_go: str = Field(default="extend the timeline", description="What NO-GO means")
    no_go_extend_weeks: int = Field(default=1, ge=0, description="Weeks a NO-GO extends the timeline by")
    extension_days: float | None = Field(
        default=None, gt=0, description="Length of one NO-GO extension in roadmap days (default: no_go_extend_weeks weeks)")
    max_extensions: int = Field(default=2, ge=0, description="NO-GO extensions before the roadmap stops")


# The metrics each source kind can read ("" = its default); http_json reads any JSON field.
KPI_METRICS: dict[str, tuple[str, ...]] = {
    "llm_audit": ("avg_latency_s", "p95_latency_s", "avg_conversation_response_s", "conversation_success_rate"),
    "coverage_report": ("", "line_rate_pct", "branch_rate_pct"),
    "security_report": ("", "critical"),
    "memory_check": ("", "context_preservation_pct"),
    "probe": ("", "uptime_pct"),
    "http_latency": ("", "mean_latency_s"),
    "sql": ("",),
}


class KpiSource(Strict):
    kind: Literal["probe", "llm_audit", "memory_check", "coverage_report", "security_report", "sql",
                  "http_latency", "http_json"] = Field(description="Where the value comes from")
    metric: str = Field(default="", description="What to read; for http_json the field of the JSON answer")
    probes: list[str] = Field(default_factory=list, description="probe: probe ids whose samples give the uptime")
    path: str = Field(default="", description="coverage_report / security_report: report file (relative to the roadmap folder or absolute)")
    conn_id: str = Field(default="", description="sql: Airflow connection of the database")
    sql: str = Field(default="", description="sql: a query whose first column of the first row is the value (read-only)")
    url: str = Field(default="", description="http_latency: the endpoint timed; http_json: where the figure is read")
    samples: int = Field(default=5, ge=1, le=100, description="http_latency: requests timed (their mean is the value)")


class Kpi(Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="Unique KPI id")
    name: str = Field(description="Display name")
    category: Literal["technical", "business"] = Field(default="technical", description="technical or business (reports)")
    comparator: Literal[">", ">=", "<", "<="] = Field(description="How the value is compared with the threshold")
    threshold: float = Field(description="The target")
    unit: str = Field(default="", description="Unit shown with the value, e.g. % or s")
    by_week: int | None = Field(default=None, ge=1, description="Week by which the target must hold")
    source: KpiSource = Field(description="Where the value is read")
    # Used instead of `source` only in demo mode (CASTMATCH_DEMO=1, set by `make run`); every value
    # it gives is labelled demo. Paths of a demo source are relative to the roadmap folder.
    demo_source: KpiSource | None = Field(default=None, description="Used instead of source in demo mode (CASTMATCH_DEMO=1); values labelled demo")


class Probe(Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="Unique probe id")
    name: str = Field(default="", description="Display name (default: the id)")
    kind: Literal["redis", "postgres", "http", "llm"] = Field(description="What is checked: a Redis, a PostgreSQL, an HTTP endpoint or Claude")
    conn_id: str = Field(default="", description="Airflow connection (redis, postgres; llm: the Claude connection)")
    url: str = Field(default="", description="http: the health URL")


class HumanReview(Strict):
    """How long a person has to answer a veto override or a NO-GO review (Airflow's Required
    Actions). Unanswered, the veto or the NO-GO stands."""

    response_days: float = Field(default=1.0, gt=0, description="In roadmap days (compressed on the compressed clock)")
    minimum_minutes: float = Field(default=5.0, ge=0, description="Never less, so a person can answer on the compressed clock")

    def window(self, clock) -> dt.timedelta:
        return max(clock.span(self.response_days), dt.timedelta(minutes=self.minimum_minutes))


class GatesFile(Strict):
    human_review: HumanReview = Field(default_factory=HumanReview, description="How long a person has to answer a veto override or a NO-GO review")
    # A criterion the offline backend cannot check (the Claude probe) passes only where offline
    # runs are accepted (make run); $CASTMATCH_OFFLINE_CHECKS overrides this.
    offline_checks: Literal["reject", "accept"] = Field(default="reject", description="Whether a criterion the offline backend cannot check may pass (CASTMATCH_OFFLINE_CHECKS overrides)")
    probes: list[Probe] = Field(default_factory=list, description="Services the gates and KPIs check")
    quality_gates: list[Gate] = Field(default_factory=list, description="Gates of kind quality")
    success_gates: list[Gate] = Field(default_factory=list, description="Gates of kind success")
    decision_points: list[DecisionPoint] = Field(default_factory=list, description="Go/no-go decisions")


class KpisFile(Strict):
    kpis: list[Kpi] = Field(min_length=1, description="The KPIs (at least one)")


# ---------------------------------------------------------------------------- operations


class ChainTrigger(Strict):
    description: str = Field(default="", description="The trigger as people say it")
    all_of: list[str] = Field(default_factory=list, description="Work units that must all be done")
    any_of: list[str] = Field(default_factory=list, description="Work units of which one suffices")
    gates: list[str] = Field(default_factory=list, description="Gates that must have passed (or been overridden)")


class ChainAction(Strict):
    description: str = Field(default="", description="The action as people say it")
    notify: list[str] = Field(min_length=1, description="Agents told when the trigger holds")
    artifacts: list[str] = Field(default_factory=list, description="What is shared with them")
    consumers: list[str] = Field(default_factory=list, description="Work units that wait on the chain")


class ChainTimeline(Strict):
    description: str = Field(default="", description="When it is expected, as people say it")
    week: int | None = Field(default=None, ge=1, description="Expected week")
    day: int | None = Field(default=None, ge=1, description="Expected day")


class Chain(Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="Unique chain id (DAG <prefix>_chain_<id>)")
    name: str = Field(description="Display name")
    group: Literal["active", "pending"] = Field(default="active", description="Section of the chains report")
    trigger: ChainTrigger = Field(description="When the chain fires")
    action: ChainAction = Field(description="What happens then")
    timeline: ChainTimeline = Field(default_factory=lambda: ChainTimeline(), description="When it is expected (reports)")
    seed_status: str = Field(default="", description="Optional snapshot: status shown before the first run")


CHECKPOINT_JOBS = ("status_sync", "blockers", "progress", "dependency_updates", "deliverable_review", "next_day_plan",
                   "week_review", "week_start", "stakeholder_report", "workload")


class Checkpoint(Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="Unique checkpoint id")
    name: str = Field(description="Display name")
    cadence: Literal["daily", "weekly"] = Field(description="daily or weekly")
    cron: str = Field(description="Five-field cron or @daily-style preset, in the roadmap's timezone")
    purpose: str = Field(default="", description="What the checkpoint is for")
    mode: Literal["automated", "manual", "manual+auto"] = Field(default="automated", description="Who does it: automated, manual, or both")
    does: list[Literal[CHECKPOINT_JOBS]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: ["status_sync"], min_length=1,
        description="What the checkpoint does (castmatch.checkpoints): status_sync, blockers, progress, "
                    "dependency_updates, deliverable_review, next_day_plan, week_review, week_start, stakeholder_report, workload")


class Standup(Strict):
    cron: str = Field(description="Five-field cron or @daily-style preset, in the roadmap's timezone")
    participants: Literal["all_agents"] | list[str] = Field(default="all_agents", description="all_agents, or a list of agent ids")
    format: list[str] = Field(default_factory=lambda: ["completed", "in_progress", "blockers", "next"], min_length=1, description="What each agent reports")
    automated_actions: list[str] = Field(default_factory=list, description="Actions taken after the standup")


class EscalationLevel(Strict):
    level: int = Field(ge=1)
    name: str
    after_minutes: float = Field(ge=0, description="Minutes after opening (roadmap time) the level starts")
    until_minutes: float | None = Field(default=None, ge=0)
    actions: list[str] = Field(min_length=1)
    people: list[str] = Field(default_factory=list, description="Airflow users asked at this level (the last "
                              "level's are assigned the incident review; empty: anyone may answer)")


class ResolutionAction(Strict):
    """One automated (level 1) action of a protocol, run in order and recorded on the incident."""

    kind: Literal["reprobe", "restart", "fallback", "notify", "retry", "alternative_path", "redistribute",
                  "llm_history"] = Field(
        description="reprobe: check the probes again; restart: run `command`; fallback: switch `connection` to "
                    "`fallback_connection` for the agents' calls; notify: tell `agents` (their next prompts say it); "
                    "retry: run the unit again with the failure reason in its prompt; alternative_path: give a "
                    "blocked agent a ready unit of theirs that does not depend on the blocked one; redistribute: "
                    "reassign the unit to an agent whose can_cover names its lead; llm_history: record what the LLM "
                    "layer's retries, rate limiting, cached answers and stand-in did for the unit")
    probes: list[str] = Field(default_factory=list, description="reprobe: probe ids (default: the incident's probe)")
    command: list[str] = Field(default_factory=list, description="restart: the program and its arguments, run "
                               "without a shell; ${VAR} is taken from the environment")
    timeout_seconds: float = Field(default=30.0, gt=0, le=600, description="restart: longest run of the command")
    connection: str = Field(default="", description="fallback: the Airflow connection replaced")
    fallback_connection: str = Field(default="", description="fallback: the connection used instead")
    agents: list[str] = Field(default_factory=list, description="notify: agent ids told what changed")


class ProtocolMatch(Strict):
    """Which incidents a protocol answers: any of these kinds, about any of these subjects."""

    kinds: list[str] = Field(default_factory=list, description="Incident kinds, e.g. probe_failed, unit_failed")
    subjects: list[str] = Field(default_factory=list, description="Probe, unit or gate ids (empty: any)")


class Protocol(Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    category: str
    issue: str
    steps: list[str] = Field(min_length=1, description="The protocol in the seed's words")
    seed_status: str = ""
    when: ProtocolMatch | None = Field(default=None, description="Incidents the protocol acts on (none: not automated)")
    actions: list[ResolutionAction] = Field(default_factory=list, description="Level 1 actions, in order")


ALERT_ROLES = {
    "responsible_agent": "the agents answering for the subject (a gate's judged units' leads, an incident's agents)",
    "gate_enforcers": "the enforcers of the gate concerned",
    "waiting_agents": "the leads of the units that were waiting and now start",
    "chain_agents": "the agents the chain notifies (its action.notify)",
}


class AlertWhen(Strict):
    """When a trigger-based alert is raised (any of these)."""

    chains: list[str] = Field(default_factory=list, description="Chain ids: when the chain's trigger holds and "
                              "it hands off")
    incidents: list[str] = Field(default_factory=list, description="Incident kinds: when one opens (e.g. gate_vetoed)")
    unblocked: bool = Field(default=False, description="When units that waited on a blocked unit start, once "
                            "it is delivered")


class NotificationTrigger(Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    event: str = Field(description="The event, as people say it (the alert's title)")
    notify: list[str] = Field(min_length=1, description="Agent ids told (their inbox), or roles: "
                              + "; ".join(f"{k}: {v}" for k, v in ALERT_ROLES.items()))
    when: AlertWhen | None = Field(default=None, description="What raises it (none: documented, never raised)")
    slack: bool = Field(default=True, description="People are told on Slack too (connections.slack_api or slack)")


class Workload(Strict):
    """RESOURCE CONFLICT RESOLUTION: the workload rules the daily checkpoints apply (job ``workload``)."""

    overloaded_after_minutes: float = Field(default=60, ge=0, description="An agent with more ready units than its "
                                            "capacity this long (roadmap time) has its lowest-priority unit moved")


class Operations(Strict):
    update_frequency_minutes: float = Field(default=15, gt=0, description="The operations cycle: probes sampled and "
                                            "incidents swept this often (seed: 15-minute cycles)")
    dashboard_refresh_seconds: int = Field(default=15, ge=1, le=3600, description="How often the Control Center "
                                           "page refreshes itself (the seed's live-updated matrix)")
    chains: list[Chain] = Field(default_factory=list)
    checkpoints: list[Checkpoint] = Field(default_factory=list)
    standup: Standup | None = None
    escalation: list[EscalationLevel] = Field(default_factory=list)
    auto_resolution: list[Protocol] = Field(default_factory=list)
    notifications: list[NotificationTrigger] = Field(default_factory=list)
    workload: Workload = Field(default_factory=lambda: Workload())


# ---------------------------------------------------------------------------- LLM layer


class Price(Strict):
    """USD per million tokens."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cache_write: float = Field(ge=0)
    cache_read: float = Field(ge=0)


class RateLimit(Strict):
    requests_per_minute: int = Field(gt=0)
    input_tokens_per_minute: int = Field(gt=0)
    output_tokens_per_minute: int = Field(gt=0)


class RetrySettings(Strict):
    attempts: int = Field(default=3, ge=1, le=10, description="API attempts inside one task try")
    backoff_seconds: float = Field(default=2.0, ge=0, description="First back-off, doubled each attempt (with jitter)")
    min_backoff_seconds: float = Field(default=1.0, ge=0, description="Floor of every back-off, retry-after included")
    max_backoff_seconds: float = Field(default=60.0, ge=0, description="Ceiling of every back-off, retry-after included")
    task_retry_delay_seconds: float = Field(default=60.0, ge=0, description="Airflow retry delay after a transient failure")


class Budget(Strict):
    usd: float | None = Field(default=None, ge=0)
    tokens: int | None = Field(default=None, ge=0)


class Budgets(Strict):
    roadmap: Budget = Budget()
    per_week: Budget = Budget()
    per_agent: Budget = Budget()
    agents: dict[str, Budget] = Field(default_factory=dict, description="Overrides of per_agent")
    weeks: dict[int, Budget] = Field(default_factory=dict, description="Overrides of per_week")
    on_exceed: Literal["downgrade", "stop"] = "stop"
    downgrade_to: str = ""
    warn_at: float = Field(default=0.8, gt=0, le=1, description="Share of a budget spent at which an incident "
                           "(budget_near_limit) opens, before calls are stopped")


class LlmSettings(Strict):
    conn_id: str = "anthropic_default"
    max_tokens: int = Field(default=4096, gt=0)
    stream: bool = Field(default=True, description="Stream answers (deliverables can be long)")
    timeout_seconds: float = Field(default=120.0, gt=0)
    repair_attempts: int = Field(default=2, ge=0, le=5)
    retry: RetrySettings = RetrySettings()
    rate_limit_window_seconds: float = Field(default=60.0, gt=0)
    rate_limit_redis_wait_seconds: float = Field(
        default=30.0, ge=0, description="How long a call waits for the rate limiter's Redis when it is down, then is refused")
    rate_limits: dict[str, RateLimit] = Field(default_factory=dict, description="Per model; 'default' for the rest")
    prices: dict[str, Price] = Field(default_factory=dict)
    batch_discount: float = Field(default=0.5, gt=0, le=1)
    batch_poll_seconds: float = Field(default=60.0, gt=0, description="How often a deferred batch is polled")
    fallback_to_cache: bool = True
    budgets: Budgets = Budgets()
    agent_pool: str = Field(default="", description="Airflow pool of the agent tasks (default <dag_id_prefix>_agents)")
    agent_pool_slots: int = Field(default=4, gt=0, description="Agent work units calling Claude at once")
