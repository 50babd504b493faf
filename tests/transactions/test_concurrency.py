"""Concurrency against a real uvicorn with real threads: the database decides every race.

Each worker waits on a barrier so the requests leave together; nothing here measures time.
"""

import random
from collections import Counter
from collections.abc import Callable
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import func, select, update

from app.audit import chain
from app.audit.models import AuditEvent
from app.transactions.models import Transaction
from app.users.models import User
from tests.conftest import assert_no_server_errors, run_together, tx_payload
from tests.transactions.conftest import audit_count, created_events_per_reference, transaction_count

WORKERS = 50


@pytest.fixture
def agent(users, live_server) -> dict[str, str]:
    return users.headers("agent")


def test_concurrent_identical_posts_create_exactly_one_row(http, agent, db):
    payload = tx_payload("race-1", amount="42.00", metadata={"channel": "card"})
    responses = run_together([lambda: http.post("/transactions", json=payload, headers=agent)] * WORKERS)

    assert_no_server_errors(responses)
    assert [r.status_code for r in responses] == [200] * WORKERS
    originals = [r for r in responses if "Idempotent-Replayed" not in r.headers]
    assert len(originals) == 1
    assert all(r.headers["Idempotent-Replayed"] == "true" for r in responses if r is not originals[0])
    assert all(r.json() == originals[0].json() for r in responses)
    assert transaction_count(db) == 1
    assert audit_count(db, action="transaction.created", entity_id="race-1") == 1


def test_concurrent_posts_with_different_payloads_keep_one_row_and_replay_or_conflict(http, agent, db):
    amounts = [f"{(n % 5) + 1}.00" for n in range(WORKERS)]
    calls = [
        (lambda amount=amount: http.post("/transactions", json=tx_payload("race-2", amount=amount), headers=agent))
        for amount in amounts
    ]
    responses = run_together(calls)

    assert_no_server_errors(responses)
    assert transaction_count(db) == 1
    assert audit_count(db, action="transaction.created", entity_id="race-2") == 1
    winner = db.scalar(select(Transaction.amount).where(Transaction.reference == "race-2"))
    originals = [r for r in responses if r.status_code == 200 and "Idempotent-Replayed" not in r.headers]
    assert len(originals) == 1
    for amount, response in zip(amounts, responses, strict=True):
        if Decimal(amount) == winner:
            assert response.status_code == 200, response.text
            assert Decimal(response.json()["amount"]) == winner
        else:
            assert response.status_code == 409, response.text
            assert response.json()["detail"]["differing_fields"] == ["amount"]


def test_concurrent_batches_with_overlapping_references_create_each_reference_once(http, agent, db):
    references = [f"ref-{n:03d}" for n in range(120)]
    shuffler = random.Random(20261124)  # fixed seed: the same orders every run
    batches = []
    for _ in range(12):
        chosen = shuffler.sample(references, 80)  # overlapping subsets in different orders
        batches.append([tx_payload(reference, amount="10.00") for reference in chosen])
    calls = [
        (lambda items=items: http.post("/transactions/batch", json={"items": items}, headers=agent))
        for items in batches
    ]
    responses = run_together(calls)

    assert_no_server_errors(responses)
    assert [r.status_code for r in responses] == [200] * len(batches)
    for items, response in zip(batches, responses, strict=True):
        results = response.json()["items"]
        assert [r["reference"] for r in results] == [item["reference"] for item in items]
        assert {r["status_code"] for r in results} == {200}
    attempted = {item["reference"] for items in batches for item in items}
    created_flags = Counter(
        r["reference"] for response in responses for r in response.json()["items"] if not r["replayed"]
    )
    assert set(created_flags) == attempted
    assert set(created_flags.values()) == {1}
    assert transaction_count(db) == len(attempted)
    assert created_events_per_reference(db) == dict.fromkeys(attempted, 1)


def test_concurrent_singles_and_batches_on_the_same_references_agree(http, agent, db):
    references = [f"mix-{n:02d}" for n in range(30)]
    batch_items = [tx_payload(reference) for reference in reversed(references)]
    calls: list[Callable[..., httpx.Response]]
    calls = [lambda: http.post("/transactions/batch", json={"items": batch_items}, headers=agent)] * 4
    calls += [
        (lambda reference=reference: http.post("/transactions", json=tx_payload(reference), headers=agent))
        for reference in references
    ]
    responses = run_together(calls)

    assert_no_server_errors(responses)
    assert {r.status_code for r in responses} == {200}
    assert transaction_count(db) == len(references)
    assert created_events_per_reference(db) == dict.fromkeys(references, 1)


def test_concurrent_settlements_record_exactly_one_outcome(http, agent, db):
    assert http.post("/transactions", json=tx_payload("settle-race"), headers=agent).status_code == 200
    outcomes = ["settled" if n % 2 else "failed" for n in range(30)]
    calls = [
        (lambda outcome=outcome: http.post(
            "/transactions/settle-race/settlement", json={"status": outcome}, headers=agent
        ))
        for outcome in outcomes
    ]
    responses = run_together(calls)

    assert_no_server_errors(responses)
    final = db.scalar(select(Transaction.status).where(Transaction.reference == "settle-race"))
    assert final in ("settled", "failed")
    for outcome, response in zip(outcomes, responses, strict=True):
        assert response.status_code == (200 if outcome == final else 409), response.text
    events = db.scalar(
        select(func.count()).select_from(AuditEvent).where(
            AuditEvent.entity_id == "settle-race", AuditEvent.action.in_(["transaction.settled", "transaction.failed"])
        )
    )
    assert events == 1


def test_audit_chain_stays_valid_after_concurrent_writes(http, agent, db):
    calls = [
        (lambda n=n: http.post("/transactions", json=tx_payload(f"chain-{n % 10}"), headers=agent))
        for n in range(WORKERS)
    ]
    assert_no_server_errors(run_together(calls))
    status = chain.verify(db.connection())
    assert status.ok, status
    assert audit_count(db, action="transaction.created") == 10


def test_concurrent_posts_of_several_callers_each_get_their_own_answer_row_and_event(http, users, db, live_server):
    """Concurrent creates may share a database transaction (app/transactions/group.py): a
    disabled caller among them is refused alone, and every write keeps its own caller and request id."""
    agents = [users.create("agent") for _ in range(3)]
    headers = [{"Authorization": f"Bearer {users.token_for(agent)}"} for agent in agents]
    db.execute(update(User).where(User.id == agents[2].id).values(is_active=False))
    db.commit()
    calls = [
        (lambda n=n: http.post("/transactions", json=tx_payload(f"many-{n}"),
                               headers={**headers[n % 3], "X-Request-ID": f"req-many-{n}"}))
        for n in range(45)
    ]
    responses = run_together(calls)

    assert_no_server_errors(responses)
    assert [r.status_code for r in responses] == [401 if n % 3 == 2 else 200 for n in range(45)]
    db.expire_all()
    stored = dict(db.execute(select(Transaction.reference, Transaction.created_by)).all())
    assert stored == {f"many-{n}": agents[n % 3].id for n in range(45) if n % 3 != 2}
    events = db.execute(select(AuditEvent.entity_id, AuditEvent.actor_id, AuditEvent.request_id)
                        .where(AuditEvent.action == "transaction.created")).all()
    assert sorted(events) == sorted((f"many-{n}", agents[n % 3].id, f"req-many-{n}")
                                    for n in range(45) if n % 3 != 2)
    assert chain.verify(db.connection()).ok
