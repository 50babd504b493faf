"""POST /transactions/{reference}/risk-scores: store a score, flag, open one review case.

Per SPEC "Risk scores and review cases": a score at or above the flag threshold (setting,
default 70) or a matching amount rule for the transaction's currency opens a review case;
one open case per transaction; the transaction's review_status becomes flagged.
"""

import pytest
from sqlalchemy import text

from tests.cases.conftest import (
    add_amount_rule,
    case_count,
    case_row,
    event_count,
    events,
    review_status,
    set_setting,
)


def test_posting_a_score_returns_201_with_id_score_flag_and_case(desk, db):
    desk.transaction("ref-1")
    response = desk.post_score("ref-1", 85)

    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"id", "score", "flagged", "case_id"}
    assert isinstance(body["id"], int)
    assert body["score"] == 85
    assert body["flagged"] is True
    assert body["case_id"] == case_row(db, body["case_id"])["id"]


def test_score_just_below_the_default_threshold_is_stored_but_opens_no_case(desk, db):
    desk.transaction("ref-1")
    body = desk.score("ref-1", 69)

    assert body["flagged"] is False
    assert body["case_id"] is None
    assert case_count(db) == 0
    assert review_status(db, "ref-1") == "clear"
    assert desk.get_transaction("ref-1")["review_status"] == "clear"
    assert desk.get_transaction("ref-1")["risk_score"] == 69
    assert events(db, "case.opened") == []
    assert events(db, "transaction.review_status_changed") == []


def test_score_at_the_default_threshold_flags_and_opens_a_case(desk, db):
    desk.transaction("ref-1", amount="250.00", currency="EUR")
    body = desk.score("ref-1", 70)

    assert body["flagged"] is True
    row = case_row(db, body["case_id"])
    assert row["kind"] == "risk"
    assert row["state"] == "open"
    assert row["risk"] == 70
    assert str(row["amount"]) == "250.0000" and row["currency"] == "EUR"
    assert "flag threshold 70" in row["reason"]
    assert review_status(db, "ref-1") == "flagged"
    transaction = desk.get_transaction("ref-1")
    assert transaction["review_status"] == "flagged"
    assert transaction["risk_score"] == 70


def test_transaction_shows_its_latest_score_not_its_highest(desk):
    desk.transaction("ref-1")
    desk.score("ref-1", 90)
    desk.score("ref-1", 12)

    assert desk.get_transaction("ref-1")["risk_score"] == 12


def test_second_flagged_score_reuses_the_open_case_and_raises_its_risk_to_the_maximum(desk, db):
    desk.transaction("ref-1")
    first = desk.score("ref-1", 75)
    higher = desk.score("ref-1", 95)
    lower = desk.score("ref-1", 80)

    assert first["case_id"] == higher["case_id"] == lower["case_id"]
    assert higher["flagged"] is True and lower["flagged"] is True
    assert case_count(db) == 1
    assert case_row(db, first["case_id"])["risk"] == 95
    assert len(events(db, "case.opened")) == 1
    assert len(events(db, "transaction.review_status_changed")) == 1


def test_unflagged_score_on_a_transaction_with_an_open_case_names_that_case(desk, db):
    desk.transaction("ref-1")
    case_id = desk.score("ref-1", 90)["case_id"]
    body = desk.score("ref-1", 10)

    assert body == {"id": body["id"], "score": 10, "flagged": False, "case_id": case_id}
    assert case_row(db, case_id)["risk"] == 90
    assert review_status(db, "ref-1") == "flagged"


def test_amount_rule_for_the_transactions_currency_flags_a_low_score(desk, db):
    add_amount_rule(db, "USD", "5000")
    desk.transaction("ref-1", amount="5000.00")
    body = desk.score("ref-1", 5)

    assert body["flagged"] is True
    row = case_row(db, body["case_id"])
    assert row["risk"] == 5
    assert "5000.00 USD rule" in row["reason"]
    assert review_status(db, "ref-1") == "flagged"


def test_amount_below_the_rule_threshold_is_not_flagged(desk, db):
    add_amount_rule(db, "USD", "5000")
    desk.transaction("ref-1", amount="4999.99")

    assert desk.score("ref-1", 5)["flagged"] is False
    assert case_count(db) == 0


def test_amount_rule_for_another_currency_does_not_flag(desk, db):
    add_amount_rule(db, "EUR", "100")
    desk.transaction("ref-1", amount="9000.00", currency="USD")
    body = desk.score("ref-1", 5)

    assert body["flagged"] is False
    assert body["case_id"] is None
    assert case_count(db) == 0
    assert review_status(db, "ref-1") == "clear"


def test_lowered_flag_threshold_setting_flags_a_lower_score(desk, db):
    set_setting(db, "flag_threshold", 50)
    desk.transaction("ref-1")
    desk.transaction("ref-2")

    assert desk.score("ref-1", 49)["flagged"] is False
    flagged = desk.score("ref-2", 50)
    assert flagged["flagged"] is True
    assert "flag threshold 50" in case_row(db, flagged["case_id"])["reason"]


def test_raised_flag_threshold_setting_leaves_a_70_unflagged(desk, db):
    set_setting(db, "flag_threshold", 90)
    desk.transaction("ref-1")

    assert desk.score("ref-1", 70)["flagged"] is False
    assert desk.score("ref-1", 90)["flagged"] is True


def test_scores_are_stored_with_their_reasons_model_and_author(desk, db, users):
    desk.transaction("ref-1")
    body = desk.score(
        "ref-1", 42, model="velocity-v2", model_version="7",
        reasons=[{"code": "geo", "description": "new country"}, {"code": "amt", "description": "big", "weight": 1.5}],
    )

    db.commit()
    row = db.execute(text("SELECT * FROM risk_scores WHERE id = :id"), {"id": body["id"]}).mappings().one()
    assert row["score"] == 42
    assert row["model"] == "velocity-v2" and row["model_version"] == "7"
    assert row["reasons"] == [
        {"code": "geo", "description": "new country"}, {"code": "amt", "description": "big", "weight": "1.5"},
    ]
    assert row["is_flagged"] is False
    assert row["created_by"] is not None


def test_posting_a_score_writes_score_case_and_review_status_audit_events(desk, db):
    desk.transaction("ref-1")
    body = desk.score("ref-1", 88)

    [posted] = events(db, "risk_score.posted", entity_id="ref-1")
    assert posted.entity_type == "transaction"
    assert posted.after is not None
    assert posted.after["score_id"] == body["id"]
    assert posted.after["score"] == 88 and posted.after["flagged"] is True
    assert posted.reason is not None
    assert "flag threshold" in posted.reason
    [opened] = events(db, "case.opened", entity_id=body["case_id"])
    assert opened.entity_type == "case"
    assert opened.after == {"state": "open", "kind": "risk", "risk": 88, "transaction": "ref-1"}
    [changed] = events(db, "transaction.review_status_changed", entity_id="ref-1")
    assert changed.before == {"review_status": "clear"}
    assert changed.after == {"review_status": "flagged"}
    assert posted.id < opened.id < changed.id


def test_unflagged_score_writes_only_the_posted_event(desk, db):
    desk.transaction("ref-1")
    before = event_count(db)
    desk.score("ref-1", 3)

    assert event_count(db) == before + 1
    [posted] = events(db, "risk_score.posted", entity_id="ref-1")
    assert posted.after is not None and posted.after["flagged"] is False
    assert posted.reason is None


def test_score_for_an_unknown_reference_is_404_and_stores_nothing(desk, db):
    before = event_count(db)
    response = desk.post_score("no-such-ref", 90)

    assert response.status_code == 404, response.text
    assert "no-such-ref" in response.json()["detail"]
    assert case_count(db) == 0
    assert event_count(db) == before


def test_analyst_cannot_post_a_score(desk, db, alice):
    desk.transaction("ref-1")
    before = event_count(db)
    response = desk.post_score("ref-1", 90, headers=alice.headers)

    assert response.status_code == 403, response.text
    assert case_count(db) == 0
    assert event_count(db) == before


def test_posting_a_score_without_a_token_is_401(desk, db):
    desk.transaction("ref-1")
    response = desk.post_score("ref-1", 90, headers={})

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert case_count(db) == 0


def test_admin_can_post_a_score(desk, root):
    desk.transaction("ref-1")
    assert desk.post_score("ref-1", 90, headers=root.headers).status_code == 201


def test_flagged_score_after_a_decided_case_opens_a_new_case(desk, db, alice):
    desk.transaction("ref-1")
    first = desk.score("ref-1", 80)["case_id"]
    assert desk.decide(first, alice, "approve").status_code == 200
    assert review_status(db, "ref-1") == "approved"

    second = desk.score("ref-1", 95)["case_id"]

    assert second != first
    assert case_row(db, second)["state"] == "open"
    assert review_status(db, "ref-1") == "flagged"


@pytest.mark.parametrize("score", [0, 100])
def test_scores_at_the_ends_of_the_range_are_accepted(desk, score):
    desk.transaction("ref-1")
    assert desk.score("ref-1", score)["score"] == score
