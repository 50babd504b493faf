"""POST /reconciliation/bank-events on real data sets: matches, every mismatch kind, idempotency, bad input."""

from sqlalchemy import text

from tests.cases.conftest import case_row, events
from tests.reconciliation.conftest import bank_event, count, post_events


def test_matching_events_are_matched_and_open_no_case(client, agent_headers, ledger, db):
    body = post_events(client, agent_headers,
                       bank_event("B-1", "tx-1", "125.50", "USD"), bank_event("B-2", "tx-2", "99.00", "EUR"),
                       bank_event("B-3", "tx-3", "500", "JPY"),
                       bank_event("B-4", "tx-pending", "10.00", status="pending"))
    assert body["matched"] == 4 and body["mismatches"] == [] and body["replayed"] == 0
    assert count(db, "review_cases", "kind = 'reconciliation'") == 0
    run = client.get(f"/api/reconciliation/runs/{body['run_id']}", headers=agent_headers).json()
    assert (run["status"], run["total_rows"], run["matched"], run["mismatched"]) == ("completed", 4, 4, 0)


# How each kind's case reason begins (app/reconciliation/matching.py, _explain).
WORDED = {
    "missing_in_ledger": "The bank has 1.00 USD booked for tx-nowhere, but the ledger has no such payment",
    "amount_mismatch": "Amounts differ: the bank has 125.51 USD booked, the ledger 125.50 USD",
    "currency_mismatch": "Currencies differ: the bank has 99.00 USD booked, the ledger",
    "status_mismatch": "Statuses differ: the bank has 500 JPY returned, the ledger 500 JPY",
    "duplicate_bank_event": "The bank sent the same payment twice: 10.00 USD pending",
}


def test_each_mismatch_kind_opens_a_reconciliation_case(client, agent_headers, ledger, db):
    body = post_events(
        client, agent_headers,
        bank_event("B-missing", "tx-nowhere", "1.00"),
        bank_event("B-amount", "tx-1", "125.51"),
        bank_event("B-currency", "tx-2", "99.00", "USD"),
        bank_event("B-status", "tx-3", "500", "JPY", status="returned"),
        bank_event("B-double", "tx-pending", "10.00", status="pending"),
        bank_event("B-double-2", "tx-pending", "10.00", status="pending"),
    )
    kinds = {m["bank_reference"]: m["kind"] for m in body["mismatches"]}
    assert kinds == {"B-missing": "missing_in_ledger", "B-amount": "amount_mismatch", "B-currency": "currency_mismatch",
                     "B-status": "status_mismatch", "B-double-2": "duplicate_bank_event"}
    assert body["matched"] == 1
    for mismatch in body["mismatches"]:
        row = case_row(db, mismatch["case_id"])
        assert row["kind"] == "reconciliation" and row["state"] == "open"
        assert row["reason"].startswith(WORDED[mismatch["kind"]]), row["reason"]
        assert mismatch["kind"] not in row["reason"]  # words for people, not the code name
        assert f"bank reference {mismatch['bank_reference']}" in row["reason"]
        assert events(db, action="case.opened", entity_id=mismatch["case_id"])
    missing = next(m for m in body["mismatches"] if m["kind"] == "missing_in_ledger")
    assert case_row(db, missing["case_id"])["transaction_id"] is None
    linked = db.execute(text("SELECT bank_reference, case_id FROM bank_events WHERE case_id IS NOT NULL")).all()
    expected = {m["bank_reference"]: m["case_id"] for m in body["mismatches"]}
    assert {r.bank_reference: r.case_id for r in linked} == expected
    # Analysts see them in the same queue.
    analyst = client.get("/api/cases", params={"kind": "reconciliation"}, headers=ledger.agent)
    assert analyst.status_code == 403


def test_analysts_see_reconciliation_cases_in_the_queue(client, agent_headers, analyst_headers, ledger):
    body = post_events(client, agent_headers, bank_event("B-missing", "tx-nowhere", "1.00"))
    queue = client.get("/api/cases", params={"kind": "reconciliation"}, headers=analyst_headers).json()
    assert [item["id"] for item in queue["items"]] == [body["mismatches"][0]["case_id"]]


def test_one_undecided_case_per_transaction_is_reused(client, agent_headers, ledger, db):
    first = post_events(client, agent_headers, bank_event("B-a", "tx-1", "1.00"))
    second = post_events(client, agent_headers, bank_event("B-b", "tx-1", "2.00", currency="USD"))
    assert second["mismatches"][0]["kind"] == "duplicate_bank_event"
    assert second["mismatches"][0]["case_id"] == first["mismatches"][0]["case_id"]
    assert count(db, "review_cases", "kind = 'reconciliation'") == 1


def test_an_identical_resend_is_a_replay_that_stores_nothing(client, agent_headers, ledger, db):
    events_ = [bank_event("B-1", "tx-1"), bank_event("B-x", "tx-nowhere", "3.00")]
    first = post_events(client, agent_headers, *events_)
    before = (count(db, "bank_events"), count(db, "review_cases"))
    again = post_events(client, agent_headers, *events_)
    assert (again["matched"], again["mismatches"], again["replayed"]) == (0, [], 2)
    assert (count(db, "bank_events"), count(db, "review_cases")) == before
    assert first["run_id"] != again["run_id"]


def test_a_different_payload_under_a_known_bank_reference_is_a_duplicate(client, agent_headers, ledger, db):
    post_events(client, agent_headers, bank_event("B-1", "tx-1"))
    body = post_events(client, agent_headers, bank_event("B-1", "tx-1", "999.00"))
    assert [(m["bank_reference"], m["kind"]) for m in body["mismatches"]] == [("B-1", "duplicate_bank_event")]
    assert count(db, "bank_events", "bank_reference = 'B-1'") == 2
    assert count(db, "bank_events", "bank_reference = 'B-1' AND is_primary") == 1


def test_duplicates_inside_one_request(client, agent_headers, ledger):
    body = post_events(client, agent_headers, bank_event("B-1", "tx-1"), bank_event("B-1", "tx-1"),
                       bank_event("B-1", "tx-1", "1.00"))
    assert body["matched"] == 1 and body["replayed"] == 1
    assert [m["kind"] for m in body["mismatches"]] == ["duplicate_bank_event"]
    assert body["mismatches"][0]["line"] == 2


def test_bad_input_names_the_field_and_stores_nothing(client, agent_headers, ledger, db):
    before = (count(db, "bank_events"), count(db, "reconciliation_runs"), count(db, "review_cases"))
    cases = [
        ({"events": [bank_event("B-1", "tx-1"), bank_event("B-2", "tx-2", amount="1.001", currency="EUR")]},
         "events.1.amount"),
        ({"events": [bank_event("B-1", "tx-1", currency="XXX")]}, "events.0.currency"),
        ({"events": [bank_event("B-1", "tx-1", status="lost")]}, "events.0.status"),
        ({"events": [bank_event("B-1", "tx-1", booked_at="2026-11-24T10:15:00")]}, "events.0.booked_at"),
        ({"events": [bank_event("B-1", "tx-1", booked_at="0001-01-01T00:00:00+00:01")]}, "events.0.booked_at"),
        ({"events": [bank_event("B-1", "tx-1", booked_at="9999-12-31T23:59:00-01:00")]}, "events.0.booked_at"),
        ({"events": [{**bank_event("B-1", "tx-1"), "extra": 1}]}, "events.0.extra"),
        ({"events": [bank_event("", "tx-1")]}, "events.0.bank_reference"),
        ({"events": [bank_event("B-1", "tx-1", amount=-5)]}, "events.0.amount"),
        ({"events": []}, "events"),
    ]
    for body, field in cases:
        response = client.post("/reconciliation/bank-events", json=body, headers=agent_headers)
        assert response.status_code == 422, (field, response.text)
        assert field in [e["field"] for e in response.json()["detail"]], (field, response.text)
    float_amount = client.post("/reconciliation/bank-events", content=b'{"events": [{"bank_reference": "B", '
                               b'"reference": "tx-1", "amount": 1.5, "currency": "USD", "status": "booked", '
                               b'"booked_at": "2026-11-24T10:15:00Z"}]}',
                               headers={**agent_headers, "content-type": "application/json"})
    assert float_amount.status_code == 200  # a JSON number is parsed as an exact decimal
    db.execute(text("DELETE FROM bank_events")); db.execute(text("DELETE FROM review_cases"))  # noqa: E702
    db.execute(text("DELETE FROM reconciliation_runs")); db.commit()  # noqa: E702
    assert (count(db, "bank_events"), count(db, "reconciliation_runs"), count(db, "review_cases")) == before


def test_roles(client, users, ledger):
    body = {"events": [bank_event("B-1", "tx-1")]}
    assert client.post("/reconciliation/bank-events", json=body).status_code == 401
    assert client.post("/reconciliation/bank-events", json=body, headers=users.headers("analyst")).status_code == 403
    assert client.post("/reconciliation/bank-events", json=body, headers=users.headers("admin")).status_code == 200
    assert client.get("/api/reconciliation/runs", headers=users.headers("analyst")).status_code == 200


def test_a_mismatch_case_shows_bank_event_and_ledger_side_by_side(client, agent_headers, ledger, sign_in):
    body = post_events(client, agent_headers, bank_event("B-amount", "tx-1", "125.51"))
    sign_in("analyst")
    page = client.get(f"/cases/{body['mismatches'][0]['case_id']}")
    assert page.status_code == 200
    assert "Bank event and ledger" in page.text and "B-amount" in page.text
    assert "125.51 USD" in page.text and "125.50 USD" in page.text
