"""POST /api/cases/{id}/decision: approve, reject or escalate, and what follows from it."""

import pytest
from sqlalchemy import text

from tests.cases.conftest import (
    assert_conflict,
    case_row,
    event_count,
    events,
    expire_lease,
    review_status,
)
from tests.transactions.conftest import assert_rejected


@pytest.fixture
def case_id(desk) -> int:
    return desk.flagged_case("ref-1", 85)


def test_approve_decides_the_case_and_approves_the_transaction(desk, db, alice, case_id):
    response = desk.decide(case_id, alice, "approve", "verified_customer")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["state"] == "approved"
    assert body["decision"] == "approve"
    assert body["reason_code"] == "verified_customer"
    assert body["decided_by"] == "alice"
    assert body["decided_at"] is not None
    assert body["needs_second_approval"] is False
    assert body["message"] == f"Case {case_id} approved."
    assert review_status(db, "ref-1") == "approved"
    assert desk.get_transaction("ref-1")["review_status"] == "approved"


def test_approve_without_a_note_is_allowed_and_a_given_note_is_kept(desk, alice, bob):
    first = desk.flagged_case("r-a", 80)
    second = desk.flagged_case("r-b", 80)

    assert desk.decide(first, alice, "approve").json()["note"] is None
    assert desk.decide(second, bob, "approve", note="  known payroll run  ").json()["note"] == "known payroll run"


def test_reject_with_a_note_rejects_the_case_and_the_transaction(desk, db, alice, case_id):
    response = desk.decide(case_id, alice, "reject", "suspected_fraud", note="card testing pattern")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["state"] == "rejected"
    assert body["decision"] == "reject"
    assert body["note"] == "card testing pattern"
    assert body["decided_by"] == "alice"
    assert review_status(db, "ref-1") == "rejected"


def test_escalate_with_a_note_leaves_the_transaction_flagged(desk, db, alice, case_id):
    response = desk.decide(case_id, alice, "escalate", "sanctions_concern", note="name matches a list entry")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["state"] == "escalated"
    assert body["decided_by"] is None
    assert body["decided_at"] is None
    assert body["reason_code"] == "sanctions_concern"
    assert review_status(db, "ref-1") == "flagged"


@pytest.mark.parametrize("decision", ["reject", "escalate"])
@pytest.mark.parametrize("note", [None, "", "   ", "\n\t"], ids=["missing", "empty", "spaces", "whitespace"])
def test_note_is_required_to_reject_or_escalate(desk, db, alice, case_id, decision, note):
    before = case_row(db, case_id), event_count(db)
    response = desk.decide(case_id, alice, decision, "suspected_fraud", note=note)

    assert_rejected(response, "note")
    assert f"required to {decision}" in response.text
    assert (case_row(db, case_id), event_count(db)) == before


@pytest.mark.parametrize(
    "body,field",
    [
        ({"decision": "maybe", "reason_code": "other"}, "decision"),
        ({"decision": "APPROVE", "reason_code": "other"}, "decision"),
        ({"decision": None, "reason_code": "other"}, "decision"),
        ({"reason_code": "other"}, "decision"),
        ({"decision": "approve", "reason_code": "looks_fine"}, "reason_code"),
        ({"decision": "approve"}, "reason_code"),
        ({"decision": "approve", "reason_code": 3}, "reason_code"),
        ({"decision": "approve", "reason_code": "other", "note": "x" * 2001}, "note"),
        ({"decision": "approve", "reason_code": "other", "note": "a\x00b"}, "note"),
        ({"decision": "approve", "reason_code": "other", "note": 5}, "note"),
        ({"decision": "approve", "reason_code": "other", "version": 0}, "version"),
        ({"decision": "approve", "reason_code": "other", "version": "latest"}, "version"),
        ({"decision": "approve", "reason_code": "other", "decided_by": "ceo"}, "decided_by"),
    ],
)
def test_bad_decision_body_is_422_naming_the_field_and_changes_nothing(client, db, alice, case_id, body, field):
    before = case_row(db, case_id), event_count(db)
    response = client.post(f"/api/cases/{case_id}/decision", json=body, headers=alice.headers)

    assert_rejected(response, field)
    assert (case_row(db, case_id), event_count(db)) == before


@pytest.mark.parametrize("reason_code", [
    "false_positive", "verified_customer", "suspected_fraud", "account_takeover",
    "sanctions_concern", "policy_violation", "needs_more_info", "other",
])
def test_every_spec_reason_code_is_accepted(desk, alice, reason_code):
    case_id = desk.flagged_case("r-1", 80)
    assert desk.decide(case_id, alice, "reject", reason_code, note="n").status_code == 200


def test_decision_with_the_current_version_is_accepted(desk, alice, case_id):
    version = desk.case(case_id, alice)["version"]
    assert desk.decide(case_id, alice, "approve", version=version).status_code == 200


def test_decision_on_a_stale_version_is_409_and_changes_nothing(desk, db, alice, bob, case_id):
    seen = desk.case(case_id, alice)["version"]
    assert desk.claim(case_id, bob).status_code == 200
    assert desk.release(case_id, bob).status_code == 200
    before = case_row(db, case_id)

    assert_conflict(desk.decide(case_id, alice, "approve", version=seen), "changed since you loaded it")
    assert case_row(db, case_id) == before


def test_decision_on_an_approved_case_is_409_naming_who_approved_it(desk, db, alice, bob, case_id):
    assert desk.decide(case_id, alice, "approve").status_code == 200
    before = case_row(db, case_id), event_count(db)

    assert_conflict(desk.decide(case_id, bob, "reject", "suspected_fraud", note="no"), "already approved by alice")
    assert (case_row(db, case_id), event_count(db)) == before
    assert review_status(db, "ref-1") == "approved"


def test_decision_on_a_rejected_case_is_409_naming_who_rejected_it(desk, alice, bob, case_id):
    assert desk.decide(case_id, alice, "reject", "suspected_fraud", note="fraud").status_code == 200

    assert_conflict(desk.decide(case_id, bob, "approve"), "already rejected by alice")
    assert_conflict(desk.decide(case_id, alice, "approve"), "already rejected by alice")


def test_decision_on_a_case_claimed_by_someone_else_is_409_naming_the_holder(desk, db, alice, bob, case_id):
    assert desk.claim(case_id, alice).status_code == 200
    before = case_row(db, case_id)

    assert_conflict(desk.decide(case_id, bob, "approve"), "claimed by alice")
    assert case_row(db, case_id) == before


def test_holder_decides_their_claimed_case_and_the_claim_is_released(desk, db, alice, case_id):
    assert desk.claim(case_id, alice).status_code == 200

    response = desk.decide(case_id, alice, "approve")

    assert response.status_code == 200, response.text
    assert response.json()["assignee"] is None
    row = case_row(db, case_id)
    assert (row["assignee_id"], row["lease_expires_at"]) == (None, None)


def test_anyone_may_decide_a_case_whose_claim_expired(desk, db, alice, bob, case_id):
    assert desk.claim(case_id, alice).status_code == 200
    expire_lease(db, case_id)

    assert desk.decide(case_id, bob, "approve").json()["decided_by"] == "bob"


def test_decision_on_an_unknown_case_is_404(desk, alice):
    response = desk.decide(987654, alice, "approve")
    assert response.status_code == 404
    assert "987654" in response.json()["detail"]


@pytest.mark.parametrize("bad_id", ["0", "-1", "99999999999999999999", "abc", "1.5"])
def test_decision_on_an_impossible_case_id_is_422_not_500(client, alice, bad_id):
    response = client.post(f"/api/cases/{bad_id}/decision", json={"decision": "approve", "reason_code": "other"},
                           headers=alice.headers)
    assert response.status_code == 422, response.text


# --- the transaction's settlement follows the review ----------------------------------------

def test_flagged_transaction_cannot_settle(desk, case_id):
    response = desk.settle("ref-1")
    assert_conflict(response, "cannot be settled", "review case is still open")


def test_rejected_transaction_cannot_settle(desk, alice, case_id):
    assert desk.decide(case_id, alice, "reject", "suspected_fraud", note="fraud").status_code == 200

    assert_conflict(desk.settle("ref-1"), "rejected in review")


def test_approved_transaction_can_settle(desk, alice, case_id):
    assert desk.decide(case_id, alice, "approve").status_code == 200

    response = desk.settle("ref-1")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "settled"


def test_escalated_transaction_still_cannot_settle(desk, alice, case_id):
    assert desk.decide(case_id, alice, "escalate", "needs_more_info", note="ask").status_code == 200

    assert_conflict(desk.settle("ref-1"), "review case is still open")


def test_flagged_transaction_may_still_fail(desk, case_id):
    assert desk.settle("ref-1", "failed").status_code == 200


# --- escalated cases are an admin's ----------------------------------------------------------

@pytest.fixture
def escalated(desk, alice, case_id) -> int:
    assert desk.decide(case_id, alice, "escalate", "sanctions_concern", note="possible match").status_code == 200
    return case_id


@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_analyst_cannot_decide_an_escalated_case(desk, db, bob, escalated, decision):
    before = case_row(db, escalated)
    response = desk.decide(escalated, bob, decision, "other", note="n")

    assert response.status_code == 403, response.text
    assert "admin" in response.json()["detail"]
    assert case_row(db, escalated) == before


def test_the_analyst_who_escalated_cannot_decide_it_either(desk, alice, escalated):
    assert desk.decide(escalated, alice, "approve").status_code == 403


def test_admin_approves_an_escalated_case(desk, db, root, escalated):
    response = desk.decide(escalated, root, "approve", "verified_customer")

    assert response.status_code == 200, response.text
    assert response.json()["state"] == "approved"
    assert response.json()["decided_by"] == "root"
    assert review_status(db, "ref-1") == "approved"


def test_admin_rejects_an_escalated_case_after_claiming_it(desk, db, root, escalated):
    assert desk.next(root).json()["id"] == escalated

    response = desk.decide(escalated, root, "reject", "sanctions_concern", note="confirmed match")

    assert response.status_code == 200, response.text
    assert review_status(db, "ref-1") == "rejected"


def test_escalating_an_escalated_case_again_is_409(desk, root, escalated):
    assert_conflict(desk.decide(escalated, root, "escalate", "other", note="again"), "already escalated")


def test_admin_can_decide_an_ordinary_case(desk, root, case_id):
    assert desk.decide(case_id, root, "approve").json()["decided_by"] == "root"


# --- audit ------------------------------------------------------------------------------------

def test_approval_writes_case_approved_and_review_status_events(desk, db, alice, case_id):
    desk.decide(case_id, alice, "approve", "verified_customer", note="called the customer")

    [approved] = events(db, "case.approved", entity_id=case_id)
    assert approved.actor == "alice" and approved.actor_role == "analyst"
    assert approved.entity_type == "case"
    assert approved.before == {"state": "open", "version": 1}
    assert approved.after == {"state": "approved", "decision": "approve", "reason_code": "verified_customer"}
    assert approved.reason == "verified_customer: called the customer"
    changes = events(db, "transaction.review_status_changed", entity_id="ref-1")
    assert [(e.before, e.after) for e in changes] == [
        ({"review_status": "clear"}, {"review_status": "flagged"}),
        ({"review_status": "flagged"}, {"review_status": "approved"}),
    ]


def test_rejection_and_escalation_write_their_events(desk, db, alice, root):
    rejected = desk.flagged_case("r-rej", 80)
    escalated = desk.flagged_case("r-esc", 80)
    desk.decide(rejected, alice, "reject", "account_takeover", note="new device")
    desk.decide(escalated, alice, "escalate", "policy_violation", note="policy 4.2")

    [reject_event] = events(db, "case.rejected", entity_id=rejected)
    assert reject_event.reason == "account_takeover: new device"
    [escalate_event] = events(db, "case.escalated", entity_id=escalated)
    assert escalate_event.after is not None
    assert escalate_event.after["state"] == "escalated"
    assert events(db, "transaction.review_status_changed", entity_id="r-esc")[-1].after == {"review_status": "flagged"}


# --- more than one case on a transaction ------------------------------------------------------

def reconciliation_case_for(db, reference: str) -> int:
    """A reconciliation mismatch case on an existing transaction, as a reconciliation run opens it."""
    case_id = db.execute(
        text("INSERT INTO review_cases (kind, transaction_id, risk, reason, amount, currency)"
             " SELECT 'reconciliation', id, 50, 'amount_mismatch', amount, currency FROM transactions"
             " WHERE reference = :r RETURNING id"), {"r": reference},
    ).scalar_one()
    db.commit()
    return case_id


def test_approving_another_case_of_the_transaction_keeps_it_flagged_while_its_risk_case_is_open(
    desk, db, alice, case_id
):
    other = reconciliation_case_for(db, "ref-1")

    assert desk.decide(other, alice, "approve", "matched_manually").status_code == 200

    assert case_row(db, case_id)["state"] == "open"
    assert review_status(db, "ref-1") == "flagged"
    assert desk.settle("ref-1").status_code == 409
