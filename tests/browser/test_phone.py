"""A 390 px phone: the top bar wraps with Sign out in view, wide tables scroll inside their box;
an agent gets a page that points to the API; a case id that is not a number is a 404 that keeps the top bar."""

from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import REPORT_CSP_VIOLATIONS, login
from tests.browser.test_review import flagged_case


def phone(browser: Browser, live_server: str) -> Page:
    context = browser.new_context(base_url=live_server, viewport={"width": 390, "height": 844})
    context.add_init_script(REPORT_CSP_VIOLATIONS)
    return context.new_page()


def test_on_a_phone_the_top_bar_wraps_and_sign_out_stays_visible(browser: Browser, live_server, users, db):
    users.create("admin", username="root")
    flagged_case(db, "phone-1")
    page = phone(browser, live_server)
    login(page, "root")
    for url in ("/", "/admin/users", "/admin/audit", "/webhooks"):
        page.goto(url)
        sign_out = page.get_by_role("button", name="Sign out")
        expect(sign_out).to_be_in_viewport(ratio=1)
        for link in page.locator(".mainnav a").all():  # every nav link reachable without sideways scrolling
            box = link.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, (url, link.inner_text())
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), url
    page.goto("/")
    row = page.locator(".queue-row").first  # the queue is a card per case: it fits the screen, no scrolling box
    box = row.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    page.goto("/admin/audit")
    wrap = page.locator(".table-wrap").first
    assert wrap.evaluate("el => el.scrollWidth > el.clientWidth")  # a wide table scrolls inside its box
    expect(wrap).to_have_attribute("tabindex", "0")  # and a keyboard can scroll it
    page.context.close()


def test_an_agent_signing_into_the_browser_is_sent_to_the_api(page: Page, users):
    users.create("agent", username="robot")
    login(page, "robot")
    expect(page.get_by_role("heading", name="Agent accounts use the API")).to_be_visible()
    expect(page.get_by_role("link", name="Open the API reference")).to_have_attribute("href", "/docs")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    nav = page.get_by_role("navigation", name="Main")  # the top bar leads to the API, not to the queue
    expect(nav.get_by_role("link", name="API reference")).to_have_attribute("href", "/docs")
    expect(nav.get_by_role("link", name="Queue")).to_have_count(0)
    page.goto("/admin/users")  # any other screen: the same page, not a loop
    expect(page.get_by_role("heading", name="Agent accounts use the API")).to_be_visible()


def test_a_case_id_that_is_not_a_number_is_a_404_with_the_signed_in_top_bar(page: Page, users):
    users.create("analyst", username="erin")
    login(page, "erin")
    response = page.goto("/cases/abc")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    expect(page.locator(".topbar")).to_contain_text("erin")
    expect(page.get_by_text("Input should be")).to_have_count(0)
    response = page.goto("/no/such/page")
    assert response is not None and response.status == 404
    expect(page.locator(".topbar")).to_contain_text("erin")
