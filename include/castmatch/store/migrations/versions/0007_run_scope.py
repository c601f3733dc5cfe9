"""Run-scoped state: the roadmap id on every row, a registry of runs, enforcer verdicts stored
once per deliverable content, week outcomes, timeline extensions, probe samples that can say
"offline", and the purpose of every LLM call.

Rows written before this revision keep an empty ``roadmap_id`` (they belong to no roadmap run).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

ROADMAP_COLUMN_TABLES = ("cm_unit_runs", "cm_deliverables", "cm_events", "cm_llm_calls", "cm_kpi_samples",
                         "cm_kpi_validations", "cm_gate_results", "cm_decisions")


def _roadmap_id() -> sa.Column:
    return sa.Column("roadmap_id", sa.String(100), nullable=False, server_default="")


def upgrade() -> None:
    # The configuration mirror is rebuilt by every task: recreate it keyed by roadmap.
    op.drop_table("cm_agents")
    op.drop_table("cm_work_units")
    op.create_table(
        "cm_agents",
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
    op.create_table(
        "cm_work_units",
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
    for table in ROADMAP_COLUMN_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(_roadmap_id())
    for table in ("cm_unit_runs", "cm_deliverables"):
        op.create_index(f"ix_{table}_run_key", table, ["run_key"])
    for table in ("cm_events", "cm_llm_calls", "cm_kpi_samples"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("run_key", sa.String(250)))
        op.create_index(f"ix_{table}_run_key", table, ["run_key"])
    with op.batch_alter_table("cm_llm_calls") as batch:
        batch.add_column(sa.Column("purpose", sa.String(20), nullable=False, server_default="agent"))
    with op.batch_alter_table("cm_probe_samples") as batch:
        batch.add_column(sa.Column("status", sa.String(20), nullable=False, server_default="ok"))
    op.execute("UPDATE cm_probe_samples SET status = 'failed' WHERE NOT ok")
    op.drop_index("ix_cm_kpi_samples_kpi_ts", table_name="cm_kpi_samples")
    op.create_index("ix_cm_kpi_samples_kpi_ts", "cm_kpi_samples", ["roadmap_id", "kpi_id", "ts"])
    with op.batch_alter_table("cm_standups") as batch:
        batch.add_column(_roadmap_id())
        batch.drop_constraint("uq_cm_standups_day_agent", type_="unique")
        batch.create_unique_constraint("uq_cm_standups_day_agent", ["roadmap_id", "standup_date", "agent_id"])

    op.create_table(
        "cm_runs",
        sa.Column("run_key", sa.String(250), primary_key=True),
        sa.Column("roadmap_id", sa.String(100), nullable=False, index=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("dag_id", sa.String(250), nullable=False),
        sa.Column("run_id", sa.String(250), nullable=False),
        sa.Column("clock", sa.String(20), nullable=False),
        sa.Column("origin", sa.DateTime(timezone=True)),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "cm_reviews",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("roadmap_id", sa.String(100), nullable=False),
        sa.Column("reviewer", sa.String(100), nullable=False),
        sa.Column("work_unit_id", sa.String(100), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("method", sa.String(120), nullable=False),
        sa.Column("verdict", sa.String(10), nullable=False),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.Column("run_key", sa.String(250)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("roadmap_id", "reviewer", "work_unit_id", "content_hash", "method",
                            name="uq_cm_reviews_reviewer_content"),
    )
    op.create_table(
        "cm_week_outcomes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("roadmap_id", sa.String(100), nullable=False),
        sa.Column("run_key", sa.String(250), nullable=False),
        sa.Column("week", sa.Integer, nullable=False),
        sa.Column("dag_id", sa.String(250), nullable=False),
        sa.Column("run_id", sa.String(250), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("problems", sa.JSON, nullable=False),
        sa.Column("delivered", sa.Integer, nullable=False),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("run_key", "week", name="uq_cm_week_outcomes_run_week"),
    )
    op.create_table(
        "cm_extensions",
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


def downgrade() -> None:
    for table in ("cm_extensions", "cm_week_outcomes", "cm_reviews", "cm_runs"):
        op.drop_table(table)
    with op.batch_alter_table("cm_standups") as batch:
        batch.drop_constraint("uq_cm_standups_day_agent", type_="unique")
        batch.create_unique_constraint("uq_cm_standups_day_agent", ["standup_date", "agent_id"])
        batch.drop_column("roadmap_id")
    op.drop_index("ix_cm_kpi_samples_kpi_ts", table_name="cm_kpi_samples")
    op.create_index("ix_cm_kpi_samples_kpi_ts", "cm_kpi_samples", ["kpi_id", "ts"])
    with op.batch_alter_table("cm_probe_samples") as batch:
        batch.drop_column("status")
    with op.batch_alter_table("cm_llm_calls") as batch:
        batch.drop_column("purpose")
    for table in ("cm_events", "cm_llm_calls", "cm_kpi_samples"):
        op.drop_index(f"ix_{table}_run_key", table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("run_key")
    for table in ("cm_unit_runs", "cm_deliverables"):
        op.drop_index(f"ix_{table}_run_key", table_name=table)
    for table in ROADMAP_COLUMN_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("roadmap_id")
