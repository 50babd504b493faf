"""`currency` is optional and defaults to "USD" (SPEC.md, Transactions API): the seed's clients send none."""

from decimal import Decimal

from sqlalchemy import select

from app.transactions.models import Transaction
from tests.conftest import tx_payload
from tests.transactions.conftest import assert_rejected, transaction_count


def without_currency(reference: str = "ref-1", **overrides) -> dict:
    payload = tx_payload(reference, **overrides)
    del payload["currency"]
    return payload


def test_a_create_without_currency_is_a_usd_transaction(client, agent_headers, db):
    response = client.post("/transactions", json=without_currency(amount="1250.5"), headers=agent_headers)

    assert response.status_code == 200, response.text
    assert response.json()["currency"] == "USD"
    assert response.json()["amount"] == "1250.50"
    stored = db.execute(select(Transaction.currency, Transaction.amount)).one()
    assert tuple(stored) == ("USD", Decimal("1250.50"))


def test_the_default_currency_still_checks_the_minor_units(client, agent_headers, db):
    response = client.post("/transactions", json=without_currency(amount="10.123"), headers=agent_headers)
    assert_rejected(response, "amount")
    assert transaction_count(db) == 0


def test_an_omitted_currency_replays_an_explicit_usd(client, agent_headers, db):
    first = client.post("/transactions", json=tx_payload(currency="USD"), headers=agent_headers)
    replay = client.post("/transactions", json=without_currency(), headers=agent_headers)

    assert replay.status_code == 200, replay.text
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    assert transaction_count(db) == 1


def test_an_omitted_currency_conflicts_with_another_currency(client, agent_headers, db):
    client.post("/transactions", json=tx_payload(currency="EUR"), headers=agent_headers)
    response = client.post("/transactions", json=without_currency(), headers=agent_headers)
    assert response.status_code == 409
    assert response.json()["detail"]["differing_fields"] == ["currency"]


def test_an_explicit_null_currency_is_still_422(client, agent_headers, db):
    response = client.post("/transactions", json=tx_payload(currency=None), headers=agent_headers)
    assert_rejected(response, "currency")
    assert transaction_count(db) == 0


def test_batch_items_without_currency_are_usd(client, agent_headers, db):
    items = [without_currency("b-1"), tx_payload("b-2", currency="JPY", amount="500"),
             without_currency("b-3", amount="0.001")]
    response = client.post("/transactions/batch", json={"items": items}, headers=agent_headers)

    assert response.status_code == 200, response.text
    results = response.json()["items"]
    assert [r["status_code"] for r in results] == [200, 200, 422]
    assert results[0]["transaction"]["currency"] == "USD"
    assert results[1]["transaction"]["currency"] == "JPY"
    assert "amount" in str(results[2]["error"])
    stored = dict(db.execute(select(Transaction.reference, Transaction.currency)).all())
    assert stored == {"b-1": "USD", "b-2": "JPY"}


def test_the_openapi_schema_shows_currency_as_optional_with_its_default(client):
    schema = client.get("/openapi.json").json()["components"]["schemas"]["TransactionCreate"]
    assert "currency" not in schema.get("required", [])
    assert schema["properties"]["currency"]["default"] == "USD"
