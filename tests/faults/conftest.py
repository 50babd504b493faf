"""Fixtures for the fault tests (helpers themselves live in tests/faults/harness.py).

Each test drives a real uvicorn subprocess over TCP; the database is either a throwaway
cluster of its own (`pg_cluster`, for the restart test) or the shared test database
(`database_url` from tests/conftest.py, cleaned after every test).
"""

from collections.abc import Callable, Iterator

import pytest

from app.migrations import upgrade_to_head
from tests.faults.harness import AppServer, PgCluster


@pytest.fixture
def pg_cluster() -> Iterator[PgCluster]:
    """A fresh PostgreSQL cluster on 127.0.0.1, started; stopped and deleted afterwards."""
    cluster = PgCluster().init()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def cluster_database_url(pg_cluster: PgCluster) -> str:
    """A migrated `riskdesk` database on the throwaway cluster."""
    url = pg_cluster.create_database("riskdesk")
    upgrade_to_head(url)
    return url


@pytest.fixture
def start_app(tmp_path) -> Iterator[Callable[..., AppServer]]:
    """start_app(database_url, NAME=value…) → a running uvicorn with those environment overrides.
    Every server started is stopped at the end of the test (a killed one is simply gone)."""
    servers: list[AppServer] = []

    def start(database_url: str, **env: str) -> AppServer:
        server = AppServer(database_url, tmp_path / f"uvicorn-{len(servers)}.log", **env)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
