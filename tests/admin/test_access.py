"""Every admin page and endpoint: 403 for analysts and agents, 401/login without a session."""

import pytest

from tests.web.conftest import meta_csrf, sign_in  # noqa: F401  (fixture)

API_ROUTES = [
    ("GET", "/api/audit/events", None), ("GET", "/api/audit/export.csv", None), ("GET", "/api/audit/verify", None),
    ("GET", "/api/users", None),
    ("POST", "/api/users", {"username": "x", "role": "analyst", "password": "long-enough-password"}),
    ("POST", "/api/users/1/disable", None), ("POST", "/api/users/1/enable", None),
    ("PUT", "/api/users/1/role", {"role": "admin"}),
    ("PUT", "/api/users/1/password", {"password": "another-password-1"}),
    ("GET", "/api/settings", None), ("PATCH", "/api/settings", {"flag_threshold": 50}),
    ("PUT", "/api/settings/amount-rules/USD", {"threshold": "100"}), ("DELETE", "/api/settings/amount-rules/USD", None),
]
SCREENS = [
    ("GET", "/admin/audit"), ("GET", "/admin/audit/export.csv"), ("POST", "/admin/audit/verify"),
    ("GET", "/admin/users"), ("POST", "/admin/users"), ("POST", "/admin/users/1/disable"),
    ("POST", "/admin/users/1/enable"), ("POST", "/admin/users/1/role"), ("POST", "/admin/users/1/password"),
    ("GET", "/admin/settings"), ("POST", "/admin/settings"), ("POST", "/admin/settings/amount-rules"),
    ("POST", "/admin/settings/amount-rules/USD/delete"), ("GET", "/admin/dashboard"),
]


def test_the_route_lists_cover_every_admin_route(app):
    admin_prefixes = ("/api/audit", "/api/users", "/api/settings", "/admin")
    paths = {route.path for route in app.routes if getattr(route, "path", "").startswith(admin_prefixes)}
    listed = {p for _, p, _ in API_ROUTES} | {p for _, p in SCREENS}
    normalized = {p.replace("/1/", "/{user_id}/").replace("/USD", "/{currency}") for p in listed}
    assert paths <= normalized, paths - normalized


@pytest.mark.parametrize("role", ["analyst", "agent"])
@pytest.mark.parametrize(("method", "path", "body"), API_ROUTES)
def test_non_admins_get_403_from_every_admin_endpoint(client, users, role, method, path, body):
    headers = users.headers(role)
    response = client.request(method, path, json=body, headers=headers)
    assert response.status_code == 403, response.text


@pytest.mark.parametrize(("method", "path", "body"), API_ROUTES)
def test_admin_endpoints_need_a_token(client, database_url, method, path, body):
    assert client.request(method, path, json=body).status_code == 401


@pytest.mark.parametrize("role", ["analyst", "agent"])
@pytest.mark.parametrize(("method", "path"), SCREENS)
def test_non_admins_get_403_from_every_admin_screen(client, sign_in, role, method, path):
    sign_in(role)
    # The login page carries a valid CSRF token for the signed-in session (agents have no other screen).
    headers = {"X-CSRF-Token": meta_csrf(client.get("/login").text)} if method == "POST" else {}
    response = client.request(method, path, headers=headers, follow_redirects=False)
    assert response.status_code == 403, response.text
    assert "text/html" in response.headers["content-type"]


@pytest.mark.parametrize(("method", "path"), [s for s in SCREENS if s[0] == "GET"])
def test_anonymous_admin_screens_go_to_login(client, database_url, method, path):
    response = client.get(path, follow_redirects=False)
    assert response.status_code in (302, 303) and "/login" in response.headers["location"]
