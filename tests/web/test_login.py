"""Signing in and out in the browser: the session cookie, its refusals and its end."""

from sqlalchemy import func, select, update
from starlette.responses import Response

from app.audit.models import AuditEvent
from app.config import Settings
from app.security import tokens
from app.security.models import RevokedToken
from app.security.sessions import session_key
from app.users.models import LoginFailure, User
from app.web.session import LOGIN_COOKIE, SESSION_COOKIE, set_session_cookie
from tests.conftest import PASSWORD
from tests.web.conftest import meta_csrf, session_token, submit_login


def set_cookie_header(response, name: str) -> str:
    headers = [h for h in response.headers.get_list("set-cookie") if h.startswith(f"{name}=")]
    assert len(headers) == 1, response.headers.get_list("set-cookie")
    return headers[0]


def audit_actions(db) -> list[str]:
    return list(db.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


# --- signing in ------------------------------------------------------------------------


def test_login_form_posts_username_and_password(client):
    page = client.get("/login")

    assert page.status_code == 200
    assert 'name="username"' in page.text and 'name="password"' in page.text
    assert 'action="/login"' in page.text


def test_login_sets_an_httponly_samesite_lax_session_cookie(client, users):
    users.create("analyst", username="alice")

    response = submit_login(client, "alice")

    assert response.status_code == 303
    assert response.headers["location"] == "/"
    cookie = set_cookie_header(response, SESSION_COOKIE).lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "path=/" in cookie
    assert "max-age=28800" in cookie  # browser_session_minutes default: 480
    assert "secure" not in cookie  # only in production, see below


def test_session_cookie_is_secure_only_in_production():
    def cookie_for(settings: Settings) -> str:
        response = Response()
        set_session_cookie(response, "token", settings=settings)
        return response.headers["set-cookie"].lower()

    production = Settings(app_env="production", secret_key="x" * 40, database_url="postgresql://db/riskdesk")
    assert "; secure" in cookie_for(production)
    assert "; secure" not in cookie_for(Settings(app_env="development"))
    assert "httponly" in cookie_for(production) and "samesite=lax" in cookie_for(production)


def test_session_lifetime_follows_browser_session_minutes(client, users, monkeypatch):
    from app.config import get_settings

    monkeypatch.setenv("BROWSER_SESSION_MINUTES", "5")
    get_settings.cache_clear()
    try:
        users.create("analyst", username="alice")
        response = submit_login(client, "alice")
        claims = tokens.decode(response.cookies[SESSION_COOKIE], key=session_key(get_settings()))
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()

    assert "max-age=300" in set_cookie_header(response, SESSION_COOKIE).lower()
    assert claims.expires_at - claims.issued_at == 300


def test_successful_login_lands_on_the_queue_and_is_audited(client, users, db):
    users.create("analyst", username="alice")

    response = submit_login(client, "alice")
    queue = client.get("/")

    assert response.status_code == 303
    assert queue.status_code == 200
    assert "Review queue" in queue.text and "alice" in queue.text
    assert "auth.login" in audit_actions(db)


def test_login_returns_to_a_same_site_next_path(client, users):
    users.create("analyst", username="alice")

    response = submit_login(client, "alice", next="/cases/7?tab=timeline")

    assert response.headers["location"] == "/cases/7?tab=timeline"


def test_login_ignores_a_next_that_leaves_the_site(client, users):
    users.create("analyst", username="alice")

    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)", "/logout"):
        client.cookies.clear()
        response = submit_login(client, "alice", next=target)
        assert response.headers["location"] == "/", target


def test_login_page_keeps_only_safe_next_values(client):
    assert 'name="next" value="/cases/3"' in client.get("/login", params={"next": "/cases/3"}).text
    assert 'name="next" value=""' in client.get("/login", params={"next": "//evil.example"}).text


def test_wrong_password_rerenders_the_form_with_401(client, users, db):
    users.create("analyst", username="alice")

    response = submit_login(client, "alice", password="not-the-password")

    assert response.status_code == 401
    assert response.headers["content-type"].startswith("text/html")
    assert "Incorrect username or password" in response.text
    assert 'value="alice"' in response.text  # the username is kept, the password is not
    assert SESSION_COOKIE not in response.cookies
    assert db.scalar(select(func.count()).select_from(LoginFailure)) == 1
    assert "auth.login_failed" in audit_actions(db)


def test_unknown_user_gets_the_same_message(client):
    response = submit_login(client, "nobody")

    assert response.status_code == 401
    assert "Incorrect username or password" in response.text


def test_empty_fields_rerender_the_form(client):
    response = submit_login(client, "", password="")

    assert response.status_code == 422
    assert "Enter your username and password" in response.text


def test_repeated_failures_are_throttled_with_429(client, users):
    users.create("analyst", username="alice")
    for _ in range(5):
        assert submit_login(client, "alice", password="wrong-password-1").status_code == 401

    response = submit_login(client, "alice")  # even the right password, while throttled

    assert response.status_code == 429
    assert "Too many failed sign-in attempts" in response.text
    assert int(response.headers["retry-after"]) > 0
    assert SESSION_COOKIE not in response.cookies


def test_disabled_user_cannot_sign_in(client, users, db):
    alice = users.create("analyst", username="alice")
    db.execute(update(User).where(User.id == alice.id).values(is_active=False))
    db.commit()

    assert submit_login(client, "alice").status_code == 401


def test_login_clears_the_pre_session_cookie(client, users):
    users.create("analyst", username="alice")

    response = submit_login(client, "alice")

    assert "max-age=0" in set_cookie_header(response, LOGIN_COOKIE).lower()


# --- who may see screens ---------------------------------------------------------------


def test_anonymous_screen_request_redirects_to_login(client):
    response = client.get("/", follow_redirects=False)

    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/"


def test_anonymous_redirect_remembers_the_page_and_query(client):
    response = client.get("/?state=open&limit=5", follow_redirects=False)

    assert response.headers["location"] == "/login?next=/%3Fstate%3Dopen%26limit%3D5"


def test_anonymous_htmx_request_gets_an_hx_redirect(client):
    response = client.get("/", headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/"},
                          follow_redirects=False)

    assert response.status_code == 401
    assert response.headers["hx-redirect"] == "/login?next=/"


def test_agent_gets_a_403_page(client, sign_in):
    sign_in("agent", "robot")

    response = client.get("/")

    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert "Agent accounts use the API" in response.text  # a clear page, not a 403 loop
    assert 'href="/docs"' in response.text
    assert "Sign out" in response.text  # an agent who signed in can still sign out


def test_admin_sees_the_queue(client, sign_in):
    sign_in("admin", "root")

    response = client.get("/")

    assert response.status_code == 200
    assert "root" in response.text and "admin" in response.text


def test_api_bearer_token_opens_no_screen(client, users):
    alice = users.create("analyst", username="alice")
    client.cookies.set(SESSION_COOKIE, users.token_for(alice))

    assert client.get("/", follow_redirects=False).status_code == 303


def test_session_cookie_is_no_api_bearer_token(client, sign_in):
    sign_in("admin", "root")
    cookie = client.cookies[SESSION_COOKIE]

    response = client.get("/transactions", headers={"Authorization": f"Bearer {cookie}"})

    assert response.status_code == 401


# --- the end of a session --------------------------------------------------------------


def test_logout_revokes_the_session_and_audits_it(client, sign_in, db):
    sign_in("analyst", "alice")
    old_cookie = client.cookies[SESSION_COOKIE]
    token = meta_csrf(client.get("/").text)

    response = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)

    assert response.status_code == 303
    assert response.headers["location"] == "/login?signed_out=1"
    assert "max-age=0" in set_cookie_header(response, SESSION_COOKIE).lower()
    assert db.scalar(select(func.count()).select_from(RevokedToken)) == 1
    assert audit_actions(db)[-1] == "auth.logout"
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, old_cookie)
    assert client.get("/", follow_redirects=False).headers["location"] == "/login?next=/"


def test_logout_twice_with_the_same_cookie_is_harmless(client, sign_in):
    sign_in("analyst", "alice")
    old_cookie = client.cookies[SESSION_COOKIE]
    token = meta_csrf(client.get("/").text)
    client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    client.cookies.set(SESSION_COOKIE, old_cookie)

    response = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)

    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")


def test_htmx_logout_answers_with_hx_redirect(client, sign_in):
    sign_in("analyst", "alice")
    token = meta_csrf(client.get("/").text)

    response = client.post("/logout", headers={"HX-Request": "true", "X-CSRF-Token": token})

    assert response.headers["hx-redirect"] == "/login?signed_out=1"


def test_expired_session_redirects_to_login(client, users):
    alice = users.create("analyst", username="alice")
    client.cookies.set(SESSION_COOKIE, session_token(alice, ttl_seconds=-5))

    response = client.get("/", follow_redirects=False)

    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/"
    assert "max-age=0" in set_cookie_header(response, SESSION_COOKIE).lower()


def test_expired_session_htmx_request_gets_hx_redirect(client, users):
    alice = users.create("analyst", username="alice")
    client.cookies.set(SESSION_COOKIE, session_token(alice, ttl_seconds=-5))
    htmx = {"HX-Request": "true", "HX-Current-URL": "http://testserver/?state=open"}

    read = client.get("/", headers=htmx)
    write = client.post("/logout", headers={**htmx, "X-CSRF-Token": "whatever"})

    for response in (read, write):
        assert response.status_code == 401
        assert response.headers["hx-redirect"] == "/login?next=/%3Fstate%3Dopen"


def test_stale_user_is_sent_to_login(client, sign_in, db):
    alice = sign_in("analyst", "alice")
    db.execute(update(User).where(User.id == alice.id).values(token_version=User.token_version + 1))
    db.commit()

    assert client.get("/", follow_redirects=False).headers["location"] == "/login?next=/"


def test_role_change_ends_the_session(client, sign_in, db):
    alice = sign_in("analyst", "alice")
    db.execute(update(User).where(User.id == alice.id).values(role="admin"))
    db.commit()

    assert client.get("/", follow_redirects=False).status_code == 303


def test_forged_cookie_is_refused(client, users):
    alice = users.create("admin", username="alice")
    forged, _ = tokens.issue(user_id=alice.id, role="admin", token_version=0, key="not-our-key", ttl_seconds=600)
    client.cookies.set(SESSION_COOKIE, forged)

    assert client.get("/", follow_redirects=False).status_code == 303


def test_password_is_never_echoed(client, users):
    users.create("analyst", username="alice")

    response = submit_login(client, "alice", password="wrong-but-secret-99")

    assert "wrong-but-secret-99" not in response.text
    assert PASSWORD not in response.text
