"""Foundation: users, login failures, transactions, hash-chained audit history.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# The audit chain. A BEFORE INSERT trigger takes a transaction-scoped advisory lock, reads
# the newest event's hash, and assigns id, occurred_at, prev_hash and hash. The app queues
# audit events and inserts them as the last statement before COMMIT, so the lock is held
# only for that insert and the commit: writers serialize on the chain for the shortest
# time possible, and everything before it runs in parallel.
# The canonical content of an event `e` (its hash is SHA-256 of the previous hash and this
# text), and the chain trigger's function: migration 0008 rewrites the function from both.
CANONICAL_ARRAY = """json_build_array(
    e.id,
    to_char(e.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    e.actor, e.actor_id, e.actor_role, e.actor_type, e.action, e.entity_type, e.entity_id,
    e.before, e.after, e.reason, e.request_id, e.client_addr
  )"""
CHAIN_FUNCTION = r"""CREATE FUNCTION audit_events_chain() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  previous text;
BEGIN
  PERFORM pg_advisory_xact_lock(7355608001);
  SELECT hash INTO previous FROM audit_events ORDER BY id DESC LIMIT 1;
  NEW.id := nextval('audit_events_id_seq');
  NEW.occurred_at := clock_timestamp();
  NEW.prev_hash := coalesce(previous, repeat('0', 64));
  NEW.hash := audit_event_hash(NEW.prev_hash, NEW);
  RETURN NEW;
END
$$;"""
AUDIT_SQL = rf"""
CREATE SEQUENCE audit_events_id_seq AS bigint;

CREATE FUNCTION audit_event_canonical(e audit_events) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT {CANONICAL_ARRAY}::text
$$;

CREATE FUNCTION audit_event_hash(prev_hash text, e audit_events) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT encode(sha256(convert_to(prev_hash || audit_event_canonical(e), 'UTF8')), 'hex')
$$;

{CHAIN_FUNCTION}

CREATE FUNCTION audit_events_reject_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_events is append-only: % is not allowed', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_events_chain BEFORE INSERT ON audit_events
  FOR EACH ROW EXECUTE FUNCTION audit_events_chain();
CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
  FOR EACH ROW EXECUTE FUNCTION audit_events_reject_change();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
  FOR EACH STATEMENT EXECUTE FUNCTION audit_events_reject_change();
"""

AUDIT_DROP_SQL = r"""
DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events;
DROP TRIGGER IF EXISTS audit_events_no_update ON audit_events;
DROP TRIGGER IF EXISTS audit_events_chain ON audit_events;
DROP FUNCTION IF EXISTS audit_events_reject_change();
DROP FUNCTION IF EXISTS audit_events_chain();
DROP FUNCTION IF EXISTS audit_event_hash(text, audit_events);
DROP FUNCTION IF EXISTS audit_event_canonical(audit_events);
DROP SEQUENCE IF EXISTS audit_events_id_seq;
"""


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    ]


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False, server_default="true"),
        sa.Column("token_version", sa.Integer(), nullable=False, server_default="0"),
        *_timestamps(),
        sa.CheckConstraint("role IN ('admin', 'analyst', 'agent')", name="role"),
        sa.UniqueConstraint("username"),
    )
    op.create_table(
        "login_failures",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("client_addr", sa.String(64), nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_login_failures_username_failed_at", "login_failures", ["username", "failed_at"])
    op.create_index("ix_login_failures_client_addr_failed_at", "login_failures", ["client_addr", "failed_at"])

    op.create_table(
        "transactions",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("reference", sa.String(128), nullable=False),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("amount", sa.Numeric(19, 4), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("counterparty", sa.String(255)),
        sa.Column("description", sa.String(1000)),
        sa.Column("metadata", postgresql.JSONB(), nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("review_status", sa.String(16), nullable=False, server_default="clear"),
        sa.Column("settlement_reason", sa.String(500)),
        sa.Column("settled_at", sa.DateTime(timezone=True)),
        sa.Column("created_by", sa.BigInteger(), sa.ForeignKey("users.id")),
        *_timestamps(),
        sa.CheckConstraint("amount > 0 AND amount < 1000000000000000", name="amount_range"),
        sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_code"),
        sa.CheckConstraint("status IN ('pending', 'settled', 'failed')", name="status"),
        sa.CheckConstraint("review_status IN ('clear', 'flagged', 'approved', 'rejected')", name="review_status"),
        sa.UniqueConstraint("reference"),
    )
    op.create_index("ix_transactions_account_id_id", "transactions", ["account_id", "id"])
    op.create_index("ix_transactions_status_id", "transactions", ["status", "id"])
    op.create_index("ix_transactions_review_status_id", "transactions", ["review_status", "id"])

    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.text("clock_timestamp()")),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("actor_id", sa.BigInteger()),
        sa.Column("actor_role", sa.String(16)),
        sa.Column("actor_type", sa.String(8), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("entity_type", sa.String(32), nullable=False),
        sa.Column("entity_id", sa.String(128), nullable=False),
        sa.Column("before", postgresql.JSONB()),
        sa.Column("after", postgresql.JSONB()),
        sa.Column("reason", sa.Text()),
        sa.Column("request_id", sa.String(128)),
        sa.Column("client_addr", sa.String(64)),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.CheckConstraint("actor_type IN ('human', 'agent', 'system')", name="actor_type"),
    )
    op.create_index("ix_audit_events_entity", "audit_events", ["entity_type", "entity_id", "id"])
    op.create_index("ix_audit_events_actor", "audit_events", ["actor", "id"])
    op.create_index("ix_audit_events_action", "audit_events", ["action", "id"])
    op.create_index("ix_audit_events_occurred_at", "audit_events", ["occurred_at"])
    op.execute(AUDIT_SQL)


def downgrade() -> None:
    op.execute(AUDIT_DROP_SQL)
    op.drop_table("audit_events")
    op.drop_table("transactions")
    op.drop_table("login_failures")
    op.drop_table("users")
