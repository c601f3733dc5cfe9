"""Go/no-go decisions.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cm_decisions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_key", sa.String(250), nullable=False),
        sa.Column("decision_point", sa.String(100), nullable=False),
        sa.Column("week", sa.Integer, nullable=False),
        sa.Column("decision", sa.String(10), nullable=False),
        sa.Column("decided_by", sa.String(100), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("gates", sa.JSON, nullable=False),
        sa.Column("kpis_ok", sa.Boolean),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("run_key", "decision_point", name="uq_cm_decisions_run_point"),
    )


def downgrade() -> None:
    op.drop_table("cm_decisions")
