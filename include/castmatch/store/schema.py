"""Tables of the state store. Changed only together with a migration in ``migrations/versions``."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# Every row carries the roadmap it belongs to (``roadmap_id``: the roadmap's ``dag_id_prefix``), so
# two roadmaps share one database without seeing each other. A ``run_key`` names one run of a
# roadmap (``castmatch.runs``) and starts with the roadmap id: everything keyed by it is scoped to
# that run and roadmap.

# The configuration mirror (for reports that join on it), per roadmap.
agents = sa.Table(
    "cm_agents",
    metadata,
    sa.Column("roadmap_id", sa.String(100), primary_key=True),
    sa.Column("id", sa.String(100), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("short_name", sa.String(100), nullable=False),
    sa.Column("track", sa.String(40), nullable=False),
    sa.Column("model", sa.String(100), nullable=False),
    sa.Column("current_task", sa.Text, nullable=False),
    sa.Column("baseline_progress", sa.Integer, nullable=False, server_default="0"),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

work_units = sa.Table(
    "cm_work_units",
    metadata,
    sa.Column("roadmap_id", sa.String(100), primary_key=True),
    sa.Column("id", sa.String(100), primary_key=True),
    sa.Column("week", sa.Integer, nullable=False, index=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("lead_agent", sa.String(100), nullable=False),
    sa.Column("agents", sa.JSON, nullable=False),
    sa.Column("day", sa.Integer, nullable=False),
    sa.Column("priority", sa.String(20), nullable=False),
    sa.Column("depends_on", sa.JSON, nullable=False),
    sa.Column("weight", sa.Float, nullable=False, server_default="1"),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

# One row per run of a roadmap: a ``castmatch_roadmap`` run, or a week DAG run on its own. Its clock
# (real | compressed) and the clock's origin travel with it; timeline extensions shift it.
runs = sa.Table(
    "cm_runs",
    metadata,
    sa.Column("run_key", sa.String(250), primary_key=True),
    sa.Column("roadmap_id", sa.String(100), nullable=False, index=True),
    sa.Column("kind", sa.String(20), nullable=False),  # roadmap | week
    sa.Column("dag_id", sa.String(250), nullable=False),
    sa.Column("run_id", sa.String(250), nullable=False),
    sa.Column("clock", sa.String(20), nullable=False),  # real | compressed
    sa.Column("origin", sa.DateTime(timezone=True)),  # compressed clock: when Day 1 began
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

# One row per (run key, work unit): the unit's state in that run. Upserted on every try.
unit_runs = sa.Table(
    "cm_unit_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("roadmap_id", sa.String(100), nullable=False, server_default=""),
    sa.Column("dag_id", sa.String(250), nullable=False),
    sa.Column("run_key", sa.String(250), nullable=False, index=True),
    sa.Column("run_id", sa.String(250), nullable=False),
    sa.Column("work_unit_id", sa.String(100), nullable=False),
    sa.Column("agent_id", sa.String(100), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),  # running | done | blocked | failed | needs_review
    sa.Column("try_number", sa.Integer, nullable=False, server_default="1"),
    sa.Column("started_at", sa.DateTime(timezone=True)),
    sa.Column("ended_at", sa.DateTime(timezone=True)),
    sa.Column("error", sa.Text),
    sa.UniqueConstraint("dag_id", "run_key", "work_unit_id", name="uq_cm_unit_runs_run_unit"),
)

# One deliverable per (run key, work unit); a retry or a rerun replaces it, never adds a second.
deliverables = sa.Table(
    "cm_deliverables",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("roadmap_id", sa.String(100), nullable=False, server_default=""),
    sa.Column("dag_id", sa.String(250), nullable=False),
    sa.Column("run_key", sa.String(250), nullable=False, index=True),
    sa.Column("run_id", sa.String(250), nullable=False),
    sa.Column("work_unit_id", sa.String(100), nullable=False, index=True),
    sa.Column("agent_id", sa.String(100), nullable=False, index=True),
    sa.Column("week", sa.Integer, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),  # done | blocked
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("content", sa.Text, nullable=False),
    sa.Column("blockers", sa.JSON, nullable=False),
    sa.Column("progress", sa.Integer, nullable=False),
    sa.Column("backend", sa.String(20), nullable=False),
    sa.Column("model", sa.String(100), nullable=False),
    sa.Column("try_number", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("dag_id", "run_key", "work_unit_id", name="uq_cm_deliverables_run_unit"),
)

# Append-only log of what happened (a retry is a new event on purpose).
events = sa.Table(
    "cm_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ts", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("kind", sa.String(60), nullable=False),
    sa.Column("roadmap_id", sa.String(100), nullable=False, server_default=""),
    sa.Column("run_key", sa.String(250), index=True),
    sa.Column("dag_id", sa.String(250)),
    sa.Column("run_id", sa.String(250)),
    sa.Column("work_unit_id", sa.String(100)),
    sa.Column("agent_id", sa.String(100)),
    sa.Column("message", sa.Text, nullable=False, server_default=""),
    sa.Column("data", sa.JSON),
)

# The audit ledger: one row per API attempt (failed ones included), the base of usage reports
# and budgets.
llm_calls = sa.Table(
    "cm_llm_calls",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ts", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("roadmap_id", sa.String(100), nullable=False, server_default=""),
    sa.Column("run_key", sa.String(250), index=True),
    # agent (a work unit) | review (an enforcer verdict) | probe (the Claude probe) | standup
    sa.Column("purpose", sa.String(20), nullable=False, server_default="agent"),
    sa.Column("dag_id", sa.String(250)),
    sa.Column("run_id", sa.String(250)),
    sa.Column("task_id", sa.String(250)),
    sa.Column("try_number", sa.Integer),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("agent_id", sa.String(100), index=True),
    sa.Column("work_unit_id", sa.String(100)),
    sa.Column("week", sa.Integer, index=True),
    sa.Column("model", sa.String(100), nullable=False),
    sa.Column("backend", sa.String(20), nullable=False),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("input_tokens", sa.Integer, nullable=False, server_default="0"),
    sa.Column("output_tokens", sa.Integer, nullable=False, server_default="0"),
    sa.Column("cache_creation_input_tokens", sa.Integer, nullable=False, server_default="0"),
    sa.Column("cache_read_input_tokens", sa.Integer, nullable=False, server_default="0"),
    sa.Column("latency_ms", sa.Integer, nullable=False, server_default="0"),
    sa.Column("cost_usd", sa.Float, nullable=False, server_default="0"),
    sa.Column("batch", sa.Boolean, nullable=False, server_default=sa.false()),
    # started (booked before the request went out) | ok | malformed | error | lost (the process
    # ended during the call; priced at the worst case) | reused (a kept answer; no request) |
    # cache_fallback (no request)
    sa.Column("outcome", sa.String(40), nullable=False),
    sa.Column("error_class", sa.String(100)),
    sa.Column("error", sa.Text),
    sa.Column("input_estimate", sa.Integer, nullable=False, server_default="0"),
)

# Raw answers paid for in a run, kept before anything that can fail after the call (settling the
# limiter, validating, storing the deliverable), so a retry of the same request reuses it.
llm_answers = sa.Table(
    "cm_llm_answers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_key", sa.String(250), nullable=False),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("model", sa.String(100), nullable=False),
    sa.Column("raw", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("run_key", "request_hash", name="uq_cm_llm_answers_run_request"),
)

# Last good answer per request, for the seed's "fallback to cached responses".
llm_responses = sa.Table(
    "cm_llm_responses",
    metadata,
    sa.Column("request_hash", sa.String(64), primary_key=True),
    sa.Column("model", sa.String(100), nullable=False),
    sa.Column("deliverable", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

# One standup report per agent per day (the seed's "Daily Standup Automation"); reruns replace it.
standups = sa.Table(
    "cm_standups",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("roadmap_id", sa.String(100), nullable=False, server_default=""),
    sa.Column("standup_date", sa.String(10), nullable=False),
    sa.Column("agent_id", sa.String(100), nullable=False),
    sa.Column("run_id", sa.String(250), nullable=False),
    sa.Column("backend", sa.String(20), nullable=False),
    sa.Column("model", sa.String(100), nullable=False),
    sa.Column("batch_id", sa.String(100)),
    sa.Column("report", sa.JSON, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("roadmap_id", "standup_date", "agent_id", name="uq_cm_standups_day_agent"),
)

# Probe samples: one row per live check of a service (append-only), so "stable for 24+ hours" and
# ">95% uptime" are computed from samples over a window, not from a single check.
probe_samples = sa.Table(
    "cm_probe_samples",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
    sa.Column("probe_id", sa.String(100), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),  # redis | postgres | http | llm
    sa.Column("ok", sa.Boolean, nullable=False),
    # ok | failed | offline (not checked: the backend in use answers without the service)
    sa.Column("status", sa.String(20), nullable=False, server_default="ok"),
    sa.Column("latency_ms", sa.Float, nullable=False, server_default="0"),
    sa.Column("detail", sa.Text, nullable=False, server_default=""),
    sa.Column("run_id", sa.String(250)),
    sa.Index("ix_cm_probe_samples_probe_ts", "probe_id", "ts"),
)

# KPI samples: every measured (or missing) KPI value with its time and source (append-only).
kpi_samples = sa.Table(
    "cm_kpi_samples",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
    sa.Column("roadmap_id", sa.String(100), nullable=False, server_default=""),
    sa.Column("run_key", sa.String(250), index=True),
    sa.Column("kpi_id", sa.String(100), nullable=False),
    sa.Column("value", sa.Float),  # NULL when missing
    sa.Column("status", sa.String(20), nullable=False),  # ok | missing
    sa.Column("source", sa.Text, nullable=False),  # kind and where from, e.g. "coverage_report:/x/coverage.xml"
    sa.Column("detail", sa.Text, nullable=False, server_default=""),
    sa.Column("run_id", sa.String(250)),
    sa.Index("ix_cm_kpi_samples_kpi_ts", "roadmap_id", "kpi_id", "ts"),
)

# Great Expectations result of a KPI check, one per (run key, decision point); a rerun replaces it.
# `decision_point` is '' for a check outside any decision point: NULLs never collide in a unique
# constraint (PostgreSQL and SQLite alike), so NULL would let reruns duplicate.
kpi_validations = sa.Table(
    "cm_kpi_validations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("roadmap_id", sa.String(100), nullable=False, server_default=""),
    sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
    sa.Column("run_key", sa.String(250), nullable=False),
    sa.Column("decision_point", sa.String(100), nullable=False, server_default=""),
    sa.Column("success", sa.Boolean, nullable=False),
    # [{kpi_id, expectation, observed, threshold, comparator, success}, ...]
    sa.Column("results", sa.JSON, nullable=False),
    sa.UniqueConstraint("run_key", "decision_point", name="uq_cm_kpi_validations_run_point"),
)

# The latest decision of each gate in each run (reruns and re-evaluations replace it).
gate_results = sa.Table(
    "cm_gate_results",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("roadmap_id", sa.String(100), nullable=False, server_default=""),
    sa.Column("run_key", sa.String(250), nullable=False),
    sa.Column("gate_id", sa.String(100), nullable=False),
    sa.Column("dag_id", sa.String(250)),
    sa.Column("run_id", sa.String(250)),
    sa.Column("status", sa.String(20), nullable=False),  # PENDING | PASSED | VETOED | FAILED | OVERRIDDEN
    sa.Column("criteria", sa.JSON, nullable=False),
    sa.Column("blocked_units", sa.JSON, nullable=False),
    sa.Column("decided_by", sa.String(100)),
    sa.Column("reason", sa.Text),
    sa.Column("evaluated_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("run_key", "gate_id", name="uq_cm_gate_results_run_gate"),
)

# Go/no-go decisions, one per (run key, decision point); a human override replaces it, recorded.
decisions = sa.Table(
    "cm_decisions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("roadmap_id", sa.String(100), nullable=False, server_default=""),
    sa.Column("run_key", sa.String(250), nullable=False),
    sa.Column("decision_point", sa.String(100), nullable=False),
    sa.Column("week", sa.Integer, nullable=False),
    sa.Column("decision", sa.String(10), nullable=False),  # GO | NO_GO
    sa.Column("decided_by", sa.String(100), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("gates", sa.JSON, nullable=False),
    sa.Column("kpis_ok", sa.Boolean),
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("run_key", "decision_point", name="uq_cm_decisions_run_point"),
)


# Enforcer verdicts, one per (reviewer, deliverable content, method): later pokes and reruns reuse
# it, a changed deliverable is reviewed again. ``method`` is ``claude:<model>`` or ``rule:<version>``
# (the offline rule check), so a report can say which one judged.
reviews = sa.Table(
    "cm_reviews",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("roadmap_id", sa.String(100), nullable=False),
    sa.Column("reviewer", sa.String(100), nullable=False),
    sa.Column("work_unit_id", sa.String(100), nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("method", sa.String(120), nullable=False),
    sa.Column("verdict", sa.String(10), nullable=False),  # PASS | VETO
    sa.Column("reasons", sa.JSON, nullable=False),
    sa.Column("run_key", sa.String(250)),  # the run that first asked for it
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("roadmap_id", "reviewer", "work_unit_id", "content_hash", "method",
                        name="uq_cm_reviews_reviewer_content"),
)

# How a week's run ended (its ``week_complete`` task): success, or failed with the problems
# (units not delivered, vetoes standing, NO-GO). The roadmap driver reads it.
week_outcomes = sa.Table(
    "cm_week_outcomes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("roadmap_id", sa.String(100), nullable=False),
    sa.Column("run_key", sa.String(250), nullable=False),
    sa.Column("week", sa.Integer, nullable=False),
    sa.Column("dag_id", sa.String(250), nullable=False),
    sa.Column("run_id", sa.String(250), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),  # success | failed
    sa.Column("problems", sa.JSON, nullable=False),
    sa.Column("delivered", sa.Integer, nullable=False),
    sa.Column("total", sa.Integer, nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("run_key", "week", name="uq_cm_week_outcomes_run_week"),
)

# Timeline extensions after a NO-GO: the remaining weeks of the run start ``days`` later; the
# decision point is evaluated again at ``ends_at`` (``outcome`` GO | NO_GO, or pending until then).
extensions = sa.Table(
    "cm_extensions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("roadmap_id", sa.String(100), nullable=False),
    sa.Column("run_key", sa.String(250), nullable=False),
    sa.Column("decision_point", sa.String(100), nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("days", sa.Float, nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("outcome", sa.String(10), nullable=False, server_default="pending"),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Column("evaluated_at", sa.DateTime(timezone=True)),
    sa.UniqueConstraint("run_key", "decision_point", "number", name="uq_cm_extensions_run_point_number"),
)

# Incidents (seed: AUTO-RESOLUTION PROTOCOLS, ESCALATION PROCEDURES): one row per problem of a run
# (``run_key``; problems outside any run, such as a failing probe, use ``<roadmap>:operations``),
# unique on (run_key, kind, subject) so retries, reruns and two schedulers never open it twice. The
# ladder's timer is ``level_since``: the sweep advances the level when the configured time has passed.
incidents = sa.Table(
    "cm_incidents",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("roadmap_id", sa.String(100), nullable=False),
    sa.Column("run_key", sa.String(250), nullable=False),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("agents", sa.JSON, nullable=False),
    sa.Column("state", sa.String(20), nullable=False),  # open | resolved
    sa.Column("level", sa.Integer, nullable=False),
    sa.Column("detail", sa.Text, nullable=False, server_default=""),
    sa.Column("resolution", sa.Text, nullable=False, server_default=""),
    sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("level_since", sa.DateTime(timezone=True), nullable=False),
    sa.Column("resolved_at", sa.DateTime(timezone=True)),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("run_key", "kind", "subject", name="uq_cm_incidents_run_kind_subject"),
)

# Everything done about an incident, in order: opened, re-checked, escalated, resolved ... with
# who did it (castmatch, an agent, a person) and the outcome.
incident_actions = sa.Table(
    "cm_incident_actions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("incident_id", sa.Integer, sa.ForeignKey("cm_incidents.id", ondelete="CASCADE"), nullable=False),
    sa.Column("level", sa.Integer, nullable=False),
    sa.Column("action", sa.String(60), nullable=False),
    sa.Column("outcome", sa.String(20), nullable=False),
    sa.Column("detail", sa.Text, nullable=False, server_default=""),
    sa.Column("actor", sa.String(100), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_cm_incident_actions_incident", "incident_id"),
)

# Which Airflow connection stands in for another (level 1 "fallback to Redis Cloud"): the agents'
# calls, memory and probes of the roadmap use ``active_conn_id`` where the config says ``conn_id``.
connection_overrides = sa.Table(
    "cm_connection_overrides",
    metadata,
    sa.Column("roadmap_id", sa.String(100), primary_key=True),
    sa.Column("conn_id", sa.String(250), primary_key=True),
    sa.Column("active_conn_id", sa.String(250), nullable=False),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

# How level 2 changed a unit in a run (an agent's proposal applied): another lead agent, dependencies
# dropped or replaced. The unit's next try in that run reads it.
unit_overrides = sa.Table(
    "cm_unit_overrides",
    metadata,
    sa.Column("run_key", sa.String(250), primary_key=True),
    sa.Column("work_unit_id", sa.String(100), primary_key=True),
    sa.Column("lead_agent", sa.String(100)),
    sa.Column("depends_on", sa.JSON),  # the unit's dependencies from now on (None: as configured)
    sa.Column("incident_id", sa.Integer),
    sa.Column("proposed_by", sa.String(100), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

# Trigger-based alerts: one per (run, notification, subject) - a retried task finds the row and
# does not alert again. ``status``: sending | sent | not_sent (no Slack connection) | failed.
alerts = sa.Table(
    "cm_alerts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("roadmap_id", sa.String(100), nullable=False),
    sa.Column("run_key", sa.String(250), nullable=False),
    sa.Column("notification_id", sa.String(100), nullable=False),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("agents", sa.JSON, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("channel", sa.String(250), nullable=False, server_default=""),
    sa.Column("detail", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("sent_at", sa.DateTime(timezone=True)),
    sa.UniqueConstraint("run_key", "notification_id", "subject", name="uq_cm_alerts_run_event_subject"),
)


reports = sa.Table(  # stakeholder reports (castmatch.report): one per run and week
    "cm_reports",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("roadmap_id", sa.String(100), nullable=False),
    sa.Column("run_key", sa.String(250), nullable=False),
    sa.Column("week", sa.Integer, nullable=False),
    sa.Column("markdown", sa.Text, nullable=False),
    sa.Column("summary", sa.JSON, nullable=False),
    sa.Column("written_by", sa.String(200), nullable=False),
    sa.Column("files", sa.JSON, nullable=False),  # {file name: base64 of its bytes}
    sa.Column("slack_status", sa.String(20), nullable=False, server_default="not_sent"),
    sa.Column("slack_detail", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("run_key", "week", name="uq_cm_reports_run_week"),
)


checkpoints = sa.Table(  # the operating rhythm (castmatch.checkpoints): one per run, checkpoint and roadmap day
    "cm_checkpoints",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("roadmap_id", sa.String(100), nullable=False),
    sa.Column("run_key", sa.String(250), nullable=False, index=True),
    sa.Column("checkpoint_id", sa.String(100), nullable=False),
    sa.Column("day", sa.Integer, nullable=False),
    sa.Column("week", sa.Integer, nullable=False),
    sa.Column("moment", sa.DateTime(timezone=True), nullable=False),  # when it stands for, on the run's clock
    sa.Column("figures", sa.JSON, nullable=False),
    sa.Column("actions", sa.JSON, nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("written_by", sa.String(200), nullable=False),
    sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("run_key", "checkpoint_id", "day", name="uq_cm_checkpoints_run_day"),
)
