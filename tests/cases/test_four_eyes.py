"""Four-eyes: approving an amount above the dual-control threshold needs a second reviewer.

The default threshold is 10,000 in the transaction's currency; "above" is strict.
"""

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from tests.cases.conftest import assert_conflict, case_row, events, review_status, reviewer, set_setting


@pytest.fixture
def big(desk) -> int:
    return desk.flagged_case("big-1", 85, amount="20000.00")


def test_first_approval_above_the_threshold_keeps_the_case_open_for_a_second_reviewer(desk, db, alice, big):
    response = desk.decide(big, alice, "approve", "verified_customer")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["state"] == "open"
    assert body["needs_second_approval"] is True
    assert body["first_approved_by"] == "alice"
    assert body["decided_by"] is None
    assert body["assignee"] is None
    assert "second" in body["message"] and "different reviewer" in body["message"]
    assert "20,000.00 USD" in body["message"] and "10,000.00 USD" in body["message"]
    assert review_status(db, "big-1") == "flagged"
    [first] = events(db, "case.first_approval", entity_id=big)
    assert first.actor == "alice"
    assert first.after == {"state": "open", "first_approved_by": "alice"}
    assert events(db, "case.approved") == []


def test_first_approver_cannot_give_the_second_approval(desk, db, alice, big):
    desk.decide(big, alice, "approve")
    before = case_row(db, big)

    assert_conflict(desk.decide(big, alice, "approve"), "second approval from a different reviewer")
    assert case_row(db, big) == before


def test_first_approvers_next_does_not_return_the_case(desk, alice, bob, big):
    desk.decide(big, alice, "approve")

    assert desk.next(alice).status_code == 204
    assert desk.next(bob).json()["id"] == big


def test_first_approvers_next_skips_it_for_a_lower_case(desk, alice, big):
    desk.decide(big, alice, "approve")
    lower = desk.flagged_case("small-1", 70)

    assert desk.next(alice).json()["id"] == lower


def test_second_different_reviewer_approves_and_the_transaction_is_approved(desk, db, alice, bob, big):
    desk.decide(big, alice, "approve")

    response = desk.decide(big, bob, "approve", "verified_customer")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["state"] == "approved"
    assert body["first_approved_by"] == "alice"
    assert body["decided_by"] == "bob"
    assert body["message"] == f"Case {big} approved."
    assert review_status(db, "big-1") == "approved"
    assert desk.settle("big-1").status_code == 200
    [approved] = events(db, "case.approved", entity_id=big)
    assert approved.actor == "bob"


def test_second_reviewer_may_reject_after_a_first_approval(desk, db, alice, bob, big):
    desk.decide(big, alice, "approve")

    response = desk.decide(big, bob, "reject", "suspected_fraud", note="disagree")

    assert response.json()["state"] == "rejected"
    assert review_status(db, "big-1") == "rejected"


def test_second_reviewer_can_claim_the_case_awaiting_second_approval(desk, alice, bob, big):
    desk.decide(big, alice, "approve")
    assert desk.claim(big, bob).status_code == 200

    assert desk.decide(big, bob, "approve").json()["state"] == "approved"


def test_amount_exactly_at_the_threshold_needs_only_one_approval(desk, db, alice):
    case_id = desk.flagged_case("edge-1", 85, amount="10000.00")

    body = desk.decide(case_id, alice, "approve").json()

    assert body["state"] == "approved"
    assert body["needs_second_approval"] is False
    assert review_status(db, "edge-1") == "approved"


def test_one_minor_unit_above_the_threshold_needs_two_approvals(desk, alice):
    case_id = desk.flagged_case("edge-2", 85, amount="10000.01")

    assert desk.decide(case_id, alice, "approve").json()["state"] == "open"


def test_threshold_applies_in_the_transactions_own_currency(desk, alice):
    # 10,000 JPY is a small amount, but the setting is a number in each transaction's currency.
    yen = desk.flagged_case("jpy-1", 85, amount="10001", currency="JPY")

    body = desk.decide(yen, alice, "approve").json()
    assert body["needs_second_approval"] is True
    assert "10,001 JPY" in body["message"] and "10,000 JPY" in body["message"]


def test_dual_control_threshold_setting_is_respected(desk, db, alice):
    set_setting(db, "dual_control_threshold", "500")
    case_id = desk.flagged_case("r-1", 85, amount="600.00")

    assert desk.decide(case_id, alice, "approve").json()["needs_second_approval"] is True


def test_rejecting_a_large_amount_needs_only_one_reviewer(desk, alice, big):
    assert desk.decide(big, alice, "reject", "suspected_fraud", note="fraud").json()["state"] == "rejected"


def test_escalated_large_case_needs_two_admins_to_approve(desk, users, alice, root, big):
    second_admin = reviewer(users, "admin", "chief")
    desk.decide(big, alice, "escalate", "needs_more_info", note="large")

    first = desk.decide(big, root, "approve").json()
    assert (first["state"], first["first_approved_by"]) == ("escalated", "root")
    assert_conflict(desk.decide(big, root, "approve"), "different reviewer")

    assert desk.decide(big, second_admin, "approve").json()["state"] == "approved"


def test_database_rejects_an_approval_by_the_first_approver_itself(desk, db, alice, big):
    desk.decide(big, alice, "approve")
    row = case_row(db, big)
    assert row["first_approved_by"] is not None

    with pytest.raises(IntegrityError) as raised:
        db.execute(
            text("UPDATE review_cases SET state = 'approved', decision = 'approve', decided_at = now(),"
                 " decided_by = first_approved_by WHERE id = :id"),
            {"id": big},
        )
        db.flush()
    db.rollback()

    assert "four_eyes" in str(raised.value)
    assert case_row(db, big)["state"] == "open"


def test_database_rejects_an_approval_that_skips_the_first_approver(desk, db, big, users):
    # needs_second_approval with no first approver recorded is not a valid approval either.
    db.execute(text("UPDATE review_cases SET needs_second_approval = true WHERE id = :id"), {"id": big})
    db.commit()
    decider = users.create("analyst", "carol")

    with pytest.raises(IntegrityError) as raised:
        db.execute(
            text("UPDATE review_cases SET state = 'approved', decided_at = now(), decided_by = :u WHERE id = :id"),
            {"id": big, "u": decider.id},
        )
    db.rollback()
    assert "four_eyes" in str(raised.value)


def test_first_approver_cannot_claim_the_case_awaiting_a_second_approval(desk, alice, bob, big):
    desk.decide(big, alice, "approve")

    response = desk.claim(big, alice)

    assert response.status_code == 409, response.text
    assert desk.decide(big, bob, "approve").status_code == 200
