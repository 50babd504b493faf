"""Test fixtures: a real PostgreSQL per test session, cleaned after every test.

The server is TEST_DATABASE_URL's (a server URL whose user may create databases), else
the embedded PostgreSQL in .pytest-pg/. A fresh database is migrated with Alembic once
per session; every test then starts from empty tables.
"""

import fcntl
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import TypeVar

import httpx
import psycopg2
import pytest
from fastapi.testclient import TestClient
from psycopg2 import sql
from sqlalchemy.engine import make_url

os.environ.setdefault("APP_ENV", "test")
os.environ.setdefault("LOG_LEVEL", "WARNING")
# A fixed checkpoint key for the tests (production requires one; app/audit/checkpoints.py).
os.environ.setdefault("AUDIT_SIGNING_KEY", "cmlza2Rlc2stdGVzdC1jaGVja3BvaW50LXNlZWQtMzI=")
# APP_ENV=test also means Argon2id at test strength (app/config.py, hash_profile): full
# strength spent most of the suite's time hashing fixtures' passwords.

from app.audit.service import Actor  # noqa: E402
from app.config import get_settings  # noqa: E402
from app.db import database, normalize_database_url  # noqa: E402
from app.security import tokens  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TEST_DB = f"riskdesk_test_{os.getpid()}"
PASSWORD = "correct-horse-battery"
R = TypeVar("R")


def _cleanup_sql() -> str:
    """Empty every mapped table and restart the sequences they own (the list comes from the
    models, so a new table is never missed): what TRUNCATE … RESTART IDENTITY does, without
    its fixed cost per table (new files for 23 tables, most of a test's teardown). As replica,
    no trigger runs (the audit history's refusal of DELETE included) and no foreign key is
    checked, so the order does not matter."""
    from app.models import Base

    names = [table.name for table in Base.metadata.sorted_tables]
    # The rule generation only ever moves on (a server's cache of compiled rules is keyed by it,
    # and a live test server outlives a test): it is bumped, not emptied.
    deletes = "".join(f"DELETE FROM {name};\n" for name in names if name != "rule_generation")
    tables = ", ".join(f"'{name}'" for name in names)
    return (
        "SET session_replication_role = replica;\n"
        f"{deletes}"
        "UPDATE rule_generation SET generation = generation + 1;\n"
        "SELECT setval(s.oid, 1, false) FROM pg_class s JOIN pg_depend d ON d.objid = s.oid AND d.deptype IN ('a', 'i')"
        f" WHERE s.relkind = 'S' AND d.refobjid = ANY(ARRAY[{tables}]::regclass[]);\n"
        "SET session_replication_role = DEFAULT;\n"
    )


CLEANUP_SQL = _cleanup_sql()


# Markers by place, so a new file in these folders is marked without remembering to.
_MARKERS_BY_PATH = {
    "tests/browser/": "browser",
    "tests/faults/": "faults",
    "tests/test_packaging.py": "slow",
    "tests/test_run_command.py": "slow",
    "tests/test_embedded_pg.py": "slow",
}


# The longest tests (`--durations`), longest first: each xdist worker starts with its share of
# them, so none is left to start near the end while the other worker sits idle.
_LONG_RUNNING = (
    "tests/test_packaging.py::",
    "tests/browser/test_reconciliation.py::",
    "tests/test_embedded_pg.py::test_run_stops_its_embedded_server_on_sigterm_as_on_ctrl_c",
    "tests/test_demo.py::",
    "tests/ops/test_operations.py::",
    "tests/faults/test_database_restart.py::",
    "tests/webhooks/test_worker.py::",
    "tests/test_run_command.py::",
)


def _long_running_rank(item) -> int | None:
    return next((rank for rank, prefix in enumerate(_LONG_RUNNING) if item.nodeid.startswith(prefix)), None)


def _long_running_first(items: list, workers: int) -> list:
    """The order for xdist's worksteal, which hands worker k the k-th of `workers` equal runs of the
    collection (worker 0 the first N // workers, and so on) and steals from their ends: the long
    tests are dealt out in turn and lead each worker's run; the rest keep their order."""
    ranked = sorted((item for item in items if _long_running_rank(item) is not None),
                    key=lambda item: _long_running_rank(item) or 0)
    rest = iter([item for item in items if _long_running_rank(item) is None])
    ordered: list = []
    remaining = len(items)
    for worker in range(workers):
        size = remaining // (workers - worker)
        remaining -= size
        lead = ranked[worker::workers]
        ordered += lead + list(islice(rest, max(0, size - len(lead))))
    ordered += list(rest)
    return ordered


def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        path = Path(str(item.fspath)).resolve().relative_to(ROOT).as_posix()
        for prefix, marker in _MARKERS_BY_PATH.items():
            if path.startswith(prefix):
                item.add_marker(marker)
    workerinput = getattr(config, "workerinput", None)  # set on pytest-xdist's workers only
    if workerinput is not None and config.getoption("dist") == "worksteal":
        workers = int(workerinput["workercount"])
        if len(items) >= 4 * workers:  # enough to split; a handful of tests runs in any order
            items[:] = _long_running_first(items, workers)


def _server_admin_url() -> str:
    explicit = os.environ.get("TEST_DATABASE_URL")
    if explicit:
        return make_url(normalize_database_url(explicit)).set(drivername="postgresql").render_as_string(
            hide_password=False
        )
    from app import embedded_pg

    # pytest-xdist's workers each attach to the one embedded server, in turn: the first
    # starts it, and pgserver stops it when the last of them exits.
    with open(ROOT / ".pytest-pg.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        url = embedded_pg.start(ROOT / ".pytest-pg", database="postgres")
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def admin_execute(admin_url: str, statement) -> None:
    conn = psycopg2.connect(admin_url)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(statement)
    finally:
        conn.close()


RUNTIME_ROLE = "riskdesk_test_app"


@pytest.fixture(scope="session")
def owner_url() -> Iterator[str]:
    """The test database as its owner, who migrated it (tampering, clean-up)."""
    admin_url = _server_admin_url()
    admin_execute(admin_url, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(TEST_DB)))
    admin_execute(admin_url, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEST_DB)))
    url = make_url(admin_url).set(drivername="postgresql+psycopg2", database=TEST_DB)
    yield url.render_as_string(hide_password=False)
    database.dispose()
    admin_execute(admin_url, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(TEST_DB)))


@pytest.fixture(scope="session")
def database_url(owner_url) -> Iterator[str]:
    """The test database as the app's runtime role, as production runs it (app/roles.py):
    migrated by the owner, then granted only what the app needs."""
    from app import roles

    roles.ensure_login_role(owner_url, RUNTIME_ROLE)
    runtime_url = roles.with_user(owner_url, RUNTIME_ROLE)
    roles.migrate(owner_url, runtime_url)
    # Pinned twice: the engine keeps this URL across dispose(), and anything that reads
    # settings (subprocesses, a fresh Database) sees the test database, never the dev one.
    os.environ["DATABASE_URL"] = runtime_url
    get_settings.cache_clear()
    database.configure(runtime_url)
    yield runtime_url


@pytest.fixture(scope="session")
def owner_engine(owner_url):
    from sqlalchemy import create_engine

    engine = create_engine(owner_url, pool_size=2)
    yield engine
    engine.dispose()


@pytest.fixture(autouse=True)
def clean_tables(request) -> Iterator[None]:
    if "database_url" not in request.fixturenames:
        yield
        return
    yield
    with request.getfixturevalue("owner_engine").begin() as conn:
        conn.exec_driver_sql(CLEANUP_SQL)


@pytest.fixture
def db(database_url):
    """A session for arranging and checking data directly; committed by the test."""
    session = database.session()
    yield session
    session.rollback()
    session.close()


@pytest.fixture(scope="session")
def app(database_url):
    from app.main import app as fastapi_app

    return fastapi_app


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


class UserFactory:
    """Creates users and hands out their bearer headers."""

    def __init__(self, db):
        self.db = db
        self.count = 0

    def create(self, role: str, username: str | None = None, password: str = PASSWORD):
        from app.users import service as users

        self.count += 1
        user = users.create(
            session=self.db, actor=Actor(name="test"), username=username or f"{role}{self.count}",
            role=role, password=password,
        )
        self.db.commit()
        return user

    @staticmethod
    def token_for(user) -> str:
        token, _ = tokens.issue(
            user_id=user.id, username=user.username, role=user.role, token_version=user.token_version,
            key=get_settings().signing_key, ttl_seconds=600,
        )
        return token

    def headers(self, role: str, username: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token_for(self.create(role, username))}"}


@pytest.fixture
def users(db) -> UserFactory:
    return UserFactory(db)


@pytest.fixture
def agent_headers(users) -> dict[str, str]:
    return users.headers("agent")


@pytest.fixture
def analyst_headers(users) -> dict[str, str]:
    return users.headers("analyst")


@pytest.fixture
def admin_headers(users) -> dict[str, str]:
    return users.headers("admin")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_health(base_url: str, process: subprocess.Popen, seconds: float, log_path: Path | None = None) -> None:
    """Return once GET base_url/healthz answers 200; fail, with the process's log, if it exits first
    or time runs out."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            log = log_path.read_text() if log_path is not None and log_path.exists() else ""
            state = f"exited {process.returncode}" if process.poll() is not None else f"no answer in {seconds:.0f} s"
            raise RuntimeError(f"{base_url}: {state}\n{log}")
        time.sleep(0.1)


@contextmanager
def uvicorn_server(database_url: str, *uvicorn_flags: str) -> Iterator[str]:
    """A real uvicorn serving the app against the test database, started with `uvicorn_flags`."""
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "APP_ENV": "test", "LOG_LEVEL": "WARNING"}
    env.pop("FORWARDED_ALLOW_IPS", None)  # uvicorn's own default: trust only a proxy on 127.0.0.1
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port),
         *uvicorn_flags, "--log-level", "warning"],
        cwd=ROOT, env=env,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(base_url, process, 30)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="session")
def live_server(database_url) -> Iterator[str]:
    """A real uvicorn serving the app against the test database."""
    with uvicorn_server(database_url) as base_url:
        yield base_url


@pytest.fixture
def http(live_server) -> Iterator[httpx.Client]:
    """A client of the live uvicorn, with connections enough for the concurrency tests."""
    with httpx.Client(base_url=live_server, timeout=60, limits=httpx.Limits(max_connections=100)) as client:
        yield client


def run_together(calls: Sequence[Callable[..., R]]) -> list[R]:
    """Run every zero-argument call in its own thread, released at the same moment."""
    barrier = threading.Barrier(len(calls))

    def run(call):
        barrier.wait(timeout=60)
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def assert_no_server_errors(responses: list[httpx.Response]) -> None:
    assert [(r.status_code, r.text) for r in responses if r.status_code >= 500] == []


def tx_payload(reference: str = "ref-1", **overrides) -> dict:
    payload = {"account_id": "acct_1", "reference": reference, "amount": "125.50", "currency": "USD"}
    payload.update(overrides)
    return payload
