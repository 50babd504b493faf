"""The rules and lists screens over HTTP: roles, the editor's check, confirm steps, field errors as sentences."""

import re

import pytest
from markupsafe import escape
from sqlalchemy import func, select

from app.audit.models import AuditEvent
from app.rules.models import Rule, RuleListItem
from tests.web.conftest import meta_csrf
from tests.web.rules_helpers import text_of

CONDITION = 'tx.amount > 10000 && account_count("24h") == 0'


def post(client, page: str, url: str, data: dict, **headers):
    token = meta_csrf(client.get(page).text)
    return client.post(url, data={"csrf_token": token, **data}, headers=headers, follow_redirects=False)


def create_rule(client, name: str = "Large first payment", condition: str = CONDITION):
    return post(client, "/admin/rules", "/admin/rules",
                {"name": name, "condition": condition, "risk": "80", "reason": "Large first payment"})


def rule_id(db, name: str) -> int:
    db.expire_all()
    return db.scalar(select(Rule.id).where(Rule.name == name))


def audit_count(db, action: str) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action))


def test_agents_may_not_see_rules_and_analysts_read_without_forms(client, sign_in, users, db):
    sign_in("admin", username="root")
    assert create_rule(client).status_code == 200
    client.cookies.clear()
    sign_in("analyst", username="erin")
    page = client.get("/admin/rules")
    assert page.status_code == 200 and "Large first payment" in page.text
    assert "Create draft rule" not in page.text and "only admins change them" in page.text
    detail = client.get(f"/admin/rules/{rule_id(db, 'Large first payment')}")
    assert detail.status_code == 200 and str(escape(CONDITION)) in detail.text
    assert "Publish active" not in detail.text
    refused = post(client, "/admin/rules", f"/admin/rules/{rule_id(db, 'Large first payment')}/publish",
                   {"version": "1", "mode": "active", "confirm": "yes"})
    assert refused.status_code == 403
    client.cookies.clear()
    sign_in("agent", username="bot")
    assert client.get("/admin/rules").status_code == 403
    assert client.get("/admin/lists").status_code == 403


def test_the_check_shows_the_error_position_or_what_the_condition_uses(client, sign_in):
    sign_in("admin")
    bad = post(client, "/admin/rules", "/admin/rules/check", {"condition": "tx.amount >\n  nope > 3", "editor": "new"},
               **{"HX-Request": "true"})
    assert bad.status_code == 200
    assert re.search(r"Line 2, column \d+:", bad.text), bad.text
    assert 'id="condition-check-new"' in bad.text
    good = post(client, "/admin/rules", "/admin/rules/check", {"condition": CONDITION, "editor": "edit"})
    assert "Condition OK." in good.text and "Uses window 24h." in good.text
    assert 'id="condition-check-edit"' in good.text


def test_a_condition_that_does_not_compile_is_a_labelled_sentence_and_nothing_is_stored(client, sign_in, db):
    sign_in("admin")
    response = create_rule(client, condition="tx.amount > ")
    assert response.status_code == 422
    assert re.search(r"Condition: line 1, column \d+", response.text), response.text
    assert db.scalar(select(func.count()).select_from(Rule)) == 0
    risk = post(client, "/admin/rules", "/admin/rules",
                {"name": "R", "condition": CONDITION, "risk": "250", "reason": "x"})
    assert risk.status_code == 422 and "Not saved. Risk must be at most 100." in risk.text


@pytest.mark.parametrize(("fields", "sentences"), [
    ({"risk": "abc"}, ["Risk must be a whole number."]),
    ({"risk": "0"}, ["Risk must be at least 1."]),
    ({"name": " ", "reason": ""}, ["Name is required.", "Reason is required."]),
    ({"name": "N" * 101}, ["Name must be at most 100 characters long."]),
])
def test_a_refused_rule_form_names_each_field_in_a_sentence_never_in_the_validators_words(
        client, sign_in, db, fields, sentences):
    sign_in("admin")
    response = post(client, "/admin/rules", "/admin/rules",
                    {"name": "R", "condition": CONDITION, "risk": "80", "reason": "x", **fields})
    shown = text_of(response.text)
    assert response.status_code == 422 and f"Not saved. {' '.join(sentences)}" in shown, shown
    assert not re.search(r"Input should|Value should|after validation|action\.risk", shown)
    assert db.scalar(select(func.count()).select_from(Rule)) == 0


def test_publishing_asks_first_then_runs_the_version_and_audits_it(client, sign_in, db):
    sign_in("admin")
    create_rule(client)
    rid = rule_id(db, "Large first payment")
    asked = post(client, f"/admin/rules/{rid}", f"/admin/rules/{rid}/publish", {"version": "1", "mode": "active"})
    assert asked.status_code == 200 and 'role="alertdialog"' in asked.text
    assert "Publish version 1 of Large first payment in active mode?" in asked.text
    assert db.scalar(select(Rule.mode).where(Rule.id == rid)) == "draft"
    done = post(client, f"/admin/rules/{rid}", f"/admin/rules/{rid}/publish",
                {"version": "1", "mode": "active", "confirm": "yes"})
    assert done.status_code == 200 and "Published version 1 in active mode." in done.text
    db.expire_all()
    assert db.scalar(select(Rule.mode).where(Rule.id == rid)) == "active"
    assert audit_count(db, "rule.published") == 1

    saved = post(client, f"/admin/rules/{rid}", f"/admin/rules/{rid}",
                 {"condition": "tx.amount > 5000", "risk": "80", "reason": "Large first payment"})
    assert "Saved version 2 as a draft; v1 keeps running" in saved.text
    post(client, f"/admin/rules/{rid}", f"/admin/rules/{rid}/publish", {"version": "2", "mode": "shadow",
                                                                          "confirm": "yes"})
    back = post(client, f"/admin/rules/{rid}", f"/admin/rules/{rid}/publish", {"version": "1", "mode": "active"})
    assert "Roll back Large first payment to version 1?" in back.text
    post(client, f"/admin/rules/{rid}", f"/admin/rules/{rid}/publish", {"version": "1", "mode": "active",
                                                                          "confirm": "yes"})
    assert audit_count(db, "rule.rolled_back") == 1

    side = client.get(f"/admin/rules/{rid}?left=1&right=2")
    assert "diff-changed" in side.text and "tx.amount &gt; 5000" in side.text

    asked = post(client, f"/admin/rules/{rid}", f"/admin/rules/{rid}/disable", {})
    assert "Disable Large first payment?" in asked.text
    post(client, f"/admin/rules/{rid}", f"/admin/rules/{rid}/disable", {"confirm": "yes"})
    db.expire_all()
    assert db.scalar(select(Rule.mode).where(Rule.id == rid)) == "disabled"


@pytest.mark.parametrize(("version", "mode", "sentence"), [
    ("9", "active", "Version: choose one of the rule&#39;s versions."), ("1", "loud", "Mode: choose shadow or active."),
])
def test_a_publish_of_an_unknown_version_or_mode_is_refused_in_words(client, sign_in, db, version, mode, sentence):
    sign_in("admin")
    create_rule(client)
    rid = rule_id(db, "Large first payment")
    response = post(client, f"/admin/rules/{rid}", f"/admin/rules/{rid}/publish",
                    {"version": version, "mode": mode, "confirm": "yes"})
    assert response.status_code == 422 and sentence in response.text


def items(db, name: str) -> list[str]:
    db.expire_all()
    return sorted(db.scalars(select(RuleListItem.value).where(RuleListItem.list_name == name)))


def test_lists_are_created_then_replaced_added_to_and_trimmed_after_a_confirmation(client, sign_in, db):
    sign_in("admin")
    made = post(client, "/admin/lists", "/admin/lists", {"name": "blocked", "items": "Bad Co\nWorse Ltd\n\n"})
    assert made.status_code == 200 and "Created blocked: 2 items." in made.text
    asked = post(client, "/admin/lists", "/admin/lists/blocked", {"items": "Bad Co\nNew One"})
    assert "Replace the items of blocked?" in asked.text and "removes Worse Ltd; adds New One" in asked.text
    assert items(db, "blocked") == ["Bad Co", "Worse Ltd"]
    post(client, "/admin/lists", "/admin/lists/blocked", {"items": "Bad Co\nNew One\n", "confirm": "yes"})
    assert items(db, "blocked") == ["Bad Co", "New One"]
    asked = post(client, "/admin/lists", "/admin/lists/blocked/items", {"items": "Third"})
    assert "Add 1 item to blocked?" in asked.text and items(db, "blocked") == ["Bad Co", "New One"]
    post(client, "/admin/lists", "/admin/lists/blocked/items", {"items": "Third\n", "confirm": "yes"})
    asked = post(client, "/admin/lists", "/admin/lists/blocked/items/remove", {"value": "Bad Co"})
    assert "Remove Bad Co from blocked?" in asked.text
    post(client, "/admin/lists", "/admin/lists/blocked/items/remove", {"value": "Bad Co", "confirm": "yes"})
    assert items(db, "blocked") == ["New One", "Third"]
    assert [audit_count(db, a) for a in ("list.replaced", "list.items_added", "list.item_removed")] == [2, 1, 1]

    bad = post(client, "/admin/lists", "/admin/lists", {"name": "Not OK!", "items": "x"})
    assert bad.status_code == 422 and "List name: use 1–64 lowercase letters" in bad.text
    long_value = post(client, "/admin/lists", "/admin/lists/blocked/items", {"items": "x" * 300, "confirm": "yes"})
    assert long_value.status_code == 422 and "Items, line 1 must be at most 256 characters long." in long_value.text



def test_the_backtest_panel_answers_hits_outcomes_precision_and_samples(client, sign_in, users, db):
    agent = users.headers("agent")
    for n, amount in enumerate(("12500.00", "40.00", "15000.00", "9.99")):
        response = client.post("/transactions", headers=agent, json={
            "reference": f"bt-{n}", "account_id": f"acct_bt_{n}", "amount": amount, "currency": "EUR"})
        assert response.status_code in (200, 201), response.text
    sign_in("admin", username="root")
    create_rule(client, condition="tx.amount > 10000")
    rid = rule_id(db, "Large first payment")
    panel = post(client, f"/admin/rules/{rid}", f"/admin/rules/{rid}/backtest", {"version": "1"},
                 **{"HX-Request": "true"})
    assert panel.status_code == 200, panel.text
    shown = text_of(panel.text)
    assert "Evaluated 4 Hits 2 Hit rate 50.0 %" in shown and "Not reviewed (no case) 2" in shown
    assert all(f'href="/admin/rules/transactions/bt-{n}"' in panel.text for n in (0, 2))
    assert audit_count(db, "rule.backtested") == 1

    typed = post(client, f"/admin/rules/{rid}", f"/admin/rules/{rid}/backtest",
                 {"source": "editor", "condition": "tx.amount < 50", "risk": "80", "reason": "small"})
    assert typed.status_code == 200 and "The condition in the editor (not saved)" in typed.text
    assert "<h1>" in typed.text  # without HTMX: the whole rule page, the result in place
    bad = post(client, f"/admin/rules/{rid}", f"/admin/rules/{rid}/backtest",
               {"source": "editor", "condition": "tx.amount <", "risk": "80", "reason": "x"}, **{"HX-Request": "true"})
    assert bad.status_code == 422 and re.search(r"Not run\. Condition: line 1, column \d+", bad.text), bad.text
    day = post(client, f"/admin/rules/{rid}", f"/admin/rules/{rid}/backtest", {"version": "1", "since": "soon"},
               **{"HX-Request": "true"})
    assert day.status_code == 422 and "Since (UTC) must be a date such as 2026-11-30." in day.text
