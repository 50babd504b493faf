"""POST /api/cases/{id}/assign: admins assign cases to any active reviewer, analysts to themselves."""

import pytest
from sqlalchemy import text

from tests.cases.conftest import assert_conflict, case_row, event_count, events, expire_lease
from tests.transactions.conftest import assert_rejected


def assign(desk, case_id: int, who, assignee: str, **extra):
    return desk.client.post(f"/api/cases/{case_id}/assign", json={"assignee": assignee, **extra}, headers=who.headers)


def test_admin_assigns_a_case_to_a_named_analyst_who_then_holds_it(desk, db, root, alice, bob):
    case_id = desk.flagged_case("r-1")

    response = assign(desk, case_id, root, "alice")

    assert response.status_code == 200, response.text
    assert response.json()["assignee"] == "alice"
    assert response.json()["state"] == "in_review"
    assert desk.queue_ids(alice, assignee="alice") == [case_id]
    assert desk.counts(alice)["mine"] == 1
    assert_conflict(desk.claim(case_id, bob), "claimed by alice")
    assert desk.decide(case_id, alice, "approve").status_code == 200
    [event] = events(db, "case.assigned", case_id)
    assert event.actor == "root"
    assert event.before == {"state": "open", "assignee": None}
    assert event.after is not None and event.after["assignee"] == "alice"


def test_admin_reassigns_a_case_another_analyst_holds(desk, db, root, alice, bob):
    case_id = desk.flagged_case("r-1")
    assert desk.claim(case_id, alice).status_code == 200

    response = assign(desk, case_id, root, "bob")

    assert response.status_code == 200, response.text
    assert response.json()["assignee"] == "bob"
    [event] = events(db, "case.assigned", case_id)
    assert event.before == {"state": "in_review", "assignee": "alice"}


def test_analyst_assigns_a_case_to_themself(desk, alice):
    case_id = desk.flagged_case("r-1")

    response = assign(desk, case_id, alice, "alice")

    assert response.status_code == 200, response.text
    assert response.json()["assignee"] == "alice"


def test_analyst_cannot_assign_a_case_to_someone_else(desk, db, alice, bob):
    case_id = desk.flagged_case("r-1")
    before = event_count(db)

    response = assign(desk, case_id, alice, "bob")

    assert response.status_code == 403, response.text
    assert "only to themselves" in response.json()["detail"]
    assert case_row(db, case_id)["assignee_id"] is None
    assert event_count(db) == before


def test_analyst_cannot_take_a_case_another_analyst_holds(desk, alice, bob):
    case_id = desk.flagged_case("r-1")
    assert desk.claim(case_id, bob).status_code == 200

    assert_conflict(assign(desk, case_id, alice, "alice"), "claimed by bob")


@pytest.mark.parametrize("who", ["nobody", "bot"])
def test_the_assignee_must_be_an_active_analyst_or_admin(desk, users, root, who):
    users.create("agent", "bot")
    case_id = desk.flagged_case("r-1")

    response = assign(desk, case_id, root, who)

    assert_rejected(response, "assignee")


def test_a_disabled_user_cannot_be_assigned(desk, db, root, bob):
    case_id = desk.flagged_case("r-1")
    db.execute(text("UPDATE users SET is_active = false WHERE username = 'bob'"))
    db.commit()

    assert_rejected(assign(desk, case_id, root, "bob"), "assignee")


def test_a_decided_case_cannot_be_assigned(desk, root, bob):
    case_id = desk.flagged_case("r-1")
    assert desk.decide(case_id, bob, "approve").status_code == 200

    assert_conflict(assign(desk, case_id, root, "bob"), "already approved")


def test_an_escalated_case_goes_only_to_an_admin(desk, root, alice, bob):
    case_id = desk.flagged_case("r-1")
    assert desk.decide(case_id, bob, "escalate", "needs_more_info", note="ask compliance").status_code == 200

    assert_conflict(assign(desk, case_id, root, "alice"), "only an admin")
    response = assign(desk, case_id, root, "root")
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "escalated"


def test_the_first_approver_is_not_assigned_the_second_approval(desk, root, alice):
    case_id = desk.flagged_case("r-1", amount="25000.00")
    assert desk.decide(case_id, alice, "approve").status_code == 200

    assert_conflict(assign(desk, case_id, root, "alice"), "second approval")


def test_an_assignment_on_a_stale_view_is_refused(desk, root, alice):
    case_id = desk.flagged_case("r-1")
    seen = desk.case(case_id, root)["version"]
    assert desk.claim(case_id, alice).status_code == 200

    assert_conflict(assign(desk, case_id, root, "root", version=seen), "changed since you loaded it")


def test_an_assignment_lapses_like_any_claim(desk, db, root, alice, bob):
    case_id = desk.flagged_case("r-1")
    assert assign(desk, case_id, root, "alice").status_code == 200
    expire_lease(db, case_id)

    assert desk.claim(case_id, bob).status_code == 200


def test_unknown_case_and_bad_bodies(desk, root):
    assert assign(desk, 999_999, root, "root").status_code == 404
    case_id = desk.flagged_case("r-1")
    assert_rejected(desk.client.post(f"/api/cases/{case_id}/assign", json={}, headers=root.headers), "assignee")
    assert_rejected(desk.client.post(f"/api/cases/{case_id}/assign", json={"assignee": "root", "extra": 1},
                                     headers=root.headers), "extra")


def test_agents_cannot_assign(desk, agent_reviewer):
    case_id = desk.flagged_case("r-1")
    assert assign(desk, case_id, agent_reviewer, "agent").status_code == 403
