"""Every review action writes its audit event in the same transaction, and the chain verifies.

Per SPEC "Audit history": score posted, case opened/claimed/decided each leave an event
with actor, role, action, entity, before/after, reason and request id.
"""

from collections import Counter

from app.audit import chain
from tests.cases.conftest import event_count, events


def test_a_full_review_writes_one_event_per_action_and_the_chain_verifies(desk, db, alice, bob, root):
    start = event_count(db)
    small = desk.flagged_case("small", 80)                        # created, posted, opened, flagged
    big = desk.flagged_case("big", 90, amount="30000.00")         # created, posted, opened, flagged
    odd = desk.flagged_case("odd", 75)                            # created, posted, opened, flagged
    assert desk.next(alice).json()["id"] == big                   # claimed
    assert desk.claim(big, alice).status_code == 200              # claim_renewed
    assert desk.release(big, alice).status_code == 200            # released
    assert desk.decide(big, alice, "approve").status_code == 200  # first_approval
    assert desk.decide(big, bob, "approve").status_code == 200    # approved, review_status approved
    assert desk.decide(small, bob, "reject", "suspected_fraud", note="mule").status_code == 200  # rejected, status
    assert desk.decide(odd, alice, "escalate", "needs_more_info", note="?").status_code == 200     # escalated
    assert desk.decide(odd, root, "approve", "verified_customer").status_code == 200              # approved, status
    assert desk.settle("big").status_code == 200                                                  # settled

    actions = Counter(e.action for e in events(db)[start:])
    assert actions == {
        "transaction.created": 3,
        "risk_score.posted": 3,
        "case.opened": 3,
        "transaction.review_status_changed": 6,
        "case.claimed": 1,
        "case.claim_renewed": 1,
        "case.released": 1,
        "case.first_approval": 1,
        "case.approved": 2,
        "case.rejected": 1,
        "case.escalated": 1,
        "transaction.settled": 1,
    }
    status = chain.verify(db.connection())
    assert status.ok, status
    assert status.events == event_count(db)


def test_case_events_name_the_actor_role_and_entity(desk, db, alice, root):
    case_id = desk.flagged_case("ref-1", 80)
    desk.claim(case_id, alice)
    desk.decide(case_id, alice, "escalate", "policy_violation", note="limit breach")
    desk.decide(case_id, root, "reject", "policy_violation", note="confirmed")

    case_events = events(db, entity_type="case", entity_id=case_id)
    assert [(e.action, e.actor, e.actor_role, e.actor_type) for e in case_events] == [
        ("case.opened", case_events[0].actor, "agent", "agent"),
        ("case.claimed", "alice", "analyst", "human"),
        ("case.escalated", "alice", "analyst", "human"),
        ("case.rejected", "root", "admin", "human"),
    ]
    assert case_events[2].before == {"state": "in_review", "version": 2}
    assert case_events[3].before == {"state": "escalated", "version": 3}
    assert case_events[3].reason == "policy_violation: confirmed"


def test_case_events_carry_the_callers_request_id(client, desk, db, alice):
    case_id = desk.flagged_case("ref-1", 80)
    response = client.post(
        f"/api/cases/{case_id}/decision", json={"decision": "approve", "reason_code": "other"},
        headers={**alice.headers, "X-Request-ID": "review-req-42"},
    )

    assert response.headers["X-Request-ID"] == "review-req-42"
    [approved] = events(db, "case.approved", entity_id=case_id)
    assert approved.request_id == "review-req-42"
    [status_change] = events(db, "transaction.review_status_changed", entity_id="ref-1")[-1:]
    assert status_change.request_id == "review-req-42"


def test_refused_actions_write_no_events(desk, db, alice, bob):
    case_id = desk.flagged_case("ref-1", 80)
    desk.claim(case_id, alice)
    before = event_count(db)

    assert desk.claim(case_id, bob).status_code == 409
    assert desk.release(case_id, bob).status_code == 409
    assert desk.decide(case_id, bob, "approve").status_code == 409
    assert desk.decide(case_id, alice, "reject", "other").status_code == 422
    assert desk.decide(case_id, alice, "approve", version=99).status_code == 409

    assert event_count(db) == before


def test_reads_write_no_events(desk, db, alice):
    case_id = desk.flagged_case("ref-1", 80)
    before = event_count(db)

    assert desk.queue(alice).status_code == 200
    desk.counts(alice)
    desk.detail(case_id, alice)

    assert event_count(db) == before


def test_next_on_an_empty_queue_writes_no_event(desk, db, alice):
    before = event_count(db)
    assert desk.next(alice).status_code == 204
    assert event_count(db) == before
