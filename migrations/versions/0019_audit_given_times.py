"""Audit events written with the time of what they describe, for the demo seed only.

The demo seed (app/demo.py) writes fourteen days of history in one transaction. Its events
should carry the times of the business events they describe, not the seed's write time,
and the chain must stay the chain: each event's hash is computed as it is inserted, from
its stored time, exactly as before.

- `riskdesk_append_audit` takes an optional `occurred_at` per event (absent: NULL).
- The chain trigger keeps a given `occurred_at` only when the transaction has set
  `riskdesk.audit_given_times` to `on` (`app.audit.service.use_given_times`), and only a
  time that is not after the server's clock and not before the previous event's, so times
  never go backwards along the chain. Otherwise, as before, the server's clock decides.

Revision ID: 0019
Revises: 0016 (the newest revision on this branch; the slot's 0018 did not exist)
Create Date: 2026-12-07
"""

import importlib.util
from pathlib import Path

from alembic import op

revision = "0019"
down_revision = "0016"
branch_labels = None
depends_on = None


def _load(name: str):
    path = Path(__file__).with_name(name)
    spec = importlib.util.spec_from_file_location(f"riskdesk_migration_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


append = _load("0008_audit_append.py")

PREVIOUS_APPEND_SQL = append.APPEND_SQL.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)
APPEND_SQL = (
    PREVIOUS_APPEND_SQL
    .replace(f"({append.EVENT_FIELDS})", f"({append.EVENT_FIELDS}, occurred_at timestamptz)")
    .replace(f"AS e({append.EVENT_NAMES}, n)", f"AS e({append.EVENT_NAMES}, occurred_at, n)")
    .replace(f"audit_events ({append.EVENT_NAMES})", f"audit_events ({append.EVENT_NAMES}, occurred_at)")
    .replace(f"SELECT {append.EVENT_NAMES}\n", f"SELECT {append.EVENT_NAMES}, occurred_at\n")
)

PREVIOUS_CHAIN_SQL = append.CHAIN_SQL
GIVEN_TIME = """
  IF NEW.occurred_at IS NOT NULL AND current_setting('riskdesk.audit_given_times', true) = 'on' THEN
    IF NEW.occurred_at > clock_timestamp() OR NEW.occurred_at < previous_at THEN
      RAISE EXCEPTION 'audit event time % is outside [% , now]', NEW.occurred_at, previous_at
        USING ERRCODE = 'check_violation';
    END IF;
  ELSE
    NEW.occurred_at := clock_timestamp();
  END IF;"""
CHAIN_SQL = (
    PREVIOUS_CHAIN_SQL
    .replace("  previous text;", "  previous text;\n  previous_at timestamptz;")
    .replace("SELECT hash INTO previous FROM", "SELECT hash, occurred_at INTO previous, previous_at FROM")
    .replace("\n  NEW.occurred_at := clock_timestamp();", GIVEN_TIME)
)


def upgrade() -> None:
    for before, after in ((PREVIOUS_APPEND_SQL, APPEND_SQL), (PREVIOUS_CHAIN_SQL, CHAIN_SQL)):
        if before == after:
            raise RuntimeError("0019: the function it rewrites is not the one it expects")
    op.execute(APPEND_SQL)
    op.execute(CHAIN_SQL)


def downgrade() -> None:
    op.execute(PREVIOUS_CHAIN_SQL)
    op.execute(PREVIOUS_APPEND_SQL)
