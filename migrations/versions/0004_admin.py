"""Admin side: explorer and dashboard indexes on audit_events, cached chain verifications.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
# TODO(integration): "0003" (reconciliation/webhooks) once it lands; "0002" until then.
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_audit_events_actor_role", "audit_events", ["actor_role", "id"])
    op.create_index(
        "ix_audit_events_action_occurred_at", "audit_events", ["action", "occurred_at"],
        postgresql_include=["actor_type"],
    )
    op.create_table(
        "audit_verifications",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("verified_by", sa.String(64), nullable=False),
        sa.Column("is_full", sa.Boolean(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.Column("first_broken_id", sa.BigInteger()),
        sa.Column("last_verified_id", sa.BigInteger()),
        sa.Column("last_hash", sa.String(64)),
        sa.Column("duration_ms", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("audit_verifications")
    op.drop_index("ix_audit_events_action_occurred_at", table_name="audit_events")
    op.drop_index("ix_audit_events_actor_role", table_name="audit_events")
