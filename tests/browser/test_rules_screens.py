"""The rules screens in a real browser, at 1366 and 390 px: the editor's check as you type, publish with a
confirmation, versions side by side, lists, and "Why flagged" with a snooze on a case page.

With RISKDESK_SCREENSHOTS set to a directory, each screen is saved there at both widths.
"""

import os
import re

import pytest
from playwright.sync_api import Page, expect

from app.audit.service import Actor
from app.rules import lists, service
from app.rules.schemas import RuleCreate
from app.transactions import flows
from app.transactions.schemas import TransactionCreate
from tests.browser.conftest import login
from tests.web.rules_helpers import case_of

SHOTS = os.environ.get("RISKDESK_SCREENSHOTS")
WIDTHS = (1366, 390)
ADMIN = Actor(name="root", id=None, role="admin")


def looked_at(page: Page, name: str, width: int) -> None:
    """Nothing scrolls sideways at this width; the screen saved for a person to look at."""
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{name} scrolls sideways by {overflow}px at {width}px"
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, f"rules-{name}-{width}.png"), full_page=True, caret="initial")


def confirmed(page: Page, opener: str, question: str, button: str, done: str, *, shot: tuple[str, int]) -> None:
    """Click `opener`, see the confirm step ask `question`, confirm with `button`, see `done`."""
    page.get_by_role("button", name=opener).click()
    dialog = page.get_by_role("alertdialog")
    expect(dialog).to_contain_text(question)
    looked_at(page, *shot)
    dialog.get_by_role("button", name=button).click()
    expect(page.get_by_role("status").filter(has_text=done)).to_be_visible()


def a_rule(db, name: str = "Large first payment", condition: str = 'tx.amount > 10000 && account_count("24h") == 0',
           mode: str = "draft", risk: int = 80) -> int:
    created = service.create(session=db, actor=ADMIN, data=RuleCreate.model_validate({
        "name": name, "condition": condition, "action": {"risk": risk, "reason": f"{name} reason"}, "mode": mode}))
    db.commit()
    return created.id


def a_payment(db, reference: str, amount: str, *, account: str = "acct_rules", currency: str = "EUR",
              counterparty: str = "Nordwind GmbH", metadata: dict | None = None) -> None:
    """A payment as an agent posts it: the running rules see it (app/transactions/flows.py)."""
    flows.create(session=db, actor=Actor(name="agent", id=None, role="agent"), data=TransactionCreate(
        account_id=account, reference=reference, amount=amount, currency=currency, counterparty=counterparty,
        description=f"Payment {reference}", metadata=metadata or {}))
    db.commit()


@pytest.mark.parametrize("width", WIDTHS)
def test_the_editor_checks_as_you_type_and_publishing_asks_first(page: Page, users, db, width):
    page.set_viewport_size({"width": width, "height": 900})
    users.create("admin", username="root")
    login(page, "root")
    page.get_by_role("link", name="Rules").click()
    expect(page.get_by_role("heading", name="Detection rules")).to_be_visible()
    looked_at(page, "list-empty", width)

    editor = page.get_by_label("Condition (CEL)")
    editor.press_sequentially('tx.amount > 10000 && nope("24h") == 0', delay=5)
    check = page.locator("#condition-check-new")
    expect(check).to_contain_text(re.compile(r"Line 1, column \d+:"))
    looked_at(page, "editor-error", width)
    editor.fill("")
    editor.press_sequentially('tx.amount > 10000 && account_count("24h") == 0', delay=5)
    expect(check).to_contain_text("Condition OK.")
    expect(check).to_contain_text("Uses window 24h.")
    page.get_by_label("Name").fill("Large first payment")
    page.get_by_label("Risk (1–100)").fill("80")
    page.get_by_label("Reason shown on the case").fill("Large payment, no recent history")
    page.get_by_role("button", name="Create draft rule").click()
    expect(page.get_by_role("status").filter(has_text="Created Large first payment")).to_be_visible()
    looked_at(page, "list", width)

    page.get_by_role("link", name="Large first payment").click()
    confirmed(page, "Publish active…", "Publish version 1 of Large first payment in active mode?",
              "Publish v1 (active)", "Published version 1 in active mode.", shot=("publish-confirm", width))
    expect(page.get_by_role("heading", level=1)).to_contain_text("active")

    page.get_by_label("Condition (CEL)").fill('tx.amount > 5000\n&& account_count("24h") == 0')
    page.get_by_role("button", name="Save as version 2").click()
    expect(page.get_by_role("status").filter(has_text="Saved version 2 as a draft")).to_be_visible()
    expect(page.locator("#compare .diff-changed")).to_have_count(1)  # running v1 next to the new draft
    looked_at(page, "rule-versions", width)


@pytest.mark.parametrize("width", WIDTHS)
def test_lists_change_after_a_confirmation(page: Page, users, db, width):
    page.set_viewport_size({"width": width, "height": 900})
    users.create("admin", username="root")
    lists.replace(session=db, actor=ADMIN, name="blocked_counterparties", description="Counterparties we do not pay",
                  items=["Crypto Quick Exchange", "Gulf Trading Co"], description_given=True)
    db.commit()
    login(page, "root")
    page.goto("/admin/lists")
    looked_at(page, "lists", width)
    confirmed(page, "Remove Gulf Trading Co from blocked_counterparties",
              "Remove Gulf Trading Co from blocked_counterparties?", "Remove Gulf Trading Co",
              "Removed Gulf Trading Co", shot=("lists-confirm", width))
    expect(page.locator('[data-list="blocked_counterparties"] .item-value')).to_have_text(["Crypto Quick Exchange"])


@pytest.mark.parametrize("width", WIDTHS)
def test_a_case_says_why_it_was_flagged_and_an_analyst_snoozes_the_rule(page: Page, users, db, width):
    page.set_viewport_size({"width": width, "height": 900})
    users.create("analyst", username="erin")
    a_rule(db, mode="active")
    a_payment(db, "big-first", "12500.00")
    case_id = case_of(db, "big-first")
    assert case_id is not None, "the active rule opened no case"
    login(page, "erin")
    page.goto(f"/cases/{case_id}")
    why = page.locator("#why-flagged")
    expect(why).to_contain_text(
        "Large first payment (v1): tx.amount 12,500.00 EUR > 10,000.00 EUR; account_count(24h) = 0")
    looked_at(page, "case-why-flagged", width)
    why.get_by_text("Snooze a rule for account").click()
    why.get_by_label("Reason for the snooze").fill("Known payroll run, confirmed by phone")
    why.get_by_role("button", name="Snooze rule").click()
    expect(why.get_by_role("status")).to_contain_text("Snoozed Large first payment for acct_rules until")
    expect(why).to_contain_text("Known payroll run")
    looked_at(page, "case-snoozed", width)


@pytest.mark.parametrize("width", WIDTHS)
def test_a_rules_recent_hits_show_money_as_every_screen_does(page: Page, users, db, width):
    page.set_viewport_size({"width": width, "height": 900})
    users.create("admin", username="root")
    rid = a_rule(db, condition='tx.currency in ["USD", "EUR"] && tx.amount > 10000', mode="shadow")
    a_payment(db, "big-usd", "14372.18", currency="USD")
    login(page, "root")
    page.goto(f"/admin/rules/{rid}")
    hits = page.get_by_role("region", name="Recent hits")
    expect(hits).to_contain_text("tx.amount 14,372.18 USD > 10,000.00 USD")
    expect(hits).not_to_contain_text("14372.18")
    looked_at(page, "recent-hits-money", width)
