"""POST /api/cases/bulk: assign, release or escalate selected cases, with a result per case."""

import pytest

from tests.cases.conftest import case_row, event_count, events, reviewer
from tests.conftest import assert_no_server_errors, run_together
from tests.transactions.conftest import assert_rejected


def bulk(client, who, **body):
    return client.post("/api/cases/bulk", json=body, headers=who.headers)


def statuses(response) -> dict[int, int]:
    assert response.status_code == 200, response.text
    return {item["case_id"]: item["status_code"] for item in response.json()["items"]}


@pytest.fixture
def three(desk) -> list[int]:
    return [desk.flagged_case(f"b-{n}", 80 + n) for n in range(3)]


def test_admin_assigns_selected_cases_and_each_gets_its_audit_event(desk, db, root, alice, three):
    response = bulk(desk.client, root, action="assign", case_ids=three, assignee="alice")

    assert statuses(response) == {case_id: 200 for case_id in three}
    body = response.json()
    assert (body["succeeded"], body["failed"]) == (3, 0)
    assert [item["case"]["assignee"] for item in body["items"]] == ["alice"] * 3
    assert [item["message"] for item in body["items"]] == ["Assigned to alice."] * 3
    assert sorted(desk.queue_ids(alice, assignee="alice")) == sorted(three)
    assert sorted(int(e.entity_id) for e in events(db, "case.assigned")) == sorted(three)


def test_results_come_in_the_order_asked_and_report_each_refusal(desk, db, root, alice, bob, three):
    first, second, third = three
    assert desk.claim(second, bob).status_code == 200
    assert desk.decide(third, bob, "reject", "suspected_fraud", note="card testing").status_code == 200

    response = bulk(desk.client, alice, action="assign", case_ids=[third, 999_999, second, first],
                    assignee="alice")

    body = response.json()
    assert [(i["case_id"], i["status_code"]) for i in body["items"]] == [
        (third, 409), (999_999, 404), (second, 409), (first, 200)]
    assert "already rejected" in body["items"][0]["message"]
    assert "claimed by bob" in body["items"][2]["message"]
    assert (body["succeeded"], body["failed"]) == (1, 3)
    assert [int(e.entity_id) for e in events(db, "case.assigned")] == [first]


def test_a_case_changed_since_the_caller_looked_is_reported_not_overwritten(desk, db, root, alice, three):
    seen = {str(case_id): desk.case(case_id, root)["version"] for case_id in three}
    assert desk.claim(three[0], alice).status_code == 200

    response = bulk(desk.client, root, action="assign", case_ids=three, assignee="root", versions=seen)

    assert statuses(response) == {three[0]: 409, three[1]: 200, three[2]: 200}
    assert "changed since you loaded it" in response.json()["items"][0]["message"]
    assert desk.case(three[0], root)["assignee"] == "alice"


def test_admin_releases_anyones_claims_analyst_only_their_own(desk, db, root, alice, bob, three):
    assert desk.claim(three[0], alice).status_code == 200
    assert desk.claim(three[1], bob).status_code == 200

    by_alice = bulk(desk.client, alice, action="release", case_ids=three)
    assert statuses(by_alice) == {three[0]: 200, three[1]: 409, three[2]: 409}
    assert "only they or an admin" in by_alice.json()["items"][1]["message"]
    assert "not claimed" in by_alice.json()["items"][2]["message"]

    by_root = bulk(desk.client, root, action="release", case_ids=[three[1]])
    assert statuses(by_root) == {three[1]: 200}
    assert case_row(db, three[1])["assignee_id"] is None
    [released] = [e for e in events(db, "case.released") if e.actor == "root"]
    assert released.before == {"state": "in_review", "assignee": "bob"}


def test_bulk_escalate_is_a_decision_per_case_with_the_note(desk, db, alice, bob, three):
    assert desk.claim(three[2], bob).status_code == 200

    response = bulk(desk.client, alice, action="escalate", case_ids=three, note="Same device as known fraud ring")

    assert statuses(response) == {three[0]: 200, three[1]: 200, three[2]: 409}
    assert [case_row(db, case_id)["state"] for case_id in three] == ["escalated", "escalated", "in_review"]
    escalated = events(db, "case.escalated")
    assert sorted(int(e.entity_id) for e in escalated) == sorted(three[:2])
    assert all(e.reason == "needs_more_info: Same device as known fraud ring" for e in escalated)


def test_an_analyst_cannot_bulk_assign_someone_else(desk, db, root, alice, three):
    before = event_count(db)
    response = bulk(desk.client, alice, action="assign", case_ids=three, assignee="root")

    assert response.status_code == 403, response.text
    assert event_count(db) == before


@pytest.mark.parametrize(("body", "field"), [
    ({"action": "assign", "case_ids": [1]}, "assignee"),
    ({"action": "escalate", "case_ids": [1]}, "note"),
    ({"action": "escalate", "case_ids": [1], "note": "   "}, "note"),
    ({"action": "delete", "case_ids": [1]}, "action"),
    ({"action": "release", "case_ids": []}, "case_ids"),
    ({"action": "release", "case_ids": list(range(1, 102))}, "case_ids"),
    ({"action": "release", "case_ids": [0]}, "case_ids.0"),
    ({"action": "release", "case_ids": ["x"]}, "case_ids.0"),
    ({"action": "release", "case_ids": [1], "versions": {"1": 0}}, "versions.1"),
    ({"action": "release", "case_ids": [1], "surprise": True}, "surprise"),
])
def test_bad_bulk_requests_name_the_field_and_change_nothing(desk, db, root, body, field):
    before = event_count(db)
    assert_rejected(desk.client.post("/api/cases/bulk", json=body, headers=root.headers), field)
    assert event_count(db) == before


def test_a_case_listed_twice_is_acted_on_once(desk, db, root, three):
    response = bulk(desk.client, root, action="assign", case_ids=[three[0], three[0]], assignee="root")

    assert [item["case_id"] for item in response.json()["items"]] == [three[0]]
    assert len(events(db, "case.assigned")) == 1


def test_two_bulk_assigns_racing_on_the_same_cases_each_case_goes_to_one(http, users, desk, db, root):
    cases = [desk.flagged_case(f"race-{n:02d}", 75) for n in range(12)]
    seen = {str(case_id): desk.case(case_id, root)["version"] for case_id in cases}
    admins = [reviewer(users, "admin", name) for name in ("ada", "grace")]

    responses = run_together([
        (lambda a=a: http.post("/api/cases/bulk", headers=a.headers, json={
            "action": "assign", "case_ids": cases, "assignee": a.name, "versions": seen}))
        for a in admins
    ])

    assert_no_server_errors(responses)
    won = {admin.name: [i["case_id"] for i in r.json()["items"] if i["status_code"] == 200]
           for admin, r in zip(admins, responses, strict=True)}
    lost = [i for r in responses for i in r.json()["items"] if i["status_code"] != 200]
    assert sorted(won["ada"] + won["grace"]) == sorted(cases)  # every case assigned exactly once
    assert all(i["status_code"] == 409 and "changed since" in i["message"] for i in lost)
    for name, ids in won.items():
        assert all(desk.case(case_id, root)["assignee"] == name for case_id in ids)
    assert sorted(int(e.entity_id) for e in events(db, "case.assigned")) == sorted(cases)


def test_a_bulk_release_racing_a_single_assign_never_loses_an_audit_event(http, users, desk, db, root, alice):
    cases = [desk.flagged_case(f"mix-{n:02d}", 75) for n in range(8)]
    assert statuses(bulk(desk.client, root, action="assign", case_ids=cases, assignee="alice")) == \
        {case_id: 200 for case_id in cases}

    def release_all():
        return http.post("/api/cases/bulk", headers=root.headers, json={"action": "release", "case_ids": cases})

    def assign_to_root(case_id: int):
        return http.post(f"/api/cases/{case_id}/assign", headers=root.headers, json={"assignee": "root"})

    calls = [release_all] + [(lambda c=c: assign_to_root(c)) for c in cases[:4]]
    responses = run_together(calls)

    assert_no_server_errors(responses)
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    # Whatever the order, the audit trail replays to the state each case ended in.
    for case_id in cases:
        trail = [e for e in events(db, entity_id=case_id) if e.action in ("case.assigned", "case.released")]
        last = trail[-1]
        final = desk.case(case_id, root)["assignee"]
        assert (last.after or {}).get("assignee") == final


def test_the_bulk_bar_answers_a_bad_selection_in_sentences_and_a_good_one_per_case(client, users, desk, db):
    from tests.web.conftest import meta_csrf, submit_login

    users.create("admin", "root")
    assert submit_login(client, "root").status_code == 303
    headers = {"X-CSRF-Token": meta_csrf(client.get("/").text), "HX-Request": "true"}
    before = event_count(db)

    refused = client.post("/queue/bulk", data={"action": "assign", "case": ["x:1", "²:1", "7"], "assignee": "root"},
                          headers=headers)
    assert refused.status_code == 422
    assert "Nothing was changed.</strong> Select between 1 and 100 cases." in refused.text
    no_note = client.post("/queue/bulk", data={"action": "escalate", "case": ["1:1"]}, headers=headers)
    assert no_note.status_code == 422 and "Write a note to escalate" in no_note.text
    assert event_count(db) == before

    case_id = desk.flagged_case("b-web")
    version = case_row(db, case_id)["version"]
    done = client.post("/queue/bulk", data={"action": "assign", "case": [f"{case_id}:{version}"], "assignee": "root"},
                       headers=headers)
    assert done.status_code == 200, done.text
    assert "Assigned to root." in done.text
    assert done.headers["HX-Trigger"] == "queue-changed"  # the list reloads
    stale = client.post("/queue/bulk", data={"action": "release", "case": [f"{case_id}:{version}"]}, headers=headers)
    assert "changed since you loaded it" in stale.text
