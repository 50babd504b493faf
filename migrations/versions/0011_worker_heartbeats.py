"""Webhook worker heartbeats: `webhook_workers`, one row per delivery worker process.

Each worker upserts its row (INSERT … ON CONFLICT DO UPDATE) as it polls, so the
deliveries screen can say plainly when no worker has been seen lately and deliveries are
only waiting. A runtime-maintained table, not audited state: heartbeats write no audit
events, and rows of workers gone for a week are deleted by the next worker that starts.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_workers",
        sa.Column("worker_id", sa.String(64), primary_key=True),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    op.drop_table("webhook_workers")
