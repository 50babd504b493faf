"""The outbox row exists exactly when the change it announces committed; endpoints API; secrets shown once."""

import pytest
from sqlalchemy import text

from app.audit.service import Actor
from app.transactions import service as transactions
from app.transactions.schemas import SettlementRequest
from tests.webhooks.conftest import register, rows


def test_settlement_writes_an_outbox_event_with_a_delivery_per_subscribed_endpoint(
    client, admin_headers, desk, db
):
    settled = register(client, admin_headers, "https://a.example/hook", ["transaction.settled"])
    register(client, admin_headers, "https://b.example/hook", ["case.opened"])
    desk.transaction("tx-1")
    assert desk.settle("tx-1").status_code == 200
    events = rows(db, "SELECT id, event_type, payload FROM webhook_events")
    assert [(e.event_type, e.payload["reference"], e.payload["status"]) for e in events] == [
        ("transaction.settled", "tx-1", "settled")]
    deliveries = rows(db, "SELECT endpoint_id, status FROM webhook_deliveries")
    assert [(d.endpoint_id, d.status) for d in deliveries] == [(settled["id"], "pending")]
    assert desk.settle("tx-1").status_code == 200  # the same outcome again is a no-op: no second event
    assert len(rows(db, "SELECT id FROM webhook_events")) == 1


def test_no_outbox_row_when_the_change_does_not_commit(client, desk, db):
    desk.flagged_case("tx-flagged")
    events_before = rows(db, "SELECT event_type FROM webhook_events")
    assert [e.event_type for e in events_before] == ["case.opened"]
    assert desk.settle("tx-flagged").status_code == 409  # blocked by the open case: nothing committed
    desk.transaction("tx-rolled-back")
    transactions.settle(session=db, actor=Actor(name="t", id=None, role="agent"), reference="tx-rolled-back",
                        request=SettlementRequest(status="failed"))
    assert db.execute(text("SELECT count(*) FROM webhook_events WHERE event_type = 'transaction.failed'")).scalar() == 1
    db.rollback()
    assert [e.event_type for e in rows(db, "SELECT event_type FROM webhook_events")] == ["case.opened"]


def test_a_decision_writes_case_decided(client, desk, users, db):
    case_id = desk.flagged_case("tx-d")
    analyst = users.headers("analyst")
    decision = {"decision": "approve", "reason_code": "false_positive"}
    response = client.post(f"/api/cases/{case_id}/decision", json=decision, headers=analyst)
    assert response.status_code == 200, response.text
    decided = rows(db, "SELECT payload FROM webhook_events WHERE event_type = 'case.decided'")
    assert [(d.payload["case_id"], d.payload["state"]) for d in decided] == [(case_id, "approved")]


def test_the_secret_is_returned_once_and_never_listed(client, admin_headers, users):
    created = register(client, admin_headers, "http://127.0.0.1:9/x", ["case.opened", "case.decided"])
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 40
    listed = client.get("/api/webhooks/endpoints", headers=admin_headers).json()
    assert [e["id"] for e in listed] == [created["id"]]
    assert "secret" not in listed[0] and created["secret"] not in str(listed)
    assert client.get("/api/webhooks/endpoints", headers=users.headers("analyst")).status_code == 403


@pytest.mark.parametrize("body,field", [
    ({"url": "ftp://x.example/", "event_types": ["case.opened"]}, "url"),
    ({"url": "https://x.example/", "event_types": ["nope"]}, "event_types.0"),
    ({"url": "https://x.example/", "event_types": []}, "event_types"),
    ({"url": "https://u:p@x.example/", "event_types": ["case.opened"]}, "url"),
])
def test_bad_endpoints_are_refused(client, admin_headers, db, body, field):
    response = client.post("/api/webhooks/endpoints", json=body, headers=admin_headers)
    assert response.status_code == 422 and field in [e["field"] for e in response.json()["detail"]], response.text
    assert rows(db, "SELECT id FROM webhook_endpoints") == []


def test_disabled_and_deleted_endpoints_get_no_new_deliveries(client, admin_headers, desk, db):
    endpoint = register(client, admin_headers, "https://a.example/hook")
    patched = client.patch(f"/api/webhooks/endpoints/{endpoint['id']}", json={"is_active": False},
                           headers=admin_headers)
    assert patched.json()["is_active"] is False
    desk.transaction("tx-1")
    desk.settle("tx-1")
    assert rows(db, "SELECT id FROM webhook_deliveries") == []
    assert client.delete(f"/api/webhooks/endpoints/{endpoint['id']}", headers=admin_headers).status_code == 204
    assert client.get("/api/webhooks/endpoints", headers=admin_headers).json() == []
    audited = rows(db, "SELECT action FROM audit_events WHERE entity_type = 'webhook_endpoint' ORDER BY id")
    actions = [r.action for r in audited]
    assert actions == ["webhook.endpoint_created", "webhook.endpoint_disabled", "webhook.endpoint_deleted"]


def test_reconciliation_mismatches_announce_case_opened(client, admin_headers, agent_headers, db):
    register(client, admin_headers, "https://a.example/hook", ["case.opened"])
    response = client.post("/reconciliation/bank-events", json={"events": [{
        "bank_reference": "B-1", "reference": "nowhere", "amount": "1.00", "currency": "USD", "status": "booked",
        "booked_at": "2026-11-24T10:15:00Z"}]}, headers=agent_headers)
    case_id = response.json()["mismatches"][0]["case_id"]
    events = rows(db, "SELECT payload FROM webhook_events WHERE event_type = 'case.opened'")
    assert [(e.payload["case_id"], e.payload["kind"]) for e in events] == [(case_id, "reconciliation")]
    assert len(rows(db, "SELECT id FROM webhook_deliveries")) == 1
