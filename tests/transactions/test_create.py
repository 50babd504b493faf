from decimal import Decimal

from sqlalchemy import func, select

from app.audit.models import AuditEvent
from app.transactions.models import Transaction
from app.transactions.schemas import TransactionOut
from tests.conftest import tx_payload


def test_create_returns_pending_transaction_with_exact_amount(client, agent_headers, db):
    response = client.post("/transactions", json=tx_payload(amount="1250.50"), headers=agent_headers)
    assert response.status_code == 200
    body = response.json()
    assert body["amount"] == "1250.50"
    assert body["status"] == "pending"
    assert body["review_status"] == "clear"
    assert "Idempotent-Replayed" not in response.headers
    stored = db.scalar(select(Transaction.amount).where(Transaction.reference == "ref-1"))
    assert stored == Decimal("1250.50")


def test_identical_replay_returns_original(client, agent_headers, db):
    first = client.post("/transactions", json=tx_payload(), headers=agent_headers)
    replay = client.post("/transactions", json=tx_payload(amount="125.5"), headers=agent_headers)
    assert replay.status_code == 200
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    assert db.scalar(select(func.count()).select_from(Transaction)) == 1


def test_same_reference_different_payload_is_409(client, agent_headers, db):
    client.post("/transactions", json=tx_payload(), headers=agent_headers)
    response = client.post("/transactions", json=tx_payload(amount="999.00"), headers=agent_headers)
    assert response.status_code == 409
    assert response.json()["detail"]["differing_fields"] == ["amount"]
    assert db.scalar(select(Transaction.amount)) == Decimal("125.50")


def test_creation_writes_one_audit_event_in_the_same_transaction(client, agent_headers, db):
    client.post("/transactions", json=tx_payload(), headers=agent_headers)
    client.post("/transactions", json=tx_payload(), headers=agent_headers)
    events = db.scalars(select(AuditEvent).where(AuditEvent.action == "transaction.created")).all()
    assert len(events) == 1
    assert events[0].entity_id == "ref-1"
    assert events[0].actor_type == "agent"
    assert events[0].after["amount"] == "125.50"


def test_get_returns_transaction_and_404_for_unknown(client, agent_headers, analyst_headers):
    client.post("/transactions", json=tx_payload(), headers=agent_headers)
    found = client.get("/transactions/ref-1", headers=analyst_headers)
    assert found.status_code == 200
    assert found.json()["reference"] == "ref-1"
    assert found.json()["risk_score"] is None
    missing = client.get("/transactions/nope", headers=analyst_headers)
    assert missing.status_code == 404


def test_explicit_nulls_for_optional_fields_are_accepted(client, agent_headers):
    # Clients often send every field; null must mean "absent", never a 500.
    payload = tx_payload("nulls", counterparty=None, description=None, metadata=None)
    response = client.post("/transactions", json=payload, headers=agent_headers)
    assert response.status_code == 200, response.text
    assert response.json()["counterparty"] is None and response.json()["metadata"] == {}
    batch = client.post("/transactions/batch", json={"items": [tx_payload("nulls-2", description=None)]},
                        headers=agent_headers)
    assert batch.json()["items"][0]["status_code"] == 200
    settled = client.post("/transactions/nulls/settlement", json={"status": "settled", "reason": None},
                          headers=agent_headers)
    assert settled.status_code == 200, settled.text
    scored = client.post("/transactions/nulls-2/risk-scores", json={"score": 10, "model": "m", "model_version": None},
                         headers=agent_headers)
    assert scored.status_code == 201, scored.text


def test_create_replay_and_get_answer_exactly_what_the_declared_model_writes(client, agent_headers, analyst_headers):
    # Built as plain data (app/uow/routing.py Shaped), not as a TransactionOut: the bytes must be the model's.
    payload = tx_payload("shape-1", amount="1.2", currency="BHD", metadata={"ratio": 0.25, "tags": ["a", None]})
    created = client.post("/transactions", json=payload, headers=agent_headers)
    replayed = client.post("/transactions", json=payload, headers=agent_headers)
    fetched = client.get("/transactions/shape-1", headers=analyst_headers)
    for response in (created, replayed, fetched):
        assert response.status_code == 200
        assert response.content == TransactionOut.model_validate_json(response.content).model_dump_json().encode()
    assert created.json() == replayed.json() == fetched.json()
    assert created.json()["amount"] == "1.200" and fetched.json()["metadata"] == {"ratio": 0.25, "tags": ["a", None]}
