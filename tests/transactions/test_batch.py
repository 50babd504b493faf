"""POST /transactions/batch: up to 1,000 items, each by the single-create rules, results in order."""

import json
from decimal import Decimal

import pytest
from sqlalchemy import select

from app.transactions.models import Transaction
from app.transactions.schemas import BatchResponse
from tests.conftest import tx_payload
from tests.transactions.conftest import assert_rejected, audit_count, created_events_per_reference, transaction_count


@pytest.fixture
def batch(client, agent_headers):
    def post(items: list, headers: dict[str, str] | None = None):
        return client.post("/transactions/batch", json={"items": items}, headers=headers or agent_headers)

    return post


def test_thousand_items_are_created_with_results_in_order(batch, db):
    items = [tx_payload(f"ref-{n:04d}", amount=f"{n + 1}.25") for n in range(1000)]
    response = batch(items)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [r["reference"] for r in body["items"]] == [f"ref-{n:04d}" for n in range(1000)]
    assert [r["index"] for r in body["items"]] == list(range(1000))
    assert all(r["status_code"] == 200 and r["error"] is None for r in body["items"])
    assert [r["transaction"]["amount"] for r in body["items"][:3]] == ["1.25", "2.25", "3.25"]
    assert (body["created"], body["replayed"], body["failed"]) == (1000, 0, 0)
    assert transaction_count(db) == 1000
    assert db.scalar(select(Transaction.amount).where(Transaction.reference == "ref-0999")) == Decimal("1000.25")
    events = created_events_per_reference(db)
    assert len(events) == 1000 and set(events.values()) == {1}


def test_thousand_and_one_items_is_422_naming_items_and_stores_nothing(batch, db):
    response = batch([tx_payload(f"ref-{n}") for n in range(1001)])
    assert_rejected(response, "items")
    assert transaction_count(db) == 0
    assert audit_count(db) == 1  # only the agent's user.created


@pytest.mark.parametrize("body", [{"items": []}, {}, {"items": "nope"}, {"items": None}])
def test_batch_without_a_list_of_items_is_422_naming_items(client, agent_headers, db, body):
    assert_rejected(client.post("/transactions/batch", json=body, headers=agent_headers), "items")
    assert transaction_count(db) == 0


def test_batch_with_an_unknown_top_level_field_is_422_naming_it(client, agent_headers, db):
    response = client.post(
        "/transactions/batch", json={"items": [tx_payload()], "atomic": True}, headers=agent_headers
    )
    assert_rejected(response, "atomic")
    assert transaction_count(db) == 0


def test_mixed_batch_reports_each_item_by_its_own_rules(client, agent_headers, batch, db):
    client.post("/transactions", json=tx_payload("existing-same", amount="10.00"), headers=agent_headers)
    client.post("/transactions", json=tx_payload("existing-other", amount="10.00"), headers=agent_headers)
    items = [
        tx_payload("new-1", amount="1.00"),  # 0 created
        tx_payload("bad-amount", amount="10.005"),  # 1 invalid amount
        tx_payload("existing-same", amount="10"),  # 2 replay of an existing row
        tx_payload("existing-other", amount="99.00"),  # 3 conflicts with an existing row
        tx_payload("dup", amount="5.00"),  # 4 created
        tx_payload("dup", amount="5.0"),  # 5 identical in-batch duplicate → replay
        tx_payload("dup", amount="6.00"),  # 6 different in-batch duplicate → conflict
        {"reference": "missing-fields"},  # 7 invalid: missing fields
        tx_payload("bad-currency", currency="XYZ", surprise=1),  # 8 invalid currency and unknown field
        "not an object",  # 9 invalid, no reference to name
        tx_payload("new-2", currency="JPY", amount=500),  # 10 created
    ]
    response = batch(items)
    assert response.status_code == 200, response.text
    results = response.json()["items"]
    assert [(r["index"], r["reference"], r["status_code"]) for r in results] == [
        (0, "new-1", 200),
        (1, "bad-amount", 422),
        (2, "existing-same", 200),
        (3, "existing-other", 409),
        (4, "dup", 200),
        (5, "dup", 200),
        (6, "dup", 409),
        (7, "missing-fields", 422),
        (8, "bad-currency", 422),
        (9, None, 422),
        (10, "new-2", 200),
    ]
    assert [r["replayed"] for r in results] == [
        False, False, True, False, False, True, False, False, False, False, False,
    ]

    def fields(result):
        return {error["field"] for error in result["error"]["detail"]}

    assert fields(results[1]) == {"amount"}
    assert fields(results[7]) == {"account_id", "amount"}  # currency is optional (USD)
    assert fields(results[8]) == {"currency", "surprise"}
    assert results[3]["error"]["detail"]["differing_fields"] == ["amount"]
    assert results[6]["error"]["detail"]["differing_fields"] == ["amount"]
    assert results[2]["transaction"]["amount"] == "10.00"
    assert results[5]["transaction"] == results[4]["transaction"]
    assert results[10]["transaction"]["amount"] == "500"
    for failed in (1, 3, 6, 7, 8, 9):
        assert results[failed]["transaction"] is None
    body = response.json()
    assert (body["created"], body["replayed"], body["failed"]) == (3, 2, 6)

    stored = dict(db.execute(select(Transaction.reference, Transaction.amount)).all())
    assert stored == {
        "existing-same": Decimal("10.00"),
        "existing-other": Decimal("10.00"),
        "new-1": Decimal("1.00"),
        "dup": Decimal("5.00"),
        "new-2": Decimal("500"),
    }
    assert created_events_per_reference(db) == dict.fromkeys(stored, 1)
    # Built as plain data (app/uow/routing.py Shaped): byte for byte what the declared model writes.
    assert response.content == BatchResponse.model_validate_json(response.content).model_dump_json().encode()


def test_a_batch_item_is_the_same_transaction_a_get_returns(client, agent_headers, batch):
    item = tx_payload("same-shape", amount="12.5", currency="KWD", metadata={"ratio": 0.1, "big": 12345678901234567890})
    created = batch([item]).json()["items"][0]["transaction"]
    fetched = client.get("/transactions/same-shape", headers=agent_headers).json()
    assert created == fetched
    assert created["amount"] == "12.500" and created["metadata"] == {"ratio": 0.1, "big": 12345678901234567890}


def test_replaying_a_whole_batch_creates_nothing_more(batch, db):
    items = [tx_payload(f"ref-{n}") for n in range(20)]
    first = batch(items).json()
    again = batch(items).json()
    assert (again["created"], again["replayed"], again["failed"]) == (0, 20, 0)
    assert [r["transaction"] for r in again["items"]] == [r["transaction"] for r in first["items"]]
    assert transaction_count(db) == 20
    assert set(created_events_per_reference(db).values()) == {1}


def test_batch_and_single_create_replay_each_other(client, agent_headers, batch):
    batch([tx_payload("ref-1")])
    single = client.post("/transactions", json=tx_payload("ref-1"), headers=agent_headers)
    assert single.status_code == 200
    assert single.headers["Idempotent-Replayed"] == "true"


def test_batch_where_every_item_is_invalid_stores_nothing(batch, db):
    response = batch([tx_payload(f"ref-{n}", amount="-1") for n in range(5)])
    assert response.status_code == 200
    assert {r["status_code"] for r in response.json()["items"]} == {422}
    assert transaction_count(db) == 0
    assert audit_count(db, action="transaction.created") == 0


def test_batch_items_get_the_same_bad_input_rules(post_raw, db):
    items = [
        tx_payload("nul", description="a\x00b"),
        tx_payload("r" * 129),
        tx_payload("meta", metadata={"blob": "x" * 16 * 1024}),
        tx_payload("surrogate", counterparty="\ud800"),
    ]
    # json.dumps escapes the lone surrogate as \ud800, which only a raw body can carry.
    response = post_raw(json.dumps({"items": items}), path="/transactions/batch")
    assert response.status_code == 200, response.text
    assert [r["status_code"] for r in response.json()["items"]] == [422, 422, 422, 422]
    assert [r["error"]["detail"][0]["field"] for r in response.json()["items"]] == [
        "description", "reference", "metadata", "counterparty",
    ]
    assert transaction_count(db) == 0


def test_analyst_cannot_post_a_batch(batch, analyst_headers, db):
    assert batch([tx_payload()], headers=analyst_headers).status_code == 403
    assert transaction_count(db) == 0
