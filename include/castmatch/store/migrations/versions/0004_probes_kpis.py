"""Probe samples, KPI samples and KPI validations (quality gates and go/no-go).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "cm_probe_samples",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ts", TS, nullable=False),
        sa.Column("probe_id", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False, server_default="0"),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
        sa.Column("run_id", sa.String(250)),
    )
    op.create_index("ix_cm_probe_samples_probe_ts", "cm_probe_samples", ["probe_id", "ts"])
    op.create_table(
        "cm_kpi_samples",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ts", TS, nullable=False),
        sa.Column("kpi_id", sa.String(100), nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
        sa.Column("run_id", sa.String(250)),
    )
    op.create_index("ix_cm_kpi_samples_kpi_ts", "cm_kpi_samples", ["kpi_id", "ts"])
    op.create_table(
        "cm_kpi_validations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ts", TS, nullable=False),
        sa.Column("run_key", sa.String(250), nullable=False),
        sa.Column("decision_point", sa.String(100), nullable=False, server_default=""),
        sa.Column("success", sa.Boolean, nullable=False),
        sa.Column("results", sa.JSON, nullable=False),
        sa.UniqueConstraint("run_key", "decision_point", name="uq_cm_kpi_validations_run_point"),
    )


def downgrade() -> None:
    op.drop_table("cm_kpi_validations")
    op.drop_index("ix_cm_kpi_samples_kpi_ts", table_name="cm_kpi_samples")
    op.drop_table("cm_kpi_samples")
    op.drop_index("ix_cm_probe_samples_probe_ts", table_name="cm_probe_samples")
    op.drop_table("cm_probe_samples")
