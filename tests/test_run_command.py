"""`python -m app run` and scripts/run.sh as real processes: --host/--port, the webhook worker
beside the server in development (never in production), and production's safety check
before anything touches the database."""

import os
import signal
import socket
import stat
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from app.audit.models import AuditEvent
from app.transactions.models import Transaction
from app.users.models import User
from tests.conftest import ROOT, tx_payload, wait_for_health
from tests.security.conftest import pinned_test_database  # noqa: F401  (autouse: see its docstring)
from tests.webhooks import conftest as webhooks
from tests.webhooks.conftest import register, rows

receiver = webhooks.receiver  # the real HTTP receiver fixture, shared with tests/webhooks

STRONG_KEY = "k" * 48
START_SECONDS = 120


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def count(db, model) -> int:
    db.commit()
    return db.scalar(select(func.count()).select_from(model))


@contextmanager
def serving(command: list[str], env: dict[str, str], port: int, log_path: Path,
            cwd: Path = ROOT) -> Iterator[subprocess.Popen]:
    """Start `command`, wait until 127.0.0.1:port answers /healthz; always stopped afterwards."""
    with log_path.open("w") as log:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        wait_for_health(f"http://127.0.0.1:{port}", process, START_SECONDS, log_path)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def run_env(database_url: str, app_env: str, **extra: str) -> dict[str, str]:
    env = {**os.environ, "DATABASE_URL": database_url, "APP_ENV": app_env, "LOG_LEVEL": "WARNING",
           "WEBHOOK_PRIVATE_TARGETS": "true"}
    env.pop("SECRET_KEY", None)
    env.update(extra)
    return env


def run_command(port: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "app", "run", "--host", "127.0.0.1", "--port", str(port), *extra]


def settle_one(client, users, reference: str = "hooked-1") -> None:
    agent = users.headers("agent")
    assert client.post("/transactions", json=tx_payload(reference), headers=agent).status_code == 200
    assert client.post(f"/transactions/{reference}/settlement", json={"status": "settled"},
                       headers=agent).status_code == 200


def wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


# --- webhooks deliver in the default local setup --------------------------------------


def test_run_in_development_delivers_webhooks_and_stops_its_worker_on_sigterm(
        client, users, receiver, db, database_url, tmp_path):
    admin = users.headers("admin")  # the database has users: run seeds no demo data
    port = free_port()
    with serving(run_command(port), run_env(database_url, "development"), port, tmp_path / "run.log") as process:
        register(client, admin, receiver.url)
        settle_one(client, users)

        assert wait_for(lambda: receiver.requests, 20), (tmp_path / "run.log").read_text()
        assert '"type":"transaction.settled"' in receiver.requests[0].body.decode()
        assert wait_for(lambda: rows(db, "SELECT status FROM webhook_deliveries")[0].status == "delivered", 10)

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, (tmp_path / "run.log").read_text()
    assert "Traceback" not in (tmp_path / "run.log").read_text()
    assert len(receiver.requests) == 1


def test_run_with_no_worker_leaves_deliveries_pending(client, users, receiver, db, database_url, tmp_path):
    admin = users.headers("admin")
    port = free_port()
    with serving(run_command(port, "--no-worker"), run_env(database_url, "development"), port, tmp_path / "run.log"):
        register(client, admin, receiver.url)
        settle_one(client, users)
        time.sleep(4)  # the worker polls every second
        assert receiver.requests == []
        assert [r.status for r in rows(db, "SELECT status FROM webhook_deliveries")] == ["pending"]


# --- production: no demo data, no embedded worker, the safety check first -------------


def test_run_in_production_seeds_nothing_and_runs_no_worker(client, users, receiver, db, database_url, tmp_path):
    port = free_port()
    env = run_env(database_url, "production", SECRET_KEY=STRONG_KEY)
    with serving(run_command(port), env, port, tmp_path / "run.log"):
        assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
        assert count(db, User) == 0
        assert count(db, Transaction) == 0
        assert "Demo sign-ins" not in (tmp_path / "run.log").read_text()

        register(client, users.headers("admin"), receiver.url)
        settle_one(client, users)
        time.sleep(4)
        assert receiver.requests == []  # production delivers with `python -m app worker` (Procfile)


@pytest.mark.parametrize("secret_key", [None, "too-short", "riskdesk-development-secret-key-not-for-production"])
def test_run_in_production_with_an_unsafe_key_exits_before_touching_the_database(db, database_url, secret_key):
    env = run_env(database_url, "production", **({"SECRET_KEY": secret_key} if secret_key else {}))

    result = subprocess.run(run_command(free_port()), check=False, cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)

    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr
    assert "Traceback" not in result.stderr
    assert count(db, User) == 0
    assert count(db, Transaction) == 0
    assert count(db, AuditEvent) == 0


def test_run_in_production_without_database_url_starts_no_embedded_postgres(tmp_path):
    data_dir = tmp_path / "pgdata"
    env = {**os.environ, "APP_ENV": "production", "SECRET_KEY": STRONG_KEY, "EMBEDDED_PG_DIR": str(data_dir)}
    env.pop("DATABASE_URL", None)

    result = subprocess.run(run_command(free_port()), check=False, cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)

    assert result.returncode != 0
    assert "DATABASE_URL" in result.stderr
    assert not data_dir.exists()


def test_worker_in_production_without_database_url_starts_no_embedded_postgres(tmp_path):
    data_dir = tmp_path / "pgdata"
    env = {**os.environ, "APP_ENV": "production", "SECRET_KEY": STRONG_KEY, "EMBEDDED_PG_DIR": str(data_dir)}
    env.pop("DATABASE_URL", None)

    result = subprocess.run(
        [sys.executable, "-m", "app", "worker", "--once"],
        check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )

    assert result.returncode == 2
    assert "DATABASE_URL" in result.stderr
    assert not data_dir.exists()


# --- scripts/run.sh and scripts/test.sh pass the caller's arguments through -----------


@pytest.fixture
def script_checkout(tmp_path) -> Path:
    """scripts/ and pyproject.toml in a scratch directory whose .venv/bin/python logs pip calls
    (and installs nothing) and runs everything else with this interpreter: the real scripts,
    without touching the shared virtualenv."""
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    for name in ("bootstrap.sh", "run.sh", "test.sh"):
        (checkout / "scripts" / name).write_text((ROOT / "scripts" / name).read_text())
    (checkout / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    python = checkout / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then echo "$*" >> "$(dirname "$0")/../pip.log"; exit 0; fi\n'
        f'exec {sys.executable} "$@"\n'
    )
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    for checker in ("ruff", "mypy"):  # each logs its call, in order
        stub = checkout / ".venv" / "bin" / checker
        stub.write_text(f'#!/bin/sh\necho "{checker} $*" >> "$(dirname "$0")/../checks.log"\n')
        stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
    return checkout


def pip_installs(checkout: Path) -> list[str]:
    log = checkout / ".venv" / "pip.log"
    return [line for line in log.read_text().splitlines() if " -e " in line] if log.exists() else []


def test_run_sh_passes_host_and_port_to_the_app_and_installs_no_extra(script_checkout, users, database_url, tmp_path):
    users.create("admin")  # no demo data
    port = free_port()
    env = run_env(database_url, "test")
    command = ["bash", str(script_checkout / "scripts" / "run.sh"), "--port", str(port), "--host", "127.0.0.1"]

    with serving(command, env, port, tmp_path / "run.log", cwd=tmp_path):
        assert httpx.get(f"http://127.0.0.1:{port}/login", timeout=5).status_code == 200

    assert [line.split()[-1] for line in pip_installs(script_checkout)] == ["."]
    assert f"http://127.0.0.1:{port}/" in (tmp_path / "run.log").read_text()


def test_test_sh_installs_the_test_extra_and_passes_its_arguments_to_pytest(script_checkout, tmp_path):
    env = {**os.environ, "CHROMIUM_PATH": sys.executable}  # any executable: no apt-get here
    script = script_checkout / "scripts" / "test.sh"
    result = subprocess.run(["bash", str(script), "--version"], check=False, cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stderr
    assert "pytest" in (result.stdout + result.stderr)
    assert [line.split()[-1] for line in pip_installs(script_checkout)] == [".[test]"]
    # The lint, then the type checker (on the paths pyproject.toml names), run before the tests.
    assert (script_checkout / ".venv" / "checks.log").read_text().splitlines() == [
        "ruff check --quiet app tests bench migrations", "mypy "]
    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]["files"] == ["app", "tests"]
