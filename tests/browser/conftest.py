"""Playwright against a real uvicorn, in Debian's Chromium (playwright cannot download browsers here).

Every test gets a fresh browser context (no cookies) and fails if the page logged a JS
error or a Content-Security-Policy violation. `scripts/test.sh` installs Chromium with
apt when it is missing; without it these tests fail, saying why.
"""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

from tests.conftest import PASSWORD

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"]
# Chromium reports CSP violations on the console; this also catches ones it would only
# report to a listener (the init script runs outside the page's CSP).
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) => {
  console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || "inline code"}`);
});
"""


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        # A failure, not a skip: the browser tests are how we know the screens work.
        pytest.fail(f"no Chromium at {CHROMIUM} (scripts/test.sh installs it; or set CHROMIUM_PATH)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class PageProblems:
    """Console errors and uncaught exceptions seen by a page during a test."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.allowed: list[str] = []

    def allow(self, fragment: str) -> None:
        """Expect console errors containing `fragment` (e.g. an HTTP status a test provokes)."""
        self.allowed.append(fragment)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def unexpected(self) -> list[str]:
        # "Failed to load resource" is Chromium noting a 4xx/5xx response; tests check statuses themselves.
        return [e for e in self.errors if "Failed to load resource" not in e
                and not any(fragment in e for fragment in self.allowed)]

    def csp_violations(self) -> list[str]:
        return [e for e in self.errors if "Content Security Policy" in e or "CSP violation" in e]


@pytest.fixture
def page_problems() -> PageProblems:
    return PageProblems()


@pytest.fixture
def page(browser: Browser, live_server: str, page_problems: PageProblems) -> Iterator[Page]:
    context = browser.new_context(base_url=live_server)
    context.add_init_script(REPORT_CSP_VIOLATIONS)
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.on("console", page_problems.on_console)
    page.on("pageerror", lambda error: page_problems.errors.append(f"uncaught: {error}"))
    yield page
    context.close()
    assert not page_problems.csp_violations(), page_problems.csp_violations()
    assert not page_problems.unexpected(), page_problems.unexpected()


def login(page: Page, username: str, password: str = PASSWORD) -> None:
    """Sign in through the login form, the way a person does."""
    page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_label("Username")).to_have_count(0)
    # The signed-in page's deferred scripts (htmx) have run: tests may call htmx at once.
    page.wait_for_load_state("load")
