"""Signing in and out in a real browser, with the CSP on and htmx doing the requests."""

import re
from datetime import UTC, datetime

from playwright._impl._api_structures import SetCookieParam  # add_cookies' parameter; sync_api does not export it
from playwright.sync_api import Page, expect
from sqlalchemy.dialects.postgresql import insert

from app.config import get_settings
from app.security import tokens
from app.security.models import RevokedToken
from app.security.sessions import session_key
from app.web.session import SESSION_COOKIE
from tests.browser.conftest import login
from tests.conftest import PASSWORD


def session_cookie(page: Page) -> SetCookieParam:
    """The session cookie, as add_cookies takes it back."""
    c = next(c for c in page.context.cookies() if c.get("name") == SESSION_COOKIE)
    return SetCookieParam(name=c["name"], value=c["value"], domain=c["domain"], path=c["path"], expires=c["expires"],
                          httpOnly=c["httpOnly"], secure=c["secure"], sameSite=c["sameSite"])


def htmx_get(page: Page, path: str) -> None:
    """What any hx-get on a screen does: an htmx request swapping into the page. Fired, not awaited:
    when the answer sends the browser elsewhere, htmx's promise dies with the page."""
    page.evaluate("path => { htmx.ajax('GET', path, {target: '#main', swap: 'innerHTML'}); }", path)


def test_login_through_the_form_lands_on_the_queue(page: Page, users):
    users.create("analyst", username="alice")

    login(page, "alice")

    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_role("heading", name="Review queue")).to_be_visible()
    expect(page.get_by_role("banner")).to_contain_text("alice")
    cookie = session_cookie(page)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert page.evaluate("document.cookie").find(SESSION_COOKIE) == -1  # invisible to scripts


def test_wrong_password_shows_the_message(page: Page, users):
    users.create("analyst", username="alice")
    page.goto("/login")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_role("alert")).to_contain_text("Incorrect username or password")
    expect(page.get_by_label("Username")).to_have_value("alice")


def test_anonymous_visit_goes_to_login_and_back_after_it(page: Page, users):
    users.create("analyst", username="alice")

    page.goto("/?state=open")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    expect(page).to_have_url(re.compile(r"/\?state=open$"))


def test_logout_ends_the_session(page: Page, users):
    users.create("analyst", username="alice")
    login(page, "alice")
    old_cookie = session_cookie(page)

    page.get_by_role("button", name="Sign out").click()

    expect(page).to_have_url(re.compile(r"/login\?signed_out=1$"))
    expect(page.get_by_role("status")).to_contain_text("You have signed out")
    page.context.add_cookies([old_cookie])  # a copy of the cookie taken before logout
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login\?next=/$"))


def test_htmx_works_under_the_csp(page: Page, users):
    users.create("analyst", username="alice")
    login(page, "alice")

    assert page.evaluate("htmx.config.allowEval === false && htmx.config.selfRequestsOnly === true")
    page.evaluate("document.querySelector('#main').replaceChildren()")
    htmx_get(page, "/")

    expect(page.locator("#main").get_by_role("heading", name="Review queue")).to_be_visible()


def test_revoked_session_sends_the_next_htmx_action_to_login(page: Page, users, db):
    users.create("analyst", username="alice")
    login(page, "alice")
    claims = tokens.decode(session_cookie(page)["value"], key=session_key(get_settings()))
    db.execute(insert(RevokedToken).values(jti=claims.jti, expires_at=datetime.fromtimestamp(claims.expires_at, UTC)))
    db.commit()

    htmx_get(page, "/")

    expect(page).to_have_url(re.compile(r"/login\?next=/$"))
    expect(page.get_by_label("Username")).to_be_visible()


def test_expired_session_sends_the_next_htmx_action_to_login(page: Page, users):
    alice = users.create("analyst", username="alice")
    login(page, "alice")
    expired, _ = tokens.issue(user_id=alice.id, role="analyst", token_version=alice.token_version,
                              key=session_key(get_settings()), ttl_seconds=-60)
    cookie = session_cookie(page)
    cookie["value"] = expired
    page.context.add_cookies([cookie])

    # Fire and forget: the redirect to /login navigates away, so awaiting htmx's promise
    # would race with the page being torn down.
    page.evaluate("() => { htmx.ajax('POST', '/logout', {target: '#main'}); }")

    expect(page).to_have_url(re.compile(r"/login"))
    expect(page.get_by_label("Username")).to_be_visible()


def test_cookie_only_fetch_post_without_csrf_token_is_refused(page: Page, users, db):
    users.create("analyst", username="alice")
    login(page, "alice")

    status = page.evaluate("fetch('/logout', {method: 'POST', credentials: 'same-origin'}).then(r => r.status)")

    assert status == 403
    page.reload()
    expect(page.get_by_role("heading", name="Review queue")).to_be_visible()  # still signed in


def test_refused_htmx_action_shows_the_error_in_the_page(page: Page, users, page_problems):
    users.create("analyst", username="alice")
    login(page, "alice")
    page_problems.allow("Response Status Error Code 403")  # htmx logs refused requests

    page.evaluate("htmx.ajax('POST', '/logout', {target: '#main', headers: {'X-CSRF-Token': 'forged'}})")

    expect(page.locator("#flash").get_by_role("alert")).to_contain_text("out of date")
    expect(page.get_by_role("heading", name="Review queue")).to_be_visible()


def test_login_and_queue_pages_have_no_csp_violations(page: Page, users, page_problems):
    users.create("admin", username="root")

    page.goto("/login")
    page.wait_for_load_state("networkidle")
    login(page, "root")
    page.wait_for_load_state("networkidle")

    assert page.evaluate("typeof htmx") == "object"  # the vendored script loaded under script-src 'self'
    assert page_problems.errors == []
