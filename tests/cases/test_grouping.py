"""The group_flags_by_account setting: a new flag on an account joins its open risk case."""

import pytest

from tests.cases.conftest import case_count, events, review_status, set_setting
from tests.conftest import assert_no_server_errors, run_together


@pytest.fixture
def grouping_on(db) -> None:
    set_setting(db, "group_flags_by_account", True)


def test_off_by_default_a_second_flag_on_the_account_opens_its_own_case(desk, db, alice, root):
    first = desk.flagged_case("a-1", 80, account_id="acct_g")
    second = desk.flagged_case("a-2", 85, account_id="acct_g")

    assert first != second
    assert root and desk.client.get("/api/settings", headers=root.headers).json()["group_flags_by_account"] is False


def test_on_a_second_flag_joins_the_open_case_raising_its_risk(desk, db, alice, grouping_on):
    first = desk.flagged_case("a-1", 80, account_id="acct_g")
    desk.transaction("a-2", account_id="acct_g", amount="900.00")

    assert desk.score("a-2", 88)["case_id"] == first

    assert case_count(db, kind="risk") == 1
    assert review_status(db, "a-2") == "flagged"
    assert desk.settle("a-2").status_code == 409
    detail = desk.detail(first, alice)
    assert detail["case"]["risk"] == 88
    assert [t["reference"] for t in detail["grouped_transactions"]] == ["a-2"]
    assert {s["score"] for s in detail["scores"]} == {80, 88}
    assert "A flag on payment a-2 joined the case (score 88)" in [e["summary"] for e in detail["timeline"]]
    assert events(db, "case.flag_grouped", first)[0].after == {"transaction": "a-2", "risk": 88}


def test_other_accounts_and_unflagged_scores_are_not_grouped(desk, db, grouping_on):
    first = desk.flagged_case("a-1", 80, account_id="acct_g")
    other = desk.flagged_case("b-1", 80, account_id="acct_h")
    desk.transaction("a-3", account_id="acct_g")

    assert other != first
    assert desk.score("a-3", 10)["flagged"] is False
    assert review_status(db, "a-3") == "clear"


def test_the_decision_applies_to_every_grouped_payment(desk, db, alice, grouping_on):
    first = desk.flagged_case("a-1", 80, account_id="acct_g")
    desk.transaction("a-2", account_id="acct_g")
    desk.score("a-2", 90)

    assert desk.decide(first, alice, "reject", "suspected_fraud", note="mule").status_code == 200

    assert (review_status(db, "a-1"), review_status(db, "a-2")) == ("rejected", "rejected")


def test_a_grouped_payment_above_the_threshold_needs_four_eyes(desk, db, alice, bob, grouping_on):
    first = desk.flagged_case("a-1", 80, account_id="acct_g", amount="50.00")
    desk.transaction("a-2", account_id="acct_g", amount="20000.00")
    desk.score("a-2", 90)

    response = desk.decide(first, alice, "approve")
    assert response.json()["state"] == "open" and "20,000.00 USD" in response.json()["message"]
    assert desk.decide(first, bob, "approve").json()["state"] == "approved"
    assert review_status(db, "a-2") == "approved"


def test_a_grouped_flag_makes_a_page_read_before_it_stale(desk, alice, grouping_on):
    first = desk.flagged_case("a-1", 80, account_id="acct_g")
    seen = desk.detail(first, alice)["seen"]
    desk.transaction("a-2", account_id="acct_g")
    desk.score("a-2", 75)

    response = desk.decide(first, alice, "approve", seen=seen)
    assert response.status_code == 409
    assert "a flag on another payment of the account joined this case" in response.json()["detail"]


def test_after_the_case_is_decided_a_new_flag_opens_a_new_case(desk, alice, grouping_on):
    first = desk.flagged_case("a-1", 80, account_id="acct_g")
    assert desk.decide(first, alice, "approve").status_code == 200

    assert desk.flagged_case("a-2", 80, account_id="acct_g") != first


def test_admins_switch_it_through_the_settings_api_audited(desk, db, client, root, alice):
    response = client.patch("/api/settings", json={"group_flags_by_account": True}, headers=root.headers)

    assert response.status_code == 200 and response.json()["group_flags_by_account"] is True
    assert events(db, "setting.changed", "group_flags_by_account")[0].after == {"group_flags_by_account": True}
    bad = client.patch("/api/settings", json={"group_flags_by_account": "yes"}, headers=root.headers)
    assert bad.status_code == 422 and "group_flags_by_account" in bad.text
    assert client.patch("/api/settings", json={"group_flags_by_account": True},
                        headers=alice.headers).status_code == 403


def test_flags_on_one_account_at_once_end_in_one_case(http, desk, db, agent_headers, grouping_on):
    references = [f"race-{n}" for n in range(6)]
    for reference in references:
        desk.transaction(reference, account_id="acct_race")
    body = {"score": 85, "model": "fraud-gbm", "reasons": []}

    responses = run_together([
        (lambda r=r: http.post(f"/transactions/{r}/risk-scores", json=body, headers=agent_headers))
        for r in references
    ])

    assert_no_server_errors(responses)
    assert [r.status_code for r in responses] == [201] * 6
    assert len({r.json()["case_id"] for r in responses}) == 1
    assert case_count(db, kind="risk") == 1
    assert {review_status(db, r) for r in references} == {"flagged"}


def test_a_decision_and_a_joining_flag_at_once_never_fail_the_server(http, desk, db, alice, agent_headers,
                                                                      grouping_on):
    first = desk.flagged_case("a-1", 80, account_id="acct_g")
    desk.transaction("a-2", account_id="acct_g")
    desk.score("a-2", 85)  # a-2 is in the case; its next flag locks a-2, then the case
    body = {"score": 95, "model": "fraud-gbm", "reasons": []}
    decision = {"decision": "reject", "reason_code": "suspected_fraud", "note": "mule"}

    responses = run_together([
        lambda: http.post(f"/api/cases/{first}/decision", json=decision, headers=alice.headers),
        lambda: http.post("/transactions/a-2/risk-scores", json=body, headers=agent_headers),
    ])

    assert_no_server_errors(responses)
    assert [r.status_code for r in responses] == [200, 201]
    # Either the flag joined the case before the rejection (which then covers a-2), or it came
    # after and opened a case of its own.
    joined = responses[1].json()["case_id"] == first
    assert review_status(db, "a-2") == ("rejected" if joined else "flagged")
