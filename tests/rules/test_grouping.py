"""The group_flags_by_account setting for rule flags: a payment an active rule flags as it
arrives joins its account's open risk case (one POST, a batch, or many at once)."""

import pytest

from tests.cases.conftest import case_count, events, review_status, set_setting
from tests.conftest import assert_no_server_errors, run_together, tx_payload
from tests.rules.test_api_rules import rows
from tests.rules.test_hot_path import hits, publish_rule


@pytest.fixture
def large_payments(client, admin_headers) -> None:
    publish_rule(client, admin_headers, "Large payment", "tx.amount > 1000", risk=75)


def open_cases(db) -> list:
    db.commit()
    return rows(db, "SELECT id, risk, reason, account_id FROM review_cases WHERE kind = 'risk' ORDER BY id")


def grouped(db, case_id: int) -> list[str]:
    return [r.reference for r in rows(db, "SELECT t.reference FROM case_transactions ct JOIN transactions t "
                                          "ON t.id = ct.transaction_id WHERE ct.case_id = :c ORDER BY t.id", c=case_id)]


def test_off_a_rule_flag_on_an_account_with_an_open_case_opens_its_own(client, agent_headers, db, large_payments):
    client.post("/transactions", json=tx_payload("g-1", amount="5000.00"), headers=agent_headers)
    client.post("/transactions", json=tx_payload("g-2", amount="6000.00"), headers=agent_headers)

    assert len(open_cases(db)) == 2


def test_on_a_rule_flag_joins_the_open_case_and_its_hit_names_that_case(client, admin_headers, agent_headers, db,
                                                                         large_payments):
    set_setting(db, "group_flags_by_account", True)
    client.post("/transactions", json=tx_payload("g-1", amount="5000.00"), headers=agent_headers)
    publish_rule(client, admin_headers, "Very large payment", "tx.amount > 8000", risk=90)

    created = client.post("/transactions", json=tx_payload("g-2", amount="9000.00"), headers=agent_headers)

    assert created.json()["review_status"] == "flagged"
    [case] = open_cases(db)
    assert case.risk == 90 and "rule Very large payment (v1)" in case.reason  # the joining flag's higher risk
    assert grouped(db, case.id) == ["g-2"]
    assert {h.case_id for h in hits(db, "g-2")} == {case.id}
    assert events(db, "case.flag_grouped", case.id)[0].after == {"transaction": "g-2", "risk": 90}
    assert review_status(db, "g-2") == "flagged"
    other = client.post("/transactions", json=tx_payload("g-3", amount="5000.00", account_id="acct_9"),
                        headers=agent_headers)
    assert other.json()["review_status"] == "flagged" and len(open_cases(db)) == 2  # another account: its own


def test_on_flags_of_one_account_in_a_batch_share_one_case(client, agent_headers, db, large_payments):
    set_setting(db, "group_flags_by_account", True)
    batch = client.post("/transactions/batch", headers=agent_headers, json={"items": [
        tx_payload("b-1", amount="2000.00"), tx_payload("b-2", amount="3000.00"), tx_payload("b-3", amount="10.00"),
        tx_payload("c-1", amount="4000.00", account_id="acct_c"),
    ]})

    assert batch.status_code == 200, batch.text
    statuses = {i["reference"]: i["transaction"]["review_status"] for i in batch.json()["items"]}
    assert statuses == {"b-1": "flagged", "b-2": "flagged", "b-3": "clear", "c-1": "flagged"}
    cases = open_cases(db)
    assert [c.account_id for c in cases] == ["acct_1", "acct_c"]
    assert grouped(db, cases[0].id) == ["b-2"]
    assert review_status(db, "b-3") == "clear"


def test_on_creates_racing_on_one_account_end_in_one_case(http, agent_headers, db, large_payments):
    set_setting(db, "group_flags_by_account", True)
    references = [f"race-{n}" for n in range(8)]

    responses = run_together([
        (lambda r=r: http.post("/transactions", json=tx_payload(r, amount="5000.00", account_id="acct_race"),
                               headers=agent_headers))
        for r in references
    ])

    assert_no_server_errors(responses)
    assert [r.status_code for r in responses] == [200] * 8
    assert case_count(db, kind="risk") == 1
    [case] = open_cases(db)
    assert len(grouped(db, case.id)) == 7
    assert {review_status(db, r) for r in references} == {"flagged"}
