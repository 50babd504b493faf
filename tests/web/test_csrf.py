"""Every state-changing browser request carries proof it came from our own page."""

import hashlib
import hmac

from sqlalchemy import func, select

from app.audit.models import AuditEvent
from app.config import get_settings
from app.security import tokens
from app.security.models import RevokedToken
from app.security.sessions import session_key
from app.users.models import LoginFailure
from app.web.session import LOGIN_COOKIE, SESSION_COOKIE
from tests.conftest import PASSWORD
from tests.web.conftest import form_csrf, meta_csrf


def revoked_count(db) -> int:
    return db.scalar(select(func.count()).select_from(RevokedToken))


def logout_events(db) -> int:
    return db.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "auth.logout"))


def assert_refused(response) -> None:
    assert response.status_code == 403, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert SESSION_COOKIE not in response.cookies  # the session is neither ended nor replaced


def test_token_is_an_hmac_of_the_session_id(client, sign_in):
    sign_in("analyst", "alice")
    claims = tokens.decode(client.cookies[SESSION_COOKIE], key=session_key(get_settings()))

    page = client.get("/").text

    expected = hmac.new(session_key(get_settings()).encode(), f"csrf:{claims.jti}".encode(), hashlib.sha256).hexdigest()
    assert meta_csrf(page) == expected
    assert form_csrf(page) == expected
    assert f'hx-headers=\'{{"X-CSRF-Token": "{expected}"}}\'' in page


def test_cookie_only_post_without_token_is_refused_and_changes_nothing(client, sign_in, db):
    sign_in("analyst", "alice")

    response = client.post("/logout", follow_redirects=False)

    assert_refused(response)
    assert revoked_count(db) == 0 and logout_events(db) == 0
    assert client.get("/").status_code == 200  # still signed in


def test_wrong_token_in_the_header_is_refused(client, sign_in, db):
    sign_in("analyst", "alice")

    response = client.post("/logout", headers={"X-CSRF-Token": "0" * 64}, follow_redirects=False)

    assert_refused(response)
    assert revoked_count(db) == 0


def test_wrong_token_in_the_form_is_refused(client, sign_in, db):
    sign_in("analyst", "alice")

    response = client.post("/logout", data={"csrf_token": "forged"}, follow_redirects=False)

    assert_refused(response)
    assert revoked_count(db) == 0


def test_another_sessions_token_is_refused(client, sign_in, users, db):
    sign_in("analyst", "alice")
    alice_token = meta_csrf(client.get("/").text)
    client.cookies.clear()
    sign_in("analyst", "bob")

    response = client.post("/logout", headers={"X-CSRF-Token": alice_token}, follow_redirects=False)

    assert_refused(response)
    assert revoked_count(db) == 0


def test_cross_site_origin_is_refused_even_with_a_valid_token(client, sign_in, db):
    sign_in("analyst", "alice")
    token = meta_csrf(client.get("/").text)

    for origin in ("https://evil.example", "null", "http://testserver.evil.example"):
        response = client.post("/logout", headers={"X-CSRF-Token": token, "Origin": origin}, follow_redirects=False)
        assert_refused(response)
    assert revoked_count(db) == 0


def test_cross_site_fetch_metadata_is_refused(client, sign_in, db):
    sign_in("analyst", "alice")
    token = meta_csrf(client.get("/").text)

    response = client.post("/logout", headers={"X-CSRF-Token": token, "Sec-Fetch-Site": "cross-site"},
                           follow_redirects=False)

    assert_refused(response)
    assert revoked_count(db) == 0


def test_same_origin_request_with_the_token_is_accepted(client, sign_in, db):
    sign_in("analyst", "alice")
    token = meta_csrf(client.get("/").text)

    response = client.post("/logout", headers={"X-CSRF-Token": token, "Origin": "http://testserver",
                                                "Sec-Fetch-Site": "same-origin"}, follow_redirects=False)

    assert response.status_code == 303
    assert revoked_count(db) == 1


def test_htmx_refusal_is_a_fragment(client, sign_in):
    sign_in("analyst", "alice")

    response = client.post("/logout", headers={"HX-Request": "true", "X-CSRF-Token": "bad"})

    assert response.status_code == 403
    assert "<html" not in response.text
    assert 'role="alert"' in response.text


def test_login_without_the_pre_session_cookie_is_refused(client, users, db):
    users.create("analyst", username="alice")
    token = form_csrf(client.get("/login").text)
    client.cookies.delete(LOGIN_COOKIE, path="/login")

    response = client.post("/login", data={"username": "alice", "password": PASSWORD,
                                           "csrf_token": token}, follow_redirects=False)

    assert_refused(response)
    assert db.scalar(select(func.count()).select_from(LoginFailure)) == 0


def test_login_with_a_forged_token_is_refused(client, users):
    users.create("analyst", username="alice")
    client.get("/login")

    response = client.post("/login", data={"username": "alice", "password": PASSWORD,
                                           "csrf_token": "forged"}, follow_redirects=False)

    assert_refused(response)


def test_login_from_another_site_is_refused(client, users):
    users.create("analyst", username="alice")

    token = form_csrf(client.get("/login").text)
    response = client.post("/login", data={"username": "alice", "password": PASSWORD,
                                           "csrf_token": token},
                           headers={"Origin": "https://evil.example"}, follow_redirects=False)

    assert_refused(response)


def test_login_page_tokens_differ_per_browser(client, app):
    from fastapi.testclient import TestClient

    with TestClient(app) as other:
        assert form_csrf(client.get("/login").text) != form_csrf(other.get("/login").text)


def test_a_second_login_tab_keeps_working(client, users):
    users.create("analyst", username="alice")
    first_tab = form_csrf(client.get("/login").text)
    client.get("/login")  # a second tab

    response = client.post("/login", data={"username": "alice", "password": PASSWORD,
                                           "csrf_token": first_tab}, follow_redirects=False)

    assert response.status_code == 303
