"""Write-ahead audit ledger (rows booked before the request, with the input estimate) and the raw
answers paid for in a run.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cm_llm_calls") as batch:
        batch.add_column(sa.Column("input_estimate", sa.Integer, nullable=False, server_default="0"))
    op.create_table(
        "cm_llm_answers",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_key", sa.String(250), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("raw", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("run_key", "request_hash", name="uq_cm_llm_answers_run_request"),
    )


def downgrade() -> None:
    op.drop_table("cm_llm_answers")
    with op.batch_alter_table("cm_llm_calls") as batch:
        batch.drop_column("input_estimate")
