"""Fixtures and helpers shared by the transactions tests."""

from typing import Any

import pytest
from sqlalchemy import func, select

from app.audit.models import AuditEvent
from app.transactions.models import Transaction

JSON = {"content-type": "application/json"}


@pytest.fixture
def post_raw(client, agent_headers):
    """POST a raw JSON text (for literals json= cannot produce: 1e20, NaN, 0.1 exactly)."""

    def post(body: str | bytes, path: str = "/transactions", headers: dict[str, str] | None = None):
        return client.post(path, content=body, headers={**agent_headers, **JSON, **(headers or {})})

    return post


def transaction_count(db) -> int:
    return db.scalar(select(func.count()).select_from(Transaction))


def audit_count(db, action: str | None = None, entity_id: str | None = None) -> int:
    statement = select(func.count()).select_from(AuditEvent)
    if action is not None:
        statement = statement.where(AuditEvent.action == action)
    if entity_id is not None:
        statement = statement.where(AuditEvent.entity_id == entity_id)
    return db.scalar(statement)


def created_events_per_reference(db) -> dict[str, int]:
    """How many transaction.created events each reference has."""
    rows = db.execute(
        select(AuditEvent.entity_id, func.count())
        .where(AuditEvent.action == "transaction.created")
        .group_by(AuditEvent.entity_id)
    )
    return dict(rows.all())


def error_fields(response) -> list[Any]:
    """The `field` of every error in a 422 body."""
    return [error["field"] for error in response.json()["detail"]]


def assert_rejected(response, field: str | None, status_code: int = 422) -> None:
    """A client error whose body names `field` (None: a body-level error)."""
    assert response.status_code == status_code, response.text
    assert field in error_fields(response), response.text
