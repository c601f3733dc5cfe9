"""Daily standup reports.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cm_standups",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("standup_date", sa.String(10), nullable=False),
        sa.Column("agent_id", sa.String(100), nullable=False),
        sa.Column("run_id", sa.String(250), nullable=False),
        sa.Column("backend", sa.String(20), nullable=False),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("batch_id", sa.String(100)),
        sa.Column("report", sa.JSON, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("standup_date", "agent_id", name="uq_cm_standups_day_agent"),
    )


def downgrade() -> None:
    op.drop_table("cm_standups")
