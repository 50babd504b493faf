"""Login throttling under real concurrency: a real uvicorn, simultaneous clients from distinct addresses.

The server is started as `python -m app run` starts it (proxy headers off), so the client
address the throttle counts is the socket's: every 127.0.0.0/8 address is loopback on
Linux, and each client binds its own source address.
"""

import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from sqlalchemy import func, select

from app.audit.models import AuditEvent
from app.config import get_settings
from app.users.models import LoginFailure
from tests.conftest import ROOT, _free_port, assert_no_server_errors, run_together

WRONG = "wrong-password-123"
CLIENTS = 40


@contextmanager
def serving(database_url: str, *uvicorn_flags: str) -> Iterator[str]:
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
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.1)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def socket_address_server(database_url) -> Iterator[str]:
    """Served as `python -m app run` serves it: proxy headers off, client addresses from the socket only."""
    with serving(database_url, "--no-proxy-headers") as base_url:
        yield base_url


@pytest.fixture(scope="module")
def procfile_server(database_url) -> Iterator[str]:
    """Served as the Procfile's `web` serves it: proxy headers from the configured proxy (default 127.0.0.1) only."""
    with serving(database_url, "--proxy-headers") as base_url:
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
