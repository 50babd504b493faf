"""The unit of work (app/uow/unit.py): what it owes at commit, and what it forgets on rollback."""

import subprocess
import sys

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from app.audit import service as audit
from app.audit.models import AuditEvent
from app.db import database
from tests.conftest import ROOT


@pytest.fixture(params=["orm", "core"])
def unit(request, database_url):
    work = database.unit() if request.param == "orm" else database.core_unit()
    yield work
    work.rollback()
    work.close()


def events(db) -> int:
    return db.scalar(select(func.count()).select_from(AuditEvent))


def test_after_commit_hooks_run_once_the_transaction_committed(unit, db):
    seen = []
    audit.record(unit.session, actor=audit.SYSTEM_ACTOR, action="probe.x", entity_type="probe", entity_id=1)
    unit.after_commit(lambda: seen.append(events(db)))
    assert seen == []
    unit.commit()
    assert seen == [1]  # the hook sees the committed event
    unit.commit()
    assert seen == [1]  # and runs once


def test_a_failing_after_commit_hook_neither_fails_the_commit_nor_stops_the_others(unit, db):
    seen = []

    def broken():
        raise RuntimeError("hook broke")
    audit.record(unit.session, actor=audit.SYSTEM_ACTOR, action="probe.y", entity_type="probe", entity_id=2)
    unit.after_commit(broken)
    unit.after_commit(lambda: seen.append("ran"))
    unit.commit()
    assert seen == ["ran"] and events(db) == 1


def test_a_rolled_back_unit_runs_no_after_commit_hook(unit):
    seen = []
    unit.after_commit(lambda: seen.append(True))
    unit.rollback()
    unit.commit()
    assert seen == []


def test_a_before_commit_hook_gives_the_last_statement_of_the_transaction(unit, db):
    insert = "INSERT INTO revoked_tokens (jti, expires_at) VALUES (%s, now() + interval '1 hour')"
    unit.before_commit(lambda work: (insert, ("probe-jti",)))
    unit.before_commit(lambda work: None)  # a hook with nothing to add
    unit.commit()
    assert db.scalar(text("SELECT count(*) FROM revoked_tokens WHERE jti = 'probe-jti'")) == 1


def test_a_failing_last_statement_fails_the_commit_and_keeps_nothing(unit, db):
    unit.session.execute(text("INSERT INTO revoked_tokens (jti, expires_at) VALUES ('kept?', now())"))
    unit.before_commit(lambda work: ("SELECT 1/%s", (0,)))
    with pytest.raises(DBAPIError):
        unit.commit()
    unit.rollback()
    assert db.scalar(text("SELECT count(*) FROM revoked_tokens")) == 0


def test_after_commit_hooks_of_a_rolled_back_savepoint_are_forgotten(database_url):
    session = database.session()
    work = session.unit
    seen = []
    try:
        with pytest.raises(RuntimeError), session.begin_nested():
            work.after_commit(lambda: seen.append("undone"))
            raise RuntimeError("undo")
        work.after_commit(lambda: seen.append("kept"))
        work.commit()
    finally:
        work.close()
    assert seen == ["kept"]


def test_the_audit_module_needs_neither_the_engine_module_nor_a_listener():
    code = "import sys, app.audit.service; print('app.db' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_an_async_endpoint_gets_no_unit_of_work(database_url):
    """Only a sync endpoint runs in a unit of work, so an async one cannot open a session that nothing commits."""
    from fastapi import APIRouter, FastAPI
    from fastapi.testclient import TestClient

    from app import errors
    from app.db import DbSession
    from app.uow.routing import ApiRoute

    router = APIRouter(route_class=ApiRoute)

    @router.get("/async")
    async def opens_a_session(session: DbSession):
        return {"opened": True}

    plain_app = FastAPI()
    errors.install(plain_app)
    plain_app.include_router(router)
    with TestClient(plain_app, raise_server_exceptions=False) as client:
        response = client.get("/async")
    assert response.status_code == 500 and "opened" not in response.text


def test_an_endpoint_gets_a_verified_principal_and_a_group_commit_one_the_claims(database_url, users):
    from fastapi import APIRouter, FastAPI
    from fastapi.responses import JSONResponse
    from fastapi.testclient import TestClient

    from app import errors
    from app.db import CoreDb
    from app.security.deps import AnyUser
    from app.uow.routing import ApiRoute, GroupCommitRoute

    def kind(principal, session):  # a complete response, as an idempotent endpoint must give
        return JSONResponse({"type": type(principal).__name__, "actor": getattr(principal, "username", None)})

    own, grouped = APIRouter(route_class=ApiRoute), APIRouter(route_class=GroupCommitRoute)

    @own.post("/own")
    def own_unit(principal: AnyUser, session: CoreDb):
        return kind(principal, session)

    @grouped.post("/grouped")
    def in_group(principal: AnyUser, session: CoreDb):
        return kind(principal, session)

    plain_app = FastAPI()
    errors.install(plain_app)
    plain_app.include_router(own)
    plain_app.include_router(grouped)
    user = users.create("agent", "claimant")
    headers = {"Authorization": f"Bearer {users.token_for(user)}"}
    with TestClient(plain_app) as client:
        assert client.post("/own", headers=headers).json() == {"type": "Principal", "actor": "claimant"}
        assert client.post("/grouped", headers=headers).json() == {"type": "PrincipalClaims", "actor": None}
        keyed = client.post("/grouped", headers={**headers, "Idempotency-Key": "k1"})
        assert keyed.json() == {"type": "Principal", "actor": "claimant"}
