"""Security headers: a strict CSP without inline code, no framing, no caching of screens."""

import re

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.testclient import TestClient

from app.config import PROJECT_ROOT
from app.web.headers import SecurityHeadersMiddleware

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


def test_swagger_docs_go_without_csp(client):
    response = client.get("/docs")

    assert response.status_code == 200
    assert "content-security-policy" not in response.headers
    assert response.headers["x-frame-options"] == "DENY"


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
