"""Errors are pages (or HTMX fragments) on screens and JSON on the API; never a trace."""

import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.testclient import TestClient

from app import errors
from app.db import DbSession
from app.errors import Conflict, NotFound
from app.web.deps import BrowserAdmin, BrowserUser, ScreenRoute
from app.web.session import SESSION_COOKIE
from app.web.templating import render
from tests.web.conftest import meta_csrf, session_token


@pytest.fixture
def screen_app(database_url):
    """A small app with screen routes that fail in the ways real screens can."""
    router = APIRouter(route_class=ScreenRoute)

    @router.get("/boom")
    def boom(session: DbSession, principal: BrowserUser):
        raise RuntimeError("secret internals: password=hunter2")

    @router.get("/missing")
    def missing(session: DbSession, principal: BrowserUser):
        raise NotFound("Case 42 does not exist")

    @router.post("/decide")
    def decide(session: DbSession, principal: BrowserUser):
        raise Conflict("Case 42 was decided by bob")

    @router.get("/count")
    def count(request: Request, session: DbSession, principal: BrowserUser, n: int):
        return render(request, "_error.html", {"status": 200, "title": "ok", "message": str(n)})

    @router.get("/admin-only")
    def admin_only(request: Request, session: DbSession, principal: BrowserAdmin):
        return render(request, "_error.html", {"status": 200, "title": "ok", "message": "admin"})

    app = FastAPI()
    errors.install(app)
    app.include_router(router)
    return app


@pytest.fixture
def screen_client(screen_app, users):
    alice = users.create("analyst", username="alice")
    with TestClient(screen_app, raise_server_exceptions=False) as test_client:
        test_client.cookies.set(SESSION_COOKIE, session_token(alice))
        yield test_client


def test_unhandled_error_is_a_500_page_without_details(screen_client):
    response = screen_client.get("/boom")

    assert response.status_code == 500
    assert response.headers["content-type"].startswith("text/html")
    assert "Something went wrong" in response.text
    assert "hunter2" not in response.text and "Traceback" not in response.text and "RuntimeError" not in response.text


def test_domain_error_is_a_page_with_its_status_and_the_signed_in_nav(screen_client):
    response = screen_client.get("/missing")

    assert response.status_code == 404
    assert "Case 42 does not exist" in response.text
    assert "alice" in response.text  # the session was verified before the endpoint failed


def test_conflict_for_htmx_is_a_fragment_to_swap_in_place(screen_client):
    token = meta_csrf(screen_client.get("/missing").text)

    response = screen_client.post("/decide", headers={"HX-Request": "true", "X-CSRF-Token": token})

    assert response.status_code == 409
    assert "<html" not in response.text
    assert "Case 42 was decided by bob" in response.text


def test_conflict_without_htmx_is_a_full_page(screen_client):
    token = meta_csrf(screen_client.get("/missing").text)

    response = screen_client.post("/decide", data={"csrf_token": token})

    assert response.status_code == 409
    assert "<html" in response.text and "Case 42 was decided by bob" in response.text


def test_validation_error_is_a_422_page(screen_client):
    response = screen_client.get("/count", params={"n": "many"})

    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/html")
    assert "N must be a whole number." in response.text  # a sentence with the field's label, no pydantic text
    assert "Input should be" not in response.text


def test_analyst_on_an_admin_screen_gets_403(screen_client):
    response = screen_client.get("/admin-only")

    assert response.status_code == 403
    assert "cannot use this screen" in response.text


def test_screen_routes_must_be_sync():
    router = APIRouter(route_class=ScreenRoute)

    with pytest.raises(TypeError):
        @router.get("/async")
        async def not_allowed():
            return None


def test_screen_routes_stay_out_of_the_api_schema(client):
    paths = client.get("/openapi.json").json()["paths"]

    assert "/login" not in paths and "/logout" not in paths and "/" not in paths


def test_unknown_path_in_a_browser_is_a_404_page(client):
    response = client.get("/no/such/page", headers={"Accept": "text/html,application/xhtml+xml"})

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "There is no page at this address" in response.text


def test_unknown_path_for_an_api_client_stays_json(client):
    response = client.get("/no/such/page", headers={"Accept": "application/json"})

    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}


def test_api_errors_stay_json(client):
    response = client.get("/transactions", headers={"Accept": "text/html"})

    assert response.status_code == 401
    assert response.json() == {"detail": "Not authenticated"}


def test_screen_validation_error_on_the_real_app_is_html(client):
    response = client.get("/login", params={"signed_out": "perhaps"})

    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/html")
