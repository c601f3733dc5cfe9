"""LLM audit ledger and response cache.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "cm_llm_calls",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ts", TS, nullable=False, index=True),
        sa.Column("dag_id", sa.String(250)),
        sa.Column("run_id", sa.String(250)),
        sa.Column("task_id", sa.String(250)),
        sa.Column("try_number", sa.Integer),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("agent_id", sa.String(100), index=True),
        sa.Column("work_unit_id", sa.String(100)),
        sa.Column("week", sa.Integer, index=True),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("backend", sa.String(20), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("input_tokens", sa.Integer, nullable=False, server_default="0"),
        sa.Column("output_tokens", sa.Integer, nullable=False, server_default="0"),
        sa.Column("cache_creation_input_tokens", sa.Integer, nullable=False, server_default="0"),
        sa.Column("cache_read_input_tokens", sa.Integer, nullable=False, server_default="0"),
        sa.Column("latency_ms", sa.Integer, nullable=False, server_default="0"),
        sa.Column("cost_usd", sa.Float, nullable=False, server_default="0"),
        sa.Column("batch", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("outcome", sa.String(40), nullable=False),
        sa.Column("error_class", sa.String(100)),
        sa.Column("error", sa.Text),
    )
    op.create_table(
        "cm_llm_responses",
        sa.Column("request_hash", sa.String(64), primary_key=True),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("deliverable", sa.JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("cm_llm_responses")
    op.drop_table("cm_llm_calls")
