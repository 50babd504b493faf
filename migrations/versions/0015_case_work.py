"""Case work: comments (append-only) and transactions grouped into an account's open case.

- `case_comments`: a reviewer's notes on a case. Like `audit_events`, a trigger refuses
  UPDATE, DELETE and TRUNCATE, so there is no way to change what was said; each comment
  is also audited (`case.commented`) in the same transaction.
- `case_transactions`: with the `group_flags_by_account` setting on, a new flag on an
  account that already has an open risk case joins that case instead of opening a second;
  the row says which transaction joined which case (the decision then applies to it too).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

APPEND_ONLY_SQL = """
CREATE FUNCTION case_comments_reject_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'case_comments is append-only: % is not allowed', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER case_comments_no_update BEFORE UPDATE OR DELETE ON case_comments
  FOR EACH ROW EXECUTE FUNCTION case_comments_reject_change();
CREATE TRIGGER case_comments_no_truncate BEFORE TRUNCATE ON case_comments
  FOR EACH STATEMENT EXECUTE FUNCTION case_comments_reject_change();
"""


def upgrade() -> None:
    op.create_table(
        "case_comments",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("case_id", sa.BigInteger(), sa.ForeignKey("review_cases.id"), nullable=False),
        sa.Column("author_id", sa.BigInteger(), sa.ForeignKey("users.id")),
        sa.Column("author", sa.String(64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("length(body) BETWEEN 1 AND 4000", name="body_length"),
    )
    op.create_index("ix_case_comments_case_id_id", "case_comments", ["case_id", "id"])
    op.execute(APPEND_ONLY_SQL)
    op.create_table(
        "case_transactions",
        sa.Column("case_id", sa.BigInteger(), sa.ForeignKey("review_cases.id"), primary_key=True),
        sa.Column("transaction_id", sa.BigInteger(), sa.ForeignKey("transactions.id"), primary_key=True),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_case_transactions_transaction_id", "case_transactions", ["transaction_id"])


def downgrade() -> None:
    op.drop_table("case_transactions")
    op.drop_table("case_comments")
    op.execute("DROP FUNCTION case_comments_reject_change()")
