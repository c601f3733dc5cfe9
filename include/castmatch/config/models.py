"""Typed models of a roadmap folder: the team, the roadmap, gates, KPIs and operations.

Pure data: no store, no LLM, no Airflow. Field-level checks live here; checks that span
files (unknown ids, cycles, a day outside its week) live in ``castmatch.config.checks``.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

ID_PATTERN = r"^[a-z][a-z0-9_-]*$"


class Strict(BaseModel):
    """Base for config models: unknown keys are errors, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Priority(StrEnum):
    IMMEDIATE = "IMMEDIATE"
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"

    @property
    def weight(self) -> int:
        """Airflow ``priority_weight``: higher runs first when slots are scarce."""
        return {"IMMEDIATE": 40, "HIGH": 30, "MEDIUM": 20, "LOW": 10}[self.value]


class Track(StrEnum):
    DEVELOPMENT = "development"
    DESIGN_QUALITY = "design_quality"


# ---------------------------------------------------------------------------- team


class Agent(Strict):
    id: str = Field(pattern=ID_PATTERN)
    name: str
    short_name: str = Field(description="Label used in the status matrix, e.g. 'devops-infrastructure'")
    track: Track
    role: str = Field(min_length=20, description="System prompt: who the agent is")
    responsibilities: list[str] = Field(min_length=1)
    current_task: str
    depends_on: list[str] = Field(default_factory=list)
    depends_on_note: str = ""
    next_milestone: str
    model: str
    baseline_progress: int = Field(default=0, ge=0, le=100)
    # The seed's snapshot of a project already under way: shown until the agent's first stored run.
    baseline_status: Literal["ACTIVE", "WAITING", "BLOCKED", "STANDBY"] = "STANDBY"
    baseline_task: str = Field(default="", description="Short current-task label of the status matrix")
    registry_status: str = Field(default="", description="The registry's wording, e.g. 'PARTIALLY ACTIVE'")


class Team(Strict):
    default_model: str
    agents: list[Agent] = Field(min_length=1)


# ---------------------------------------------------------------------------- roadmap


class ClockConfig(Strict):
    mode: Literal["real", "compressed"] = "real"
    # In compressed mode one roadmap day lasts this many seconds.
    compressed_day_seconds: float = Field(default=1.0, gt=0)


class Phase(Strict):
    id: str = Field(pattern=ID_PATTERN)
    number: int = Field(ge=1)
    name: str
    weeks: list[int] = Field(min_length=1)
    primary_agents: list[str] = Field(default_factory=list)
    objective: str = ""


class Roadmap(Strict):
    name: str
    dag_id_prefix: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    mission: str
    target: str = ""
    platform: str = ""
    timezone: str = "UTC"
    start_date: str = Field(description="ISO date of Day 1, in the roadmap's timezone")
    clock: ClockConfig = ClockConfig()
    days_per_week: int = Field(default=7, ge=1, le=7)
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
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="Also the Airflow task id")
    title: str
    agents: list[str] = Field(min_length=1, description="First is the lead, the others collaborate")
    day: int = Field(ge=1, description="Roadmap day (Day 1 = start_date)")
    priority: Priority
    estimate_hours: float | None = Field(default=None, gt=0)
    depends_on: list[str] = Field(default_factory=list)
    deliverable: str
    acceptance_criteria: list[str] = Field(min_length=1)
    weight: float = Field(default=1.0, gt=0, description="Share of the agent's progress")
    source: str = Field(default="", description="Where in the seed this unit comes from")


class Week(Strict):
    week: int = Field(ge=1)
    title: str
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
    reviewers: list[str] = Field(default_factory=list)
    window_hours: float | None = Field(default=None, gt=0)
    min_uptime_pct: float | None = Field(default=None, ge=0, le=100)


class Gate(Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    kind: Literal["quality", "success"]
    owner: str = ""
    week: int = Field(ge=1, description="The week DAG the gate runs in")
    deadline_day: int = Field(ge=1)
    enforcers: list[str] = Field(default_factory=list)
    veto: bool = False
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
    go: str
    no_go: str
    no_go_extend_weeks: int = Field(default=1, ge=0)
    extension_days: float | None = Field(
        default=None, gt=0, description="Length of one NO-GO extension in roadmap days (default: no_go_extend_weeks weeks)")
    max_extensions: int = Field(default=2, ge=0, description="NO-GO extensions before the roadmap stops")


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
    category: Literal["technical", "business"]
    comparator: Literal[">", ">=", "<", "<="]
    threshold: float
    unit: str
    by_week: int | None = Field(default=None, ge=1, description="Week by which the target must hold")
    source: KpiSource
    # Used instead of `source` only in demo mode (CASTMATCH_DEMO=1, set by `make run`); every value
    # it gives is labelled demo. Paths of a demo source are relative to the roadmap folder.
    demo_source: KpiSource | None = None


class Probe(Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
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
    description: str
    all_of: list[str] = Field(default_factory=list, description="Work units that must all be done")
    any_of: list[str] = Field(default_factory=list, description="Work units of which one suffices")


class ChainAction(Strict):
    description: str
    notify: list[str] = Field(min_length=1, description="Agents told when the trigger holds")
    artifacts: list[str] = Field(default_factory=list, description="What is shared with them")
    consumers: list[str] = Field(default_factory=list, description="Work units that wait on the chain")


class ChainTimeline(Strict):
    description: str
    week: int = Field(ge=1)
    day: int | None = Field(default=None, ge=1)


class Chain(Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    group: Literal["active", "pending"]
    trigger: ChainTrigger
    action: ChainAction
    timeline: ChainTimeline
    seed_status: str = ""


class Checkpoint(Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    cadence: Literal["daily", "weekly"]
    cron: str
    purpose: str
    mode: Literal["automated", "manual", "manual+auto"] = "automated"


class Standup(Strict):
    cron: str
    participants: Literal["all_agents"] | list[str] = "all_agents"
    format: list[str] = Field(min_length=1)
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
