"""Operations: probes, metrics, request ids, JSON logs, JSON errors, production safety."""

import json
import logging
import os
import re
import secrets
import subprocess
import sys

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select, text

from app.audit.models import AuditEvent
from app.config import DEV_SECRET_KEY, ConfigError, Settings, check_production_safety
from app.db import build_engine, get_core_session
from app.migrations import head_revision
from app.transactions.models import Transaction
from tests.conftest import ROOT, tx_payload

GENERATED_REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")
ONE_MIB = 1024 * 1024


# --- probes and metrics ---------------------------------------------------------------

def test_healthz_says_the_process_is_up(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_says_ready_when_the_database_is_at_the_head_migration(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "migration": head_revision()}


def requests_total(client, route: str, status: str) -> float:
    response = client.get("/metrics")
    families = {family.name: family for family in text_string_to_metric_families(response.text)}
    samples = families["riskdesk_http_requests"].samples
    return sum(
        sample.value for sample in samples
        if sample.name == "riskdesk_http_requests_total"
        and sample.labels == {"method": "GET", "route": route, "status": status}
    )


def test_metrics_is_prometheus_text_with_request_counts_and_latency(client):
    response = client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "# TYPE riskdesk_http_requests_total counter" in response.text
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert {"riskdesk_http_requests", "riskdesk_http_request_duration_seconds"} <= names


def test_metrics_count_requests_by_route_template_and_status(client, agent_headers):
    healthz_before = requests_total(client, "/healthz", "200")
    lookup_before = requests_total(client, "/transactions/{reference}", "404")

    client.get("/healthz")
    client.get("/healthz")
    client.get("/transactions/no-such-ref", headers=agent_headers)

    assert requests_total(client, "/healthz", "200") == healthz_before + 2
    # Labelled by the route template, not the raw path, so references never explode the series.
    assert requests_total(client, "/transactions/{reference}", "404") == lookup_before + 1


# --- request ids ----------------------------------------------------------------------

@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"), ("GET", "/no-such-page"),
     ("GET", "/transactions"), ("DELETE", "/healthz")],
)
def test_every_response_carries_a_generated_request_id(client, method, path):
    first = client.request(method, path)
    second = client.request(method, path)
    assert GENERATED_REQUEST_ID.match(first.headers["X-Request-ID"])
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]


def test_callers_own_request_id_is_echoed(client):
    response = client.get("/healthz", headers={"X-Request-ID": "upstream-proxy:4f1c.9"})
    assert response.headers["X-Request-ID"] == "upstream-proxy:4f1c.9"
    assert response.headers.get_list("X-Request-ID") == ["upstream-proxy:4f1c.9"]


@pytest.mark.parametrize(
    "malformed", ["has spaces in it", "x" * 129, "line\tbreak", "quote\"d", ""], ids=repr,
)
def test_malformed_request_id_is_replaced_not_echoed(client, malformed):
    response = client.get("/healthz", headers={"X-Request-ID": malformed})
    assert GENERATED_REQUEST_ID.match(response.headers["X-Request-ID"])


def test_request_id_is_stored_on_the_audit_event_of_the_request(client, agent_headers, db):
    sent = client.post("/transactions", json=tx_payload("ref-sent"),
                       headers={**agent_headers, "X-Request-ID": "trace-7a1b"})
    generated = client.post("/transactions", json=tx_payload("ref-generated"), headers=agent_headers)

    events = dict(db.execute(
        select(AuditEvent.entity_id, AuditEvent.request_id).where(AuditEvent.action == "transaction.created")
    ).all())
    assert sent.headers["X-Request-ID"] == "trace-7a1b"
    assert events == {"ref-sent": "trace-7a1b", "ref-generated": generated.headers["X-Request-ID"]}
    client_addrs = db.scalars(select(AuditEvent.client_addr).where(AuditEvent.action == "transaction.created"))
    assert set(client_addrs) == {"testclient"}


# --- JSON logs ------------------------------------------------------------------------

def log_entries(stream) -> list[dict]:
    lines = stream.getvalue().splitlines()
    assert lines, "nothing was logged"
    return [json.loads(line) for line in lines]  # every line is one JSON object


def test_access_log_lines_are_json_with_the_request_id(client, json_log_stream):
    client.get("/healthz", headers={"X-Request-ID": "log-check-1"})

    access = [entry for entry in log_entries(json_log_stream) if entry["logger"] == "riskdesk.access"]
    assert len(access) == 1
    assert access[0]["request_id"] == "log-check-1"
    assert access[0]["level"] == "info"
    assert (access[0]["method"], access[0]["route"], access[0]["status"]) == ("GET", "/healthz", 200)
    assert isinstance(access[0]["duration_ms"], (int, float))


def test_a_logged_traceback_stays_inside_one_json_line(json_log_stream):
    log = logging.getLogger("riskdesk.tests")
    try:
        raise ValueError("boom\nwith a newline")
    except ValueError:
        log.exception("it failed", extra={"request_id": "log-check-2"})

    (entry,) = log_entries(json_log_stream)
    assert entry["message"] == "it failed"
    assert entry["level"] == "error"
    assert entry["request_id"] == "log-check-2"
    assert "ValueError: boom" in entry["exception"]


# --- JSON errors ----------------------------------------------------------------------

@pytest.mark.parametrize(
    ("method", "path", "body", "signed_in", "status"),
    [
        ("GET", "/no-such-page", None, False, 404),
        ("GET", "/transactions/unknown-ref", None, True, 404),
        ("GET", "/transactions", None, False, 401),
        ("DELETE", "/healthz", None, False, 405),
        ("POST", "/transactions", {"reference": "ref-1"}, True, 422),
    ],
)
def test_error_bodies_are_json_with_detail(client, agent_headers, method, path, body, signed_in, status):
    response = client.request(method, path, json=body, headers=agent_headers if signed_in else {})

    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert "detail" in response.json()
    assert "X-Request-ID" in response.headers


def test_an_unhandled_exception_is_a_500_json_without_a_traceback(app, client, agent_headers):
    def broken_session():
        raise RuntimeError("secret-internal-detail in /srv/app/db.py line 42")

    app.dependency_overrides[get_core_session] = broken_session
    try:
        response = client.get("/transactions/ref-1", headers={**agent_headers, "X-Request-ID": "boom-1"})
    finally:
        app.dependency_overrides.pop(get_core_session)

    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"detail": "Internal server error", "request_id": "boom-1"}
    assert "secret-internal-detail" not in response.text
    assert "Traceback" not in response.text
    assert response.headers["X-Request-ID"] == "boom-1"


def oversized_transaction_body() -> bytes:
    return json.dumps(tx_payload("ref-big", description="x" * ONE_MIB)).encode()


def test_a_body_over_one_mebibyte_is_refused_with_413_and_stores_nothing(client, agent_headers, db):
    body = oversized_transaction_body()
    assert len(body) > ONE_MIB

    response = client.post("/transactions", content=body,
                           headers={**agent_headers, "content-type": "application/json"})

    assert response.status_code == 413
    assert db.scalar(select(func.count()).select_from(Transaction)) == 0
    assert db.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action != "user.created")) == 0


def test_a_body_over_one_mebibyte_gets_a_json_413_with_a_request_id(client, agent_headers):
    response = client.post("/transactions", content=oversized_transaction_body(),
                           headers={**agent_headers, "content-type": "application/json", "X-Request-ID": "big-1"})

    assert response.status_code == 413
    assert response.headers["content-type"] == "application/json"
    assert "detail" in response.json()
    assert response.headers["X-Request-ID"] == "big-1"


# --- production safety ----------------------------------------------------------------

PRODUCTION_DB = "postgresql://riskdesk@db.internal/riskdesk"


@pytest.mark.parametrize(
    "weak_key",
    [None, "", "short", "x" * 31, DEV_SECRET_KEY],
    ids=["missing", "empty", "short", "31-bytes", "development-key"],
)
def test_production_refuses_a_missing_or_weak_secret_key(weak_key):
    settings = Settings(app_env="production", secret_key=weak_key, database_url=PRODUCTION_DB)
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        check_production_safety(settings)


@pytest.mark.parametrize("strong_key", ["k" * 32, secrets.token_urlsafe(48)], ids=["32-bytes", "random"])
def test_production_accepts_a_secret_key_of_32_bytes_or_more(strong_key):
    check_production_safety(Settings(app_env="production", secret_key=strong_key, database_url=PRODUCTION_DB))


def test_production_refuses_to_run_without_a_database_url():
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        check_production_safety(Settings(app_env="production", secret_key="k" * 32, database_url=None))


def import_app_with(secret_key: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "APP_ENV": "production", "SECRET_KEY": secret_key, "DATABASE_URL": PRODUCTION_DB}
    return subprocess.run([sys.executable, "-c", "import app.main"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_app_with_a_weak_key_in_production_fails_to_start():
    result = import_app_with("short")
    assert result.returncode != 0
    assert "ConfigError" in result.stderr
    assert "SECRET_KEY" in result.stderr


def test_app_with_a_strong_key_in_production_starts():
    result = import_app_with(secrets.token_urlsafe(48))
    assert result.returncode == 0, result.stderr


def test_every_connection_gets_the_configured_statement_and_lock_timeouts(database_url):
    engine = build_engine(database_url, Settings(db_statement_timeout_ms=7000, db_lock_timeout_ms=1234))
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SHOW statement_timeout")).scalar_one() == "7s"
            assert connection.execute(text("SHOW lock_timeout")).scalar_one() == "1234ms"
    finally:
        engine.dispose()


def test_a_connection_closed_behind_the_pools_back_is_replaced_at_checkout(database_url):
    """A raw cursor's failure closes the psycopg2 connection without SQLAlchemy knowing; the
    pool must not hand that connection out again (each request would fail on it forever)."""
    engine = build_engine(database_url, Settings(db_pool_size=1, db_max_overflow=0))
    try:
        with engine.connect() as connection:
            first = connection.connection.dbapi_connection
            assert first is not None
            first.close()
        with engine.connect() as connection:
            assert connection.connection.dbapi_connection is not first
            assert connection.execute(text("SELECT 1")).scalar_one() == 1
    finally:
        engine.dispose()
