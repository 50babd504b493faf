"""Admins register a webhook endpoint and see its secret once; deliveries with attempts and a retry."""

import re

from playwright.sync_api import Page, expect

from app.webhooks.worker import Worker, WorkerConfig
from tests.browser.conftest import login
from tests.browser.test_reconciliation import shot
from tests.browser.test_review import flagged_case


def test_an_endpoint_secret_is_shown_once(page: Page, users, db):
    users.create("admin", username="root")
    login(page, "root")
    page.get_by_role("link", name="Webhooks").click()
    page.get_by_label("URL").fill("http://127.0.0.1:9/riskdesk")
    page.get_by_label("case.opened").check()
    page.get_by_label("case.decided").check()
    page.get_by_role("button", name="Create endpoint").click()

    secret = page.get_by_label("Signing secret")
    expect(secret).to_have_value(re.compile(r"^whsec_[A-Za-z0-9+/]{43}=$"))
    value = secret.input_value()
    expect(page.get_by_text("it will not be shown again")).to_be_visible()
    shot(page, "webhooks-created")

    page.goto("/webhooks")
    expect(page.get_by_role("region", name="Endpoints")).to_contain_text("http://127.0.0.1:9/riskdesk")
    assert value not in page.content()
    expect(page.get_by_label("Signing secret")).to_have_count(0)


def test_deliveries_show_attempts_and_an_admin_retries_one(page: Page, users, db):
    users.create("admin", username="root")
    login(page, "root")
    page.goto("/webhooks")
    page.get_by_label("URL").fill("http://127.0.0.1:9/unreachable")
    page.get_by_label("case.opened").check()
    page.get_by_role("button", name="Create endpoint").click()
    flagged_case(db, "pay-hook")
    db.execute(__import__("sqlalchemy").text("UPDATE webhook_deliveries SET max_attempts = 1"))
    db.commit()
    Worker(WorkerConfig(timeout=0.5)).run(once=True)

    page.get_by_role("link", name="Deliveries →").click()
    expect(page.get_by_role("status").filter(has_text="Delivery worker last seen")).to_be_visible()
    row = page.locator("tbody tr").first
    expect(row).to_contain_text("case.opened")
    expect(row).to_contain_text("failed")
    row.get_by_text("attempts", exact=True).click()
    expect(row).to_contain_text("ConnectError")
    row.get_by_text("Payload", exact=True).click()  # what the endpoint receives, as readable lines
    payload = row.locator(".payload .readable")
    expect(payload).to_contain_text("reference: pay-hook")
    expect(payload).not_to_contain_text('"')
    shot(page, "webhooks-deliveries")
    row.get_by_role("button", name=re.compile("Retry delivery")).click()
    expect(page.get_by_text(re.compile(r"Delivery #\d+ queued for another attempt"))).to_be_visible()
    expect(page.locator("tbody tr").first).to_contain_text("pending")


def test_the_deliveries_screen_says_plainly_when_no_worker_is_running(page: Page, users, db):
    users.create("admin", username="root")
    login(page, "root")
    page.goto("/webhooks")
    page.get_by_label("URL").fill("https://hooks.example.com/riskdesk")
    page.get_by_label("case.opened").check()
    page.get_by_role("button", name="Create endpoint").click()
    flagged_case(db, "pay-waiting")

    page.get_by_role("link", name="Deliveries →").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("No delivery worker has been seen in the last 2 minutes; deliveries are waiting.")
    expect(alert.locator("code")).to_have_text("python -m app worker")
    expect(page.locator("tbody tr").first).to_contain_text("pending")
    shot(page, "webhooks-no-worker")


def test_a_url_the_worker_could_not_parse_is_refused_on_the_screen(page: Page, users, db):
    users.create("admin", username="root")
    login(page, "root")
    page.goto("/webhooks")
    page.get_by_label("URL").fill("https://exam\u00adple.com/hook")
    page.get_by_label("case.opened").check()
    page.get_by_role("button", name="Create endpoint").click()
    url = page.get_by_label("URL")
    expect(url).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#err-url")).to_contain_text(
        "must be an http or https URL without spaces or invisible characters")
    expect(page.get_by_role("region", name="Endpoints")).to_contain_text("No endpoints registered")
    shot(page, "webhooks-bad-url")
