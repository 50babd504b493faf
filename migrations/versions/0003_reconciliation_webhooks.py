"""Reconciliation runs and bank events; outbound webhooks (endpoints, outbox, deliveries, attempts).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _now() -> sa.Column:
    return sa.func.now()


def upgrade() -> None:
    op.create_table(
        "reconciliation_runs",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("filename", sa.String(255)),
        sa.Column("status", sa.String(16), nullable=False, server_default="processing"),
        sa.Column("total_rows", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("rows_processed", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("matched", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("mismatched", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("replayed", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("malformed", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_by", sa.BigInteger(), sa.ForeignKey("users.id")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("completed_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("status IN ('processing', 'completed', 'failed')", name="status"),
        sa.CheckConstraint("source IN ('api', 'csv')", name="source"),
        sa.CheckConstraint("rows_processed <= total_rows", name="progress"),
    )
    op.create_table(
        "reconciliation_uploads",
        sa.Column("run_id", sa.BigInteger(), sa.ForeignKey("reconciliation_runs.id"), primary_key=True),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("next_offset", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_line", sa.Integer(), nullable=False, server_default="1"),
    )
    # Uncompressed out-of-line storage: each chunk reads a slice without detoasting the whole file.
    op.execute("ALTER TABLE reconciliation_uploads ALTER COLUMN content SET STORAGE EXTERNAL")
    op.create_table(
        "bank_events",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("run_id", sa.BigInteger(), sa.ForeignKey("reconciliation_runs.id"), nullable=False),
        sa.Column("line_no", sa.Integer()),
        sa.Column("bank_reference", sa.String(128), nullable=False),
        sa.Column("reference", sa.String(128), nullable=False),
        sa.Column("amount", sa.Numeric(19, 4), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("booked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("is_primary", sa.Boolean(), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("transaction_id", sa.BigInteger(), sa.ForeignKey("transactions.id")),
        sa.Column("case_id", sa.BigInteger(), sa.ForeignKey("review_cases.id")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.CheckConstraint("status IN ('booked', 'pending', 'returned', 'rejected')", name="status"),
        sa.CheckConstraint(
            "outcome IN ('matched', 'missing_in_ledger', 'amount_mismatch', 'currency_mismatch',"
            " 'status_mismatch', 'duplicate_bank_event')", name="outcome",
        ),
        sa.CheckConstraint("amount > 0 AND amount < 1000000000000000", name="amount_range"),
    )
    op.create_index("uq_bank_events_primary", "bank_events", ["bank_reference"], unique=True,
                    postgresql_where=sa.text("is_primary"))
    op.create_index("uq_bank_events_bank_reference_digest", "bank_events", ["bank_reference", "digest"], unique=True)
    op.create_index("ix_bank_events_run_id_id", "bank_events", ["run_id", "id"])
    op.create_index("ix_bank_events_case_id", "bank_events", ["case_id"],
                    postgresql_where=sa.text("case_id IS NOT NULL"))
    op.create_index("ix_bank_events_transaction_id", "bank_events", ["transaction_id"],
                    postgresql_where=sa.text("is_primary AND transaction_id IS NOT NULL"))
    op.create_table(
        "reconciliation_row_errors",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("run_id", sa.BigInteger(), sa.ForeignKey("reconciliation_runs.id"), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(64)),
        sa.Column("message", sa.String(500), nullable=False),
    )
    op.create_index("ix_reconciliation_row_errors_run_id_line_no", "reconciliation_row_errors", ["run_id", "line_no"])

    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("description", sa.String(200)),
        sa.Column("secret", sa.String(100), nullable=False),
        sa.Column("event_types", postgresql.ARRAY(sa.String(64)), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False, server_default="true"),
        sa.Column("created_by", sa.BigInteger(), sa.ForeignKey("users.id")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("deleted_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("url ~ '^https?://'", name="url_scheme"),
    )
    op.create_table(
        "webhook_events",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("message_id", sa.String(64), nullable=False, unique=True),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("payload", postgresql.JSONB(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("event_id", sa.BigInteger(), sa.ForeignKey("webhook_events.id"), nullable=False),
        sa.Column("endpoint_id", sa.BigInteger(), sa.ForeignKey("webhook_endpoints.id"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("attempt_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("max_attempts", sa.Integer(), nullable=False, server_default="8"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("last_status_code", sa.Integer()),
        sa.Column("last_error", sa.String(500)),
        sa.Column("delivered_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status"),
        sa.CheckConstraint("max_attempts >= 1", name="max_attempts_positive"),
    )
    op.create_index("uq_webhook_deliveries_event_id_endpoint_id", "webhook_deliveries", ["event_id", "endpoint_id"],
                    unique=True)
    op.create_index("ix_webhook_deliveries_due", "webhook_deliveries", ["next_attempt_at"],
                    postgresql_where=sa.text("status = 'pending'"))
    op.create_index("ix_webhook_deliveries_endpoint_id_id", "webhook_deliveries", ["endpoint_id", "id"])
    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("delivery_id", sa.BigInteger(), sa.ForeignKey("webhook_deliveries.id"), nullable=False),
        sa.Column("attempt_no", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("status_code", sa.Integer()),
        sa.Column("error", sa.String(500)),
        sa.Column("worker", sa.String(64)),
    )
    op.create_index("ix_webhook_attempts_delivery_id_id", "webhook_attempts", ["delivery_id", "id"])


def downgrade() -> None:
    for table in ("webhook_attempts", "webhook_deliveries", "webhook_events", "webhook_endpoints",
                  "reconciliation_row_errors", "bank_events", "reconciliation_uploads", "reconciliation_runs"):
        op.drop_table(table)
