"""Initial store: agents, work units, unit runs, deliverables, events.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "cm_agents",
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("short_name", sa.String(100), nullable=False),
        sa.Column("track", sa.String(40), nullable=False),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("current_task", sa.Text, nullable=False),
        sa.Column("baseline_progress", sa.Integer, nullable=False, server_default="0"),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "cm_work_units",
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("week", sa.Integer, nullable=False, index=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("lead_agent", sa.String(100), nullable=False),
        sa.Column("agents", sa.JSON, nullable=False),
        sa.Column("day", sa.Integer, nullable=False),
        sa.Column("priority", sa.String(20), nullable=False),
        sa.Column("depends_on", sa.JSON, nullable=False),
        sa.Column("weight", sa.Float, nullable=False, server_default="1"),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "cm_unit_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("dag_id", sa.String(250), nullable=False),
        sa.Column("run_key", sa.String(250), nullable=False),
        sa.Column("run_id", sa.String(250), nullable=False),
        sa.Column("work_unit_id", sa.String(100), nullable=False),
        sa.Column("agent_id", sa.String(100), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("try_number", sa.Integer, nullable=False, server_default="1"),
        sa.Column("started_at", TS),
        sa.Column("ended_at", TS),
        sa.Column("error", sa.Text),
        sa.UniqueConstraint("dag_id", "run_key", "work_unit_id", name="uq_cm_unit_runs_run_unit"),
    )
    op.create_table(
        "cm_deliverables",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("dag_id", sa.String(250), nullable=False),
        sa.Column("run_key", sa.String(250), nullable=False),
        sa.Column("run_id", sa.String(250), nullable=False),
        sa.Column("work_unit_id", sa.String(100), nullable=False, index=True),
        sa.Column("agent_id", sa.String(100), nullable=False, index=True),
        sa.Column("week", sa.Integer, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("blockers", sa.JSON, nullable=False),
        sa.Column("progress", sa.Integer, nullable=False),
        sa.Column("backend", sa.String(20), nullable=False),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("try_number", sa.Integer, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("dag_id", "run_key", "work_unit_id", name="uq_cm_deliverables_run_unit"),
    )
    op.create_table(
        "cm_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ts", TS, nullable=False, index=True),
        sa.Column("kind", sa.String(60), nullable=False),
        sa.Column("dag_id", sa.String(250)),
        sa.Column("run_id", sa.String(250)),
        sa.Column("work_unit_id", sa.String(100)),
        sa.Column("agent_id", sa.String(100)),
        sa.Column("message", sa.Text, nullable=False, server_default=""),
        sa.Column("data", sa.JSON),
    )


def downgrade() -> None:
    for table in ("cm_events", "cm_deliverables", "cm_unit_runs", "cm_work_units", "cm_agents"):
        op.drop_table(table)
