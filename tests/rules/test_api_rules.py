"""Rules API: write, edit as new draft versions, publish, roll back, disable; every change audited."""

from typing import Any

import pytest
from sqlalchemy import text

from tests.rules.conftest import GENERATION_AT_START

RULES = "/api/rules"
CONDITION = 'tx.amount > 1000 && tx.currency == "USD"'


def rule_body(name: str = "Large USD payment", **overrides: Any) -> dict[str, Any]:
    body = {"name": name, "condition": CONDITION, "action": {"risk": 80, "reason": "Large USD payment"}}
    body.update(overrides)
    return body


def create_rule(client, headers, **overrides: Any) -> dict[str, Any]:
    response = client.post(RULES, json=rule_body(**overrides), headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def rows(db, sql: str, **params: Any) -> list[Any]:
    db.commit()  # a fresh snapshot: see what the requests committed
    return db.execute(text(sql), params).all()


def audit_events(db, action_prefix: str = "rule.") -> list[Any]:
    return rows(db, "SELECT action, entity_id, before, after FROM audit_events WHERE action LIKE :p ORDER BY id",
                p=action_prefix + "%")


def generation(db) -> int:
    """How far the generation moved since the test began."""
    value = rows(db, "SELECT COALESCE((SELECT generation FROM rule_generation WHERE id = 1), 0)")[0][0]
    return value - GENERATION_AT_START["value"]


def published_events(db) -> list[dict[str, Any]]:
    sql = "SELECT payload FROM webhook_events WHERE event_type = 'rule.published' ORDER BY id"
    return [r[0] for r in rows(db, sql)]


def test_a_new_rule_is_a_draft_at_version_1_that_runs_nothing(client, admin_headers, db):
    rule = create_rule(client, admin_headers, description="Flags big dollar payments")
    assert (rule["name"], rule["mode"], rule["version"], rule["running_version"]) == (
        "Large USD payment", "draft", 1, None)
    assert rule["description"] == "Flags big dollar payments"
    [version] = rule["versions"]
    assert (version["version"], version["condition"], version["action"], version["is_running"]) == (
        1, CONDITION, {"risk": 80, "reason": "Large USD payment"}, False)
    [(action, entity_id, before, after)] = audit_events(db)
    assert (action, entity_id, before) == ("rule.created", str(rule["id"]), None)
    assert after["condition"] == CONDITION and after["mode"] == "draft"
    assert generation(db) == 0 and published_events(db) == []


def test_a_rule_created_in_shadow_or_active_mode_runs_version_1_at_once(client, admin_headers, db):
    shadow = create_rule(client, admin_headers, name="Shadow one", mode="shadow")
    active = create_rule(client, admin_headers, name="Active one", mode="active")
    assert (shadow["mode"], shadow["running_version"]) == ("shadow", 1)
    assert (active["mode"], active["running_version"]) == ("active", 1)
    assert active["versions"][0]["is_running"] is True
    assert [(e["rule_id"], e["mode"], e["version"]) for e in published_events(db)] == [
        (shadow["id"], "shadow", 1), (active["id"], "active", 1)]
    assert generation(db) == 2


def test_rules_are_listed_by_name_with_what_runs(client, admin_headers, analyst_headers):
    b = create_rule(client, admin_headers, name="B rule", mode="active")
    a = create_rule(client, admin_headers, name="A rule")
    client.put(f"{RULES}/{b['id']}", json={"condition": "tx.amount > 5"}, headers=admin_headers)
    listed = client.get(RULES, headers=analyst_headers).json()
    assert [(r["id"], r["mode"], r["version"], r["running_version"]) for r in listed] == [
        (a["id"], "draft", 1, None), (b["id"], "active", 2, 1)]
    assert listed[1]["condition"] == CONDITION  # the running version's, not the newer draft's


def test_editing_writes_a_new_draft_version_and_the_published_one_keeps_running(client, admin_headers, db):
    rule = create_rule(client, admin_headers, mode="active")
    generation_before = generation(db)
    response = client.put(f"{RULES}/{rule['id']}", json={"condition": "tx.amount > 5000"}, headers=admin_headers)
    assert response.status_code == 200, response.text
    edited = response.json()
    assert (edited["version"], edited["running_version"], edited["mode"]) == (2, 1, "active")
    assert [(v["version"], v["condition"], v["action"]["risk"], v["is_running"]) for v in edited["versions"]] == [
        (1, CONDITION, 80, True), (2, "tx.amount > 5000", 80, False)]
    # An action alone is a new version too; the condition is the newest version's.
    edited = client.put(f"{RULES}/{rule['id']}", json={"action": {"risk": 95, "reason": "Very large"}},
                        headers=admin_headers).json()
    assert (edited["version"], edited["versions"][2]["condition"], edited["versions"][2]["action"]) == (
        3, "tx.amount > 5000", {"risk": 95, "reason": "Very large"})
    updates = [e for e in audit_events(db) if e.action == "rule.updated"]
    assert [(e.before["version"], e.after["version"]) for e in updates] == [(1, 2), (2, 3)]
    assert updates[0].before["condition"] == CONDITION and updates[0].after["condition"] == "tx.amount > 5000"
    assert generation(db) == generation_before  # what runs did not change


def test_a_description_alone_is_changed_without_a_new_version(client, admin_headers, db):
    rule = create_rule(client, admin_headers)
    edited = client.put(f"{RULES}/{rule['id']}", json={"description": "Now described"}, headers=admin_headers).json()
    assert (edited["version"], edited["description"]) == (1, "Now described")
    [update] = [e for e in audit_events(db) if e.action == "rule.updated"]
    assert (update.before, update.after) == ({"description": None}, {"description": "Now described"})


def test_an_empty_edit_is_refused(client, admin_headers):
    rule = create_rule(client, admin_headers)
    response = client.put(f"{RULES}/{rule['id']}", json={}, headers=admin_headers)
    assert response.status_code == 422 and response.json()["detail"][0]["field"] == "body"


def test_publishing_runs_a_version_audits_it_bumps_the_generation_and_sends_the_webhook(client, admin_headers, db):
    rule = create_rule(client, admin_headers)
    response = client.post(f"{RULES}/{rule['id']}/publish", json={"version": 1, "mode": "shadow"},
                           headers=admin_headers)
    assert response.status_code == 200, response.text
    assert (response.json()["mode"], response.json()["running_version"]) == ("shadow", 1)
    [published] = [e for e in audit_events(db) if e.action == "rule.published"]
    assert (published.before, published.after) == ({"mode": "draft", "running_version": None},
                                                    {"mode": "shadow", "running_version": 1})
    [event] = published_events(db)
    assert event == {"rule_id": rule["id"], "name": rule["name"], "mode": "shadow", "version": 1,
                     "condition": CONDITION, "action": {"risk": 80, "reason": "Large USD payment"},
                     "previous_version": None, "previous_mode": "draft", "rolled_back": False}
    assert generation(db) == 1
    # From shadow to active, same version: a publish too.
    promoted = client.post(f"{RULES}/{rule['id']}/publish", json={"version": 1, "mode": "active"},
                           headers=admin_headers).json()
    assert (promoted["mode"], promoted["running_version"]) == ("active", 1)
    assert generation(db) == 2


def test_publishing_what_already_runs_changes_nothing(client, admin_headers, db):
    rule = create_rule(client, admin_headers, mode="active")
    again = client.post(f"{RULES}/{rule['id']}/publish", json={"version": 1, "mode": "active"}, headers=admin_headers)
    assert again.status_code == 200 and again.json()["running_version"] == 1
    assert [e.action for e in audit_events(db)] == ["rule.created"]
    assert len(published_events(db)) == 1


def test_publishing_an_older_version_rolls_back_and_is_audited_as_such(client, admin_headers, db):
    rule = create_rule(client, admin_headers, mode="active")
    client.put(f"{RULES}/{rule['id']}", json={"condition": "tx.amount > 2"}, headers=admin_headers)
    client.post(f"{RULES}/{rule['id']}/publish", json={"version": 2, "mode": "active"}, headers=admin_headers)
    rolled = client.post(f"{RULES}/{rule['id']}/publish", json={"version": 1, "mode": "active"},
                         headers=admin_headers).json()
    assert (rolled["running_version"], rolled["version"]) == (1, 2)
    actions = [(e.action, e.before, e.after) for e in audit_events(db) if e.action != "rule.updated"]
    assert actions[-1] == ("rule.rolled_back", {"mode": "active", "running_version": 2},
                           {"mode": "active", "running_version": 1})
    assert published_events(db)[-1]["rolled_back"] is True
    assert published_events(db)[-1]["previous_version"] == 2


def test_publishing_a_version_that_does_not_exist_names_version(client, admin_headers, db):
    rule = create_rule(client, admin_headers)
    for body, field in [({"version": 2, "mode": "active"}, "version"), ({"version": 1, "mode": "draft"}, "mode"),
                        ({"version": 0, "mode": "active"}, "version"), ({"version": "1", "mode": "active"}, "version"),
                        ({"mode": "active"}, "version")]:
        response = client.post(f"{RULES}/{rule['id']}/publish", json=body, headers=admin_headers)
        assert response.status_code == 422, body
        assert response.json()["detail"][0]["field"] == field, body
    assert [e.action for e in audit_events(db)] == ["rule.created"] and generation(db) == 0


def test_disabling_stops_the_rule_and_publishing_runs_it_again(client, admin_headers, db):
    rule = create_rule(client, admin_headers, mode="active")
    disabled = client.post(f"{RULES}/{rule['id']}/disable", headers=admin_headers)
    assert disabled.status_code == 200
    assert (disabled.json()["mode"], disabled.json()["running_version"]) == ("disabled", None)
    [event] = [e for e in audit_events(db) if e.action == "rule.disabled"]
    assert (event.before, event.after) == ({"mode": "active", "running_version": 1},
                                           {"mode": "disabled", "running_version": None})
    assert generation(db) == 2
    # Disabling twice records nothing more.
    client.post(f"{RULES}/{rule['id']}/disable", headers=admin_headers)
    assert len([e for e in audit_events(db) if e.action == "rule.disabled"]) == 1
    again = client.post(f"{RULES}/{rule['id']}/publish", json={"version": 1, "mode": "shadow"}, headers=admin_headers)
    assert (again.json()["mode"], again.json()["running_version"]) == ("shadow", 1)


def test_get_shows_every_version_and_which_one_runs(client, admin_headers, analyst_headers):
    rule = create_rule(client, admin_headers)
    client.put(f"{RULES}/{rule['id']}", json={"condition": "tx.amount > 3"}, headers=admin_headers)
    client.post(f"{RULES}/{rule['id']}/publish", json={"version": 2, "mode": "shadow"}, headers=admin_headers)
    shown = client.get(f"{RULES}/{rule['id']}", headers=analyst_headers).json()
    assert (shown["mode"], shown["running_version"], shown["version"]) == ("shadow", 2, 2)
    assert [(v["version"], v["is_running"]) for v in shown["versions"]] == [(1, False), (2, True)]


def test_an_unknown_rule_is_a_404_everywhere(client, admin_headers):
    assert client.get(f"{RULES}/999", headers=admin_headers).status_code == 404
    assert client.put(f"{RULES}/999", json={"description": "x"}, headers=admin_headers).status_code == 404
    assert client.post(f"{RULES}/999/publish", json={"version": 1, "mode": "active"},
                       headers=admin_headers).status_code == 404
    assert client.post(f"{RULES}/999/disable", headers=admin_headers).status_code == 404
    for tail in ("hits", "snoozes", "stats"):
        assert client.get(f"{RULES}/999/{tail}", headers=admin_headers).status_code == 404
    assert client.get(f"{RULES}/0", headers=admin_headers).status_code == 422


def test_a_taken_name_is_a_409_and_stores_nothing(client, admin_headers, db):
    create_rule(client, admin_headers)
    response = client.post(RULES, json=rule_body(), headers=admin_headers)
    assert response.status_code == 409 and "exists" in response.json()["detail"]
    assert rows(db, "SELECT count(*) FROM rules")[0][0] == 1
    assert rows(db, "SELECT count(*) FROM rule_versions")[0][0] == 1


@pytest.mark.parametrize(("override", "field"), [
    ({"action": {"risk": 0, "reason": "r"}}, "action.risk"),
    ({"action": {"risk": 101, "reason": "r"}}, "action.risk"),
    ({"action": {"risk": 50.5, "reason": "r"}}, "action.risk"),
    ({"action": {"risk": "50", "reason": "r"}}, "action.risk"),
    ({"action": {"risk": 50, "reason": ""}}, "action.reason"),
    ({"action": {"risk": 50, "reason": " \t "}}, "action.reason"),
    ({"action": {"risk": 50}}, "action.reason"),
    ({"action": None}, "action"),
    ({"name": ""}, "name"),
    ({"name": "   "}, "name"),
    ({"name": "x" * 101}, "name"),
    ({"name": "bad\u0000name"}, "name"),
    ({"condition": ""}, "condition"),
    ({"mode": "disabled"}, "mode"),
    ({"extra": 1}, "extra"),
])
def test_bad_rules_are_refused_naming_the_field_and_nothing_is_stored(client, admin_headers, db, override, field):
    response = client.post(RULES, json=rule_body(**override), headers=admin_headers)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["field"] == field
    assert rows(db, "SELECT count(*) FROM rules")[0][0] == 0
    assert audit_events(db) == []


@pytest.mark.parametrize(("condition", "line", "column"), [
    ("tx.amount >", 1, None),
    ("tx.amount > 5 &&\n  nosuch.field == 1", 2, 3),
    ("nosuch_function(tx.amount)", 1, 1),
    ('account_count("2400h") > 3', 1, None),
    ('in_list(tx.counterparty, "blocked")', 1, None),
    ("x" * 4097, None, None),
])
def test_a_condition_that_does_not_compile_names_condition_with_its_position(client, admin_headers, db, condition,
                                                                             line, column):
    response = client.post(RULES, json=rule_body(condition=condition), headers=admin_headers)
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["field"] == "condition" and error["loc"] == ["body", "condition"]
    assert isinstance(error["line"], int) and isinstance(error["column"], int)
    assert f"line {error['line']}, column {error['column']}" in error["msg"]
    if line is not None:
        assert error["line"] == line
    if column is not None:
        assert error["column"] == column
    assert rows(db, "SELECT count(*) FROM rules")[0][0] == 0


def test_a_condition_naming_an_unknown_list_is_refused_until_the_list_exists(client, admin_headers, db):
    condition = 'tx.amount > 1 &&\n  in_list("blocked", tx.counterparty)'
    response = client.post(RULES, json=rule_body(condition=condition), headers=admin_headers)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["field"] == "condition" and "blocked" in error["msg"]
    assert (error["line"], error["column"]) == (2, 11)
    assert client.put("/api/lists/blocked", json={"items": ["Bad Ltd"]}, headers=admin_headers).status_code == 200
    assert client.post(RULES, json=rule_body(condition=condition), headers=admin_headers).status_code == 201


def test_a_bad_edit_stores_no_version(client, admin_headers, db):
    rule = create_rule(client, admin_headers)
    for body, field in [({"condition": "tx.amount >"}, "condition"), ({"action": {"risk": 0, "reason": "r"}},
                                                                     "action.risk"),
                        ({"name": "renamed"}, "name")]:
        response = client.put(f"{RULES}/{rule['id']}", json=body, headers=admin_headers)
        assert response.status_code == 422 and response.json()["detail"][0]["field"] == field, body
    assert rows(db, "SELECT count(*) FROM rule_versions")[0][0] == 1
    assert [e.action for e in audit_events(db)] == ["rule.created"]


def test_agents_may_not_touch_rules_and_analysts_only_read_them(client, admin_headers, analyst_headers,
                                                                agent_headers, db):
    rule = create_rule(client, admin_headers)
    rid = rule["id"]
    for method, path, body in [
        ("get", RULES, None), ("get", f"{RULES}/{rid}", None), ("post", RULES, rule_body("Other")),
        ("put", f"{RULES}/{rid}", {"description": "x"}), ("post", f"{RULES}/{rid}/publish",
                                                          {"version": 1, "mode": "active"}),
        ("post", f"{RULES}/{rid}/disable", None), ("get", f"{RULES}/{rid}/hits", None),
        ("get", f"{RULES}/{rid}/stats", None), ("get", f"{RULES}/{rid}/snoozes", None),
        ("post", f"{RULES}/{rid}/snoozes", {"account_id": "a", "until": "2999-01-01T00:00:00Z", "reason": "r"}),
    ]:
        assert client.request(method, path, json=body, headers=agent_headers).status_code == 403, path
    for method, path, body in [
        ("post", RULES, rule_body("Other")), ("put", f"{RULES}/{rid}", {"description": "x"}),
        ("post", f"{RULES}/{rid}/publish", {"version": 1, "mode": "active"}), ("post", f"{RULES}/{rid}/disable", None),
    ]:
        assert client.request(method, path, json=body, headers=analyst_headers).status_code == 403, path
    for path in (RULES, f"{RULES}/{rid}", f"{RULES}/{rid}/hits", f"{RULES}/{rid}/stats", f"{RULES}/{rid}/snoozes"):
        assert client.get(path, headers=analyst_headers).status_code == 200, path
    assert client.get(RULES).status_code == 401
    assert [e.action for e in audit_events(db)] == ["rule.created"]
    assert client.get(f"{RULES}/{rid}", headers=admin_headers).json()["mode"] == "draft"


def test_an_endpoint_subscribed_to_rule_published_gets_a_delivery_for_each_publish(client, admin_headers, db):
    endpoint = client.post("/api/webhooks/endpoints", json={"url": "https://hooks.example.com/rules",
                                                            "event_types": ["rule.published"]}, headers=admin_headers)
    assert endpoint.status_code == 201, endpoint.text
    rule = create_rule(client, admin_headers)
    client.post(f"{RULES}/{rule['id']}/publish", json={"version": 1, "mode": "active"}, headers=admin_headers)
    client.post(f"{RULES}/{rule['id']}/disable", headers=admin_headers)
    deliveries = rows(db, "SELECT e.event_type, e.payload->>'mode' FROM webhook_deliveries d"
                          " JOIN webhook_events e ON e.id = d.event_id WHERE d.endpoint_id = :id",
                      id=endpoint.json()["id"])
    assert [tuple(d) for d in deliveries] == [("rule.published", "active")]
