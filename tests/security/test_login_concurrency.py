"""Login throttling under real concurrency: a real uvicorn, simultaneous clients from distinct addresses.

The server is started as `python -m app run` starts it (proxy headers off), so the client
address the throttle counts is the socket's: every 127.0.0.0/8 address is loopback on
Linux, and each client binds its own source address.
"""

from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import func, select

from app.audit.models import AuditEvent
from app.config import get_settings
from app.users.models import LoginFailure
from tests.conftest import assert_no_server_errors, run_together, uvicorn_server

WRONG = "wrong-password-123"
CLIENTS = 40


@pytest.fixture(scope="module")
def socket_address_server(database_url) -> Iterator[str]:
    """Served as `python -m app run` serves it: proxy headers off, client addresses from the socket only."""
    with uvicorn_server(database_url, "--no-proxy-headers") as base_url:
        yield base_url


@pytest.fixture(scope="module")
def procfile_server(database_url) -> Iterator[str]:
    """Served as the Procfile's `web` serves it: proxy headers from the configured proxy (default 127.0.0.1) only."""
    with uvicorn_server(database_url, "--proxy-headers") as base_url:
        yield base_url


def client_from(base_url: str, source: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, timeout=60, transport=httpx.HTTPTransport(local_address=source))


def test_forty_simultaneous_wrong_passwords_from_forty_addresses_check_at_most_five(
        socket_address_server, users, db):
    users.create("admin", username="root")
    limit = get_settings().login_max_failures_per_user
    clients = [client_from(socket_address_server, f"127.0.0.{n}") for n in range(2, 2 + CLIENTS)]
    try:
        for http in clients:  # connect first, so the requests themselves start together
            assert http.get("/healthz").status_code == 200
        responses = run_together([
            (lambda http=http: http.post("/auth/token", data={"username": "root", "password": WRONG}))
            for http in clients
        ])
    finally:
        for http in clients:
            http.close()

    assert_no_server_errors(responses)
    statuses = Counter(r.status_code for r in responses)
    assert statuses[401] == limit, statuses  # never more; and none lost to the lock
    assert statuses[401] + statuses[429] == CLIENTS, statuses
    db.expire_all()
    # Each 401 is one password checked: its failure row and its audit event.
    assert db.scalar(select(func.count()).select_from(LoginFailure)) == statuses[401]
    assert db.scalar(select(func.count()).where(AuditEvent.action == "auth.login_failed")) == statuses[401]
    addresses = set(db.scalars(select(LoginFailure.client_addr)))
    assert len(addresses) == statuses[401] and addresses <= {f"127.0.0.{n}" for n in range(2, 2 + CLIENTS)}
    assert db.scalar(select(func.count()).where(AuditEvent.action == "auth.login_throttled")) <= 1


FORWARDED = {"X-Forwarded-For": "198.51.100.23", "X-Real-IP": "198.51.100.23", "Forwarded": "for=198.51.100.23"}


def throttle_address(db, address: str) -> None:
    db.add_all(LoginFailure(username=f"guess{n}", client_addr=address)
               for n in range(get_settings().login_max_failures_per_address))
    db.commit()


@pytest.mark.parametrize("source", ["127.0.0.1", "127.0.0.2"])
def test_forwarded_headers_do_not_change_the_address_the_throttle_counts(socket_address_server, db, source):
    throttle_address(db, source)

    with client_from(socket_address_server, source) as http:
        response = http.post("/auth/token", data={"username": "someone", "password": WRONG}, headers=FORWARDED)

    assert response.status_code == 429, response.text


def test_with_proxy_headers_on_only_the_configured_proxy_is_believed(procfile_server, db):
    throttle_address(db, "127.0.0.2")

    with client_from(procfile_server, "127.0.0.2") as http:  # not the proxy: its header is ignored
        response = http.post("/auth/token", data={"username": "someone", "password": WRONG}, headers=FORWARDED)

    assert response.status_code == 429, response.text
