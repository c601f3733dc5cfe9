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


class Track(Strict):
    """A line of work (CastMatch: development, design_quality): groups agents in reports, and may
    send their tasks to their own Airflow queue (CeleryExecutor workers listening on it)."""

    id: str = Field(pattern=ID_PATTERN)
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
    agents: list[Agent] = Field(min_length=1)

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
    mode: Literal["real", "compressed"] = "real"
    # In compressed mode one roadmap day lasts this many seconds.
    compressed_day_seconds: float = Field(default=1.0, gt=0)


class Phase(Strict):
    id: str = Field(pattern=ID_PATTERN)
    number: int | None = Field(default=None, ge=1, description="Default: its place in the list (1, 2, ...)")
    name: str
    weeks: list[int] = Field(min_length=1)
    primary_agents: list[str] = Field(default_factory=list)
    objective: str = ""


class Connections(Strict):
    """Airflow connection ids, so two roadmaps in one Airflow can use different services. The
    Claude connection is ``llm.yaml`` ``conn_id``."""

    redis: str = Field(default="castmatch_redis", description="Rate limiter, agent memory, Redis probes")
    slack: str = Field(default="castmatch_slack", description="Announcements (webhook URL in the password or host)")


class Limits(Strict):
    """Refuse a folder beyond these sizes (a runaway generator, a pasted log) before building DAGs."""

    max_file_kb: int = Field(default=512, ge=1, description="Largest YAML file")
    max_agents: int = Field(default=100, ge=1)
    max_weeks: int = Field(default=104, ge=1)
    max_work_units: int = Field(default=2000, ge=1, description="In the whole roadmap")


class Roadmap(Strict):
    name: str
    dag_id_prefix: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    mission: str = Field(default="", description="One sentence every agent's prompt starts from")
    target: str = ""
    platform: str = ""
    timezone: str = Field(default="UTC", description="IANA name, e.g. Asia/Kolkata; days and crons use it")
    start_date: str = Field(description="ISO date of Day 1, in the roadmap's timezone")
    clock: ClockConfig = ClockConfig()
    days_per_week: int = Field(default=7, ge=1, le=7)
    priorities: list[str] = Field(default_factory=lambda: list(SEED_PRIORITIES), min_length=1,
                                  description="Work-unit priorities, most urgent first (default: the seed's four)")
    connections: Connections = Field(default_factory=lambda: Connections(),
                                     description="Airflow connection ids this roadmap uses")
    limits: Limits = Field(default_factory=lambda: Limits(), description="Sizes beyond which the folder is refused")
    phases: list[Phase] = Field(min_length=1)

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
    title: str
    agents: list[str] = Field(min_length=1, description="First is the lead, the others collaborate")
    day: int | None = Field(default=None, ge=1, description="Roadmap day (Day 1 = start_date); or use days")
    days: str | None = Field(default=None, description="A span of roadmap days, e.g. '1-3' (late after its last day)")
    priority: str = Field(default="", description="One of roadmap.yaml priorities (default: the middle one)")
    estimate_hours: float | None = Field(default=None, gt=0)
    depends_on: list[str] = Field(default_factory=list, description="Work units delivered before this one starts")
    deliverable: str = Field(default="", description="What the unit produces (default: the title)")
    acceptance_criteria: list[str] = Field(default_factory=list, description="Checked by the enforcers' reviews")
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
    title: str = ""
    focus: list[str] = Field(default_factory=list)
    primary_agents: list[str] = Field(default_factory=list)
    work_units: list[WorkUnit] = Field(min_length=1)


# ---------------------------------------------------------------------------- gates and KPIs


class CriterionKind(StrEnum):
    PROBE = "probe"
    DELIVERABLE = "deliverable"
    REVIEW = "review"
    KPI = "kpi"


class GateCriterion(Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    text: str
    kind: CriterionKind
    # What the criterion looks at; which of these must be set depends on `kind`
    # (checked in checks.py so that the message can name the file and line).
    probes: list[str] = Field(default_factory=list)
    work_units: list[str] = Field(default_factory=list)
    kpis: list[str] = Field(default_factory=list)
    reviewers: list[str] = Field(default_factory=list, description="review: agents who judge ('@enforcers' for every enforcer)")
    window_hours: float | None = Field(default=None, gt=0)
    min_uptime_pct: float | None = Field(default=None, ge=0, le=100)


class Gate(Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    kind: Literal["quality", "success"] | None = Field(
        default=None, description="Must match the list the gate is in (default: that list's kind)")
    owner: str = ""
    week: int = Field(ge=1, description="The week DAG the gate runs in")
    deadline_day: int | None = Field(default=None, ge=1, description="Default: the last day of its week")
    enforcers: list[str] = Field(default_factory=list, description="Agents enforcing the gate; "
                                 "'@enforcers' names every agent with enforcer: true")
    veto: bool = Field(default=False, description="A failed gate blocks `blocks` (needs an enforcer with veto: true)")
    blocks: list[str] = Field(default_factory=list, description="Work units the gate guards")
    blocks_note: str = ""
    go_criteria: str = ""
    criteria: list[GateCriterion] = Field(min_length=1)


class DecisionPoint(Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    day: int = Field(ge=1)
    week: int = Field(ge=1)
    gates: list[str] = Field(min_length=1)
    kpis: list[str] = Field(default_factory=list, description="KPIs validated here besides those due by this week")
    go: str = Field(default="proceed", description="What GO means")
    no_go: str = Field(default="extend the timeline", description="What NO-GO means")
    no_go_extend_weeks: int = Field(default=1, ge=0)
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
                  "http_latency", "http_json"]
    metric: str = Field(default="", description="What to read; for http_json the field of the JSON answer")
    probes: list[str] = Field(default_factory=list)
    path: str = ""
    conn_id: str = ""
    sql: str = ""
    url: str = Field(default="", description="http_latency: the endpoint timed; http_json: where the figure is read")
    samples: int = Field(default=5, ge=1, le=100, description="http_latency: requests timed (their mean is the value)")


class Kpi(Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    category: Literal["technical", "business"] = "technical"
    comparator: Literal[">", ">=", "<", "<="]
    threshold: float
    unit: str = ""
    by_week: int | None = Field(default=None, ge=1, description="Week by which the target must hold")
    source: KpiSource
    # Used instead of `source` only in demo mode (CASTMATCH_DEMO=1, set by `make run`); every value
    # it gives is labelled demo. Paths of a demo source are relative to the roadmap folder.
    demo_source: KpiSource | None = None


class Probe(Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str = ""
    kind: Literal["redis", "postgres", "http", "llm"]
    conn_id: str = ""
    url: str = ""


class HumanReview(Strict):
    """How long a person has to answer a veto override or a NO-GO review (Airflow's Required
    Actions). Unanswered, the veto or the NO-GO stands."""

    response_days: float = Field(default=1.0, gt=0, description="In roadmap days (compressed on the compressed clock)")
    minimum_minutes: float = Field(default=5.0, ge=0, description="Never less, so a person can answer on the compressed clock")

    def window(self, clock) -> dt.timedelta:
        return max(clock.span(self.response_days), dt.timedelta(minutes=self.minimum_minutes))


class GatesFile(Strict):
    human_review: HumanReview = Field(default_factory=HumanReview)
    # A criterion the offline backend cannot check (the Claude probe) passes only where offline
    # runs are accepted (make run); $CASTMATCH_OFFLINE_CHECKS overrides this.
    offline_checks: Literal["reject", "accept"] = "reject"
    probes: list[Probe] = Field(default_factory=list)
    quality_gates: list[Gate] = Field(default_factory=list)
    success_gates: list[Gate] = Field(default_factory=list)
    decision_points: list[DecisionPoint] = Field(default_factory=list)


class KpisFile(Strict):
    kpis: list[Kpi] = Field(min_length=1)


# ---------------------------------------------------------------------------- operations


class ChainTrigger(Strict):
    description: str = ""
    all_of: list[str] = Field(default_factory=list, description="Work units that must all be done")
    any_of: list[str] = Field(default_factory=list, description="Work units of which one suffices")
    gates: list[str] = Field(default_factory=list, description="Gates that must have passed (or been overridden)")


class ChainAction(Strict):
    description: str = ""
    notify: list[str] = Field(min_length=1, description="Agents told when the trigger holds")
    artifacts: list[str] = Field(default_factory=list, description="What is shared with them")
    consumers: list[str] = Field(default_factory=list, description="Work units that wait on the chain")


class ChainTimeline(Strict):
    description: str = ""
    week: int | None = Field(default=None, ge=1)
    day: int | None = Field(default=None, ge=1)


class Chain(Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    group: Literal["active", "pending"] = Field(default="active", description="Section of the chains report")
    trigger: ChainTrigger
    action: ChainAction
    timeline: ChainTimeline = Field(default_factory=lambda: ChainTimeline())
    seed_status: str = Field(default="", description="Optional snapshot: status shown before the first run")


class Checkpoint(Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    cadence: Literal["daily", "weekly"]
    cron: str = Field(description="Five-field cron or @daily-style preset, in the roadmap's timezone")
    purpose: str = ""
    mode: Literal["automated", "manual", "manual+auto"] = "automated"


class Standup(Strict):
    cron: str = Field(description="Five-field cron or @daily-style preset, in the roadmap's timezone")
    participants: Literal["all_agents"] | list[str] = "all_agents"
    format: list[str] = Field(default_factory=lambda: ["completed", "in_progress", "blockers", "next"], min_length=1)
    automated_actions: list[str] = Field(default_factory=list)


class EscalationLevel(Strict):
    level: int = Field(ge=1)
    name: str
    after_minutes: int = Field(ge=0)
    until_minutes: int | None = Field(default=None, ge=0)
    actions: list[str] = Field(min_length=1)


class Protocol(Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    category: str
    issue: str
    steps: list[str] = Field(min_length=1)
    seed_status: str = ""


class NotificationTrigger(Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    event: str
    notify: list[str] = Field(min_length=1)


class Operations(Strict):
    update_frequency_minutes: int = Field(default=15, ge=1)
    chains: list[Chain] = Field(default_factory=list)
    checkpoints: list[Checkpoint] = Field(default_factory=list)
    standup: Standup | None = None
    escalation: list[EscalationLevel] = Field(default_factory=list)
    auto_resolution: list[Protocol] = Field(default_factory=list)
    notifications: list[NotificationTrigger] = Field(default_factory=list)


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
