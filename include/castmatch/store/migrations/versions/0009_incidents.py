"""Incidents and what was done about them (the escalation ladder's durable state), and the
connections that stand in for others after a fallback, and units changed by agents' proposals.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cm_incidents",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("roadmap_id", sa.String(100), nullable=False),
        sa.Column("run_key", sa.String(250), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("agents", sa.JSON, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("level", sa.Integer, nullable=False),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
        sa.Column("resolution", sa.Text, nullable=False, server_default=""),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("level_since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("run_key", "kind", "subject", name="uq_cm_incidents_run_kind_subject"),
    )
    op.create_table(
        "cm_incident_actions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("cm_incidents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("level", sa.Integer, nullable=False),
        sa.Column("action", sa.String(60), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_cm_incident_actions_incident", "cm_incident_actions", ["incident_id"])
    op.create_table(
        "cm_connection_overrides",
        sa.Column("roadmap_id", sa.String(100), primary_key=True),
        sa.Column("conn_id", sa.String(250), primary_key=True),
        sa.Column("active_conn_id", sa.String(250), nullable=False),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


    op.create_table(
        "cm_unit_overrides",
        sa.Column("run_key", sa.String(250), primary_key=True),
        sa.Column("work_unit_id", sa.String(100), primary_key=True),
        sa.Column("lead_agent", sa.String(100)),
        sa.Column("depends_on", sa.JSON),
        sa.Column("incident_id", sa.Integer),
        sa.Column("proposed_by", sa.String(100), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("cm_unit_overrides")
    op.drop_table("cm_connection_overrides")
    op.drop_index("ix_cm_incident_actions_incident", table_name="cm_incident_actions")
    op.drop_table("cm_incident_actions")
    op.drop_table("cm_incidents")
