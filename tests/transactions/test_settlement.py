"""POST /transactions/{reference}/settlement: pending → settled | failed, once."""

import pytest
from sqlalchemy import select, update

from app.audit.models import AuditEvent
from app.transactions.models import Transaction
from tests.conftest import tx_payload
from tests.transactions.conftest import assert_rejected, audit_count


@pytest.fixture
def pending(client, agent_headers) -> str:
    response = client.post("/transactions", json=tx_payload("ref-1"), headers=agent_headers)
    assert response.status_code == 200
    return "ref-1"


@pytest.fixture
def settle(client, agent_headers):
    def post(reference: str, status: str, headers: dict[str, str] | None = None, **extra):
        return client.post(
            f"/transactions/{reference}/settlement", json={"status": status, **extra}, headers=headers or agent_headers
        )

    return post


def set_review_status(db, reference: str, review_status: str) -> None:
    db.execute(update(Transaction).where(Transaction.reference == reference).values(review_status=review_status))
    db.commit()


def stored(db, reference: str) -> Transaction:
    db.expire_all()
    return db.scalars(select(Transaction).where(Transaction.reference == reference)).one()


def settlement_events(db, reference: str) -> list[AuditEvent]:
    return list(
        db.scalars(
            select(AuditEvent)
            .where(AuditEvent.entity_id == reference,
                   AuditEvent.action.in_(["transaction.settled", "transaction.failed"]))
            .order_by(AuditEvent.id)
        )
    )


def test_pending_transaction_settles_with_an_audit_event(settle, pending, db):
    response = settle(pending, "settled", reason="bank confirmed")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "settled"
    assert body["settlement_reason"] == "bank confirmed"
    assert body["settled_at"] is not None
    assert stored(db, pending).status == "settled"
    [event] = settlement_events(db, pending)
    assert event.action == "transaction.settled"
    assert event.before == {"status": "pending"}
    assert event.after == {"status": "settled"}
    assert event.reason == "bank confirmed"
    assert event.actor_type == "agent"


def test_pending_transaction_can_fail_with_an_audit_event(settle, pending, db):
    response = settle(pending, "failed", reason="insufficient funds")
    assert response.status_code == 200
    assert response.json()["status"] == "failed"
    [event] = settlement_events(db, pending)
    assert event.action == "transaction.failed"


@pytest.mark.parametrize("outcome", ["settled", "failed"])
def test_repeating_the_same_outcome_is_a_no_op_200_without_a_second_event(settle, pending, db, outcome):
    first = settle(pending, outcome, reason="first")
    again = settle(pending, outcome, reason="second")
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert again.json()["settlement_reason"] == "first"
    assert len(settlement_events(db, pending)) == 1


@pytest.mark.parametrize(("first", "second"), [("settled", "failed"), ("failed", "settled")])
def test_a_different_outcome_after_settlement_is_409(settle, pending, db, first, second):
    settle(pending, first)
    response = settle(pending, second)
    assert response.status_code == 409
    assert f"already {first}" in response.json()["detail"]
    assert stored(db, pending).status == first
    assert len(settlement_events(db, pending)) == 1


def test_unknown_reference_is_404(settle, db):
    response = settle("no-such-ref", "settled")
    assert response.status_code == 404
    assert audit_count(db, action="transaction.settled") == 0


@pytest.mark.parametrize(
    ("review_status", "why"),
    [("flagged", "its review case is still open"), ("rejected", "it was rejected in review")],
)
def test_transaction_blocked_by_review_cannot_be_settled_and_409_says_why(settle, pending, db, review_status, why):
    set_review_status(db, pending, review_status)
    response = settle(pending, "settled")
    assert response.status_code == 409
    detail = response.json()["detail"]
    assert "cannot be settled" in detail
    assert why in detail
    assert stored(db, pending).status == "pending"
    assert settlement_events(db, pending) == []


@pytest.mark.parametrize("review_status", ["clear", "approved"])
def test_clear_or_approved_transaction_can_be_settled(settle, pending, db, review_status):
    set_review_status(db, pending, review_status)
    assert settle(pending, "settled").status_code == 200


def test_flagged_transaction_may_still_fail(settle, pending, db):
    """Our documented choice: a payment that failed at the bank is recorded even while under review."""
    set_review_status(db, pending, "flagged")
    response = settle(pending, "failed", reason="card declined")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "failed"
    assert stored(db, pending).review_status == "flagged"
    assert len(settlement_events(db, pending)) == 1


def test_rejected_transaction_may_still_fail(settle, pending, db):
    set_review_status(db, pending, "rejected")
    assert settle(pending, "failed").status_code == 200


def test_settled_transaction_later_flagged_still_answers_the_same_outcome_as_a_no_op(settle, pending, db):
    settle(pending, "settled")
    set_review_status(db, pending, "flagged")
    assert settle(pending, "settled").status_code == 200
    assert len(settlement_events(db, pending)) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "pending"}, "status"),
        ({"status": "SETTLED"}, "status"),
        ({}, "status"),
        ({"status": "settled", "reason": "r" * 501}, "reason"),
        ({"status": "settled", "reason": "bad\x00reason"}, "reason"),
        ({"status": "settled", "when": "now"}, "when"),
    ],
)
def test_bad_settlement_body_is_422_naming_the_field_and_changes_nothing(
    client, agent_headers, pending, db, body, field
):
    response = client.post(f"/transactions/{pending}/settlement", json=body, headers=agent_headers)
    assert_rejected(response, field)
    assert stored(db, pending).status == "pending"
    assert settlement_events(db, pending) == []


def test_analyst_cannot_settle(settle, pending, analyst_headers, db):
    assert settle(pending, "settled", headers=analyst_headers).status_code == 403
    assert stored(db, pending).status == "pending"


def test_admin_can_settle(settle, pending, admin_headers, db):
    assert settle(pending, "settled", headers=admin_headers).status_code == 200
    [event] = settlement_events(db, pending)
    assert event.actor_role == "admin"


def test_settlement_is_visible_through_get(client, settle, pending, analyst_headers):
    settle(pending, "settled")
    assert client.get(f"/transactions/{pending}", headers=analyst_headers).json()["status"] == "settled"
