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

import importlib.util
import re
from pathlib import Path

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


def _foundation():
    """Migration 0001, whose chain function and canonical content this one rewrites."""
    path = Path(__file__).with_name("0001_foundation.py")
    spec = importlib.util.spec_from_file_location("riskdesk_migration_0001", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


foundation = _foundation()
# 0001's function as it was (the downgrade), and the same with the hash written out:
# byte for byte audit_event_hash(prev_hash, e) = sha256(prev_hash || audit_event_canonical(e)),
# the canonical content taken from 0001 with NEW for e.
PREVIOUS_CHAIN_SQL = foundation.CHAIN_FUNCTION.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)
INLINE_HASH = (
    "encode(sha256(convert_to(NEW.prev_hash || "
    + re.sub(r"\be\.", "NEW.", foundation.CANONICAL_ARRAY)
    + "::text, 'UTF8')), 'hex')"
)
CHAIN_SQL = PREVIOUS_CHAIN_SQL.replace("audit_event_hash(NEW.prev_hash, NEW)", INLINE_HASH)


def upgrade() -> None:
    op.execute(APPEND_SQL)
    op.execute(CHAIN_SQL)


def downgrade() -> None:
    op.execute(PREVIOUS_CHAIN_SQL)
    op.execute("DROP FUNCTION riskdesk_append_audit(json)")
