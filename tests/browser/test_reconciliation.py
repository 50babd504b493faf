"""A 100k-row bank statement through the real upload form: progress while it runs, then the summary."""

import os
import re

from playwright.sync_api import Page, expect

from tests.browser.conftest import login
from tests.reconciliation.statements import load_ledger, statement

ROWS = 100_000
SHOTS = os.environ.get("RISKDESK_SCREENSHOTS")  # a directory: save screenshots of each screen there


def shot(page: Page, name: str) -> None:
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=True)


def test_a_100k_row_statement_shows_progress_then_its_summary(page: Page, users, db, tmp_path):
    users.create("admin", username="alice")  # bank statements are uploaded by admins (SPEC role table)
    load_ledger(db, ROWS)
    lines = statement(ROWS, amount_mismatch_every=10_000).split(b"\n")
    lines[50_002] = b"BNK-broken,stmt-x,not-a-number,USD,booked,2026-11-24T10:15:00Z"  # line 50,003
    path = tmp_path / "statement-100k.csv"
    path.write_bytes(b"\n".join(lines))
    assert path.stat().st_size > 1024 * 1024

    login(page, "alice")
    page.get_by_role("link", name="Reconciliation").click()
    shot(page, "reconciliation-index-empty")
    page.get_by_label("Bank statement (CSV)").set_input_files(str(path))
    page.get_by_role("button", name="Upload and reconcile").click()

    progress = page.locator("#run-progress")
    expect(progress).to_contain_text("of 100,000 rows processed")
    expect(page.locator("#rows-processed")).not_to_have_text("0", timeout=30_000)
    seen = int(page.locator("#rows-processed").inner_text().replace(",", ""))
    assert 0 < seen < ROWS, seen  # progress visible mid-run
    shot(page, "reconciliation-progress")

    expect(page.get_by_role("heading", name="Summary")).to_be_visible(timeout=300_000)
    summary = page.get_by_role("region", name="Summary")
    expect(summary).to_contain_text("100,000 of 100,000")
    expect(summary).to_contain_text("amount mismatch: 10")
    expect(summary).to_contain_text("99,989")
    malformed = page.get_by_role("region", name="Malformed rows")
    expect(malformed).to_contain_text("50003")
    shot(page, "reconciliation-summary")

    page.get_by_role("link", name=re.compile(r"^Case #\d+$")).first.click()
    expect(page.get_by_role("heading", name="Bank event and ledger")).to_be_visible()
    expect(page.locator(".mismatch-table").first).to_contain_text("10.01 USD")
    expect(page.locator(".mismatch-table").first).to_contain_text("10.00 USD")
    shot(page, "case-reconciliation")

    page.get_by_role("link", name="Reconciliation").click()
    expect(page.get_by_role("region", name="Past runs")).to_contain_text("statement-100k.csv")
    shot(page, "reconciliation-index")
