"""Decisions bound to what the reviewer saw: the `seen` token of GET /api/cases/{id}."""

import pytest

from tests.cases.conftest import assert_conflict, case_row, event_count, review_status
from tests.cases.test_decisions import reconciliation_case_for
from tests.transactions.conftest import assert_rejected


@pytest.fixture
def case_id(desk) -> int:
    return desk.flagged_case("ref-1", 80)


def test_a_decision_on_the_context_the_reviewer_saw_is_recorded(desk, alice, case_id):
    seen = desk.detail(case_id, alice)["seen"]

    assert desk.decide(case_id, alice, "approve", seen=seen).status_code == 200


def test_a_new_score_since_the_page_was_read_refuses_the_decision_saying_what_arrived(desk, db, alice, case_id):
    seen = desk.detail(case_id, alice)["seen"]
    desk.score("ref-1", 91, model="fraud-v3")
    before = case_row(db, case_id), event_count(db)

    response = desk.decide(case_id, alice, "approve", seen=seen)

    assert_conflict(response, "a new score 91 from fraud-v3 arrived at", "UTC", "decide again")
    assert (case_row(db, case_id), event_count(db)) == before
    assert review_status(db, "ref-1") == "flagged"
    # Reading again gives the token that decides.
    assert desk.decide(case_id, alice, "approve", seen=desk.detail(case_id, alice)["seen"]).status_code == 200


def test_several_new_scores_are_counted(desk, alice, case_id):
    seen = desk.detail(case_id, alice)["seen"]
    desk.score("ref-1", 30, model="geo")
    desk.score("ref-1", 60, model="geo")

    assert_conflict(desk.decide(case_id, alice, "approve", seen=seen), "2 new scores arrived, the latest 60 from geo")


def test_without_a_token_decisions_work_as_before(desk, alice, case_id):
    desk.score("ref-1", 91, model="fraud-v3")
    assert desk.decide(case_id, alice, "approve").status_code == 200


def test_a_changed_settlement_is_named(desk, db, alice):
    desk.transaction("ref-2")
    other = reconciliation_case_for(db, "ref-2")
    seen = desk.detail(other, alice)["seen"]
    assert desk.settle("ref-2", "failed").status_code == 200

    assert_conflict(desk.decide(other, alice, "approve", "matched_manually", seen=seen),
                    "status changed from pending to failed")


@pytest.mark.parametrize("seen", ["", "x" * 201, "score=1", "score:1;;", "SCORE:1", 5])
def test_a_malformed_token_is_refused_naming_seen(desk, alice, case_id, seen):
    assert_rejected(desk.decide(case_id, alice, "approve", seen=seen), "seen")


def test_a_higher_score_raises_the_cases_risk_and_reason_and_its_place_in_the_queue(desk, db, alice):
    low = desk.flagged_case("low", 75)
    high = desk.flagged_case("high", 85)
    assert desk.queue_ids(alice)[:2] == [high, low]

    assert desk.score("low", 95, model="fraud-v3")["case_id"] == low

    case = desk.case(low, alice)
    assert case["risk"] == 95 and "score 95" in case["reason"]
    assert desk.queue_ids(alice)[:2] == [low, high]
    summaries = [e["summary"] for e in desk.detail(low, alice)["timeline"]]
    assert "Risk raised from 75 to 95" in summaries
    assert any(s.startswith("Score 95 from fraud-v3 (flagged): 9 payments in 10 minutes") for s in summaries)


def test_a_lower_score_leaves_risk_and_reason(desk, alice):
    case_id = desk.flagged_case("ref-9", 90)
    reason = desk.case(case_id, alice)["reason"]
    desk.score("ref-9", 72)
    assert (desk.case(case_id, alice)["risk"], desk.case(case_id, alice)["reason"]) == (90, reason)


def test_the_timeline_speaks_in_sentences(desk, alice, case_id):
    assert desk.claim(case_id, alice).status_code == 200
    summaries = [e["summary"] for e in desk.detail(case_id, alice)["timeline"]]

    assert summaries[0].startswith("Payment ref-1 of 125.50 USD created by ")
    assert any(s.startswith("alice claimed the case, lease until ") and s.endswith(" UTC") for s in summaries)
    assert any(s.startswith("Case opened at risk 80: score 80") for s in summaries)


def bank_event(desk, bank_reference: str, amount: str) -> dict:
    response = desk.client.post("/reconciliation/bank-events", headers=desk.agent, json={"events": [{
        "bank_reference": bank_reference, "reference": "ref-r", "amount": amount, "currency": "USD",
        "status": "booked", "booked_at": "2026-12-01T09:30:00Z"}]})
    assert response.status_code == 200, response.text
    return response.json()


def test_a_new_bank_event_on_a_reconciliation_case_is_named(desk, alice):
    desk.transaction("ref-r", amount="100.00")
    case_id = bank_event(desk, "BNK-1", "100.50")["mismatches"][0]["case_id"]
    seen = desk.detail(case_id, alice)["seen"]
    assert bank_event(desk, "BNK-2", "99.00")["mismatches"][0]["case_id"] == case_id

    assert_conflict(desk.decide(case_id, alice, "approve", "bank_error", seen=seen),
                    "a new bank event BNK-2 (duplicate bank event) arrived at")
