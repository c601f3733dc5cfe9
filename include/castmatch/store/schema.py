"""Tables of the state store. Changed only together with a migration in ``migrations/versions``."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

agents = sa.Table(
    "cm_agents",
    metadata,
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

# `run_key` names the run a unit belongs to: the roadmap run that triggered the week, else the
# week run's logical date, else its run id. Rerunning the same run replaces, never duplicates.

# One row per (run key, work unit): the unit's state in that run. Upserted on every try.
unit_runs = sa.Table(
    "cm_unit_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dag_id", sa.String(250), nullable=False),
    sa.Column("run_key", sa.String(250), nullable=False),
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
    sa.Column("dag_id", sa.String(250), nullable=False),
    sa.Column("run_key", sa.String(250), nullable=False),
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
    sa.Column("dag_id", sa.String(250)),
    sa.Column("run_id", sa.String(250)),
    sa.Column("work_unit_id", sa.String(100)),
    sa.Column("agent_id", sa.String(100)),
    sa.Column("message", sa.Text, nullable=False, server_default=""),
    sa.Column("data", sa.JSON),
)
