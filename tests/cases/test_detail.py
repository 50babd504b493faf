"""GET /api/cases/{id}: the case with its transaction, every score, account history, timeline."""

import pytest

from tests.cases.conftest import case_row, event_count, reconciliation_case


def test_case_detail_has_case_transaction_scores_history_and_timeline(desk, alice):
    desk.transaction("old-1", account_id="acct_7", amount="10.00")
    desk.transaction("other-account", account_id="acct_8")
    case_id = desk.flagged_case("ref-1", 82, amount="450.00", account_id="acct_7")

    body = desk.detail(case_id, alice)

    assert set(body) == {"case", "transaction", "scores", "account_history", "timeline", "grouped_transactions", "seen",
                         "explanations"}
    assert body["case"]["id"] == case_id
    assert body["case"]["transaction_reference"] == "ref-1"
    assert body["transaction"]["reference"] == "ref-1"
    assert body["transaction"]["amount"] == "450.00"
    assert body["transaction"]["review_status"] == "flagged"
    assert body["transaction"]["risk_score"] == 82
    assert [t["reference"] for t in body["account_history"]] == ["ref-1", "old-1"]


def test_case_detail_lists_every_score_newest_first_with_reasons(desk, alice):
    case_id = desk.flagged_case("ref-1", 82)
    desk.score("ref-1", 40, model="geo", model_version=None,
               reasons=[{"code": "new_country", "description": "first payment from PT", "weight": "0.7"}])

    scores = desk.detail(case_id, alice)["scores"]

    assert [(s["score"], s["model"], s["flagged"]) for s in scores] == [(40, "geo", False), (82, "fraud-gbm", True)]
    assert scores[0]["reasons"] == [{"code": "new_country", "description": "first payment from PT", "weight": "0.7"}]
    assert scores[1]["reasons"][0]["code"] == "velocity"
    assert scores[1]["model_version"] == "2026.11"
    assert all(s["created_at"] for s in scores)


def test_timeline_tells_the_case_story_in_order(desk, alice, bob):
    case_id = desk.flagged_case("ref-1", 82)
    assert desk.claim(case_id, alice).status_code == 200
    assert desk.release(case_id, alice).status_code == 200
    assert desk.claim(case_id, bob).status_code == 200
    assert desk.decide(case_id, bob, "reject", "suspected_fraud", note="mule account").status_code == 200

    timeline = desk.detail(case_id, alice)["timeline"]
    agent = timeline[0]["actor"]

    assert agent.startswith("agent")
    # Every event says whether software (an agent) or a person acted.
    assert [(e["action"], e["actor"], e["actor_type"]) for e in timeline] == [
        ("transaction.created", agent, "agent"),
        ("risk_score.posted", agent, "agent"),
        ("case.opened", agent, "agent"),
        ("transaction.review_status_changed", agent, "agent"),
        ("case.claimed", "alice", "human"),
        ("case.released", "alice", "human"),
        ("case.claimed", "bob", "human"),
        ("case.rejected", "bob", "human"),
        ("transaction.review_status_changed", "bob", "human"),
    ]
    ids = [e["id"] for e in timeline]
    assert ids == sorted(ids)
    times = [e["occurred_at"] for e in timeline]
    assert times == sorted(times)
    rejected = timeline[7]
    assert rejected["reason"] == "suspected_fraud: mule account"
    assert rejected["actor_role"] == "analyst"
    assert rejected["entity_type"] == "case" and rejected["entity_id"] == str(case_id)


def test_timeline_does_not_include_other_cases_events(desk, alice):
    first = desk.flagged_case("ref-1", 82)
    second = desk.flagged_case("ref-2", 90)
    desk.decide(second, alice, "approve")

    actions = [(e["entity_id"], e["action"]) for e in desk.detail(first, alice)["timeline"]]

    assert all(entity in ("ref-1", str(first)) for entity, _ in actions)
    assert ("ref-2", "transaction.created") not in actions


def test_detail_after_a_first_approval_shows_who_approved(desk, alice, bob):
    case_id = desk.flagged_case("big-1", 82, amount="25000.00")
    desk.decide(case_id, alice, "approve")

    body = desk.detail(case_id, bob)
    assert body["case"]["first_approved_by"] == "alice"
    assert body["case"]["needs_second_approval"] is True
    assert body["timeline"][-1]["action"] == "case.first_approval"


def test_detail_of_a_reconciliation_case_without_a_transaction(desk, db, alice):
    case_id = reconciliation_case(db)
    body = desk.detail(case_id, alice)

    assert body["case"]["kind"] == "reconciliation"
    assert body["transaction"] is None
    assert body["scores"] == [] and body["account_history"] == []


def test_reading_a_case_changes_nothing(desk, db, alice):
    case_id = desk.flagged_case("ref-1", 82)
    before = case_row(db, case_id), event_count(db)
    desk.detail(case_id, alice)
    assert (case_row(db, case_id), event_count(db)) == before


def test_unknown_case_is_404(client, alice):
    response = client.get("/api/cases/123456", headers=alice.headers)
    assert response.status_code == 404
    assert response.json() == {"detail": "case 123456 not found"}


@pytest.mark.parametrize("bad_id", [
    "0", "-5", "99999999999999999999", "9223372036854775808", "abc", "1e3", "%00",
])
def test_impossible_case_id_is_a_client_error_never_500(client, alice, bad_id):
    response = client.get(f"/api/cases/{bad_id}", headers=alice.headers)
    assert response.status_code in (404, 422), response.text


def test_largest_possible_case_id_is_a_plain_404(client, alice):
    assert client.get("/api/cases/9223372036854775807", headers=alice.headers).status_code == 404


@pytest.mark.parametrize("action", ["claim", "release"])
@pytest.mark.parametrize("bad_id", ["0", "99999999999999999999"])
def test_impossible_case_id_on_actions_is_422(client, alice, action, bad_id):
    assert client.post(f"/api/cases/{bad_id}/{action}", headers=alice.headers).status_code == 422


def test_timeline_of_a_long_history_still_shows_the_latest_events(desk, alice):
    case_id = desk.flagged_case("busy", 80)
    for _ in range(200):  # a model re-scoring the transaction, e.g. on every account event
        desk.score("busy", 10)
    assert desk.decide(case_id, alice, "approve").status_code == 200

    actions = [e["action"] for e in desk.detail(case_id, alice)["timeline"]]

    assert "case.approved" in actions
    assert actions[-1] == "transaction.review_status_changed"
