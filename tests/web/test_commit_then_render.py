"""A screen's action commits once, in the screen route; a page that fails to render after
it never reports the saved action as an error."""

import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.testclient import TestClient
from sqlalchemy import select

from app import errors
from app.audit import service as audit
from app.audit.models import AuditEvent
from app.db import DbSession
from app.errors import Conflict, NotFound
from app.uow.routing import AnswerAfterCommit
from app.web.admin_forms import apply_change
from app.web.deps import BrowserUser, ScreenRoute
from app.web.session import SESSION_COOKIE
from app.web.templating import render
from tests.web.conftest import meta_csrf, session_token


def probe(session, principal, name: str) -> None:
    audit.record(session, actor=principal.actor, action="probe.saved", entity_type="probe", entity_id=name)


@pytest.fixture
def screen_client(database_url, users):
    router = APIRouter(route_class=ScreenRoute)

    @router.post("/save-then-fail")
    def save_then_fail(request: Request, session: DbSession, principal: BrowserUser):
        probe(session, principal, "after-commit")

        def page():
            raise RuntimeError("the template broke")
        return AnswerAfterCommit(page)

    @router.post("/save-then-show")
    def save_then_show(request: Request, session: DbSession, principal: BrowserUser):
        probe(session, principal, "shown")

        def page():  # reads what the commit wrote
            count = session.scalar(select(AuditEvent.id).where(AuditEvent.entity_id == "shown"))
            return render(request, "_error.html", {"status": 200, "title": "ok", "message": f"event {count}"})
        return AnswerAfterCommit(page)

    @router.post("/form-then-fail")
    def form_then_fail(request: Request, session: DbSession, principal: BrowserUser):
        def change() -> str:
            probe(session, principal, "in-form")
            return "saved"

        outcome = apply_change(session, change)
        assert outcome == {"message": "saved"}
        raise RuntimeError("the panel broke")

    @router.post("/form-refused")
    def form_refused(request: Request, session: DbSession, principal: BrowserUser):
        probe(session, principal, "before-form")

        def change() -> str:
            probe(session, principal, "refused")
            raise Conflict("no")
        outcome = apply_change(session, change)
        return render(request, "_error.html", {"status": outcome["status_code"], "title": "t", "message": "m"},
                      status_code=outcome["status_code"])

    @router.get("/page")
    def page(request: Request, session: DbSession, principal: BrowserUser):
        raise NotFound("a full page, with its CSRF token")

    app = FastAPI()
    errors.install(app)
    app.include_router(router)
    alice = users.create("analyst", username="alice")
    with TestClient(app, raise_server_exceptions=False) as client:
        client.cookies.set(SESSION_COOKIE, session_token(alice))
        client.headers["X-CSRF-Token"] = meta_csrf(client.get("/page").text)
        yield client


def saved(db) -> list[str]:
    db.expire_all()
    return db.scalars(select(AuditEvent.entity_id).where(AuditEvent.action == "probe.saved")
                      .order_by(AuditEvent.id)).all()


def test_a_page_that_fails_after_the_commit_reloads_the_page_instead_of_showing_an_error(screen_client, db):
    response = screen_client.post("/save-then-fail", headers={"HX-Request": "true",
                                                              "HX-Current-URL": "http://testserver/page"})

    assert response.status_code == 200 and response.headers["HX-Redirect"] == "/page"
    assert saved(db) == ["after-commit"]


def test_a_page_built_after_the_commit_reads_what_the_commit_wrote(screen_client, db):
    response = screen_client.post("/save-then-show")

    assert response.status_code == 200
    (event_id,) = db.scalars(select(AuditEvent.id).where(AuditEvent.entity_id == "shown")).all()
    assert f"event {event_id}" in response.text


def test_an_admin_form_saves_nothing_when_its_panel_fails_to_render(screen_client, db):
    response = screen_client.post("/form-then-fail")

    assert response.status_code == 500
    assert saved(db) == []


def test_a_refused_admin_form_change_is_undone_and_the_rest_of_the_request_commits(screen_client, db):
    response = screen_client.post("/form-refused")

    assert response.status_code == 409
    assert saved(db) == ["before-form"]
