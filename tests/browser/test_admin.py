"""The admin's screens in a real browser: audit log + CSV, users, settings, dashboard charts."""

import csv
import io
import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from app.audit import service as audit
from app.audit.service import Actor
from app.users.models import User
from tests.browser.conftest import login
from tests.browser.test_reconciliation import shot
from tests.browser.test_review import flagged_case, scored_case


def test_admin_filters_the_audit_log_and_downloads_the_filtered_csv(page: Page, users, db, tmp_path):
    users.create("admin", username="root")
    for i in range(6):
        audit.record(db, actor=Actor(name="carol" if i % 2 else "dave", id=None, role="analyst"),
                     action="case.claimed", entity_type="case", entity_id=str(100 + i))
    db.commit()
    login(page, "root")
    page.get_by_role("link", name="Audit log").click()
    expect(page.get_by_text("not verified")).to_be_visible()
    page.get_by_role("button", name="Full re-check").click()
    expect(page.locator("#chain-status")).to_contain_text(re.compile(r"Chain verified through event \d+"))

    page.evaluate("window.__noReload = true")
    page.get_by_label("Actor").fill("carol")
    page.get_by_label("Actor").press("Enter")
    rows = page.locator("#audit-rows tr.audit-row")
    expect(rows).to_have_count(3)
    expect(page).to_have_url(re.compile(r"actor=carol"))
    assert page.evaluate("window.__noReload") is True

    with page.expect_download() as info:
        page.get_by_role("link", name="Download CSV").click()
    path = tmp_path / "audit.csv"
    info.value.save_as(path)
    exported = list(csv.DictReader(io.StringIO(path.read_text())))
    assert len(exported) == 3 and {r["actor"] for r in exported} == {"carol"}
    assert [r["entity_id"] for r in exported] == ["101", "103", "105"]


def test_a_disabled_user_is_refused_at_their_next_request(page: Page, browser, live_server, users, db):
    users.create("admin", username="root")
    users.create("analyst", username="erin")
    other = browser.new_context(base_url=live_server)
    erin = other.new_page()
    login(erin, "erin")
    expect(erin.get_by_role("heading", name="Review queue")).to_be_visible()

    login(page, "root")
    page.goto("/admin/users")
    page.get_by_role("button", name="Disable erin").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Disable erin").click()  # the confirm step
    expect(page.get_by_role("status")).to_contain_text("Disabled erin")
    expect(page.locator('tr[data-username="erin"]')).to_contain_text("disabled")

    erin.reload()
    expect(erin).to_have_url(re.compile(r"/login"))
    expect(erin.get_by_label("Username")).to_be_visible()
    other.close()
    db.expire_all()
    assert db.scalar(select(User.is_active).where(User.username == "erin")) is False


def test_the_last_admin_is_told_they_cannot_demote_themselves(page: Page, users):
    users.create("admin", username="root")
    login(page, "root")
    page.goto("/admin/users")
    row = page.locator('tr[data-username="root"]')
    row.get_by_label("Role for root").select_option("analyst")
    page.get_by_role("button", name="Change role of root").click()
    page.get_by_role("button", name="Make root analyst").click()  # the confirm step
    expect(page.get_by_role("alert")).to_contain_text("last active admin")


def test_a_lower_flag_threshold_changes_what_the_next_score_flags(page: Page, users, db):
    users.create("admin", username="root")
    login(page, "root")
    page.goto("/admin/settings")
    page.get_by_label("Flag threshold").fill("150")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#err-flag_threshold")).to_contain_text("100")

    assert scored_case(db, "pay-before", score=50) is None  # 50 < 70: not flagged
    page.get_by_label("Flag threshold").fill("40")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("status")).to_contain_text("flag_threshold")
    assert scored_case(db, "pay-after", score=50) is not None

    page.get_by_label("Currency", exact=True).fill("JPY")
    page.get_by_label("Threshold", exact=True).fill("10.5")
    page.get_by_role("button", name="Save rule").click()
    expect(page.get_by_role("alert")).to_contain_text("JPY has no minor unit")
    page.get_by_label("Threshold", exact=True).fill("100000")
    page.get_by_role("button", name="Save rule").click()
    expect(page.locator(".rules-table")).to_contain_text("100,000 JPY")


def test_the_dashboard_draws_its_charts(page: Page, users, db):
    users.create("admin", username="root")
    for i, score in enumerate((95, 80, 72)):
        flagged_case(db, f"pay-{i}", score=score)
    login(page, "root")
    page.get_by_role("link", name="Dashboard").click()
    expect(page.locator("[data-kpi=open]")).to_have_text("3")
    for chart in ("decisions", "scores", "actors"):
        canvas = page.locator(f"canvas[data-chart-id={chart}]")
        expect(canvas).to_have_attribute("data-drawn", "true")
        # Drawn, not just present: the canvas has non-transparent pixels.
        assert page.evaluate("""(id) => {
            const c = document.querySelector(`canvas[data-chart-id=${id}]`);
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            for (let i = 3; i < d.length; i += 4) if (d[i] !== 0) return true; return false; }""", chart)
    page.get_by_role("link", name="30 days").click()
    expect(page.get_by_text("Last 30 days")).to_be_visible()
    expect(page.locator("canvas[data-chart-id=decisions]")).to_have_attribute("data-drawn", "true")


def test_an_admin_downloads_a_cases_evidence_that_verifies_offline(page: Page, users, db, tmp_path):
    from app.audit import checkpoints, evidence
    from app.config import Settings

    users.create("admin", username="root")
    case_id = flagged_case(db, "evidence-browser")
    login(page, "root")
    page.goto("/admin/audit")
    expect(page.locator("#chain-status")).to_contain_text("No signed checkpoint yet")
    page.goto(f"/cases/{case_id}")
    with page.expect_download() as info:
        page.get_by_role("link", name="Download evidence").click()
    assert info.value.suggested_filename == f"case-{case_id}-evidence.json"
    path = tmp_path / "pack.json"
    info.value.save_as(path)
    problems, pack = evidence.verify_pack(path.read_bytes(), checkpoints.signing_key(Settings()).public_key())
    assert pack is not None
    assert problems == [] and pack["case"]["id"] == case_id

    page.goto("/admin/audit")  # the pack needed a checkpoint; the chain status shows it
    expect(page.locator("#chain-status")).to_contain_text(
        f"Latest signed checkpoint: through event {pack['checkpoint']['last_id']}")


@pytest.mark.parametrize("width", [1366, 390])
def test_the_audit_log_reads_as_words_with_its_filters_on_one_line(page: Page, users, db, width):
    users.create("admin", username="root")
    audit.record(db, actor=Actor(name="carol", id=None, role="analyst"), action="transaction.review_status_changed",
                 entity_type="transaction", entity_id="pay-1", before={"review_status": "clear"},
                 after={"review_status": "flagged", "score_id": 7, "reasons": ["device", "velocity"]})
    db.commit()
    page.set_viewport_size({"width": width, "height": 900})
    login(page, "root")
    page.goto("/admin/audit")
    expect(page.locator("#chain-status .badge")).to_have_text("Not verified")
    change = page.locator("#audit-rows tr.audit-row", has_text="review_status_changed").locator(".audit-change")
    expect(change).to_contain_text("review status: clear")
    expect(change).to_contain_text("review status: flagged")
    expect(change).to_contain_text("reasons: device, velocity")
    expect(change).not_to_contain_text("{")
    expect(change).not_to_contain_text('"')

    if width == 1366:  # every filter's input on one line, labels above them, the buttons beside them
        filters = page.get_by_role("search", name="Filter the audit log")
        boxes = [filters.locator(f"[name={name}]").bounding_box() for name in
                 ("actor", "role", "action", "entity_type", "entity_id", "since", "until")]
        apply = page.get_by_role("button", name="Apply").bounding_box()
        assert all(boxes) and apply
        tops = {round(box["y"]) for box in boxes if box} | {round(apply["y"])}
        heights = {round(box["height"]) for box in boxes if box}
        assert max(tops) - min(tops) <= 1, f"filters are not on one line: {sorted(tops)}"
        assert max(heights) - min(heights) <= 1, f"inputs and selects differ in height: {sorted(heights)}"
    page.get_by_role("button", name="Full re-check").click()
    expect(page.locator("#chain-status .badge").first).to_have_text("Chain intact")
    shot(page, f"audit-readable-{width}")
