"""The rule page's backtest panel in a real browser at 1366 and 390 px: hits, hit rate, outcomes, precision
and sample links (with RISKDESK_SCREENSHOTS set, each screen is saved there)."""


import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import login
from tests.browser.test_rules_screens import WIDTHS, a_payment, a_rule, looked_at


@pytest.mark.parametrize("width", WIDTHS)
def test_the_backtest_panel_shows_hits_outcomes_and_sample_links(page: Page, users, db, width):
    page.set_viewport_size({"width": width, "height": 900})
    users.create("admin", username="root")
    for n, amount in enumerate(("12500.00", "40.00", "15000.00", "9.99")):
        a_payment(db, f"bt-{n}", amount, account=f"acct_bt_{n}")
    rid = a_rule(db, condition="tx.amount > 10000")
    login(page, "root")
    page.goto(f"/admin/rules/{rid}")
    page.get_by_role("button", name="Run backtest").click()
    result = page.locator("#backtest-result")
    expect(result).to_contain_text("Evaluated")
    expect(result.locator("dd").nth(1)).to_have_text("2")
    expect(result.get_by_role("link", name="bt-0")).to_be_visible()
    looked_at(page, "backtest", width)
    result.get_by_role("link", name="bt-2").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("bt-2")


@pytest.mark.parametrize("width", WIDTHS)
def test_the_backtest_dates_are_iso_and_labelled_utc(page: Page, users, db, width):
    page.set_viewport_size({"width": width, "height": 900})
    users.create("admin", username="root")
    a_payment(db, "bt-iso", "12500.00")
    rid = a_rule(db, condition="tx.amount > 10000")
    login(page, "root")
    page.goto(f"/admin/rules/{rid}")
    since = page.get_by_label("Since (UTC)")
    expect(since).to_have_attribute("type", "text")  # not the browser's locale date picker (mm/dd/yyyy)
    expect(since).to_have_attribute("placeholder", "yyyy-mm-dd")
    expect(since).to_have_accessible_description(re.compile("yyyy-mm-dd, in UTC"))
    expect(page.get_by_label("Until (UTC)")).to_have_attribute("placeholder", "yyyy-mm-dd")
    panel = page.get_by_role("region", name="Backtest")
    version = panel.locator("select[name=version]").bounding_box()
    until = page.get_by_label("Until (UTC)").bounding_box()
    assert version and until and abs(version["height"] - until["height"]) <= 1
    assert width == 390 or abs(version["y"] - until["y"]) <= 1  # one row at 1366 px
    expect(panel.get_by_role("button", name="Run backtest")).to_be_visible()  # inside its own panel
    looked_at(page, "backtest-dates", width)

    since.fill("2026-01-01")
    page.get_by_role("button", name="Run backtest").click()
    expect(page.locator("#backtest-result")).to_contain_text("from 2026-01-01")
    page.evaluate("document.querySelector('input[name=since]').removeAttribute('pattern')")  # the server's check
    since.fill("30/11/2026")
    page.get_by_role("button", name="Run backtest").click()
    expect(page.get_by_role("alert")).to_contain_text("Since (UTC) must be a date such as 2026-11-30.")
