"""Lists API: replace, add, remove, read; audited with before/after, each change moves the rule generation."""

import pytest

from tests.rules.test_api_rules import audit_events, generation, rows

LISTS = "/api/lists"


def test_put_creates_a_list_and_then_replaces_its_items(client, admin_headers, analyst_headers, db):
    created = client.put(f"{LISTS}/blocked", json={"description": "Never pay", "items": ["b", "a", "a"]},
                         headers=admin_headers)
    assert created.status_code == 200, created.text
    assert (created.json()["items"], created.json()["item_count"], created.json()["description"]) == (
        ["a", "b"], 2, "Never pay")
    replaced = client.put(f"{LISTS}/blocked", json={"items": ["c", "b"]}, headers=admin_headers).json()
    assert (replaced["items"], replaced["description"]) == (["b", "c"], "Never pay")  # description kept
    events = audit_events(db, "list.")
    assert [(e.action, e.entity_id, e.before, e.after) for e in events] == [
        ("list.replaced", "blocked", None, {"description": "Never pay", "items": ["a", "b"]}),
        ("list.replaced", "blocked", {"description": "Never pay", "items": ["a", "b"]},
         {"description": "Never pay", "items": ["b", "c"]}),
    ]
    assert generation(db) == 2
    # The same items again change nothing and record nothing.
    client.put(f"{LISTS}/blocked", json={"items": ["b", "c"]}, headers=admin_headers)
    assert len(audit_events(db, "list.")) == 2 and generation(db) == 2
    assert client.get(f"{LISTS}/blocked", headers=analyst_headers).json()["items"] == ["b", "c"]


def test_items_are_added_and_removed_one_by_one(client, admin_headers, db):
    client.put(f"{LISTS}/mules", json={"items": ["x"]}, headers=admin_headers)
    added = client.post(f"{LISTS}/mules/items", json={"items": ["y", "x", "z y"]}, headers=admin_headers)
    assert added.status_code == 200 and added.json()["items"] == ["x", "y", "z y"]
    removed = client.delete(f"{LISTS}/mules/items/z y", headers=admin_headers)
    assert removed.status_code == 200 and removed.json()["items"] == ["x", "y"]
    assert client.delete(f"{LISTS}/mules/items/nope", headers=admin_headers).status_code == 404
    client.post(f"{LISTS}/mules/items", json={"items": ["ACME/Ltd"]}, headers=admin_headers)
    slashed = client.delete(f"{LISTS}/mules/items/ACME/Ltd", headers=admin_headers)
    assert slashed.status_code == 200 and slashed.json()["items"] == ["x", "y"]
    events = [(e.action, e.before, e.after) for e in audit_events(db, "list.")]
    assert events[1:3] == [("list.items_added", None, {"items": ["y", "z y"]}),
                           ("list.item_removed", {"item": "z y"}, None)]
    assert generation(db) == 5


def test_lists_are_listed_with_their_item_counts(client, admin_headers, analyst_headers):
    client.put(f"{LISTS}/b-list", json={"items": ["1", "2", "3"]}, headers=admin_headers)
    client.put(f"{LISTS}/a_list", json={"items": []}, headers=admin_headers)
    listed = client.get(LISTS, headers=analyst_headers).json()
    assert [(item["name"], item["item_count"]) for item in listed] == [("a_list", 0), ("b-list", 3)]


def test_unknown_lists_are_404(client, admin_headers):
    assert client.get(f"{LISTS}/nope", headers=admin_headers).status_code == 404
    assert client.post(f"{LISTS}/nope/items", json={"items": ["a"]}, headers=admin_headers).status_code == 404
    assert client.delete(f"{LISTS}/nope/items/a", headers=admin_headers).status_code == 404


@pytest.mark.parametrize(("name", "body", "field"), [
    ("Blocked", {"items": ["a"]}, "name"),
    ("with space", {"items": ["a"]}, "name"),
    ("x" * 65, {"items": ["a"]}, "name"),
    ("ok", {"items": [""]}, "items.0"),
    ("ok", {"items": ["a", "x" * 257]}, "items.1"),
    ("ok", {"items": ["nul\u0000"]}, "items.0"),
    ("ok", {"items": "a"}, "items"),
    ("ok", {}, "items"),
    ("ok", {"items": [str(n) for n in range(10_001)]}, "items"),
    ("ok", {"items": [], "description": "d" * 1001}, "description"),
])
def test_bad_lists_are_refused_naming_the_field_and_nothing_is_stored(client, admin_headers, db, name, body, field):
    response = client.put(f"{LISTS}/{name}", json=body, headers=admin_headers)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["field"] == field
    assert rows(db, "SELECT count(*) FROM rule_lists")[0][0] == 0 and audit_events(db, "list.") == []


def test_adding_nothing_is_refused(client, admin_headers):
    client.put(f"{LISTS}/l", json={"items": []}, headers=admin_headers)
    response = client.post(f"{LISTS}/l/items", json={"items": []}, headers=admin_headers)
    assert response.status_code == 422 and response.json()["detail"][0]["field"] == "items"


def test_only_admins_change_lists_analysts_read_and_agents_are_refused(client, admin_headers, analyst_headers,
                                                                       agent_headers, db):
    client.put(f"{LISTS}/l", json={"items": ["a"]}, headers=admin_headers)
    writes = [("put", f"{LISTS}/l", {"items": []}), ("post", f"{LISTS}/l/items", {"items": ["b"]}),
              ("delete", f"{LISTS}/l/items/a", None)]
    for headers in (analyst_headers, agent_headers):
        for method, path, body in writes:
            assert client.request(method, path, json=body, headers=headers).status_code == 403, (method, path)
    for path in (LISTS, f"{LISTS}/l"):
        assert client.get(path, headers=agent_headers).status_code == 403
        assert client.get(path, headers=analyst_headers).status_code == 200
    assert client.get(f"{LISTS}/l", headers=admin_headers).json()["items"] == ["a"]
    assert len(audit_events(db, "list.")) == 1
