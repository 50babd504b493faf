"""Claims: POST /api/cases/next, /{id}/claim and /{id}/release, with leases."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from tests.cases.conftest import assert_conflict, case_row, events, expire_lease, set_setting


def test_next_claims_the_top_case_for_the_caller(desk, db, alice):
    desk.flagged_case("r-1", 75)
    top = desk.flagged_case("r-2", 92)

    response = desk.next(alice)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == top
    assert body["state"] == "in_review"
    assert body["assignee"] == "alice"
    assert body["version"] == 2
    row = case_row(db, top)
    assert row["state"] == "in_review"
    assert row["assignee_id"] is not None


def test_next_prefers_the_older_of_two_equally_risky_cases(desk, alice):
    older = desk.flagged_case("r-1", 80)
    desk.flagged_case("r-2", 80)

    assert desk.next(alice).json()["id"] == older


def test_next_on_an_empty_queue_is_204_with_no_body(desk, alice):
    response = desk.next(alice)

    assert response.status_code == 204
    assert response.content == b""


def test_next_returns_the_case_the_caller_already_holds(desk, alice):
    held = desk.flagged_case("r-1", 70)
    desk.flagged_case("r-2", 99)
    assert desk.claim(held, alice).status_code == 200

    response = desk.next(alice)

    assert response.status_code == 200
    assert response.json()["id"] == held


def test_second_analyst_gets_the_next_case_not_the_claimed_one(desk, alice, bob):
    first = desk.flagged_case("r-1", 90)
    second = desk.flagged_case("r-2", 80)

    assert desk.next(alice).json()["id"] == first
    assert desk.next(bob).json()["id"] == second


def test_next_is_204_when_every_case_is_claimed_by_others(desk, alice, bob):
    desk.flagged_case("r-1", 90)
    assert desk.next(alice).status_code == 200

    assert desk.next(bob).status_code == 204


def test_lease_lasts_the_claim_lease_minutes_setting(desk, db, alice):
    set_setting(db, "claim_lease_minutes", 5)
    case_id = desk.flagged_case("r-1", 80)

    lease = datetime.fromisoformat(desk.claim(case_id, alice).json()["lease_expires_at"])

    now = datetime.now(UTC)
    assert now + timedelta(minutes=4) < lease <= now + timedelta(minutes=5, seconds=5)


def test_claim_of_an_open_case_makes_it_in_review_for_the_caller(desk, db, alice):
    case_id = desk.flagged_case("r-1", 80)

    response = desk.claim(case_id, alice)

    assert response.status_code == 200, response.text
    assert response.json()["state"] == "in_review"
    assert response.json()["assignee"] == "alice"
    assert response.json()["lease_expires_at"] is not None
    [claimed] = events(db, "case.claimed", entity_id=case_id)
    assert claimed.actor == "alice"
    assert claimed.before == {"state": "open", "assignee_id": None}
    assert claimed.after is not None
    assert claimed.after["state"] == "in_review" and claimed.after["assignee"] == "alice"


def test_second_analyst_cannot_claim_a_claimed_case_and_the_message_names_the_holder(desk, db, alice, bob):
    case_id = desk.flagged_case("r-1", 80)
    assert desk.claim(case_id, alice).status_code == 200
    before = case_row(db, case_id)

    assert_conflict(desk.claim(case_id, bob), "claimed by alice")
    assert case_row(db, case_id) == before


def test_reclaim_by_the_holder_renews_the_lease(desk, db, alice):
    case_id = desk.flagged_case("r-1", 80)
    first = desk.claim(case_id, alice).json()
    # Shorten the lease so the renewal is visible as a later expiry.
    db.execute(text("UPDATE review_cases SET lease_expires_at = now() + interval '1 minute' WHERE id = :id"),
               {"id": case_id})
    db.commit()

    response = desk.claim(case_id, alice)

    assert response.status_code == 200, response.text
    renewed = response.json()
    assert renewed["assignee"] == "alice"
    assert renewed["version"] == first["version"] + 1
    assert datetime.fromisoformat(renewed["lease_expires_at"]) > datetime.now(UTC) + timedelta(minutes=10)
    assert len(events(db, "case.claim_renewed", entity_id=case_id)) == 1
    assert len(events(db, "case.claimed", entity_id=case_id)) == 1


def test_claim_of_a_decided_case_is_409(desk, alice, bob):
    case_id = desk.flagged_case("r-1", 80)
    assert desk.decide(case_id, alice, "approve").status_code == 200

    assert_conflict(desk.claim(case_id, bob), "already approved")


def test_claim_of_an_unknown_case_is_404(desk, alice):
    response = desk.claim(424242, alice)
    assert response.status_code == 404
    assert "424242" in response.json()["detail"]


def test_release_returns_the_case_to_the_open_queue(desk, db, alice, bob):
    case_id = desk.flagged_case("r-1", 80)
    assert desk.claim(case_id, alice).status_code == 200

    response = desk.release(case_id, alice)

    assert response.status_code == 200, response.text
    assert response.json()["state"] == "open"
    assert response.json()["assignee"] is None
    row = case_row(db, case_id)
    assert (row["state"], row["assignee_id"], row["lease_expires_at"]) == ("open", None, None)
    [released] = events(db, "case.released", entity_id=case_id)
    assert released.actor == "alice"
    assert released.after == {"state": "open", "assignee": None}
    assert desk.next(bob).json()["id"] == case_id


def test_release_by_someone_who_does_not_hold_the_case_is_409(desk, db, alice, bob):
    case_id = desk.flagged_case("r-1", 80)
    assert desk.claim(case_id, alice).status_code == 200
    before = case_row(db, case_id)

    assert_conflict(desk.release(case_id, bob), "not claimed by you")
    assert case_row(db, case_id) == before
    assert events(db, "case.released") == []


def test_release_of_an_unclaimed_case_is_409(desk, alice):
    case_id = desk.flagged_case("r-1", 80)
    assert desk.release(case_id, alice).status_code == 409


def test_release_of_an_unknown_case_is_404(desk, alice):
    assert desk.release(424242, alice).status_code == 404


def test_analyst_next_never_returns_an_escalated_case(desk, alice, bob):
    escalated = desk.flagged_case("r-1", 99)
    assert desk.decide(escalated, alice, "escalate", "sanctions_concern", note="possible match").status_code == 200

    assert desk.next(bob).status_code == 204
    lower = desk.flagged_case("r-2", 70)
    assert desk.next(bob).json()["id"] == lower


def test_analyst_cannot_claim_an_escalated_case(desk, alice, bob):
    case_id = desk.flagged_case("r-1", 80)
    assert desk.decide(case_id, alice, "escalate", "needs_more_info", note="ask compliance").status_code == 200

    response = desk.claim(case_id, bob)
    assert response.status_code == 403, response.text
    assert "escalated" in response.json()["detail"]


def test_admin_next_returns_an_escalated_case_and_keeps_it_escalated(desk, alice, root):
    case_id = desk.flagged_case("r-1", 99)
    assert desk.decide(case_id, alice, "escalate", "needs_more_info", note="ask compliance").status_code == 200

    response = desk.next(root)

    assert response.status_code == 200
    assert response.json()["id"] == case_id
    assert response.json()["state"] == "escalated"
    assert response.json()["assignee"] == "root"


def test_admin_release_of_an_escalated_case_keeps_it_escalated(desk, alice, root):
    case_id = desk.flagged_case("r-1", 99)
    assert desk.decide(case_id, alice, "escalate", "needs_more_info", note="ask compliance").status_code == 200
    assert desk.claim(case_id, root).status_code == 200

    response = desk.release(case_id, root)
    assert response.status_code == 200
    assert response.json()["state"] == "escalated"
    assert response.json()["assignee"] is None


def test_expired_lease_lets_the_original_holder_get_a_different_case_from_next(desk, db, alice, bob):
    first = desk.flagged_case("r-1", 90)
    second = desk.flagged_case("r-2", 80)
    assert desk.next(alice).json()["id"] == first
    expire_lease(db, first)

    assert desk.next(bob).json()["id"] == first
    assert desk.next(alice).json()["id"] == second
