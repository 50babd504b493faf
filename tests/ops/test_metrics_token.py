"""METRICS_TOKEN: when set, /metrics answers only a bearer of that token; unset, it is open as before."""

from collections.abc import Iterator

import pytest
from starlette.requests import Request

from app.config import get_settings
from app.ops import routes as ops

TOKEN = "scrape-7d0c1f9e5b2a4c38a1e6"


@pytest.fixture
def metrics_token(monkeypatch) -> Iterator[str]:
    monkeypatch.setenv("METRICS_TOKEN", TOKEN)
    get_settings.cache_clear()
    yield TOKEN
    monkeypatch.delenv("METRICS_TOKEN")
    get_settings.cache_clear()


def test_with_a_token_set_metrics_need_that_bearer_token(client, metrics_token):
    response = client.get("/metrics", headers={"Authorization": f"Bearer {metrics_token}"})
    assert response.status_code == 200
    assert "riskdesk_http_requests_total" in response.text


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}, {"Authorization": "Bearer"},
    {"Authorization": f"Bearer {TOKEN}x"}, {"Authorization": f"Bearer {TOKEN[:-1]}"},
    {"Authorization": "Bearer \u00e9t\u00e9".encode()},
], ids=["none", "wrong", "other-scheme", "empty", "longer", "shorter", "non-ascii"])
def test_with_a_token_set_metrics_refuse_anyone_else_with_a_401(client, metrics_token, headers):
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "riskdesk_http" not in response.text


def test_without_a_token_metrics_stay_open(client):
    assert get_settings().metrics_token is None
    assert client.get("/metrics").status_code == 200


def test_the_token_is_compared_in_constant_time(monkeypatch):
    calls = []
    real = ops.hmac.compare_digest

    def recording(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(ops.hmac, "compare_digest", recording)

    request = Request({"type": "http", "method": "GET", "path": "/metrics",
                       "headers": [(b"authorization", b"Bearer guess")]})
    assert ops.metrics_allowed(request, TOKEN) is False
    assert calls == [(b"guess", TOKEN.encode())]
