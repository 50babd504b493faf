"""The analyst's path in a real browser: queue → case → decision → queue, conflicts in place, XSS inert."""

import re

from playwright.sync_api import Dialog, Page, expect
from sqlalchemy import select

from app.audit.service import Actor
from app.cases import claims
from app.cases.models import ReviewCase
from app.risk import service as risk
from app.risk.schemas import Reason, RiskScoreCreate
from app.transactions import flows as transactions
from app.transactions.schemas import TransactionCreate
from tests.browser.conftest import login

XSS = '<img src=x onerror="document.title=\'pwned\'"><script>document.title="pwned"</script>'


def scored_case(db, reference: str, *, score: int = 90, amount: str = "250.00", currency: str = "USD",
                 counterparty: str = "Nordwind GmbH", reason: str = "9 payments in 10 minutes") -> int | None:
    """A transaction with a score, as an agent would post it; returns the case it opened (None: not flagged)."""
    agent = Actor(name="scoring-agent", id=None, role="agent")
    transactions.create(session=db, actor=agent, data=TransactionCreate(
        account_id="acct_browser", reference=reference, amount=amount, currency=currency,
        counterparty=counterparty, description=f"Payment {reference}",
    ))
    created = risk.post_score(session=db, actor=agent, reference=reference, data=RiskScoreCreate(
        score=score, model="fraud-gbm", model_version="2026.11",
        reasons=[Reason(code="velocity", description=reason)],
    ))
    db.commit()
    return created.case_id


def flagged_case(db, reference: str, **details) -> int:
    """Like scored_case, for a score that must open a case; returns its id."""
    case_id = scored_case(db, reference, **details)
    assert case_id is not None, f"{reference} opened no case"
    return case_id


def case_state(db, case_id: int) -> str:
    db.expire_all()
    return db.execute(select(ReviewCase.state).where(ReviewCase.id == case_id)).scalar_one()


def test_analyst_claims_the_top_case_decides_it_and_the_queue_updates(page: Page, users, db):
    users.create("analyst", username="alice")
    top = flagged_case(db, "pay-top", score=95, reason="Card testing pattern")
    other = flagged_case(db, "pay-other", score=75)

    login(page, "alice")
    rows = page.locator("#queue-rows tr.queue-row")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text(f"#{top}")  # highest risk first
    expect(page.locator("#queue-counts")).to_contain_text("2")

    page.get_by_role("button", name="Next case").click()
    expect(page).to_have_url(re.compile(rf"/cases/{top}$"))
    expect(page.get_by_role("heading", name=re.compile(f"Case #{top}"))).to_be_visible()
    expect(page.get_by_text("Claimed by you")).to_be_visible()
    expect(page.locator("#scores-panel").get_by_text("Card testing pattern")).to_be_visible()
    expect(page.locator("#case-main")).to_contain_text("pay-top")

    # A reject without a note is refused in place, nothing stored.
    page.get_by_label("Reason code").select_option("suspected_fraud")
    page.get_by_role("button", name="Reject").click()
    expect(page.get_by_text("a note is required to reject")).to_be_visible()
    assert case_state(db, top) == "in_review"

    page.get_by_label("Note").fill("Card testing from a new device")
    page.get_by_role("button", name="Reject").click()
    expect(page.get_by_text(f"Case {top} rejected.")).to_be_visible()
    expect(page.locator(".timeline")).to_contain_text("alice rejected the case: suspected fraud")
    assert case_state(db, top) == "rejected"

    page.get_by_role("link", name="← Queue").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(f"#{other}")


def test_filters_swap_rows_without_a_page_reload(page: Page, users, db):
    users.create("analyst", username="alice")
    flagged_case(db, "pay-usd", currency="USD")
    eur = flagged_case(db, "pay-eur", currency="EUR")
    login(page, "alice")
    page.evaluate("window.__noReload = true")

    page.get_by_label("Currency").fill("EUR")
    page.get_by_label("Currency").press("Enter")

    rows = page.locator("#queue-rows tr.queue-row")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(f"#{eur}")
    expect(page).to_have_url(re.compile(r"currency=EUR"))
    assert page.evaluate("window.__noReload") is True


def test_a_case_claimed_by_someone_else_shows_a_conflict_in_place(page: Page, users, db):
    users.create("analyst", username="alice")
    bob = users.create("analyst", username="bob")
    case_id = flagged_case(db, "pay-contested")
    login(page, "alice")
    page.goto(f"/cases/{case_id}")
    expect(page.get_by_role("button", name="Approve")).to_be_visible()

    # Bob claims it while Alice is looking at the page.
    claims.claim(session=db, actor=Actor(name="bob", id=bob.id, role="analyst"), case_id=case_id)
    db.commit()

    page.evaluate("window.__noReload = true")
    page.get_by_label("Reason code").select_option("false_positive")
    page.get_by_role("button", name="Approve").click()

    alert = page.locator("#decision-panel").get_by_role("alert")
    expect(alert).to_contain_text("Not recorded")
    expect(alert).to_contain_text("changed since you loaded it")
    expect(page.get_by_text("Claimed by bob")).to_be_visible()  # the page now shows who holds it
    expect(page).to_have_url(re.compile(rf"/cases/{case_id}$"))
    assert page.evaluate("window.__noReload") is True
    assert case_state(db, case_id) == "in_review"


def test_markup_in_payment_fields_and_reasons_renders_as_text(page: Page, users, db):
    users.create("analyst", username="alice")
    case_id = flagged_case(db, "pay-xss", counterparty=XSS[:255], reason=XSS)
    dialogs = []

    def dismiss(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    login(page, "alice")

    expect(page.locator("#queue-rows")).to_contain_text('<img src=x onerror=')
    page.goto(f"/cases/{case_id}")
    expect(page.locator("#case-main")).to_contain_text("<script>document.title")
    assert page.locator("#case-main img").count() == 0
    assert page.locator("#case-main script").count() == 0
    assert page.title() != "pwned" and not dialogs


def test_a_cookie_only_decision_without_the_csrf_token_is_refused(page: Page, users, db):
    users.create("analyst", username="alice")
    case_id = flagged_case(db, "pay-csrf")
    login(page, "alice")

    status = page.evaluate(
        """async (caseId) => {
            const body = new URLSearchParams({decision: "approve", reason_code: "false_positive"});
            const response = await fetch(`/cases/${caseId}/decision`,
                                         {method: "POST", body, credentials: "same-origin"});
            return response.status;
        }""",
        case_id,
    )
    assert status == 403
    assert case_state(db, case_id) == "open"
