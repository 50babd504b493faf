"""Security headers: a strict CSP without inline code, no framing, no caching of screens."""

import re

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.testclient import TestClient

from app.config import PROJECT_ROOT
from app.web.headers import CONTENT_SECURITY_POLICY, SecurityHeadersMiddleware
from tests.conftest import PASSWORD, tx_payload

EXPECTED = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
    "cross-origin-opener-policy": "same-origin",
}


def directives(csp: str) -> dict[str, str]:
    return {part.split()[0]: part.strip() for part in csp.split(";") if part.strip()}


def test_screens_send_a_strict_csp(client, sign_in):
    sign_in("analyst", "alice")

    for response in (client.get("/login"), client.get("/")):
        csp = response.headers["content-security-policy"]
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        rules = directives(csp)
        assert rules["default-src"] == "default-src 'self'"
        assert rules["script-src"] == "script-src 'self'"
        assert rules["style-src"] == "style-src 'self'"
        assert rules["object-src"] == "object-src 'none'"
        assert rules["base-uri"] == "base-uri 'none'"
        assert rules["frame-ancestors"] == "frame-ancestors 'none'"
        assert rules["form-action"] == "form-action 'self'"


def test_screens_send_the_other_security_headers_and_no_store(client, sign_in):
    sign_in("analyst", "alice")

    for response in (client.get("/login"), client.get("/")):
        for name, value in EXPECTED.items():
            assert response.headers[name] == value, name
        assert response.headers["cache-control"] == "no-store"
        assert "strict-transport-security" not in response.headers  # not in development/test


def test_api_and_static_responses_get_the_headers_too(client):
    for response in (client.get("/healthz"), client.get("/static/app.css")):
        assert response.status_code == 200
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "content-security-policy" in response.headers
        assert response.headers.get("cache-control") != "no-store"


def test_docs_are_served_from_static_under_the_normal_csp(client):
    response = client.get("/docs")

    assert response.status_code == 200
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["x-frame-options"] == "DENY"
    page = response.text
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page), "inline script on /docs"
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources and all(source.startswith("/static/") for source in sources), sources
    for source in sources:
        assert client.get(source).status_code == 200, source
    assert client.get("/docs/oauth2-redirect").status_code == 404


def test_swagger_ui_is_vendored_with_its_version_license_and_notice():
    static = PROJECT_ROOT / "static"
    assert len(list(static.glob("swagger-ui-bundle-5.*.js"))) == 1
    assert len(list(static.glob("swagger-ui-5.*.css"))) == 1
    assert "Apache License" in (static / "swagger-ui-LICENSE.txt").read_text()
    assert "SmartBear" in (static / "swagger-ui-NOTICE.txt").read_text()


# --- Cache-Control ---------------------------------------------------------------------


def test_token_answers_are_never_cached_rfc_6749(client, users):
    users.create("agent", username="agent1")

    issued = client.post("/auth/token", data={"username": "agent1", "password": PASSWORD})
    refused = client.post("/auth/token", data={"username": "agent1", "password": "not-the-password"})
    malformed = client.post("/auth/token", data={"username": "agent1"})

    assert (issued.status_code, refused.status_code, malformed.status_code) == (200, 401, 422)
    for response in (issued, refused, malformed):
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["pragma"] == "no-cache"


def test_json_api_answers_are_never_cached(client, admin_headers, agent_headers):
    created = client.post("/transactions", json=tx_payload(), headers=agent_headers)
    responses = [
        created,
        client.get("/transactions/ref-1", headers=agent_headers),
        client.get("/transactions", headers=agent_headers),
        client.get("/accounts/acct_1/context", headers=agent_headers),
        client.get("/api/users", headers=admin_headers),
        client.get("/api/audit/events", headers=admin_headers),
        client.get("/api/webhooks/endpoints", headers=admin_headers),
        client.get("/api/settings", headers=admin_headers),
        client.get("/api/cases", headers=admin_headers),
        client.get("/api/users"),  # 401 JSON
        client.get("/transactions/unknown", headers=agent_headers),  # 404 JSON
    ]
    for response in responses:
        assert response.headers["content-type"].startswith("application/json"), response.request.url
        assert response.headers["cache-control"] == "no-store", response.request.url


def test_public_data_free_answers_may_be_cached(client):
    for path in ("/healthz", "/openapi.json", "/static/app.css"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers.get("cache-control") != "no-store", path


def test_a_route_that_sets_its_own_cache_control_keeps_it_except_the_token_endpoint():
    from fastapi.responses import JSONResponse

    app = FastAPI()
    app.add_api_route("/api/public", lambda: JSONResponse({"a": 1}, headers={"Cache-Control": "max-age=60"}))
    app.add_api_route("/auth/token",
                      lambda: JSONResponse({"access_token": "x"}, headers={"Cache-Control": "max-age=60"}),
                      methods=["POST"])
    app.add_middleware(SecurityHeadersMiddleware)
    test_client = TestClient(app)

    assert test_client.get("/api/public").headers["cache-control"] == "max-age=60"
    assert test_client.post("/auth/token").headers["cache-control"] == "no-store"


def test_hsts_only_in_production():
    def headers(production: bool):
        app = FastAPI()
        app.add_api_route("/", lambda: HTMLResponse("<p>hi</p>"))
        app.add_middleware(SecurityHeadersMiddleware, production=production)
        return TestClient(app).get("/").headers

    assert headers(True)["strict-transport-security"].startswith("max-age=31536000")
    assert "strict-transport-security" not in headers(False)


def test_templates_have_no_inline_script_style_or_handlers():
    for path in (PROJECT_ROOT / "templates").rglob("*.html"):
        text = path.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), f"inline <script> in {path}"
        assert "<style" not in text, f"<style> in {path}"
        assert not re.search(r"\sstyle\s*=", text), f"style attribute in {path}"
        assert not re.search(r"\son[a-z]+\s*=", text), f"event handler attribute in {path}"
        assert "hx-on" not in text and "javascript:" not in text, f"eval-needing htmx in {path}"


def test_htmx_is_vendored_with_its_version_and_license(client):
    htmx = list((PROJECT_ROOT / "static").glob("htmx-2.0.*.min.js"))
    assert len(htmx) == 1
    assert (PROJECT_ROOT / "static" / "htmx-LICENSE.txt").exists()
    page = client.get("/login").text
    assert f'<script src="/static/{htmx[0].name}" defer></script>' in page
    assert client.get(f"/static/{htmx[0].name}").status_code == 200
