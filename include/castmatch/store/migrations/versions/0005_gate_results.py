"""Gate results.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cm_gate_results",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_key", sa.String(250), nullable=False),
        sa.Column("gate_id", sa.String(100), nullable=False),
        sa.Column("dag_id", sa.String(250)),
        sa.Column("run_id", sa.String(250)),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("criteria", sa.JSON, nullable=False),
        sa.Column("blocked_units", sa.JSON, nullable=False),
        sa.Column("decided_by", sa.String(100)),
        sa.Column("reason", sa.Text),
        sa.Column("evaluated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("run_key", "gate_id", name="uq_cm_gate_results_run_gate"),
    )


def downgrade() -> None:
    op.drop_table("cm_gate_results")
