"""The browser's device cookie: a browser that signed in before keeps its own login allowance."""

import pytest
from fastapi.testclient import TestClient

from app.auth import devices
from app.config import get_settings
from app.web.auth import DEVICE_COOKIE
from tests.conftest import PASSWORD
from tests.web.conftest import submit_login

WRONG = "wrong-password-123"
OFFICE, HOME, STRANGER = "198.51.100.10", "192.0.2.50", "203.0.113.66"


@pytest.fixture
def browser_at(app):
    """A browser (cookie jar) at a client address; a new address keeps no cookies."""
    opened: list[TestClient] = []

    def _at(address: str, cookies: dict[str, str] | None = None) -> TestClient:
        test_client = TestClient(app, raise_server_exceptions=False, client=(address, 40000))
        for name, value in (cookies or {}).items():
            test_client.cookies.set(name, value)
        opened.append(test_client)
        return test_client

    yield _at
    for test_client in opened:
        test_client.close()


def lock_out_strangers(browser_at, username: str) -> None:
    api = browser_at(STRANGER)
    for _ in range(get_settings().login_max_failures_per_user):
        assert api.post("/auth/token", data={"username": username, "password": WRONG}).status_code == 401
    assert api.post("/auth/token", data={"username": username, "password": PASSWORD}).status_code == 429


def device_cookie_of(response) -> tuple[str, str]:
    [header] = [h for h in response.headers.get_list("set-cookie") if h.startswith(f"{DEVICE_COOKIE}=")]
    return header.split(";", 1)[0].split("=", 1)[1], header.lower()


def test_sign_in_sets_a_signed_device_cookie_for_the_login_form_only(browser_at, users):
    users.create("admin", username="root")

    response = submit_login(browser_at(OFFICE), "root")

    assert response.status_code == 303
    value, header = device_cookie_of(response)
    assert devices.verified_device_id(value, get_settings()) is not None
    assert "httponly" in header and "samesite=strict" in header and "path=/login" in header
    assert f"max-age={get_settings().login_known_client_days * 86400}" in header


def test_a_failed_sign_in_sets_no_device_cookie(browser_at, users):
    users.create("admin", username="root")
    response = submit_login(browser_at(OFFICE), "root", password=WRONG)
    assert response.status_code == 401
    assert not [h for h in response.headers.get_list("set-cookie") if h.startswith(f"{DEVICE_COOKIE}=")]


def test_a_browser_that_signed_in_before_is_not_locked_out_by_strangers(browser_at, users):
    users.create("admin", username="root")
    value, _ = device_cookie_of(submit_login(browser_at(OFFICE), "root"))

    lock_out_strangers(browser_at, "root")

    # From an address that never signed in, another browser is a stranger; the device cookie alone counts.
    assert submit_login(browser_at(HOME), "root").status_code == 429
    assert submit_login(browser_at(HOME, {DEVICE_COOKIE: value}), "root").status_code == 303


def test_the_device_keeps_a_capped_allowance_of_its_own(browser_at, users):
    users.create("admin", username="root")
    value, _ = device_cookie_of(submit_login(browser_at(OFFICE), "root"))
    browser = browser_at(HOME, {DEVICE_COOKIE: value})

    for _ in range(get_settings().login_max_failures_per_known_client):
        assert submit_login(browser, "root", password=WRONG).status_code == 401

    assert submit_login(browser, "root").status_code == 429


@pytest.mark.parametrize("tamper", [
    lambda v: v[:-1] + ("0" if v[-1] != "0" else "1"),  # the signature
    lambda v: ("f" if v[0] != "f" else "e") + v[1:],  # the id
    lambda v: "not-a-device-cookie",
])
def test_a_tampered_device_cookie_is_a_stranger(browser_at, users, tamper):
    users.create("admin", username="root")
    value, _ = device_cookie_of(submit_login(browser_at(OFFICE), "root"))

    lock_out_strangers(browser_at, "root")

    assert submit_login(browser_at(HOME, {DEVICE_COOKIE: tamper(value)}), "root").status_code == 429


def test_a_device_is_known_only_for_the_users_it_signed_in_as(browser_at, users):
    users.create("admin", username="root")
    users.create("analyst", username="alice")
    value, _ = device_cookie_of(submit_login(browser_at(OFFICE), "root"))

    lock_out_strangers(browser_at, "alice")

    assert submit_login(browser_at(HOME, {DEVICE_COOKIE: value}), "alice").status_code == 429
