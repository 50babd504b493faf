"""Detection rules: rules, versions, hits, lists, snoozes (app/rules/).

- `rules`: a rule's name, mode and which version runs (`running_version`, set exactly when
  the mode is shadow or active) and its newest (`latest_version`).
- `rule_versions`: numbered, immutable condition + action (risk 1–100, reason).
- `rule_hits`: what running rules matched (or failed on), with the values read; by rule
  and time for the hits list and stats, by transaction for explanations.
- `rule_lists`, `rule_list_items`: admin-managed lists for `in_list`.
- `rule_snoozes`: a rule's hits for an account open no case until `until`.
- `rule_generation`: one counter row, bumped with every change to what runs.
- `transactions (account_id, created_at) INCLUDE (currency, amount)`: the window functions'
  range scans.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def _created_at() -> sa.Column:
    return sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def _updated_at() -> sa.Column:
    return sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def upgrade() -> None:
    op.create_table(
        "rules",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("description", sa.String(1000)),
        sa.Column("mode", sa.String(16), nullable=False, server_default="draft"),
        sa.Column("running_version", sa.Integer()),
        sa.Column("latest_version", sa.Integer(), nullable=False, server_default="1"),
        _created_at(),
        _updated_at(),
        sa.CheckConstraint("mode IN ('draft', 'shadow', 'active', 'disabled')", name="mode"),
        sa.CheckConstraint("char_length(name) >= 1", name="name_not_empty"),
        sa.CheckConstraint("(mode IN ('shadow', 'active')) = (running_version IS NOT NULL)",
                           name="running_when_published"),
        sa.CheckConstraint("running_version BETWEEN 1 AND latest_version", name="running_version_exists"),
    )
    op.create_table(
        "rule_versions",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("rule_id", sa.BigInteger(), sa.ForeignKey("rules.id"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("condition", sa.Text(), nullable=False),
        sa.Column("risk", sa.SmallInteger(), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("created_by", sa.BigInteger(), sa.ForeignKey("users.id")),
        _created_at(),
        sa.UniqueConstraint("rule_id", "version"),
        sa.CheckConstraint("risk BETWEEN 1 AND 100", name="risk_range"),
        sa.CheckConstraint("version >= 1", name="version_positive"),
    )
    op.create_table(
        "rule_hits",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("rule_id", sa.BigInteger(), sa.ForeignKey("rules.id"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("transaction_id", sa.BigInteger(), sa.ForeignKey("transactions.id"), nullable=False),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("values", postgresql.JSONB(), nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("error", sa.Text()),
        sa.Column("risk", sa.SmallInteger(), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("case_id", sa.BigInteger(), sa.ForeignKey("review_cases.id")),
        sa.Column("snoozed", sa.Boolean(), nullable=False, server_default="false"),
        _created_at(),
        sa.CheckConstraint("mode IN ('shadow', 'active')", name="mode"),
        sa.CheckConstraint("outcome IN ('hit', 'error')", name="outcome"),
        sa.CheckConstraint("event IN ('transaction.created', 'risk_score.posted')", name="event"),
        sa.CheckConstraint("(outcome = 'error') = (error IS NOT NULL)", name="error_when_error"),
    )
    op.create_index("ix_rule_hits_rule_id_created_at_id", "rule_hits", ["rule_id", "created_at", "id"])
    op.create_index("ix_rule_hits_transaction_id", "rule_hits", ["transaction_id"])
    op.create_table(
        "rule_lists",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("description", sa.String(1000)),
        _created_at(),
        _updated_at(),
        sa.CheckConstraint("name ~ '^[a-z0-9_-]{1,64}$'", name="name_format"),
    )
    op.create_table(
        "rule_list_items",
        sa.Column("list_name", sa.String(64), sa.ForeignKey("rule_lists.name", ondelete="CASCADE"), primary_key=True),
        sa.Column("value", sa.String(256), primary_key=True),
        sa.CheckConstraint("char_length(value) >= 1", name="value_not_empty"),
    )
    op.create_table(
        "rule_snoozes",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("rule_id", sa.BigInteger(), sa.ForeignKey("rules.id"), nullable=False),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("created_by", sa.BigInteger(), sa.ForeignKey("users.id")),
        _created_at(),
    )
    op.create_index("ix_rule_snoozes_rule_id_account_id_until", "rule_snoozes", ["rule_id", "account_id", "until"])
    op.create_table(
        "rule_generation",
        sa.Column("id", sa.SmallInteger(), primary_key=True, autoincrement=False),
        sa.Column("generation", sa.BigInteger(), nullable=False, server_default="0"),
        sa.CheckConstraint("id = 1", name="one_row"),
    )
    op.execute("INSERT INTO rule_generation (id, generation) VALUES (1, 0)")
    op.create_index("ix_transactions_account_id_created_at", "transactions", ["account_id", "created_at"],
                    postgresql_include=["currency", "amount"])


def downgrade() -> None:
    op.drop_index("ix_transactions_account_id_created_at", table_name="transactions")
    op.drop_table("rule_generation")
    op.drop_table("rule_snoozes")
    op.drop_table("rule_list_items")
    op.drop_table("rule_lists")
    op.drop_table("rule_hits")
    op.drop_table("rule_versions")
    op.drop_table("rules")
