"""Helpers for the screen tests: sign in through the login form, read CSRF tokens."""

import re
from collections.abc import Callable

import httpx
import pytest

from app.config import get_settings
from app.security import tokens
from app.security.sessions import session_key
from app.web.session import SESSION_COOKIE
from tests.conftest import PASSWORD

_META_CSRF = re.compile(r'<meta name="csrf-token" content="([^"]*)">')
_FIELD_CSRF = re.compile(r'<input type="hidden" name="csrf_token" value="([^"]*)">')


def meta_csrf(html: str) -> str:
    """The CSRF token a page carries for HTMX."""
    match = _META_CSRF.search(html)
    assert match, "page has no csrf-token meta tag"
    return match.group(1)


def form_csrf(html: str) -> str:
    """The first hidden csrf_token field of a page's forms."""
    match = _FIELD_CSRF.search(html)
    assert match, "page has no csrf_token field"
    return match.group(1)


def submit_login(client, username: str, password: str = PASSWORD, **fields) -> httpx.Response:
    """GET the login form (for its pre-session cookie and token), then POST it."""
    token = form_csrf(client.get("/login").text)
    data = {"username": username, "password": password, "csrf_token": token, **fields}
    return client.post("/login", data=data, follow_redirects=False)


def session_token(user, *, ttl_seconds: int = 600) -> str:
    """A browser session token for a user, signed like the app's (ttl may be negative: expired)."""
    token, _ = tokens.issue(
        user_id=user.id, username=user.username, role=user.role, token_version=user.token_version,
        key=session_key(get_settings()), ttl_seconds=ttl_seconds,
    )
    return token


@pytest.fixture
def sign_in(client, users) -> Callable[..., object]:
    """Create a user of `role` and sign the test client in through the login form."""

    def _sign_in(role: str = "analyst", username: str | None = None):
        user = users.create(role, username=username)
        response = submit_login(client, user.username)
        assert response.status_code == 303, response.text
        assert client.cookies.get(SESSION_COOKIE)
        return user

    return _sign_in
