"""The app's runtime role cannot change history: only SELECT and INSERT on audit_events."""

import psycopg2
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.db import database
from tests.audit.test_chain import chain_rows, post_transactions


@pytest.mark.parametrize("statement", [
    "UPDATE audit_events SET reason = 'rewritten'",
    "DELETE FROM audit_events",
    "TRUNCATE audit_events",
    "ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update",
    "ALTER TABLE audit_events DISABLE TRIGGER ALL",
    "ALTER TABLE audit_events ALTER COLUMN reason TYPE text USING upper(reason)",
    "DROP TABLE audit_events",
    "DROP TRIGGER audit_events_no_update ON audit_events",
    "CREATE OR REPLACE FUNCTION audit_event_hash(prev_hash text, e audit_events) RETURNS text "
    "LANGUAGE sql AS $$ SELECT e.hash $$",
    "SET session_replication_role = replica",
], ids=["update", "delete", "truncate", "disable-trigger", "disable-all", "alter-using", "drop-table",
        "drop-trigger", "replace-hash-function", "replication-role"])
def test_the_runtime_role_is_refused(client, agent_headers, db, statement):
    post_transactions(client, agent_headers, 2)
    before = chain_rows(db)

    with database.engine.connect() as conn:
        assert conn.execute(text("SELECT current_user")).scalar() == "riskdesk_test_app"
        with pytest.raises(DBAPIError) as raised:
            conn.execute(text(statement))
            conn.commit()
        conn.rollback()

    orig = raised.value.orig
    assert isinstance(orig, psycopg2.Error) and orig.pgcode == "42501", orig  # insufficient_privilege / must be owner
    assert chain_rows(db) == before


def test_the_runtime_role_owns_nothing_and_reads_and_appends_audit_events(client, agent_headers, db):
    post_transactions(client, agent_headers, 1)
    with database.engine.connect() as conn:
        owned = conn.execute(text(
            "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
            "WHERE r.rolname = current_user")).scalar()
        privileges = conn.execute(text(
            "SELECT privilege_type FROM information_schema.table_privileges "
            "WHERE table_name = 'audit_events' AND grantee = current_user ORDER BY 1")).scalars().all()
    assert owned == 0
    assert privileges == ["INSERT", "SELECT"]
    assert [row.action for row in chain_rows(db)] == ["user.created", "transaction.created"]
