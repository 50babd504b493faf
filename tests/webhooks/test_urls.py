"""An endpoint URL is checked at registration with the worker's parser (httpx) and stored IDNA-normalised."""

import html

import pytest

from app.webhooks import targets
from tests.web.conftest import form_csrf, sign_in  # noqa: F401 (a fixture)
from tests.webhooks.conftest import rows

REFUSED = [
    "http://0177.0.0.1/",  # octal: 127.0.0.1 to inet_aton and browsers
    "https://256.1.1.1/",
    "https://ⓔⓧⓐⓜⓟⓛⓔ.com/",  # circled letters: example.com after UTS 46 mapping
    "https://ＥＸＡＭＰＬＥ.com/",  # full-width letters
    "https://exam\u00adple.com/",  # a pasted soft hyphen
    "https://\u200bexample.com/",  # a zero-width space
    "http://0x7f.1/",
    "http://0x7f000001/",
    "http://127.1/",
    "http://2130706433/",
    "http://1.2.3.4./",
    "https://xn--zz.example/",  # not a valid A-label
    "https://hooks.xn--zz.example/",
    "https://ex%41mple.com/",
    "https://exa_mple.com/",
    "https://-hooks.example.com/",
    "https://hooks..example.com/",
    "https://" + "a" * 64 + ".example/",
    "http://example.com\\@evil.example/",
    "https://hooks.example.com:99999/",
    "https://hooks.example.com:0/",
    "http://[fe80::1%25eth0]/",
    "http://[1::2::3]/",
    "https:///hook",
    "hooks.example.com/hook",
]


@pytest.mark.parametrize("url", REFUSED)
def test_a_url_the_worker_could_not_request_unambiguously_is_a_422_naming_url(client, admin_headers, db, url):
    response = client.post("/api/webhooks/endpoints", json={"url": url, "event_types": ["case.opened"]},
                           headers=admin_headers)
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["field"] == "url" and error["msg"].startswith("must be an http or https URL"), error
    assert url not in error["msg"]  # the message never echoes the input
    assert rows(db, "SELECT id FROM webhook_endpoints") == []


@pytest.mark.parametrize(("url", "stored"), [
    ("https://bücher.example/hook", "https://xn--bcher-kva.example/hook"),
    ("https://BÜCHER.Example/hook", "https://xn--bcher-kva.example/hook"),
    ("https://xn--bcher-kva.example/hook", "https://xn--bcher-kva.example/hook"),
    ("HTTPS://Hooks.Example.COM/Path?q=ü", "https://hooks.example.com/Path?q=%C3%BC"),
    ("https://hooks.example.com:443/x", "https://hooks.example.com/x"),
    ("http://[2606:4700::1111]:8080/x", "http://[2606:4700::1111]:8080/x"),
])
def test_a_valid_url_is_stored_as_the_worker_requests_it_with_an_idna_host(client, admin_headers, db, url, stored):
    response = client.post("/api/webhooks/endpoints", json={"url": url, "event_types": ["case.opened"]},
                           headers=admin_headers)
    assert response.status_code == 201, response.text
    assert response.json()["url"] == stored
    assert [r.url for r in rows(db, "SELECT url FROM webhook_endpoints")] == [stored]
    assert client.get("/api/webhooks/endpoints", headers=admin_headers).json()[0]["url"] == stored
    [event] = rows(db, "SELECT after FROM audit_events WHERE action = 'webhook.endpoint_created'")
    assert event.after["url"] == stored


def test_a_long_unicode_url_that_punycode_makes_too_long_is_a_422_not_a_500(client, admin_headers, db):
    url = "https://bücher.example/" + "p" * (2000 - len("https://bücher.example/"))
    assert len(url) == 2000
    response = client.post("/api/webhooks/endpoints", json={"url": url, "event_types": ["case.opened"]},
                           headers=admin_headers)
    assert response.status_code == 422 and response.json()["detail"][0]["field"] == "url", response.text
    assert rows(db, "SELECT id FROM webhook_endpoints") == []


def test_normalising_is_stable():
    for url in ("https://bücher.example/a?b=ü", "http://[::1]:8080/x", "https://hooks.example.com"):
        once = targets.normalised_url(url)
        assert targets.normalised_url(once) == once


@pytest.mark.parametrize("url", ["http://0177.0.0.1/", "https://ⓔⓧⓐⓜⓟⓛⓔ.com/", "https://exam\u00adple.com/"])
def test_the_webhooks_screen_shows_the_url_error_and_stores_nothing(client, sign_in, db, url):  # noqa: F811
    sign_in("admin", "root")
    token = form_csrf(client.get("/webhooks").text)
    response = client.post("/webhooks/endpoints", data={"url": url, "event_types": ["case.opened"],
                                                         "csrf_token": token})
    assert response.status_code == 422
    page = html.unescape(response.text)
    assert 'id="err-url"' in response.text and "must be an http or https URL" in page
    assert 'aria-invalid="true"' in response.text
    assert rows(db, "SELECT id FROM webhook_endpoints") == []


def test_the_webhooks_screen_stores_an_idn_in_punycode(client, sign_in, db):  # noqa: F811
    sign_in("admin", "root")
    token = form_csrf(client.get("/webhooks").text)
    response = client.post("/webhooks/endpoints", data={"url": "https://bücher.example/hook",
                                                         "event_types": ["case.opened"], "csrf_token": token})
    assert response.status_code == 200, response.text
    assert "https://xn--bcher-kva.example/hook" in response.text
    assert [r.url for r in rows(db, "SELECT url FROM webhook_endpoints")] == ["https://xn--bcher-kva.example/hook"]
