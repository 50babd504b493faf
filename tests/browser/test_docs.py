"""/docs in a real browser: Swagger UI from static/ only (offline), under the app's CSP."""

import os
from urllib.parse import urlsplit

from playwright.sync_api import Page, Route, expect

SCREENSHOT_DIR = os.environ.get("RISKDESK_SCREENSHOTS")


def test_docs_render_every_operation_offline_under_the_csp(page: Page, live_server: str):
    own = urlsplit(live_server).netloc
    foreign: list[str] = []

    def offline(route: Route) -> None:
        # Anything not served by the app itself would need the internet: refuse and remember it.
        if urlsplit(route.request.url).netloc == own:
            route.continue_()
        else:
            foreign.append(route.request.url)
            route.abort()

    page.route("**/*", offline)
    page.set_viewport_size({"width": 1366, "height": 900})

    response = page.goto("/docs")

    assert response is not None and response.status == 200
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    expect(page.get_by_role("heading", name="Riskdesk")).to_be_visible()
    create = page.locator(".opblock-post").filter(has=page.locator(".opblock-summary-path", has_text="/transactions"))
    expect(create.first).to_be_visible()
    expect(page.locator(".opblock-summary-path[data-path='/transactions/batch']")).to_have_count(1)
    assert page.locator(".opblock").count() > 20
    if SCREENSHOT_DIR:
        page.screenshot(path=os.path.join(SCREENSHOT_DIR, "docs-1366.png"))

    # Open an operation and call it from the page: the request goes to the app (connect-src 'self').
    health = page.locator(".opblock-get").filter(has=page.locator(".opblock-summary-path[data-path='/healthz']"))
    health.locator(".opblock-summary-control").click()
    health.get_by_role("button", name="Try it out").click()
    health.get_by_role("button", name="Execute").click()
    expect(health.locator(".live-responses-table tr.response .response-col_status")).to_have_text("200")
    expect(health.locator(".live-responses-table")).to_contain_text('"status": "ok"')

    # A request body with its example and schema renders too (highlighted code, model tree).
    create.first.locator(".opblock-summary-control").click()
    expect(create.first.locator(".body-param__example")).to_contain_text('"account_id"')
    create.first.locator(".opblock-section-request-body").get_by_role("tab", name="Schema").click()
    expect(create.first.locator(".opblock-section-request-body .model-box")).to_contain_text("TransactionCreate")

    if SCREENSHOT_DIR:
        create.first.scroll_into_view_if_needed()
        page.screenshot(path=os.path.join(SCREENSHOT_DIR, "docs-1366-operation.png"))
    assert foreign == []
    # The page fixture fails the test on any CSP violation or console error.
