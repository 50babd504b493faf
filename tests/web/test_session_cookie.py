"""The session cookie's name: `__Host-` prefixed in production, so only this origin over HTTPS can set it."""

from starlette.requests import Request
from starlette.responses import Response

from app.config import Settings
from app.security import tokens
from app.security.sessions import session_key
from app.web import session as web_session
from app.web.session import (
    HOST_SESSION_COOKIE,
    SESSION_COOKIE,
    clear_session_cookie,
    set_session_cookie,
)

PRODUCTION = Settings(app_env="production", secret_key="k" * 48, database_url="postgresql://db/riskdesk")
DEVELOPMENT = Settings(app_env="development")


def cookie_header(settings: Settings, action=set_session_cookie) -> str:
    response = Response()
    if action is set_session_cookie:
        set_session_cookie(response, "token-value", settings=settings)
    else:
        action(response, settings=settings)
    [header] = response.headers.getlist("set-cookie")
    return header


def attributes(header: str) -> tuple[str, set[str]]:
    name = header.split("=", 1)[0]
    return name, {part.strip().lower() for part in header.split(";")[1:]}


def test_production_session_cookie_is_host_prefixed_secure_path_root_without_domain():
    name, attrs = attributes(cookie_header(PRODUCTION))
    assert name == "__Host-riskdesk_session" == HOST_SESSION_COOKIE
    assert {"secure", "httponly", "path=/", "samesite=lax"} <= attrs
    assert not any(a.startswith("domain") for a in attrs)


def test_production_logout_clears_the_host_prefixed_cookie():
    name, attrs = attributes(cookie_header(PRODUCTION, clear_session_cookie))
    assert name == HOST_SESSION_COOKIE and "max-age=0" in attrs and "secure" in attrs and "path=/" in attrs


def test_outside_production_the_cookie_keeps_its_plain_name_without_secure():
    name, attrs = attributes(cookie_header(DEVELOPMENT))
    assert name == SESSION_COOKIE == "riskdesk_session"
    assert "secure" not in attrs and "path=/" in attrs


def _request(cookie: str) -> Request:
    return Request({"type": "http", "method": "GET", "path": "/", "headers": [(b"cookie", cookie.encode())]})


def test_production_reads_the_session_only_from_the_host_prefixed_cookie(monkeypatch):
    monkeypatch.setattr(web_session, "get_settings", lambda: PRODUCTION)
    token, _ = tokens.issue(user_id=7, role="analyst", token_version=0, key=session_key(PRODUCTION),
                            ttl_seconds=600, username="alice")
    found = web_session.session_principal(_request(f"{HOST_SESSION_COOKIE}={token}"))
    assert found is not None and found.user_id == 7
    # A bare-named cookie (plantable by a sibling subdomain or over http) is not a session in production.
    assert web_session.session_principal(_request(f"{SESSION_COOKIE}={token}")) is None


def test_production_login_redirect_clears_a_stale_host_prefixed_cookie(monkeypatch):
    from app.web import errors

    monkeypatch.setattr(errors, "get_settings", lambda: PRODUCTION)
    request = Request({"type": "http", "method": "GET", "path": "/", "query_string": b"", "scheme": "https",
                       "server": ("riskdesk.example", 443),
                       "headers": [(b"cookie", f"{HOST_SESSION_COOKIE}=expired".encode())]})
    [header] = errors.login_redirect(request).headers.getlist("set-cookie")
    name, attrs = attributes(header)
    assert name == HOST_SESSION_COOKIE and "max-age=0" in attrs
