"""Trigger-based alerts (seed: COMMUNICATION PROTOCOLS): one row per event, with whom it told and
whether Slack got it, so a retried task never alerts twice.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cm_alerts",
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


def downgrade() -> None:
    op.drop_table("cm_alerts")
