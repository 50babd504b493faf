"""Audit checkpoints: the signed chain heads the app made (app/audit/checkpoints.py).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_checkpoints",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("last_id", sa.BigInteger(), nullable=False, unique=True),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("merkle_root", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("document", postgresql.JSONB(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("audit_checkpoints")
