"""Review-workflow helpers: transactions with scores, cases, claims and decisions via the API.

`desk` drives the JSON API the way the internal tools do; the module-level functions
arrange state the API cannot (settings rows, amount rules, an expired lease) and read
back what was stored, always with fresh queries so nothing comes from a stale session.
"""

import json
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from app.audit.models import AuditEvent
from tests.conftest import tx_payload


@dataclass(frozen=True)
class Reviewer:
    """A user who can act on the API: their name (it appears in messages) and bearer headers."""

    name: str
    headers: dict[str, str]


class Desk:
    """The review workflow through the API: each helper asserts the call it wraps succeeded."""

    def __init__(self, client, agent_headers: dict[str, str]):
        self.client = client
        self.agent = agent_headers

    # --- transactions and scores ----------------------------------------------------------

    def transaction(self, reference: str, amount: str = "125.50", currency: str = "USD",
                    account_id: str = "acct_1") -> dict:
        response = self.client.post(
            "/transactions", json=tx_payload(reference, amount=amount, currency=currency, account_id=account_id),
            headers=self.agent,
        )
        assert response.status_code == 200, response.text
        return response.json()

    def post_score(self, reference: str, score: Any = 80, *, headers: dict[str, str] | None = None,
                   **fields) -> httpx.Response:
        body = {"score": score, "model": "fraud-gbm", "model_version": "2026.11",
                "reasons": [{"code": "velocity", "description": "9 payments in 10 minutes", "weight": "0.41"}]}
        body.update(fields)
        return self.client.post(f"/transactions/{reference}/risk-scores", json=body,
                                headers=self.agent if headers is None else headers)

    def score(self, reference: str, score: int = 80, **fields) -> dict:
        response = self.post_score(reference, score, **fields)
        assert response.status_code == 201, response.text
        return response.json()

    def flagged_case(self, reference: str, score: int = 80, amount: str = "125.50", currency: str = "USD",
                     account_id: str = "acct_1") -> int:
        """A new transaction with a flagging score; the id of the case it opened."""
        self.transaction(reference, amount=amount, currency=currency, account_id=account_id)
        body = self.score(reference, score)
        assert body["flagged"] is True and body["case_id"] is not None, body
        return body["case_id"]

    def get_transaction(self, reference: str) -> dict:
        response = self.client.get(f"/transactions/{reference}", headers=self.agent)
        assert response.status_code == 200, response.text
        return response.json()

    def settle(self, reference: str, status: str = "settled") -> httpx.Response:
        return self.client.post(f"/transactions/{reference}/settlement", json={"status": status}, headers=self.agent)

    # --- cases ------------------------------------------------------------------------------

    def detail(self, case_id: int, who: Reviewer) -> dict:
        response = self.client.get(f"/api/cases/{case_id}", headers=who.headers)
        assert response.status_code == 200, response.text
        return response.json()

    def case(self, case_id: int, who: Reviewer) -> dict:
        return self.detail(case_id, who)["case"]

    def queue(self, who: Reviewer, **params) -> httpx.Response:
        return self.client.get("/api/cases", params=params, headers=who.headers)

    def queue_ids(self, who: Reviewer, **params) -> list[int]:
        response = self.queue(who, **params)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    def counts(self, who: Reviewer) -> dict:
        response = self.client.get("/api/cases/counts", headers=who.headers)
        assert response.status_code == 200, response.text
        return response.json()

    def next(self, who: Reviewer) -> httpx.Response:
        return self.client.post("/api/cases/next", headers=who.headers)

    def claim(self, case_id: int, who: Reviewer) -> httpx.Response:
        return self.client.post(f"/api/cases/{case_id}/claim", headers=who.headers)

    def release(self, case_id: int, who: Reviewer) -> httpx.Response:
        return self.client.post(f"/api/cases/{case_id}/release", headers=who.headers)

    def decide(self, case_id: int, who: Reviewer, decision: str = "approve", reason_code: str = "false_positive",
               note: str | None = None, **extra) -> httpx.Response:
        body: dict[str, Any] = {"decision": decision, "reason_code": reason_code, **extra}
        if note is not None:
            body["note"] = note
        return self.client.post(f"/api/cases/{case_id}/decision", json=body, headers=who.headers)


@pytest.fixture
def desk(client, agent_headers) -> Desk:
    return Desk(client, agent_headers)


def reviewer(users, role: str, name: str) -> Reviewer:
    return Reviewer(name, users.headers(role, name))


@pytest.fixture
def alice(users) -> Reviewer:
    return reviewer(users, "analyst", "alice")


@pytest.fixture
def bob(users) -> Reviewer:
    return reviewer(users, "analyst", "bob")


@pytest.fixture
def root(users) -> Reviewer:
    return reviewer(users, "admin", "root")


@pytest.fixture
def agent_reviewer(agent_headers) -> Reviewer:
    return Reviewer("agent", agent_headers)


# --- arranging and reading the database directly ---------------------------------------------

def reconciliation_case(db, risk: int = 50, amount: str = "10.00", currency: str = "USD") -> int:
    """A case with no transaction, as a reconciliation run opens them."""
    case_id = db.execute(
        text("INSERT INTO review_cases (kind, risk, reason, amount, currency)"
             " VALUES ('reconciliation', :risk, 'amount_mismatch', :amount, :currency) RETURNING id"),
        {"risk": risk, "amount": amount, "currency": currency},
    ).scalar_one()
    db.commit()
    return case_id


def set_setting(db, key: str, value: Any) -> None:
    db.execute(
        text("INSERT INTO settings (key, value) VALUES (:key, CAST(:value AS jsonb))"
             " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"),
        {"key": key, "value": json.dumps(value)},
    )
    db.commit()


def add_amount_rule(db, currency: str, threshold: str) -> None:
    db.execute(text("INSERT INTO amount_rules (currency, threshold) VALUES (:c, :t)"), {"c": currency, "t": threshold})
    db.commit()


def expire_lease(db, case_id: int) -> None:
    """Move the case's claim lease into the past, as if its holder walked away."""
    db.execute(
        text("UPDATE review_cases SET lease_expires_at = now() - interval '1 minute' WHERE id = :id"), {"id": case_id}
    )
    db.commit()


def case_row(db, case_id: int) -> dict:
    db.commit()  # end any earlier snapshot so we read what the API committed
    return dict(db.execute(text("SELECT * FROM review_cases WHERE id = :id"), {"id": case_id}).mappings().one())


def case_count(db, **where) -> int:
    db.commit()
    clause = " AND ".join(f"{column} = :{column}" for column in where) or "true"
    return db.execute(text(f"SELECT count(*) FROM review_cases WHERE {clause}"), where).scalar_one()


def review_status(db, reference: str) -> str:
    db.commit()
    return db.execute(
        text("SELECT review_status FROM transactions WHERE reference = :r"), {"r": reference}
    ).scalar_one()


def events(db, action: str | None = None, entity_id: str | int | None = None,
           entity_type: str | None = None) -> list[AuditEvent]:
    """Audit events matching every given filter, oldest first."""
    db.expire_all()
    statement = select(AuditEvent).order_by(AuditEvent.id)
    if action is not None:
        statement = statement.where(AuditEvent.action == action)
    if entity_id is not None:
        statement = statement.where(AuditEvent.entity_id == str(entity_id))
    if entity_type is not None:
        statement = statement.where(AuditEvent.entity_type == entity_type)
    return list(db.scalars(statement))


def event_count(db) -> int:
    db.commit()
    return db.scalar(select(func.count()).select_from(AuditEvent))


def assert_conflict(response, *fragments: str) -> None:
    """A 409 whose message contains every fragment."""
    assert response.status_code == 409, response.text
    detail = response.json()["detail"]
    for fragment in fragments:
        assert fragment in detail, detail
