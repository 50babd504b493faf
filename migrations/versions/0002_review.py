"""Review workflow: risk scores, amount rules, settings, review cases, revoked browser sessions.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UNDECIDED = sa.text("state IN ('open', 'in_review', 'escalated')")


def upgrade() -> None:
    op.create_table(
        "settings",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", postgresql.JSONB(), nullable=False),
        sa.Column("updated_by", sa.BigInteger(), sa.ForeignKey("users.id")),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "amount_rules",
        sa.Column("currency", sa.String(3), primary_key=True),
        sa.Column("threshold", sa.Numeric(19, 4), nullable=False),
        sa.Column("updated_by", sa.BigInteger(), sa.ForeignKey("users.id")),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_code"),
        sa.CheckConstraint("threshold > 0", name="threshold_positive"),
    )
    op.create_table(
        "risk_scores",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("transaction_id", sa.BigInteger(),
                  sa.ForeignKey("transactions.id"), nullable=False),
        sa.Column("score", sa.SmallInteger(), nullable=False),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("model_version", sa.String(100)),
        sa.Column("reasons", postgresql.JSONB(), nullable=False),
        sa.Column("is_flagged", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.BigInteger(), sa.ForeignKey("users.id")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("score BETWEEN 0 AND 100", name="score_range"),
    )
    op.create_index("ix_risk_scores_transaction_id_id", "risk_scores", ["transaction_id", "id"])
    op.create_table(
        "review_cases",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False, server_default="risk"),
        sa.Column("state", sa.String(16), nullable=False, server_default="open"),
        sa.Column("transaction_id", sa.BigInteger(),
                  sa.ForeignKey("transactions.id")),
        sa.Column("risk", sa.SmallInteger(), nullable=False, server_default="0"),
        sa.Column("amount", sa.Numeric(19, 4)),
        sa.Column("currency", sa.String(3)),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("assignee_id", sa.BigInteger(), sa.ForeignKey("users.id")),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True)),
        sa.Column("needs_second_approval", sa.Boolean(), nullable=False, server_default="false"),
        sa.Column("first_approved_by", sa.BigInteger(),
                  sa.ForeignKey("users.id")),
        sa.Column("decided_by", sa.BigInteger(), sa.ForeignKey("users.id")),
        sa.Column("decision", sa.String(16)),
        sa.Column("reason_code", sa.String(32)),
        sa.Column("note", sa.Text()),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("state IN ('open', 'in_review', 'approved', 'rejected', 'escalated')",
                           name="state"),
        sa.CheckConstraint("kind IN ('risk', 'reconciliation')", name="kind"),
        sa.CheckConstraint("risk BETWEEN 0 AND 100", name="risk_range"),
        sa.CheckConstraint("(assignee_id IS NULL) = (lease_expires_at IS NULL)", name="claim_has_lease"),
        sa.CheckConstraint(
            "state <> 'approved' OR NOT needs_second_approval"
            " OR (first_approved_by IS NOT NULL AND decided_by IS NOT NULL AND first_approved_by <> decided_by)",
            name="four_eyes",
        ),
        sa.CheckConstraint("(state IN ('approved', 'rejected')) = (decided_at IS NOT NULL)",
                           name="decided_at_when_decided"),
    )
    op.create_index("uq_review_cases_one_undecided", "review_cases", ["transaction_id", "kind"], unique=True,
                    postgresql_where=UNDECIDED)
    op.create_index("ix_review_cases_queue", "review_cases", [sa.text("risk DESC"), "id"], postgresql_where=UNDECIDED)
    op.create_index("ix_review_cases_transaction_id", "review_cases", ["transaction_id"])
    op.create_index("ix_review_cases_assignee_id", "review_cases", ["assignee_id"],
                    postgresql_where=sa.text("assignee_id IS NOT NULL"))
    op.create_index("ix_review_cases_escalated", "review_cases", ["id"],
                    postgresql_where=sa.text("state = 'escalated'"))
    op.create_index("ix_review_cases_first_approved_by", "review_cases", ["first_approved_by"],
                    postgresql_where=sa.text("first_approved_by IS NOT NULL AND " + UNDECIDED.text))
    op.create_table(
        "revoked_tokens",
        sa.Column("jti", sa.String(64), primary_key=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_revoked_tokens_expires_at", "revoked_tokens", ["expires_at"])


def downgrade() -> None:
    op.drop_table("revoked_tokens")
    op.drop_table("review_cases")
    op.drop_table("risk_scores")
    op.drop_table("amount_rules")
    op.drop_table("settings")
