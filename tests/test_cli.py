"""`python -m app create-user` and `python -m app audit verify`, run as real processes
against the test database."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from app.audit.models import AuditEvent
from app.users.models import User
from tests.security.conftest import pinned_test_database  # noqa: F401  (autouse: see its docstring)

ROOT = Path(__file__).resolve().parent.parent
NEW_PASSWORD = "a-long-cli-password"


@pytest.fixture
def run_cli(database_url):
    def _run(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
        env = {**os.environ, "DATABASE_URL": database_url, "APP_ENV": "test", "LOG_LEVEL": "WARNING"}
        return subprocess.run(
            [sys.executable, "-m", "app", *args],
            input=stdin, capture_output=True, text=True, cwd=ROOT, env=env, timeout=120,
        )

    return _run


def token_response(client, username: str, password: str):
    return client.post("/auth/token", data={"username": username, "password": password})


def user_count(db) -> int:
    return db.scalar(select(func.count()).select_from(User))


# --- create-user -----------------------------------------------------------------------


def test_create_user_creates_a_user_who_can_log_in(run_cli, client, db):
    result = run_cli("create-user", "carol", "--role", "analyst", "--password-stdin", stdin=NEW_PASSWORD + "\n")

    assert result.returncode == 0, result.stderr
    assert "carol" in result.stdout
    response = token_response(client, "carol", NEW_PASSWORD)
    assert response.status_code == 200
    api = client.get("/transactions", headers={"Authorization": f"Bearer {response.json()['access_token']}"})
    assert api.status_code == 200
    carol = db.scalars(select(User).where(User.username == "carol")).one()
    assert carol.role == "analyst"
    assert carol.is_active
    assert carol.password_hash.startswith("$argon2id$")


@pytest.mark.parametrize("role", ["admin", "analyst", "agent"])
def test_create_user_accepts_every_role(run_cli, db, role):
    result = run_cli("create-user", f"new-{role}", "--role", role, "--password-stdin", stdin=NEW_PASSWORD)
    assert result.returncode == 0, result.stderr
    assert db.scalar(select(User.role).where(User.username == f"new-{role}")) == role


def test_create_user_reads_the_whole_line_as_the_password(run_cli, client):
    password = "spaces inside  and # signs!"
    result = run_cli("create-user", "dave", "--role", "agent", "--password-stdin", stdin=password + "\r\n")
    assert result.returncode == 0, result.stderr
    assert token_response(client, "dave", password).status_code == 200


def test_create_user_is_audited(run_cli, db):
    run_cli("create-user", "carol", "--role", "admin", "--password-stdin", stdin=NEW_PASSWORD)

    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "user.created")).one()
    assert event.actor == "cli"
    assert event.after == {"username": "carol", "role": "admin", "is_active": True}
    assert NEW_PASSWORD not in str(event.after)


def test_create_user_with_an_existing_name_exits_1_and_keeps_the_original(run_cli, users, client, db):
    users.create("analyst", username="carol")

    result = run_cli("create-user", "carol", "--role", "admin", "--password-stdin", stdin=NEW_PASSWORD)

    assert result.returncode == 1
    assert "carol" in result.stderr and "exists" in result.stderr
    assert user_count(db) == 1
    assert db.scalar(select(User.role).where(User.username == "carol")) == "analyst"
    assert token_response(client, "carol", NEW_PASSWORD).status_code == 401


def test_create_user_refuses_an_unknown_role(run_cli, db):
    result = run_cli("create-user", "carol", "--role", "superuser", "--password-stdin", stdin=NEW_PASSWORD)

    assert result.returncode != 0
    assert "role" in result.stderr
    assert "superuser" in result.stderr
    assert user_count(db) == 0


def test_create_user_without_a_password_on_stdin_creates_nothing(run_cli, db):
    result = run_cli("create-user", "carol", "--role", "agent", "--password-stdin", stdin="")
    assert result.returncode != 0
    assert "password" in result.stderr
    assert user_count(db) == 0


def test_create_user_refuses_a_short_password(run_cli, db):
    result = run_cli("create-user", "carol", "--role", "agent", "--password-stdin", stdin="short")
    assert result.returncode == 1
    assert "password" in result.stderr
    assert user_count(db) == 0


def test_create_user_refuses_a_name_with_surrounding_spaces(run_cli, db):
    result = run_cli("create-user", " carol", "--role", "agent", "--password-stdin", stdin=NEW_PASSWORD)
    assert result.returncode == 1
    assert "username" in result.stderr
    assert user_count(db) == 0


# --- audit verify ----------------------------------------------------------------------


def test_audit_verify_on_an_empty_history_is_ok(run_cli):
    result = run_cli("audit", "verify")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "OK 0 events"


def test_audit_verify_reports_ok_and_the_event_count_on_a_clean_chain(run_cli, client, db):
    run_cli("create-user", "carol", "--role", "analyst", "--password-stdin", stdin=NEW_PASSWORD)
    token_response(client, "carol", "wrong-password-123")
    token_response(client, "carol", NEW_PASSWORD)
    events = db.scalar(select(func.count()).select_from(AuditEvent))
    assert events == 3

    result = run_cli("audit", "verify")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"OK {events} events"


def test_audit_verify_exits_1_naming_the_first_edited_event(run_cli, client, db, owner_engine):
    run_cli("create-user", "carol", "--role", "analyst", "--password-stdin", stdin=NEW_PASSWORD)
    for _ in range(3):
        token_response(client, "carol", "wrong-password-123")
    ids = db.scalars(select(AuditEvent.id).order_by(AuditEvent.id)).all()
    edited = ids[2]
    # Only a superuser bypassing the append-only trigger can do this; verify must notice.
    with owner_engine.begin() as conn:
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(text("UPDATE audit_events SET reason = 'nothing happened' WHERE id = :id"), {"id": edited})

    result = run_cli("audit", "verify")

    assert result.returncode == 1
    assert re.search(rf"\b{edited}\b", result.stdout + result.stderr)
    assert not result.stdout.startswith("OK")
