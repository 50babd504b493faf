"""Cheaper audit writes: one function call per unit of work, the hash computed in the trigger.

Every write ends with its audit events, so their cost is paid on every POST. Two changes,
same rows, same chain:

- `riskdesk_append_audit(events json)` inserts a unit of work's queued events (a JSON
  array, in queue order). PL/pgSQL keeps the INSERT's plan for the session, so the server
  no longer parses and plans the `json_to_recordset` statement on every commit; the app
  sends `SELECT riskdesk_append_audit(…)` with its COMMIT.
- The chain trigger computes the hash in its own body instead of calling
  `audit_event_hash(prev_hash, NEW)`: the same bytes (verification still uses
  `audit_event_hash`, and tests/audit checks each stored hash against it), without two
  nested SQL-function calls per row.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# The event fields the app sends (app/audit/service.py `record`); the trigger fills in id,
# occurred_at, prev_hash and hash.
EVENT_FIELDS = (
    "actor text, actor_id bigint, actor_role text, actor_type text, action text, entity_type text, "
    "entity_id text, before jsonb, after jsonb, reason text, request_id text, client_addr text"
)
EVENT_NAMES = ", ".join(field.split()[0] for field in EVENT_FIELDS.split(", "))

APPEND_SQL = f"""
CREATE FUNCTION riskdesk_append_audit(events json) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO audit_events ({EVENT_NAMES})
  SELECT {EVENT_NAMES}
  FROM ROWS FROM (json_to_recordset(events) AS ({EVENT_FIELDS}))
       WITH ORDINALITY AS e({EVENT_NAMES}, n)
  ORDER BY n;
END
$$;
"""

# 0001's trigger body with the hash expression left open: 0001 calls audit_event_hash; 0008
# writes the same expression out, which must stay byte for byte audit_event_hash(prev_hash, e)
# = sha256(prev_hash || audit_event_canonical(e)).
CHAIN_TEMPLATE = r"""
CREATE OR REPLACE FUNCTION audit_events_chain() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  previous text;
BEGIN
  PERFORM pg_advisory_xact_lock(7355608001);
  SELECT hash INTO previous FROM audit_events ORDER BY id DESC LIMIT 1;
  NEW.id := nextval('audit_events_id_seq');
  NEW.occurred_at := clock_timestamp();
  NEW.prev_hash := coalesce(previous, repeat('0', 64));
  NEW.hash := HASH_EXPRESSION;
  RETURN NEW;
END
$$;
"""
INLINE_HASH = """encode(sha256(convert_to(NEW.prev_hash || json_build_array(
    NEW.id,
    to_char(NEW.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    NEW.actor, NEW.actor_id, NEW.actor_role, NEW.actor_type, NEW.action, NEW.entity_type, NEW.entity_id,
    NEW.before, NEW.after, NEW.reason, NEW.request_id, NEW.client_addr
  )::text, 'UTF8')), 'hex')"""
CHAIN_SQL = CHAIN_TEMPLATE.replace("HASH_EXPRESSION", INLINE_HASH)
PREVIOUS_CHAIN_SQL = CHAIN_TEMPLATE.replace("HASH_EXPRESSION", "audit_event_hash(NEW.prev_hash, NEW)")


def upgrade() -> None:
    op.execute(APPEND_SQL)
    op.execute(CHAIN_SQL)


def downgrade() -> None:
    op.execute(PREVIOUS_CHAIN_SQL)
    op.execute("DROP FUNCTION riskdesk_append_audit(json)")
