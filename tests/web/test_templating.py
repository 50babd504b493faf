"""Display filters and autoescaping."""

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from app.web.templating import age, dt, money, readable_json, risk_class, templates
from tests.web.conftest import submit_login


def test_readable_json_shows_an_object_as_key_value_pairs_without_quotes_or_braces():
    html = readable_json({"review_status": "flagged", "flagged": True, "score": 82, "note": None,
                          "reasons": ["device", "velocity"],
                          "counterparty": {"name": "Nordwind GmbH", "country": "DE"}})
    pairs = re.findall(r'<span class="readable-pair">(.*?)</span>', str(html))
    assert pairs == ["review status: flagged", "flagged: yes", "score: 82", "note: —", "reasons: device, velocity",
                     "counterparty › name: Nordwind GmbH", "counterparty › country: DE"]
    assert str(readable_json({"name": "<b>Markup Merchant</b>"})) == (
        '<span class="readable-pair">name: &lt;b&gt;Markup Merchant&lt;/b&gt;</span>')
    assert readable_json({}) == ""
    assert readable_json("<i>plain</i>") == "&lt;i&gt;plain&lt;/i&gt;"
    assert readable_json(None) == "—"


def test_money_uses_the_currency_minor_units_and_groups_thousands():
    assert money(Decimal("1250.5"), "USD") == "1,250.50 USD"
    assert money(Decimal("1234567"), "JPY") == "1,234,567 JPY"
    assert money("12.5", "KWD") == "12.500 KWD"
    assert money(Decimal("0.01"), "EUR") == "0.01 EUR"
    assert money(None, "USD") == ""


def test_money_with_an_unknown_currency_still_shows_the_amount():
    assert money(Decimal("10"), "XXX") == "10 XXX"


def test_age_shows_the_two_largest_units():
    now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    assert age(now - timedelta(hours=3, minutes=12, seconds=40), now) == "3h 12m"
    assert age(now - timedelta(days=2, hours=4, minutes=59), now) == "2d 4h"
    assert age(now - timedelta(minutes=7), now) == "7m"
    assert age(now - timedelta(seconds=20), now) == "<1m"
    assert age(now + timedelta(minutes=5), now) == "<1m"  # clock skew never shows a negative age
    assert age(None) == ""


def test_dt_is_utc_and_short():
    berlin = datetime(2026, 11, 24, 16, 3, 59, tzinfo=ZoneInfo("Europe/Berlin"))
    assert dt(berlin) == "2026-11-24 15:03 UTC"
    assert dt(datetime(2026, 1, 2, 3, 4)) == "2026-01-02 03:04 UTC"
    assert dt(None) == ""


def test_autoescape_is_on_for_every_template():
    rendered = templates.env.from_string("{{ value }}").render(value="<script>alert(1)</script>")
    assert rendered == "&lt;script&gt;alert(1)&lt;/script&gt;"


def test_markup_in_a_username_renders_as_text(client, users):
    users.create("analyst", username="<script>alert(1)</script>")

    submit_login(client, "<script>alert(1)</script>")
    page = client.get("/").text

    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_a_rejected_username_is_echoed_escaped(client):
    response = submit_login(client, '"><img src=x onerror=alert(1)>', password="whatever-1")

    assert response.status_code == 401
    assert "<img src=x" not in response.text
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in response.text


@pytest.mark.parametrize(("score", "badge"), [
    (100, "risk-high"), (70, "risk-high"), (69, "risk-medium"), (40, "risk-medium"), (39, "risk-low"), (0, "risk-low"),
])
def test_risk_badge_is_high_from_70_and_medium_from_40(score, badge):
    assert risk_class(score) == badge
