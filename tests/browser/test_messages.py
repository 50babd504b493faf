"""Errors are sentences with the field's label; risky admin actions ask first; webhook copy and test event."""

import re

from playwright.sync_api import Page, expect
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.users.models import User
from app.webhooks.models import WebhookDelivery, WebhookEvent
from tests.browser.conftest import login


def test_settings_errors_are_sentences_naming_the_field(page: Page, users):
    users.create("admin", username="root")
    login(page, "root")
    page.goto("/admin/settings")
    page.get_by_label("Flag threshold").fill("lots")
    page.get_by_label("Dual-control threshold").fill("12x")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#err-flag_threshold")).to_have_text("Flag threshold must be a whole number.")
    expect(page.locator("#err-dual_control_threshold")).to_contain_text("Dual-control threshold must be")
    panel = page.locator("#settings-panel")
    expect(panel).not_to_contain_text("Input should be")
    expect(panel).not_to_contain_text("flag_threshold")


def test_audit_filters_take_iso_dates_in_utc_and_explain_a_bad_one(page: Page, users):
    users.create("admin", username="root")
    login(page, "root")
    page.goto("/admin/audit?since=yesterday")
    expect(page.locator("#err-since")).to_have_text("From (UTC) must be a date and time (YYYY-MM-DD HH:MM, UTC).")
    expect(page.get_by_label("Action")).to_have_js_property("tagName", "SELECT")
    page.goto("/admin/audit")
    page.get_by_label("From (UTC)").fill("2000-01-01")
    page.get_by_label("Action").select_option("auth.login")
    expect(page).to_have_url(re.compile(r"action=auth.login"))
    expect(page.locator("#audit-rows tr.audit-row").first).to_contain_text(re.compile(r"\d{2}:\d{2}:\d{2} UTC"))


def test_disabling_a_user_and_changing_a_role_ask_first(page: Page, users, db):
    users.create("admin", username="root")
    users.create("analyst", username="erin")
    login(page, "root")
    page.goto("/admin/users")
    page.get_by_role("button", name="Disable erin").click()
    expect(page.get_by_role("alertdialog")).to_contain_text("Disable erin?")
    page.get_by_role("link", name="Cancel").click()
    db.expire_all()
    assert db.scalar(select(User.is_active).where(User.username == "erin")) is True

    page.locator('tr[data-username="erin"]').get_by_label("Role for erin").select_option("admin")
    page.get_by_role("button", name="Change role of erin").click()
    expect(page.get_by_role("alertdialog")).to_contain_text("from analyst to admin")
    page.get_by_role("button", name="Make erin admin").click()
    expect(page.get_by_role("status")).to_contain_text("erin is now admin")
    db.expire_all()
    assert db.scalar(select(User.role).where(User.username == "erin")) == "admin"


def test_a_webhook_delete_asks_first_and_a_test_event_is_delivered_through_the_outbox(page: Page, users, db):
    users.create("admin", username="root")
    login(page, "root")
    page.goto("/webhooks")
    page.get_by_label("URL").fill("http://127.0.0.1:9/riskdesk")
    page.get_by_label("case.opened").check()
    page.get_by_role("button", name="Create endpoint").click()
    expect(page.get_by_role("button", name="Copy secret")).to_be_visible()
    page.get_by_role("button", name="Copy secret").click()
    expect(page.locator("#copy-status")).to_have_text("Copied to the clipboard.")

    page.goto("/webhooks")
    page.get_by_role("button", name=re.compile(r"Send test event to endpoint #\d+")).click()
    expect(page.get_by_role("status")).to_contain_text("Test event queued")
    event = db.scalars(select(WebhookEvent).where(WebhookEvent.event_type == "webhook.test")).one()
    assert db.scalars(select(WebhookDelivery).where(WebhookDelivery.event_id == event.id)).all()
    assert db.scalar(select(AuditEvent.action).where(AuditEvent.action == "webhook.test_sent")) == "webhook.test_sent"

    page.goto("/webhooks")
    page.get_by_role("button", name=re.compile(r"Delete endpoint #\d+")).click()
    expect(page.get_by_role("alertdialog")).to_contain_text("cannot be undone")
    page.get_by_role("alertdialog").get_by_role("button", name=re.compile(r"Delete endpoint #\d+")).click()
    expect(page.get_by_text("No endpoints registered.")).to_be_visible()
