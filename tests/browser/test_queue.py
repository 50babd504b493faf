"""The review queue in a real browser, at a desktop and a phone width: search, result count,
SLA, decided cases, keyboard shortcuts, and bulk actions with a result per case."""

import os
import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import text

from app.audit.service import Actor
from app.cases import claims
from tests.browser.conftest import login
from tests.browser.test_review import case_state, flagged_case

SHOTS = os.environ.get("RISKDESK_SCREENSHOTS")  # a directory: save screenshots of each screen there
WIDTHS = {"desktop": 1366, "phone": 390}


def shot(page: Page, name: str) -> None:
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
        page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=True)


def assert_no_sideways_scroll(page: Page) -> None:
    """Nothing on the page reaches past the window, but inside a container that scrolls on its
    own (a wide table's panel, the admin's long navigation)."""
    wide = page.evaluate("""() => {
        const scrollsItself = e => { for (let p = e.parentElement; p; p = p.parentElement) {
            if (["auto", "scroll"].includes(getComputedStyle(p).overflowX)) return true; } return false; };
        return Array.from(document.querySelectorAll("body *"))
            .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1
                         && !scrollsItself(e))
            .map(e => `${e.tagName.toLowerCase()}.${e.className}`).slice(0, 8); }""")
    assert wide == [], f"reaching past the window: {wide}"
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px"


@pytest.fixture(params=list(WIDTHS), ids=list(WIDTHS))
def width(request, page: Page) -> str:
    page.set_viewport_size({"width": WIDTHS[request.param], "height": 900})
    return request.param


@pytest.fixture
def three_cases(db) -> dict[str, int]:
    return {
        "sakura": flagged_case(db, "INV-2026-0042", score=95, counterparty="Sakura Electronics"),
        "nordwind": flagged_case(db, "INV-2026-0043", score=85, counterparty="Nordwind GmbH"),
        "other": flagged_case(db, "PO-7781", score=75, counterparty="Café Ølberg"),
    }


def rows(page: Page):
    return page.locator("#queue-rows tr.queue-row")


def test_search_finds_cases_by_reference_and_counterparty_and_counts_them(page: Page, users, db, three_cases,
                                                                          width):
    users.create("analyst", username="alice")
    login(page, "alice")
    expect(rows(page)).to_have_count(3)
    expect(page.locator("#result-count")).to_have_text("3 cases")
    expect(rows(page).first).to_contain_text("INV-2026-0042")  # the transaction's reference
    assert_no_sideways_scroll(page)
    shot(page, f"queue-{WIDTHS[width]}")

    search = page.get_by_role("searchbox", name="Search by reference, account or counterparty")
    search.fill("inv-2026")
    expect(rows(page)).to_have_count(2)
    expect(page.locator("#result-count")).to_have_text("2 cases matching “inv-2026”")
    search.fill("sakura")
    expect(rows(page)).to_have_count(1)
    expect(rows(page).first).to_contain_text(f"#{three_cases['sakura']}")
    expect(page.locator("#result-count")).to_have_text("1 case matching “sakura”")
    expect(page).to_have_url(re.compile(r"[?&]q=sakura"))
    search.fill("no such thing")
    expect(page.get_by_text("No cases match this search.")).to_be_visible()
    expect(page.locator("#result-count")).to_have_text("0 cases matching “no such thing”")
    assert_no_sideways_scroll(page)
    shot(page, f"queue-search-{WIDTHS[width]}")


def test_filters_are_text_inputs_in_line_with_the_selects(page: Page, users, db, three_cases):
    page.set_viewport_size({"width": 1366, "height": 900})
    users.create("analyst", username="alice")
    login(page, "alice")
    currency = page.get_by_label("Currency")
    state = page.get_by_label("State")
    assert currency.get_attribute("type") == "text"
    currency_box, state_box = currency.bounding_box(), state.bounding_box()
    assert currency_box and state_box
    assert abs(currency_box["y"] - state_box["y"]) <= 1 and abs(currency_box["height"] - state_box["height"]) <= 1


def test_sla_breaches_stand_out_and_decided_cases_say_who_and_when(page: Page, users, db, three_cases):
    page.set_viewport_size({"width": 1366, "height": 900})
    bob = users.create("analyst", username="bob")
    users.create("analyst", username="alice")
    late = three_cases["other"]
    db.execute(text("UPDATE review_cases SET opened_at = now() - interval '30 hours' WHERE id = :id"), {"id": late})
    db.commit()
    decided = three_cases["nordwind"]
    actor = Actor(name="bob", id=bob.id, role="analyst")
    claims.claim(session=db, actor=actor, case_id=decided)
    db.commit()
    db.execute(text("UPDATE review_cases SET state = 'approved', decision = 'approve', reason_code = 'false_positive',"
                    " decided_by = :bob, decided_at = now(), assignee_id = NULL, lease_expires_at = NULL"
                    " WHERE id = :id"), {"bob": bob.id, "id": decided})
    db.commit()

    login(page, "alice")
    late_row = rows(page).filter(has_text=f"#{late}")
    expect(late_row.get_by_text("SLA breached")).to_be_visible()
    due = (datetime.now(UTC) - timedelta(hours=6)).strftime("%Y-%m-%d")
    expect(late_row).to_contain_text(due)
    expect(late_row).to_have_class(re.compile("row-breach"))
    on_time = rows(page).filter(has_text=f"#{three_cases['sakura']}")
    expect(on_time.get_by_text("SLA breached")).to_have_count(0)
    shot(page, "queue-sla-1366")

    page.get_by_label("State").select_option("approved")
    expect(rows(page)).to_have_count(1)
    expect(rows(page).first).to_contain_text("Approved by bob")
    expect(rows(page).first).to_contain_text(datetime.now(UTC).strftime("%Y-%m-%d"))
    expect(rows(page).first).to_contain_text("—")  # no SLA on a decided case
    shot(page, "queue-decided-1366")


def test_keyboard_moves_opens_claims_and_lists_the_keys(page: Page, users, db, three_cases, width):
    users.create("analyst", username="alice")
    login(page, "alice")
    expect(rows(page)).to_have_count(3)
    expect(page.locator("html")).to_have_attribute("data-keys", "ready")  # keys.js is deferred

    page.keyboard.press("j")
    expect(rows(page).nth(0)).to_have_class(re.compile("row-focus"))
    expect(rows(page).nth(0).get_by_role("link")).to_be_focused()
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")
    expect(rows(page).nth(1)).to_have_class(re.compile("row-focus"))
    expect(rows(page).nth(1).get_by_role("link")).to_be_focused()
    page.keyboard.press("x")
    expect(rows(page).nth(1).get_by_role("checkbox")).to_be_checked()
    expect(page.get_by_text("1 case selected.")).to_be_visible()

    page.keyboard.press("?")
    keys = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(keys).to_be_visible()
    expect(keys).to_contain_text("Claim the next case")
    shot(page, f"queue-keys-{WIDTHS[width]}")
    page.keyboard.press("Escape")
    expect(keys).to_be_hidden()

    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/cases/{three_cases['nordwind']}$"))
    page.go_back()
    expect(rows(page)).to_have_count(3)
    expect(page.locator("html")).to_have_attribute("data-keys", "ready")

    page.keyboard.press("n")  # claims the top case and opens it
    top = three_cases["sakura"]
    expect(page).to_have_url(re.compile(rf"/cases/{top}$"))
    expect(page.locator("html")).to_have_attribute("data-keys", "ready")
    page.keyboard.press("r")
    expect(page.get_by_role("button", name="Reject")).to_be_focused()
    page.keyboard.press("e")
    expect(page.get_by_role("button", name="Escalate")).to_be_focused()
    page.get_by_label("Reason code").select_option("false_positive")
    note = page.get_by_label("Note")
    note.click()
    page.keyboard.type("are")  # typing, not shortcuts
    expect(note).to_have_value("are")
    expect(note).to_be_focused()
    page.get_by_role("heading", name="Decision").click()
    page.keyboard.press("a")
    expect(page.get_by_role("button", name="Approve")).to_be_focused()
    page.keyboard.press("?")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_contain_text("Go to Approve")
    shot(page, f"case-keys-{WIDTHS[width]}")
    page.keyboard.press("Escape")
    expect(page.get_by_role("button", name="Approve")).to_be_focused()  # the dialog gives the focus back
    page.keyboard.press("Enter")
    expect(page.get_by_text(f"Case {top} approved.")).to_be_visible()
    assert case_state(db, top) == "approved"


def test_keys_do_nothing_while_typing_in_the_search_box(page: Page, users, db, three_cases):
    users.create("analyst", username="alice")
    login(page, "alice")
    search = page.get_by_role("searchbox", name="Search by reference, account or counterparty")
    search.click()
    page.keyboard.type("nj")
    expect(search).to_have_value("nj")
    expect(page).to_have_url(re.compile(r"/(\?.*)?$"))  # "n" claimed nothing
    expect(page.get_by_role("dialog")).to_have_count(0)


def test_bulk_actions_show_a_result_per_case(page: Page, users, db, three_cases, width):
    users.create("admin", username="root")
    users.create("analyst", username="alice")
    bob = users.create("analyst", username="bob")
    as_bob = Actor(name="bob", id=bob.id, role="analyst")
    sakura, nordwind, other = three_cases["sakura"], three_cases["nordwind"], three_cases["other"]
    claims.claim(session=db, actor=as_bob, case_id=nordwind)
    db.commit()

    login(page, "root")
    expect(rows(page)).to_have_count(3)
    page.get_by_role("checkbox", name=f"Select case #{sakura}").check()
    page.get_by_role("checkbox", name=f"Select case #{nordwind}").check()
    expect(page.get_by_text("2 cases selected.")).to_be_visible()
    claims.claim(session=db, actor=as_bob, case_id=sakura)  # while root looks at the list
    db.commit()
    page.get_by_label("Action").select_option("assign")
    page.get_by_label("Assign to").select_option("alice")
    page.get_by_role("button", name="Apply to selected").click()

    results = page.locator("#bulk-results")
    expect(results).to_contain_text("Assign: 1 of 2 cases done, 1 not changed.")
    expect(results.locator("li", has_text=f"Case #{nordwind}")).to_contain_text("Assigned to alice.")
    expect(results.locator("li", has_text=f"Case #{sakura}")).to_contain_text(
        f"Case {sakura} changed since you loaded it")
    # The rows reload with the new assignees, nothing ticked any more.
    expect(rows(page).filter(has_text=f"#{nordwind}")).to_contain_text("alice")
    expect(rows(page).filter(has_text=f"#{sakura}")).to_contain_text("bob")
    expect(page.get_by_text("Tick cases in the list")).to_be_visible()
    assert_no_sideways_scroll(page)
    shot(page, f"queue-bulk-{WIDTHS[width]}")

    page.get_by_role("checkbox", name="Select every case on this page").check()
    expect(page.get_by_text("3 cases selected.")).to_be_visible()
    page.get_by_label("Action").select_option("escalate")
    page.get_by_role("button", name="Apply to selected").click()
    expect(results).to_contain_text("Nothing was changed")
    expect(results).to_contain_text("Write a note to escalate")
    page.get_by_label("Escalation note").fill("Same device as a known ring")
    page.get_by_role("button", name="Apply to selected").click()
    # Cases someone holds stay theirs to decide: only the free one is escalated.
    expect(results).to_contain_text("Escalate: 1 of 3 cases done, 2 not changed.")
    expect(results.locator("li", has_text=f"Case #{sakura}")).to_contain_text("claimed by bob")
    expect(results.locator("li", has_text=f"Case #{nordwind}")).to_contain_text("claimed by alice")
    assert case_state(db, other) == "escalated"
    assert case_state(db, sakura) == "in_review"
    assert_no_sideways_scroll(page)
    shot(page, f"queue-bulk-escalate-{WIDTHS[width]}")


def test_an_analyst_can_assign_only_themself(page: Page, users, db, three_cases):
    users.create("analyst", username="alice")
    users.create("analyst", username="bob")
    login(page, "alice")
    assignee = page.get_by_label("Assign to")
    expect(assignee.locator("option")).to_have_count(1)
    expect(assignee).to_have_value("alice")
    page.get_by_role("checkbox", name=f"Select case #{three_cases['other']}").check()
    page.get_by_role("button", name="Apply to selected").click()
    expect(page.locator("#bulk-results")).to_contain_text("Assigned to alice.")


def test_at_1366_px_the_last_column_fits_without_sideways_scroll(page: Page, users, db, three_cases):
    page.set_viewport_size({"width": 1366, "height": 900})
    users.create("analyst", username="alice")
    late = flagged_case(db, "INV-2026-LATE-0001-LONG-REFERENCE", score=99, amount="987654.32",
                        counterparty="Société Générale de Paiements Internationaux")
    db.execute(text("UPDATE review_cases SET opened_at = now() - interval '30 hours' WHERE id = :id"), {"id": late})
    db.commit()
    login(page, "alice")
    expect(rows(page).first.get_by_text("SLA breached")).to_be_visible()
    wrap = page.locator(".table-wrap:has(.queue-table)")
    assert wrap.evaluate("el => el.scrollWidth <= el.clientWidth"), "the queue table scrolls sideways at 1366 px"
    last = page.get_by_role("columnheader", name="Assignee or decision")
    expect(last).to_be_in_viewport(ratio=1)
    shot(page, "queue-fits-1366")


def test_filter_errors_are_sentences_with_the_fields_label(page: Page, users, db, three_cases, width):
    users.create("analyst", username="alice")
    login(page, "alice")
    page.goto("/?min_amount=abc&min_score=x&currency=usd")
    notice = page.locator(".row-notice")
    expect(notice).to_contain_text("Min amount must be a number.")
    expect(notice).to_contain_text("Min score must be a whole number.")
    expect(page.get_by_label("Min amount")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Min amount")).to_have_accessible_description("Min amount must be a number.")
    for code_words in ("min_amount", "Input should", "valid decimal", "min_score"):
        expect(page.locator("main")).not_to_contain_text(code_words)
    expect(rows(page)).to_have_count(3)  # the other filters still apply; the bad ones are ignored
    currency, state = page.get_by_label("Currency"), page.get_by_label("State")  # an error does not move the row
    currency_box, state_box, amount_box = currency.bounding_box(), state.bounding_box(), page.get_by_label(
        "Min amount").bounding_box()
    assert currency_box and state_box and amount_box
    if width == "desktop":
        assert abs(amount_box["y"] - state_box["y"]) <= 1
    assert_no_sideways_scroll(page)
    shot(page, f"queue-filter-errors-{WIDTHS[width]}")
