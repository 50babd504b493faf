"""Reconciliation fixtures: a ledger arranged through the API, bank events posted to it."""

import pytest
from sqlalchemy import text

from tests.cases.conftest import desk  # noqa: F401  (the review workflow helpers)
from tests.web.conftest import form_csrf, meta_csrf, sign_in, submit_login  # noqa: F401

BOOKED_AT = "2026-11-24T10:15:00Z"


def bank_event(bank_reference: str, reference: str, amount: str | int = "125.50", currency: str = "USD",
               status: str = "booked", booked_at: str = BOOKED_AT) -> dict:
    return {"bank_reference": bank_reference, "reference": reference, "amount": amount, "currency": currency,
            "status": status, "booked_at": booked_at}


def post_events(client, headers, *events) -> dict:
    response = client.post("/reconciliation/bank-events", json={"events": list(events)}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def count(db, table: str, where: str = "true") -> int:
    db.commit()
    return db.execute(text(f"SELECT count(*) FROM {table} WHERE {where}")).scalar_one()


@pytest.fixture
def ledger(desk):
    """Three settled transactions and one pending, created and settled through the API."""
    for reference, amount, currency in [("tx-1", "125.50", "USD"), ("tx-2", "99.00", "EUR"), ("tx-3", "500", "JPY")]:
        desk.transaction(reference, amount=amount, currency=currency)
        assert desk.settle(reference).status_code == 200
    desk.transaction("tx-pending", amount="10.00")
    return desk
