"""The case page's "Why flagged" panel over HTTP: each hit in words with the values read, and snoozes."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from app.rules.models import RuleSnooze
from tests.web.rules_helpers import case_of, text_of
from tests.web.test_rules_screens import audit_count, create_rule, post, rule_id


def a_flagged_payment(client, db, agent: dict, reference: str, amount: str, currency: str = "EUR", *,
                      expect_case: bool = True) -> int | None:
    """A payment posted by an agent that the running rules flag; the case the hot path opened."""
    created = client.post("/transactions", headers=agent, json={
        "reference": reference, "account_id": "acct_why", "amount": amount, "currency": currency,
        "counterparty": "Nordwind GmbH", "description": f"Payment {reference}"})
    assert created.status_code in (200, 201), created.text
    scored = client.post(f"/transactions/{reference}/risk-scores", headers=agent, json={
        "score": 20, "model": "fraud-gbm", "reasons": [{"code": "new_device", "description": "New device"}]})
    assert scored.status_code in (200, 201), scored.text
    case_id = case_of(db, reference)
    assert (case_id is not None) == expect_case, f"{reference}: case {case_id}"
    return case_id


def test_a_case_says_why_it_was_flagged_and_an_analyst_snoozes_the_rule_for_the_account(client, sign_in, users, db):
    agent = users.headers("agent")
    sign_in("admin", username="root")
    create_rule(client)
    rid = rule_id(db, "Large first payment")
    post(client, f"/admin/rules/{rid}", f"/admin/rules/{rid}/publish", {"version": "1", "mode": "active",
                                                                          "confirm": "yes"})
    case_id = a_flagged_payment(client, db, agent, "why-1", "12500.00")
    client.cookies.clear()
    sign_in("analyst", username="erin")
    assert f'hx-get="/cases/{case_id}/why-flagged"' in client.get(f"/cases/{case_id}").text
    panel = client.get(f"/cases/{case_id}/why-flagged")
    read = "Large first payment (v1): tx.amount 12,500.00 EUR > 10,000.00 EUR; account_count(24h) = 0"
    assert read in text_of(panel.text)
    assert "<code>new_device</code>" in panel.text  # the score's reasons beside the rule's

    past = post(client, f"/cases/{case_id}", f"/cases/{case_id}/snoozes",
                {"rule_id": str(rid), "until": "2020-01-01T00:00", "reason": "Known payroll run"})
    assert past.status_code == 422 and "Until (UTC) must be in the future." in past.text
    done = post(client, f"/cases/{case_id}", f"/cases/{case_id}/snoozes",
                {"rule_id": str(rid), "until": "2099-01-01T00:00", "reason": "Known payroll run"})
    assert done.status_code == 422 and "Until (UTC) must be at most 90 days ahead." in done.text
    soon = (datetime.now(UTC) + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
    done = post(client, f"/cases/{case_id}", f"/cases/{case_id}/snoozes",
                {"rule_id": str(rid), "until": soon, "reason": "Known payroll run"})
    assert done.status_code == 200, done.text
    assert "Snoozed Large first payment for acct_why until" in done.text and "Known payroll run" in done.text
    db.expire_all()
    [snooze] = db.scalars(select(RuleSnooze)).all()
    assert (snooze.rule_id, snooze.account_id, snooze.reason) == (rid, "acct_why", "Known payroll run")
    assert audit_count(db, "rule.snoozed") == 1
    other = post(client, f"/cases/{case_id}", f"/cases/{case_id}/snoozes",
                 {"rule_id": "999", "until": soon, "reason": "x"})
    assert other.status_code == 422 and "Rule: choose one of the rules that hit this case." in other.text


def test_the_rule_page_lists_its_hits_and_each_links_to_the_transaction_and_its_case(client, sign_in, users, db):
    agent = users.headers("agent")
    sign_in("admin", username="root")
    create_rule(client, condition="tx.amount > 5000")
    rid = rule_id(db, "Large first payment")
    post(client, f"/admin/rules/{rid}", f"/admin/rules/{rid}/publish", {"version": "1", "mode": "shadow",
                                                                          "confirm": "yes"})
    assert a_flagged_payment(client, db, agent, "seen-1", "9500.00", expect_case=False) is None
    page = client.get(f"/admin/rules/{rid}")
    assert 'href="/admin/rules/transactions/seen-1"' in page.text and "shadow" in text_of(page.text)
    tx = client.get("/admin/rules/transactions/seen-1")
    assert tx.status_code == 200
    assert "Large first payment (v1): tx.amount 9,500.00 EUR > 5,000" in text_of(tx.text)
    assert "No review case for this transaction." in text_of(tx.text)
    assert client.get("/admin/rules/transactions/nope").status_code == 404
