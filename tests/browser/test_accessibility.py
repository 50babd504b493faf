"""Every screen at 1366 and 390 px: no sideways scroll, and axe-core finds no serious or critical violation.

axe-core is vendored (tests/browser/vendor/axe.min.js, MPL-2.0, from npm) so the scan runs offline.
Set RISKDESK_SCREENSHOTS to a directory to keep a full-page screenshot of every screen at both widths.
"""

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import login
from tests.browser.test_case_page import reconciliation_mismatch
from tests.browser.test_review import flagged_case
from tests.browser.test_rules_screens import a_payment, a_rule
from tests.conftest import PASSWORD

AXE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text()
SHOTS = os.environ.get("RISKDESK_SCREENSHOTS")
WIDTHS = {"desktop": 1366, "phone": 390}
ANALYST_SCREENS = ["/", "/cases/{case}", "/docs"]
ADMIN_SCREENS = ["/", "/cases/{case}", "/admin/dashboard", "/admin/audit", "/admin/users", "/admin/settings",
                 "/webhooks", "/webhooks/deliveries", "/reconciliation", "/admin/rules", "/admin/lists"]


# Swagger UI's own markup on /docs (third-party, not our templates): its grey version stamp and its
# operation headers (a button inside a button) are reported upstream; everything else there is checked.
THIRD_PARTY_RULES = {"/docs": ["color-contrast", "nested-interactive"]}


def serious_violations(page: Page, skip: list[str]) -> list[str]:
    """axe-core's serious and critical violations on the current page, one line each."""
    page.evaluate(AXE + ";undefined")  # through the devtools protocol: the page's CSP does not apply
    found = page.evaluate("""async (skip) => {
        const rules = Object.fromEntries(skip.map(id => [id, {enabled: false}]));
        const result = await axe.run(document, {resultTypes: ["violations"], rules});
        return result.violations.filter(v => v.impact === "serious" || v.impact === "critical")
            .map(v => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(", ")}`);
    }""", skip)
    return list(found)


def check_screen(page: Page, path: str, label: str, status: int | None = None) -> list[str]:
    """Problems on one screen: sideways scroll, axe violations (screenshot kept when asked).
    `status`: the answer the screen must give (an error page); else any success."""
    response = page.goto(path)
    assert response is not None, path
    assert response.status == status if status else response.status < 400, (path, response.status)
    page.wait_for_load_state("networkidle")
    return check_current(page, path, label)


def check_current(page: Page, path: str, label: str) -> list[str]:
    """check_screen's checks on the page as it is now (after a click, say)."""
    problems = []
    width = page.evaluate("[document.scrollingElement.scrollWidth, window.innerWidth]")
    if width[0] > width[1]:
        problems.append(f"{path}: page is {width[0]} px wide in a {width[1]} px window")
    problems += [f"{path}: {v}" for v in serious_violations(page, THIRD_PARTY_RULES.get(path, []))]
    if SHOTS:
        name = re.sub(r"[^A-Za-z0-9_-]+", "-", path.strip("/")).strip("-") or "queue"
        page.screenshot(path=os.path.join(SHOTS, f"{label}-{name}.png"), full_page=True)
    return problems


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("role", ["analyst", "admin"])
def test_every_screen_fits_the_window_and_passes_axe(page: Page, users, db, role, width):
    users.create(role, username=f"sam-{role}")
    case = flagged_case(db, "a11y-001", counterparty="Blue Harbor Travel")
    flagged_case(db, "a11y-002", amount="98000.00", counterparty="Nordwind GmbH")
    page.set_viewport_size({"width": WIDTHS[width], "height": 900})
    login(page, f"sam-{role}")
    problems = []
    for path in ADMIN_SCREENS if role == "admin" else ANALYST_SCREENS:
        problems += check_screen(page, path.format(case=case), f"{role}-{width}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("width", WIDTHS)
def test_the_login_page_fits_and_passes_axe(page: Page, width):
    page.set_viewport_size({"width": WIDTHS[width], "height": 900})
    assert check_screen(page, "/login", f"anon-{width}") == []


def test_at_390_px_the_top_bar_wraps_and_sign_out_stays_visible(page: Page, users):
    users.create("admin", username="root")
    page.set_viewport_size({"width": 390, "height": 800})
    login(page, "root")
    sign_out = page.get_by_role("button", name="Sign out")
    expect(sign_out).to_be_visible()
    box = sign_out.bounding_box()
    assert box is not None and box["x"] + box["width"] <= 390


def test_an_agent_in_the_browser_is_told_to_use_the_api(page: Page, users):
    users.create("agent", username="robot")
    page.goto("/login")
    page.get_by_label("Username").fill("robot")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("Agent accounts use the API")).to_be_visible()
    expect(page.get_by_role("link", name="Open the API reference")).to_have_attribute("href", "/docs")


def test_a_case_id_that_is_not_a_number_is_a_404_with_the_top_bar(page: Page, users):
    users.create("analyst", username="alice")
    login(page, "alice")
    response = page.goto("/cases/abc")
    assert response is not None and response.status == 404
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("role", ["analyst", "admin"])
def test_search_rules_reconciliation_and_error_pages_pass_axe(page: Page, users, db, role, width):
    """The screens of issue 20's later work, each scanned: search results, rules, reconciliation, 404/403."""
    users.create(role, username=f"sam-{role}")
    flagged_case(db, "a11y-search-001", counterparty="Blue Harbor Travel")
    rule_id = a_rule(db, condition="tx.amount > 10000", mode="active")
    a_payment(db, "a11y-rule-hit", "12500.00")
    run_id, recon_case = reconciliation_mismatch(db)
    page.set_viewport_size({"width": WIDTHS[width], "height": 900})
    login(page, f"sam-{role}")
    label = f"{role}-{width}"
    problems = []
    for path in ("/?q=blue+harbor", "/reconciliation", f"/reconciliation/runs/{run_id}", f"/cases/{recon_case}",
                 "/admin/rules", f"/admin/rules/{rule_id}"):
        problems += check_screen(page, path, label)
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    problems += check_screen(page, "/no/such/page", f"{label}-404", status=404)
    problems += check_screen(page, "/cases/999999", label, status=404)
    if role == "analyst":
        problems += check_screen(page, "/admin/users", f"{label}-403", status=403)
    else:
        page.goto("/admin/audit")
        page.get_by_role("button", name="Full re-check").click()
        expect(page.locator("#chain-status")).to_contain_text("Chain verified through event")
        problems += check_current(page, "/admin/audit-verified", label)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("width", WIDTHS)
def test_the_agent_page_passes_axe(page: Page, users, width):
    users.create("agent", username="robot")
    page.set_viewport_size({"width": WIDTHS[width], "height": 900})
    login(page, "robot")
    expect(page.get_by_role("heading", name="Agent accounts use the API")).to_be_visible()
    assert check_current(page, "/agent", f"agent-{width}") == []
