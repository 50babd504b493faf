"""Races between analysts, against a real uvicorn with real threads: the database decides.

Each worker waits on a barrier so the requests leave together; nothing here measures time.
"""

import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import text

from app.audit import chain
from app.db import database
from tests.cases.conftest import case_count, case_row, events, reviewer
from tests.conftest import assert_no_server_errors, run_together


@pytest.fixture
def open_cases(desk) -> list[int]:
    return [desk.flagged_case(f"q-{n:02d}", 70 + n % 5) for n in range(14)]


def held_by(db, username: str) -> list[int]:
    db.commit()
    return list(db.execute(
        text("SELECT c.id FROM review_cases c JOIN users u ON u.id = c.assignee_id"
             " WHERE u.username = :name AND c.lease_expires_at > now() ORDER BY c.id"),
        {"name": username},
    ).scalars())


AUDIT_CHAIN_LOCK = 7355608001  # the advisory lock the audit chain trigger takes (migration 0001)


def wait_for_lock_waiters(count: int, wait_event: str) -> None:
    """Block until `count` backends of this database wait on a lock of the given kind.

    The app's lock_timeout is 5 s, so callers must let go of their lock soon after this returns.
    """
    deadline = time.monotonic() + 4
    with database.engine.connect() as conn:
        while True:
            waiting = conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock' AND wait_event = :event"), {"event": wait_event}
            ).scalar_one()
            conn.rollback()  # pg_stat_activity is a per-transaction snapshot
            if waiting >= count:
                return
            assert time.monotonic() < deadline, f"only {waiting} of {count} requests reached the lock"
            time.sleep(0.02)


def test_twelve_analysts_calling_next_at_once_each_get_a_different_case(http, users, db, open_cases):
    analysts = [reviewer(users, "analyst", f"analyst{n:02d}") for n in range(12)]
    responses = run_together([(lambda a=a: http.post("/api/cases/next", headers=a.headers)) for a in analysts])

    assert_no_server_errors(responses)
    assert [r.status_code for r in responses] == [200] * 12, [r.text for r in responses]
    ids = [r.json()["id"] for r in responses]
    assert len(set(ids)) == 12
    assert set(ids) <= set(open_cases)
    for analyst, response in zip(analysts, responses, strict=True):
        assert response.json()["assignee"] == analyst.name
        assert held_by(db, analyst.name) == [response.json()["id"]]
    assert len(events(db, "case.claimed")) == 12
    # The twelve highest-ranked cases went out; the two left are the bottom of the queue.
    ranked = sorted(open_cases, key=lambda case_id: (-case_row(db, case_id)["risk"], case_id))
    assert set(ids) == set(ranked[:12])


def test_more_analysts_than_cases_share_them_out_and_the_rest_get_204(http, users, desk, db):
    cases = [desk.flagged_case(f"few-{n}", 80) for n in range(3)]
    analysts = [reviewer(users, "analyst", f"analyst{n:02d}") for n in range(8)]
    responses = run_together([(lambda a=a: http.post("/api/cases/next", headers=a.headers)) for a in analysts])

    assert_no_server_errors(responses)
    assert sorted(r.status_code for r in responses) == [200] * 3 + [204] * 5
    assert sorted(r.json()["id"] for r in responses if r.status_code == 200) == cases


def test_one_analysts_parallel_next_calls_all_return_the_one_case_they_hold(http, users, db, open_cases):
    alice = reviewer(users, "analyst", "alice")
    bob = reviewer(users, "analyst", "bob")
    calls = [(lambda who=who: http.post("/api/cases/next", headers=who.headers)) for who in [alice, bob] * 6]
    responses = run_together(calls)

    assert_no_server_errors(responses)
    assert [r.status_code for r in responses] == [200] * 12
    ids_by_analyst = defaultdict(set)
    for who, response in zip([alice, bob] * 6, responses, strict=True):
        ids_by_analyst[who.name].add(response.json()["id"])
    assert {name: len(ids) for name, ids in ids_by_analyst.items()} == {"alice": 1, "bob": 1}
    assert ids_by_analyst["alice"] != ids_by_analyst["bob"]
    assert len(held_by(db, "alice")) == 1
    assert len(held_by(db, "bob")) == 1


def test_next_called_twice_while_the_first_is_still_committing_returns_the_same_case(http, users, db, open_cases):
    alice = reviewer(users, "analyst", "alice")
    # Hold the audit chain lock, as any busy writer does for a moment: both requests claim
    # their row and then wait at their audit insert, so neither has committed its claim yet.
    with database.engine.connect() as blocker:
        blocker.execute(text("SELECT pg_advisory_lock(:key)"), {"key": AUDIT_CHAIN_LOCK})
        try:
            with ThreadPoolExecutor(max_workers=2) as pool:
                first = pool.submit(http.post, "/api/cases/next", headers=alice.headers)
                second = pool.submit(http.post, "/api/cases/next", headers=alice.headers)
                wait_for_lock_waiters(2, "advisory")
                blocker.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": AUDIT_CHAIN_LOCK})
                responses = [first.result(timeout=30), second.result(timeout=30)]
        finally:
            blocker.execute(text("SELECT pg_advisory_unlock_all()"))
            blocker.commit()

    assert [r.status_code for r in responses] == [200, 200]
    assert responses[0].json()["id"] == responses[1].json()["id"]
    assert len(held_by(db, "alice")) == 1


def test_parallel_next_calls_never_give_one_case_to_two_analysts(http, users, db, open_cases):
    # The part of the race above that holds today: whatever each analyst ends up holding,
    # no case has two holders and every response names the caller as the assignee.
    alice = reviewer(users, "analyst", "alice")
    bob = reviewer(users, "analyst", "bob")
    callers = [alice, bob] * 6
    responses = run_together([(lambda who=who: http.post("/api/cases/next", headers=who.headers)) for who in callers])

    assert_no_server_errors(responses)
    assert {r.status_code for r in responses} == {200}
    for who, response in zip(callers, responses, strict=True):
        assert response.json()["assignee"] == who.name
    alice_ids = {r.json()["id"] for who, r in zip(callers, responses) if who is alice}
    bob_ids = {r.json()["id"] for who, r in zip(callers, responses) if who is bob}
    assert alice_ids.isdisjoint(bob_ids)
    assert set(held_by(db, "alice")) == alice_ids
    assert set(held_by(db, "bob")) == bob_ids


def test_ten_analysts_claiming_one_case_at_once_one_wins_the_rest_are_told_who(http, users, desk, db):
    case_id = desk.flagged_case("contested", 90)
    analysts = [reviewer(users, "analyst", f"analyst{n:02d}") for n in range(10)]
    responses = run_together(
        [(lambda a=a: http.post(f"/api/cases/{case_id}/claim", headers=a.headers)) for a in analysts]
    )

    assert_no_server_errors(responses)
    winners = [a for a, r in zip(analysts, responses) if r.status_code == 200]
    assert len(winners) == 1
    assert sorted(r.status_code for r in responses) == [200] + [409] * 9
    for response in responses:
        if response.status_code == 409:
            assert response.json()["detail"].startswith(f"case {case_id} is claimed by ")
    assert len(events(db, "case.claimed", entity_id=case_id)) == 1


def test_claim_that_waited_for_a_competing_claim_names_the_winner(http, users, desk, db):
    case_id = desk.flagged_case("contested", 90)
    alice = users.create("analyst", "alice")
    bob = reviewer(users, "analyst", "bob")
    with database.engine.connect() as holder:
        # alice's claim is in flight: her transaction holds the case row when bob's arrives.
        holder.execute(text("SELECT id FROM review_cases WHERE id = :id FOR UPDATE"), {"id": case_id})
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(http.post, f"/api/cases/{case_id}/claim", headers=bob.headers)
            wait_for_lock_waiters(1, "transactionid")
            holder.execute(text(
                "UPDATE review_cases SET state = 'in_review', assignee_id = :alice,"
                " lease_expires_at = now() + interval '15 minutes', version = version + 1 WHERE id = :id"),
                {"alice": alice.id, "id": case_id})
            holder.commit()
            response = pending.result(timeout=30)

    assert response.status_code == 409, response.text
    assert response.json()["detail"] == f"case {case_id} is claimed by alice"


def test_two_analysts_deciding_the_same_unclaimed_case_at_once_one_wins_one_gets_409(http, users, desk, db):
    alice = reviewer(users, "analyst", "alice")
    bob = reviewer(users, "analyst", "bob")
    cases = [desk.flagged_case(f"duel-{n}", 80) for n in range(8)]
    approve = {"decision": "approve", "reason_code": "false_positive"}
    reject = {"decision": "reject", "reason_code": "suspected_fraud", "note": "mule"}
    calls, plan = [], []
    for case_id in cases:
        for who, body in ((alice, approve), (bob, reject)):
            plan.append((case_id, who, body))
            calls.append(lambda case_id=case_id, who=who, body=body: http.post(
                f"/api/cases/{case_id}/decision", json=body, headers=who.headers))
    responses = run_together(calls)

    assert_no_server_errors(responses)
    for case_id in cases:
        outcomes = [(who, body, r) for (c, who, body), r in zip(plan, responses) if c == case_id]
        statuses = sorted(r.status_code for _, _, r in outcomes)
        assert statuses == [200, 409], [r.text for _, _, r in outcomes]
        [(winner, body, _)] = [o for o in outcomes if o[2].status_code == 200]
        [(_, _, loser)] = [o for o in outcomes if o[2].status_code == 409]
        final = "approved" if body is approve else "rejected"
        assert loser.json()["detail"] == f"case {case_id} was already {final} by {winner.name}"
        row = case_row(db, case_id)
        assert row["state"] == final
        decided = events(db, "case.approved", entity_id=case_id) + events(db, "case.rejected", entity_id=case_id)
        assert [e.actor for e in decided] == [winner.name]
    assert chain.verify(db.connection()).ok


def test_many_analysts_approving_one_case_at_once_record_one_decision(http, users, desk, db):
    case_id = desk.flagged_case("crowd", 80)
    analysts = [reviewer(users, "analyst", f"analyst{n:02d}") for n in range(10)]
    responses = run_together([
        (lambda a=a: http.post(f"/api/cases/{case_id}/decision",
                               json={"decision": "approve", "reason_code": "false_positive"}, headers=a.headers))
        for a in analysts
    ])

    assert_no_server_errors(responses)
    assert Counter(r.status_code for r in responses) == {200: 1, 409: 9}
    assert len(events(db, "case.approved", entity_id=case_id)) == 1
    assert len(events(db, "transaction.review_status_changed", entity_id="crowd")) == 2  # flagged, approved


def test_two_reviewers_approving_a_large_case_at_once_give_one_first_approval(http, users, desk, db):
    case_id = desk.flagged_case("big-race", 80, amount="50000.00")
    alice = reviewer(users, "analyst", "alice")
    bob = reviewer(users, "analyst", "bob")
    body = {"decision": "approve", "reason_code": "verified_customer"}
    responses = run_together([
        (lambda who=who: http.post(f"/api/cases/{case_id}/decision", json=body, headers=who.headers))
        for who in (alice, bob)
    ])

    # Serialized by the row locks: one first approval, then the other reviewer's second one.
    assert_no_server_errors(responses)
    assert [r.status_code for r in responses] == [200, 200]
    assert sorted(r.json()["state"] for r in responses) == ["approved", "open"]
    row = case_row(db, case_id)
    assert row["state"] == "approved"
    assert row["first_approved_by"] != row["decided_by"]
    assert len(events(db, "case.first_approval", entity_id=case_id)) == 1
    assert len(events(db, "case.approved", entity_id=case_id)) == 1


def test_scores_and_decisions_racing_on_the_same_transactions_never_deadlock_or_double_open(http, users, desk, db):
    agent = users.headers("agent", "scorer")
    alice = reviewer(users, "analyst", "alice")
    references = [f"mix-{n}" for n in range(10)]
    cases = {reference: desk.flagged_case(reference, 75) for reference in references}
    calls = []
    for reference in references:
        calls.append(lambda reference=reference: http.post(
            f"/transactions/{reference}/risk-scores", json={"score": 95, "model": "m"}, headers=agent))
        calls.append(lambda reference=reference: http.post(
            f"/api/cases/{cases[reference]}/decision",
            json={"decision": "approve", "reason_code": "false_positive"}, headers=alice.headers))
    responses = run_together(calls)

    assert_no_server_errors(responses)
    assert {r.status_code for r in responses} <= {200, 201}
    db.commit()
    for reference in references:
        undecided = db.execute(text(
            "SELECT count(*) FROM review_cases c JOIN transactions t ON t.id = c.transaction_id"
            " WHERE t.reference = :r AND c.state IN ('open', 'in_review', 'escalated')"), {"r": reference}
        ).scalar_one()
        status = db.execute(text("SELECT review_status FROM transactions WHERE reference = :r"),
                            {"r": reference}).scalar_one()
        assert undecided <= 1
        # The transaction is flagged exactly when a case for it is still undecided.
        assert (status == "flagged") == (undecided == 1), (reference, status, undecided)
    assert case_count(db) >= len(references)
    assert chain.verify(db.connection()).ok


def test_decision_that_times_out_waiting_for_the_audit_chain_is_503_not_500(http, users, desk, db):
    case_id = desk.flagged_case("slow", 80)
    alice = reviewer(users, "analyst", "alice")
    with database.engine.connect() as blocker:
        blocker.execute(text("SELECT pg_advisory_lock(:key)"), {"key": AUDIT_CHAIN_LOCK})
        try:
            response = http.post(f"/api/cases/{case_id}/decision",
                                 json={"decision": "approve", "reason_code": "other"}, headers=alice.headers)
        finally:
            blocker.execute(text("SELECT pg_advisory_unlock_all()"))
            blocker.commit()

    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "1"
    assert case_row(db, case_id)["state"] == "open"
