"""Fixtures for the security suite: login helper and a pinned test database.

Why the pin: the app's lifespan disposes the global `database` when a TestClient closes,
and the next use of `database` then reconfigures itself from settings. DATABASE_URL is
unset in the pytest process, so that falls back to the shared development database
(embedded PostgreSQL in .pgdata), where concurrent test runs TRUNCATE each other's rows.
Until tests/conftest.py keeps the URL itself, every test here re-pins the test database
before it starts and after its client has closed (so clean_tables empties the right one).
"""

from collections.abc import Callable, Iterator

import httpx
import pytest

from app.db import database
from tests.conftest import PASSWORD


@pytest.fixture(autouse=True)
def pinned_test_database(database_url) -> Iterator[None]:
    database.configure(database_url)
    yield
    database.configure(database_url)


@pytest.fixture
def login(client) -> Callable[..., httpx.Response]:
    """POST /auth/token as an OAuth2 password form."""

    def _login(username: str, password: str = PASSWORD) -> httpx.Response:
        return client.post("/auth/token", data={"username": username, "password": password})

    return _login
