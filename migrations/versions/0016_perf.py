"""Indexes for the hot read paths: an account's newest rule hits (the account context).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_rule_hits_account_id_id", "rule_hits", ["account_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_rule_hits_account_id_id", table_name="rule_hits")
