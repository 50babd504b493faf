"""Login throttling: known clients keep their own allowance; refusals are counted, not audited one by one."""

from collections.abc import Callable, Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from app.audit.models import AuditEvent
from app.config import get_settings
from app.observability import registry
from app.users.models import LoginFailure, LoginThrottleWindow
from tests.conftest import PASSWORD

WRONG = "wrong-password-123"
ADMIN_ADDR = "198.51.100.10"
STRANGER = "203.0.113.66"
OTHER_STRANGER = "203.0.113.67"


@pytest.fixture
def login_from(app) -> Iterator[Callable[..., httpx.Response]]:
    """POST /auth/token from a given client address (what the socket would report)."""
    clients: dict[str, TestClient] = {}

    def _login(address: str, username: str, password: str = PASSWORD) -> httpx.Response:
        if address not in clients:
            clients[address] = TestClient(app, raise_server_exceptions=False, client=(address, 40000))
        return clients[address].post("/auth/token", data={"username": username, "password": password})

    yield _login
    for test_client in clients.values():
        test_client.close()


def throttled_events(db) -> list[AuditEvent]:
    db.expire_all()
    return list(db.scalars(
        select(AuditEvent).where(AuditEvent.action == "auth.login_throttled").order_by(AuditEvent.id)
    ))


def refused_metric(scope: str) -> float:
    return registry.get_sample_value("riskdesk_login_throttled_total", {"scope": scope}) or 0.0


def lock_out_strangers(login_from, username: str, address: str = STRANGER) -> None:
    for _ in range(get_settings().login_max_failures_per_user):
        assert login_from(address, username, WRONG).status_code == 401
    assert login_from(address, username, WRONG).status_code == 429


# --- known clients ---------------------------------------------------------------------


def test_strangers_at_the_user_cap_do_not_lock_out_an_address_that_signed_in_before(login_from, users):
    users.create("admin", username="root")
    assert login_from(ADMIN_ADDR, "root").status_code == 200

    lock_out_strangers(login_from, "root")

    assert login_from(STRANGER, "root").status_code == 429  # even the right password
    assert login_from(OTHER_STRANGER, "root").status_code == 429  # the cap holds for every stranger
    assert login_from(ADMIN_ADDR, "root").status_code == 200


def test_a_known_client_has_a_capped_allowance_of_its_own(login_from, users, db):
    users.create("admin", username="root")
    assert login_from(ADMIN_ADDR, "root").status_code == 200
    limit = get_settings().login_max_failures_per_known_client

    for _ in range(limit):
        assert login_from(ADMIN_ADDR, "root", WRONG).status_code == 401
    assert login_from(ADMIN_ADDR, "root").status_code == 429

    rows = db.execute(select(LoginFailure.known_client, func.count()).group_by(LoginFailure.known_client)).all()
    assert rows == [(f"address:{ADMIN_ADDR}", limit)]
    # Its failures are its own: strangers' allowance is untouched.
    assert login_from(STRANGER, "root").status_code == 200


def test_a_success_clears_only_the_failures_of_its_own_client(login_from, users):
    users.create("agent", username="alice")
    for _ in range(get_settings().login_max_failures_per_user - 1):
        assert login_from(STRANGER, "alice", WRONG).status_code == 401

    assert login_from(ADMIN_ADDR, "alice").status_code == 200  # alice, from a new address

    assert login_from(OTHER_STRANGER, "alice", WRONG).status_code == 401  # the fifth stranger failure
    assert login_from(OTHER_STRANGER, "alice", WRONG).status_code == 429


def test_remembering_addresses_can_be_turned_off(login_from, users, monkeypatch):
    monkeypatch.setenv("LOGIN_REMEMBER_ADDRESSES", "false")
    get_settings.cache_clear()
    try:
        users.create("admin", username="root")
        assert login_from(ADMIN_ADDR, "root").status_code == 200
        lock_out_strangers(login_from, "root")
        assert login_from(ADMIN_ADDR, "root").status_code == 429  # only a device cookie would be known now
    finally:
        monkeypatch.delenv("LOGIN_REMEMBER_ADDRESSES")
        get_settings.cache_clear()


def test_a_known_address_is_remembered_only_for_the_user_who_signed_in(login_from, users):
    users.create("admin", username="root")
    users.create("agent", username="alice")
    assert login_from(ADMIN_ADDR, "root").status_code == 200

    lock_out_strangers(login_from, "alice")

    assert login_from(ADMIN_ADDR, "alice").status_code == 429


def test_a_known_client_forgotten_after_its_days_is_a_stranger_again(login_from, users, db):
    users.create("admin", username="root")
    assert login_from(ADMIN_ADDR, "root").status_code == 200
    db.execute(text("UPDATE login_known_clients SET last_login_at = now() - make_interval(days => :d)"),
               {"d": get_settings().login_known_client_days + 1})
    db.commit()

    lock_out_strangers(login_from, "root")

    assert login_from(ADMIN_ADDR, "root").status_code == 429


# --- no audit flood --------------------------------------------------------------------


def test_fifty_throttled_attempts_write_one_audit_event_and_count_fifty(login_from, users, db):
    users.create("agent", username="alice")
    before = refused_metric("user")
    lock_out_strangers(login_from, "alice")  # five failures, then the first refusal

    for _ in range(49):
        assert login_from(STRANGER, "alice", WRONG).status_code == 429

    assert refused_metric("user") - before == 50
    [event] = throttled_events(db)
    assert (event.entity_type, event.entity_id) == ("user", "alice")
    assert event.after is not None
    assert event.after["scope"] == "user" and event.after["refused_so_far"] == 1
    assert event.reason is not None
    assert "throttled 1 attempt so far" in event.reason
    [window] = db.scalars(select(LoginThrottleWindow)).all()
    assert (window.scope, window.key, window.refused) == ("user", "alice", 50)


def test_a_throttled_address_writes_one_audit_event_for_every_username_it_tries(login_from, db):
    limit = get_settings().login_max_failures_per_address
    db.add_all(LoginFailure(username=f"guess{n}", client_addr=STRANGER) for n in range(limit))
    db.commit()
    before = refused_metric("address")

    for n in range(50):
        assert login_from(STRANGER, f"spray{n}", WRONG).status_code == 429

    assert refused_metric("address") - before == 50
    [event] = throttled_events(db)
    assert (event.entity_type, event.entity_id) == ("client_address", STRANGER)
    assert db.scalar(select(LoginThrottleWindow.refused)) == 50


def test_throttled_by_user_and_address_at_once_writes_at_most_two_events(login_from, users, db):
    users.create("agent", username="alice")
    lock_out_strangers(login_from, "alice", address=STRANGER)
    db.add_all(LoginFailure(username=f"guess{n}", client_addr=STRANGER)
               for n in range(get_settings().login_max_failures_per_address))
    db.commit()
    before = refused_metric("user") + refused_metric("address")

    for n in range(50):
        assert login_from(STRANGER, "alice" if n % 2 else f"spray{n}", WRONG).status_code == 429

    assert refused_metric("user") + refused_metric("address") - before == 50
    assert len(throttled_events(db)) <= 2


def test_the_next_window_writes_a_new_event_with_the_previous_windows_count(login_from, users, db):
    users.create("agent", username="alice")
    lock_out_strangers(login_from, "alice")
    for _ in range(6):
        login_from(STRANGER, "alice", WRONG)
    # As if the audit window had ended (the failures still count in the sliding window).
    db.execute(text("UPDATE login_throttle_windows SET window_start = window_start - make_interval(secs => :w)"),
               {"w": get_settings().login_failure_window_seconds})
    db.commit()

    assert login_from(STRANGER, "alice", WRONG).status_code == 429

    _first, second = throttled_events(db)
    assert second.after is not None
    assert second.after["refused_in_previous_window"] == 7
    assert second.after["refused_so_far"] == 1


def test_refused_logins_are_exported_as_a_metric(client, login_from, users):
    users.create("agent", username="alice")
    lock_out_strangers(login_from, "alice")

    metrics = client.get("/metrics").text

    assert 'riskdesk_login_throttled_total{scope="user"}' in metrics
