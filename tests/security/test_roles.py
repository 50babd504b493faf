"""The role matrix of the transactions API: no token is 401, a wrong role is 403.

Per SPEC: agents and admins create and read transactions and post settlements; analysts
only read them.
"""

import pytest
from sqlalchemy import func, select

from app.audit.models import AuditEvent
from app.transactions.models import Transaction
from tests.conftest import tx_payload

READS = [("GET", "/transactions"), ("GET", "/transactions/ref-1")]
WRITES = [
    ("POST", "/transactions", tx_payload("ref-new")),
    ("POST", "/transactions/batch", {"items": [tx_payload("ref-batch")]}),
    ("POST", "/transactions/ref-1/settlement", {"status": "settled"}),
]
WRITE_IDS = ["create", "batch", "settlement"]


@pytest.fixture
def existing_transaction(client, users):
    response = client.post("/transactions", json=tx_payload("ref-1"), headers=users.headers("agent", "seeder"))
    assert response.status_code == 200
    return response.json()


def snapshot(db) -> tuple:
    """Everything a write could change: the rows, their statuses and the audit history."""
    rows = db.execute(select(Transaction.reference, Transaction.status).order_by(Transaction.reference)).all()
    return [tuple(row) for row in rows], db.scalar(select(func.count()).select_from(AuditEvent))


@pytest.mark.parametrize("method,path", READS, ids=["list", "get"])
def test_reading_transactions_without_a_token_is_401(client, existing_transaction, method, path):
    response = client.request(method, path)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("method,path,body", WRITES, ids=WRITE_IDS)
def test_writing_transactions_without_a_token_is_401_and_changes_nothing(
    client, db, existing_transaction, method, path, body
):
    before = snapshot(db)
    response = client.request(method, path, json=body)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert snapshot(db) == before


@pytest.mark.parametrize("role", ["analyst", "agent", "admin"])
@pytest.mark.parametrize("method,path", READS, ids=["list", "get"])
def test_every_role_may_read_transactions(client, users, existing_transaction, role, method, path):
    response = client.request(method, path, headers=users.headers(role))
    assert response.status_code == 200


def test_analyst_sees_the_same_transaction_as_its_author(client, analyst_headers, existing_transaction):
    response = client.get("/transactions/ref-1", headers=analyst_headers)
    assert response.json()["reference"] == existing_transaction["reference"]
    assert response.json()["amount"] == existing_transaction["amount"]


@pytest.mark.parametrize("method,path,body", WRITES, ids=WRITE_IDS)
def test_analyst_may_not_write_transactions(client, db, analyst_headers, existing_transaction, method, path, body):
    before = snapshot(db)

    response = client.request(method, path, json=body, headers=analyst_headers)

    assert response.status_code == 403
    assert "agent" in response.json()["detail"]
    assert snapshot(db) == before


@pytest.mark.parametrize("method,path", [("POST", "/transactions"), ("POST", "/transactions/batch")],
                         ids=["create", "batch"])
def test_analyst_is_refused_before_the_body_is_judged(client, analyst_headers, method, path):
    # A caller without the right role learns nothing about what a valid body looks like.
    response = client.request(method, path, json={"unexpected": True}, headers=analyst_headers)
    assert response.status_code == 403


@pytest.mark.parametrize("role", ["agent", "admin"])
def test_agent_and_admin_may_create_transactions(client, users, db, role):
    response = client.post("/transactions", json=tx_payload("ref-new"), headers=users.headers(role))
    assert response.status_code == 200
    assert db.scalar(select(Transaction.status).where(Transaction.reference == "ref-new")) == "pending"


@pytest.mark.parametrize("role", ["agent", "admin"])
def test_agent_and_admin_may_post_batches(client, users, db, role):
    response = client.post(
        "/transactions/batch", json={"items": [tx_payload("ref-b1"), tx_payload("ref-b2")]}, headers=users.headers(role)
    )
    assert response.status_code == 200
    assert [item["status_code"] for item in response.json()["items"]] == [200, 200]
    assert db.scalar(select(func.count()).select_from(Transaction)) == 2


@pytest.mark.parametrize("role", ["agent", "admin"])
def test_agent_and_admin_may_settle_transactions(client, users, db, existing_transaction, role):
    response = client.post("/transactions/ref-1/settlement", json={"status": "settled"}, headers=users.headers(role))
    assert response.status_code == 200
    assert db.scalar(select(Transaction.status).where(Transaction.reference == "ref-1")) == "settled"


@pytest.mark.parametrize("role", ["agent", "admin"])
def test_writes_are_audited_under_the_callers_role(client, users, db, role):
    client.post("/transactions", json=tx_payload("ref-new"), headers=users.headers(role, username=f"the-{role}"))
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "transaction.created")).one()
    assert event.actor == f"the-{role}"
    assert event.actor_role == role


def test_a_route_outside_api_route_cannot_use_role_checks(database_url, users):
    """Only ApiRoute verifies the token's user in the database, so other routes are refused."""
    from fastapi import APIRouter, FastAPI
    from fastapi.testclient import TestClient

    from app import errors
    from app.security.deps import AnyUser

    router = APIRouter()

    @router.get("/plain")
    def plain(principal: AnyUser):
        return {"user": principal.user_id}

    plain_app = FastAPI()
    errors.install(plain_app)
    plain_app.include_router(router)
    user = users.create("analyst")
    with TestClient(plain_app, raise_server_exceptions=False) as client:
        response = client.get("/plain", headers={"Authorization": f"Bearer {users.token_for(user)}"})
    assert response.status_code == 500
    assert "user" not in response.json()
