"""Checkpoints of the operating rhythm: one per (run, checkpoint, roadmap day), with the moment it
stands for, its figures, the actions it took and its summary. Taken again, it replaces its row.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cm_checkpoints",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("roadmap_id", sa.String(100), nullable=False),
        sa.Column("run_key", sa.String(250), nullable=False),
        sa.Column("checkpoint_id", sa.String(100), nullable=False),
        sa.Column("day", sa.Integer, nullable=False),
        sa.Column("week", sa.Integer, nullable=False),
        sa.Column("moment", sa.DateTime(timezone=True), nullable=False),
        sa.Column("figures", sa.JSON, nullable=False),
        sa.Column("actions", sa.JSON, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("written_by", sa.String(200), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("run_key", "checkpoint_id", "day", name="uq_cm_checkpoints_run_day"),
    )
    op.create_index("ix_cm_checkpoints_run_key", "cm_checkpoints", ["run_key"])


def downgrade() -> None:
    op.drop_index("ix_cm_checkpoints_run_key", table_name="cm_checkpoints")
    op.drop_table("cm_checkpoints")
