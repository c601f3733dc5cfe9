"""Stakeholder reports: one per (run, week), with the Markdown, the summary, who wrote it, the PNG
charts themselves and whether Slack got it. A report made again replaces its row.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cm_reports",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("roadmap_id", sa.String(100), nullable=False),
        sa.Column("run_key", sa.String(250), nullable=False),
        sa.Column("week", sa.Integer, nullable=False),
        sa.Column("markdown", sa.Text, nullable=False),
        sa.Column("summary", sa.JSON, nullable=False),
        sa.Column("written_by", sa.String(200), nullable=False),
        sa.Column("files", sa.JSON, nullable=False),
        sa.Column("slack_status", sa.String(20), nullable=False, server_default="not_sent"),
        sa.Column("slack_detail", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("run_key", "week", name="uq_cm_reports_run_week"),
    )


def downgrade() -> None:
    op.drop_table("cm_reports")
