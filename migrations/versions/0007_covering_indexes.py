"""Covering indexes for the account context: totals and score statistics read the index alone.

GET /accounts/{id}/context sums an account's transactions by currency and status and
summarises the scores of its transactions. With currency, status and amount in the
account index, and score and is_flagged in the scores' transaction index, both parts are
index-only scans instead of one heap page per row (an account's rows are spread over the
table). The key columns are unchanged, so every other query plans as before.

Each index is built CONCURRENTLY under a new name and then swapped in, so a large table
keeps taking writes while it builds.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

INDEXES = [
    # (name, table, key columns, included columns)
    ("ix_transactions_account_id_id", "transactions", "account_id, id", "currency, status, amount"),
    ("ix_risk_scores_transaction_id_id", "risk_scores", "transaction_id, id", "score, is_flagged"),
]


def _rebuild(name: str, table: str, keys: str, include: str | None) -> None:
    covering = f" INCLUDE ({include})" if include else ""
    op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}_new")  # left over by an interrupted run
    op.execute(f"CREATE INDEX CONCURRENTLY {name}_new ON {table} ({keys}){covering}")
    op.execute(f"DROP INDEX CONCURRENTLY {name}")
    op.execute(f"ALTER INDEX {name}_new RENAME TO {name}")


def upgrade() -> None:
    with op.get_context().autocommit_block():
        for name, table, keys, include in INDEXES:
            _rebuild(name, table, keys, include)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        for name, table, keys, _ in INDEXES:
            _rebuild(name, table, keys, None)
