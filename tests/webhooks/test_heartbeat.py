"""Each worker upserts a heartbeat as it polls; the deliveries screen says plainly when none has been seen."""

import html
import os
import re
import socket

import pytest
from sqlalchemy import text

from app.config import get_settings
from app.webhooks.worker import Worker
from tests.web.conftest import sign_in  # noqa: F401 (a fixture)
from tests.webhooks.conftest import rows
from tests.webhooks.test_worker import FAST

MISSING = ("No delivery worker has been seen in the last 2 minutes; deliveries are waiting. "
           "Start one with python -m app worker.")


def screen_text(client) -> str:
    response = client.get("/webhooks/deliveries")
    assert response.status_code == 200, response.text
    flat = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html.unescape(response.text)))
    return flat.replace(" ;", ";").replace(" .", ".")


def test_a_worker_upserts_one_heartbeat_row_per_process_and_writes_no_audit_event(db):
    audit_before = rows(db, "SELECT count(*) AS n FROM audit_events")[0].n
    assert Worker(FAST).run(once=True) == 0
    [first] = rows(db, "SELECT worker_id, hostname, pid, started_at, last_seen_at FROM webhook_workers")
    assert first.worker_id == f"{socket.gethostname()}:{os.getpid()}"[:64]
    assert (first.hostname, first.pid) == (socket.gethostname(), os.getpid())
    assert first.started_at <= first.last_seen_at

    assert Worker(FAST).run(once=True) == 0  # the same process again: the same row, seen later
    [second] = rows(db, "SELECT worker_id, last_seen_at FROM webhook_workers")
    assert second.worker_id == first.worker_id and second.last_seen_at > first.last_seen_at
    assert rows(db, "SELECT count(*) AS n FROM audit_events")[0].n == audit_before


def test_workers_gone_for_a_week_are_forgotten(db):
    db.execute(text("INSERT INTO webhook_workers (worker_id, hostname, pid, started_at, last_seen_at) VALUES"
                    " ('old:1', 'old', 1, now() - interval '9 days', now() - interval '8 days'),"
                    " ('recent:2', 'recent', 2, now() - interval '2 days', now() - interval '1 day')"))
    db.commit()
    Worker(FAST).run(once=True)
    assert sorted(r.worker_id for r in rows(db, "SELECT worker_id FROM webhook_workers")) == [
        "recent:2", f"{socket.gethostname()}:{os.getpid()}"[:64]]


def test_the_deliveries_screen_says_when_no_worker_has_ever_been_seen(client, sign_in, db):  # noqa: F811
    sign_in("admin", "root")
    page = screen_text(client)
    assert MISSING in page
    assert "Delivery worker last seen" not in page


def test_the_deliveries_screen_says_when_the_last_worker_was_seen_too_long_ago(client, sign_in, db):  # noqa: F811
    db.execute(text("INSERT INTO webhook_workers (worker_id, hostname, pid, started_at, last_seen_at)"
                    " VALUES ('gone:7', 'gone', 7, now() - interval '1 hour', now() - interval '3 minutes')"))
    db.commit()
    sign_in("admin", "root")
    page = screen_text(client)
    assert MISSING in page
    assert "The last one ( gone:7 ) was seen" in page


def test_the_deliveries_screen_shows_when_a_worker_was_last_seen(client, sign_in, db):  # noqa: F811
    Worker(FAST).run(once=True)
    sign_in("admin", "root")
    page = screen_text(client)
    assert "No delivery worker has been seen" not in page
    assert re.search(r"Delivery worker last seen \d+ s ago \(\d{4}-\d\d-\d\d \d\d:\d\d UTC, \S+:\d+ \)", page), page


@pytest.fixture
def five_minutes(monkeypatch):
    monkeypatch.setenv("WEBHOOK_WORKER_SEEN_MINUTES", "5")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def test_the_threshold_is_a_setting(client, sign_in, db, five_minutes):  # noqa: F811
    db.execute(text("INSERT INTO webhook_workers (worker_id, hostname, pid, started_at, last_seen_at)"
                    " VALUES ('slow:7', 'slow', 7, now() - interval '1 hour', now() - interval '3 minutes')"))
    db.commit()
    sign_in("admin", "root")
    assert "Delivery worker last seen 3 min ago" in screen_text(client)
    db.execute(text("UPDATE webhook_workers SET last_seen_at = now() - interval '6 minutes'"))
    db.commit()
    assert "No delivery worker has been seen in the last 5 minutes; deliveries are waiting." in screen_text(client)
