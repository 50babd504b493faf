"""The demo data `python -m app run` seeds on an empty database gives analysts a real queue."""

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from app import demo, demo_history
from app.audit import chain
from app.audit.models import AuditEvent
from app.audit.service import Actor
from app.cases.models import ReviewCase
from app.transactions.models import Transaction


def test_demo_seed_fills_an_empty_database_once_with_a_review_queue(db):
    assert demo.seed_if_empty(db) is True
    db.commit()
    assert demo.seed_if_empty(db) is False

    assert db.scalar(select(func.count()).select_from(Transaction)) == 240
    undecided = db.scalar(select(func.count()).where(
        ReviewCase.kind == "risk", ReviewCase.state.in_(["open", "in_review", "escalated"])))
    assert undecided > 20
    flagged = db.scalar(select(func.count()).where(Transaction.review_status == "flagged"))
    assert flagged == undecided
    # Analysts have worked the top of the queue: people, not only agents, appear in the history.
    decided = dict(db.execute(select(ReviewCase.state, func.count()).group_by(ReviewCase.state)).tuples().all())
    assert decided.get("rejected", 0) >= 1 and decided.get("escalated", 0) >= 1
    # Review gates settlement: no flagged transaction was settled by the seed.
    assert db.scalar(
        select(func.count()).where(Transaction.review_status == "flagged", Transaction.status == "settled")
    ) == 0
    assert chain.verify(db.connection()).ok


def test_demo_users_can_sign_in(client, db):
    demo.seed_if_empty(db)
    db.commit()
    for username, _, password in demo.DEMO_USERS:
        response = client.post("/auth/token", data={"username": username, "password": password})
        assert response.status_code == 200, username


def test_the_demo_reconciles_the_sample_bank_statement_and_opens_cases_for_its_mismatches(db):
    from app.reconciliation import service as reconciliation

    demo.seed_if_empty(db)
    db.commit()
    csv_run, api_run = sorted(reconciliation.list_runs(session=db), key=lambda run: run.id)
    assert (csv_run.status, csv_run.total_rows, csv_run.matched, csv_run.malformed) == ("completed", 10, 4, 1)
    assert reconciliation.mismatch_counts(session=db, run_id=csv_run.id) == {
        "amount_mismatch": 1, "currency_mismatch": 1, "status_mismatch": 1,
        "duplicate_bank_event": 1, "missing_in_ledger": 1,
    }
    assert [(e.line_no, e.field) for e in reconciliation.row_errors(session=db, run_id=csv_run.id)] == [(11, "amount")]
    assert (api_run.status, api_run.matched, api_run.mismatched) == ("completed", api_run.total_rows, 0)
    assert api_run.total_rows > 0
    cases = db.scalar(select(func.count()).where(ReviewCase.kind == "reconciliation"))
    assert cases >= 4
    assert csv_run.created_at < api_run.created_at


def test_demo_audit_events_carry_the_times_of_what_they_describe_and_the_chain_verifies(db, client):
    demo.seed_if_empty(db)
    db.commit()
    # A case's opening is recorded when the case says it opened; its decision when it was decided.
    decided = db.scalars(select(ReviewCase).where(ReviewCase.decided_at.is_not(None))).first()
    times = dict(db.execute(select(AuditEvent.action, AuditEvent.occurred_at).where(
        AuditEvent.entity_type == "case", AuditEvent.entity_id == str(decided.id))).tuples().all())
    assert times["case.opened"] == decided.opened_at
    assert times["case.claimed"] < times[f"case.{decided.state}"] == decided.decided_at
    tx = db.scalars(select(Transaction).where(Transaction.settled_at.is_not(None))).first()
    created = db.scalar(select(AuditEvent.occurred_at).where(
        AuditEvent.action == "transaction.created", AuditEvent.entity_id == tx.reference))
    assert created == tx.created_at
    # Fourteen days of history, in time order along the chain, which still verifies.
    oldest, newest = db.execute(select(func.min(AuditEvent.occurred_at), func.max(AuditEvent.occurred_at))).one()
    assert (newest - oldest).days >= demo_history.DAYS - 1
    ordered = db.scalars(select(AuditEvent.occurred_at).order_by(AuditEvent.id)).all()
    assert ordered == sorted(ordered)
    assert chain.verify(db.connection()).ok
    name, _, password = demo.DEMO_USERS[0]
    token = client.post("/auth/token", data={"username": name, "password": password}).json()["access_token"]
    response = client.get("/api/audit/verify", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200 and response.json()["ok"] is True


def test_an_event_time_is_the_servers_clock_unless_the_transaction_asks_for_given_times(db):
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import text

    from app.audit import service as audit

    system = Actor(name="test")
    past = datetime.now(UTC) - timedelta(days=3)
    audit.record(db, actor=system, action="test.event", entity_type="test", entity_id=1)
    db.unit.audit_events[-1]["occurred_at"] = past  # not asked for: ignored
    db.commit()
    assert db.scalar(select(AuditEvent.occurred_at)) > past + timedelta(days=2)
    # Asked for, a time before the newest event's would make times go backwards: the commit fails.
    audit.record(db, actor=system, action="test.event", entity_type="test", entity_id=2)
    audit.use_given_times(db, lambda event: past)
    with pytest.raises(DBAPIError):
        db.commit()
    db.rollback()
    assert db.scalar(select(func.count()).select_from(AuditEvent)) == 1
    assert chain.verify(db.connection()).ok
    db.execute(text("SELECT 1"))
