"""Races on one rule or list, against a real uvicorn with real threads: the row lock decides.

Each request waits on a barrier so they leave together; nothing here measures time.
"""

from collections import Counter
from typing import Any

from tests.conftest import assert_no_server_errors, run_together
from tests.rules.test_api_rules import RULES, audit_events, generation, rows, rule_body


def made(http, headers, **overrides: Any) -> dict[str, Any]:
    response = http.post(RULES, json=rule_body(**overrides), headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def test_two_publishes_of_one_rule_at_once_both_leave_a_consistent_rule(http, admin_headers, users, db):
    other_admin = users.headers("admin", "second")
    rule = made(http, admin_headers)
    http.put(f"{RULES}/{rule['id']}", json={"condition": "tx.amount > 2"}, headers=admin_headers)
    choices = [({"version": 1, "mode": "shadow"}, admin_headers), ({"version": 2, "mode": "active"}, other_admin)]
    for _ in range(4):
        responses = run_together([
            lambda body=body, headers=headers: http.post(f"{RULES}/{rule['id']}/publish", json=body, headers=headers)
            for body, headers in choices
        ])
        assert_no_server_errors(responses)
        assert [r.status_code for r in responses] == [200, 200]
        final = http.get(f"{RULES}/{rule['id']}", headers=admin_headers).json()
        assert (final["running_version"], final["mode"]) in {(1, "shadow"), (2, "active")}
        assert [v["version"] for v in final["versions"] if v["is_running"]] == [final["running_version"]]
    # Serialized: each publish's "before" is what the previous one left, and the last "after" is the rule.
    changes = [(e.before, e.after) for e in audit_events(db) if e.action in ("rule.published", "rule.rolled_back")]
    for (_, earlier_after), (later_before, _) in zip(changes, changes[1:], strict=False):
        assert later_before == earlier_after
    stored = rows(db, "SELECT mode, running_version FROM rules")[0]
    assert changes[-1][1] == {"mode": stored.mode, "running_version": stored.running_version}
    # Every change of what runs moved the generation once, and sent its webhook event.
    published = rows(db, "SELECT count(*) FROM webhook_events WHERE event_type = 'rule.published'")[0][0]
    assert generation(db) == published == len(changes)


def test_a_publish_racing_a_disable_and_an_edit_leaves_one_consistent_rule(http, admin_headers, db):
    rule = made(http, admin_headers, mode="shadow")
    for round_no in range(3):
        responses = run_together([
            lambda: http.post(f"{RULES}/{rule['id']}/publish", json={"version": 1, "mode": "active"},
                              headers=admin_headers),
            lambda: http.post(f"{RULES}/{rule['id']}/disable", headers=admin_headers),
            lambda n=round_no: http.put(f"{RULES}/{rule['id']}", json={"condition": f"tx.amount > {n}"},
                                        headers=admin_headers),
        ])
        assert_no_server_errors(responses)
        assert [r.status_code for r in responses] == [200, 200, 200]
        final = http.get(f"{RULES}/{rule['id']}", headers=admin_headers).json()
        assert (final["mode"], final["running_version"]) in {("active", 1), ("disabled", None)}
    versions = [r.version for r in rows(db, "SELECT version FROM rule_versions ORDER BY version")]
    assert versions == [1, 2, 3, 4]


def test_concurrent_edits_each_get_their_own_version_number(http, admin_headers, db):
    rule = made(http, admin_headers)
    responses = run_together([
        lambda n=n: http.put(f"{RULES}/{rule['id']}", json={"condition": f"tx.amount > {n}"}, headers=admin_headers)
        for n in range(6)
    ])
    assert_no_server_errors(responses)
    assert sorted(r.json()["version"] for r in responses) == [2, 3, 4, 5, 6, 7]
    updates = [e for e in audit_events(db) if e.action == "rule.updated"]
    assert sorted(e.after["version"] for e in updates) == [2, 3, 4, 5, 6, 7]
    assert sorted(e.before["version"] for e in updates) == [1, 2, 3, 4, 5, 6]


def test_creating_one_name_at_once_gives_one_rule_and_409s_never_a_500(http, admin_headers, db):
    responses = run_together([lambda: http.post(RULES, json=rule_body("Same name"), headers=admin_headers)
                              for _ in range(6)])
    assert_no_server_errors(responses)
    assert Counter(r.status_code for r in responses) == {201: 1, 409: 5}
    assert rows(db, "SELECT count(*) FROM rules")[0][0] == 1
    assert rows(db, "SELECT count(*) FROM rule_versions")[0][0] == 1
    assert [e.action for e in audit_events(db)] == ["rule.created"]


def test_concurrent_list_changes_all_land_and_each_is_audited_once(http, admin_headers, db):
    assert http.put("/api/lists/blocked", json={"items": []}, headers=admin_headers).status_code == 200
    responses = run_together([
        lambda n=n: http.post("/api/lists/blocked/items", json={"items": [f"v{n}", "shared"]}, headers=admin_headers)
        for n in range(6)
    ])
    assert_no_server_errors(responses)
    final = http.get("/api/lists/blocked", headers=admin_headers).json()
    assert final["items"] == ["shared", *(f"v{n}" for n in range(6))]
    added = [e.after["items"] for e in audit_events(db, "list.items_added")]
    assert sorted(item for items in added for item in items) == sorted(["shared", *(f"v{n}" for n in range(6))])
    # A first PUT of a new list from two admins at once: one creates it, the other replaces or leaves it.
    responses = run_together([
        lambda n=n: http.put("/api/lists/fresh", json={"items": [f"x{n}"]}, headers=admin_headers) for n in range(2)
    ])
    assert_no_server_errors(responses)
    assert [r.status_code for r in responses] == [200, 200]
    assert len(http.get("/api/lists/fresh", headers=admin_headers).json()["items"]) == 1
