"""Audit test helpers: tampering with the chain behind the triggers' back, and the CLI."""

import os
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import text

from tests.conftest import ROOT


@pytest.fixture
def tamper(owner_engine) -> Callable[[str, dict | None], None]:
    """Run one statement on audit_events with the append-only trigger switched off.

    This is what an attacker with the table owner's (or a superuser's) rights can do. The
    ALTER TABLEs and the statement share one transaction, so the trigger is never left
    disabled, even when the statement fails.
    """

    def run(statement: str, params: dict | None = None) -> None:
        with owner_engine.begin() as conn:
            conn.execute(text("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update"))
            conn.execute(text(statement), params or {})
            conn.execute(text("ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_update"))

    return run


@pytest.fixture
def run_cli(database_url) -> Callable[..., subprocess.CompletedProcess]:
    """`python -m app …` in a subprocess against the test database."""

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        env = {**os.environ, "DATABASE_URL": database_url, "APP_ENV": "test", **(env or {})}
        return subprocess.run(
            [sys.executable, "-m", "app", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )

    return run


REAL_HASH_FUNCTION = (
    "CREATE OR REPLACE FUNCTION audit_event_hash(prev_hash text, e audit_events) RETURNS text "
    "LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ "
    "SELECT encode(sha256(convert_to(prev_hash || audit_event_canonical(e), 'UTF8')), 'hex') $$"
)


@pytest.fixture
def replace_hash_function(owner_engine) -> Iterator[Callable[[], None]]:
    """What an owner can do to make the database's own check agree with a rewritten row:
    replace audit_event_hash with one that returns the stored hash. Put back afterwards."""

    def replace() -> None:
        with owner_engine.begin() as conn:
            conn.execute(text("CREATE OR REPLACE FUNCTION audit_event_hash(prev_hash text, e audit_events) "
                              "RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT e.hash $$"))

    yield replace
    with owner_engine.begin() as conn:
        conn.execute(text(REAL_HASH_FUNCTION))
