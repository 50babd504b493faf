"""One bad delivery never stops the worker: its failure is recorded on that attempt, the others go on."""

import os
import subprocess
import sys

import pytest
from sqlalchemy import create_engine, pool, text
from sqlalchemy.exc import OperationalError

from app.webhooks import targets
from app.webhooks import worker as worker_module
from app.webhooks.worker import Worker, WorkerConfig
from tests.webhooks.conftest import register, rows
from tests.webhooks.test_worker import FAST, ROOT, run_until, settle_many

# Accepted before URLs were checked at registration; each made httpx (or IDNA) raise in the worker.
STORED_BAD_URLS = [
    "http://0177.0.0.1/",
    "https://256.1.1.1/",
    "https://ⓔⓧⓐⓜⓟⓛⓔ.com/",
    "https://exam\u00adple.com/",
    "https://xn--zz.example/",
]
GOOD_SECRET = "whsec_" + "A" * 43 + "="
# A failure is not retried in the run.
ONE_TRY = WorkerConfig(batch=10, timeout=2.0, backoff_base=60, poll_interval=0.05)


def insert_endpoint(db, url: str, secret: str = GOOD_SECRET) -> int:
    """An endpoint row as one stored before validation would be: straight into the table."""
    endpoint_id = db.execute(text(
        "INSERT INTO webhook_endpoints (url, secret, event_types) VALUES (:url, :secret, ARRAY['transaction.settled'])"
        " RETURNING id"), {"url": url, "secret": secret}).scalar_one()
    db.commit()
    return endpoint_id


def test_worker_once_delivers_the_good_endpoints_and_records_each_bad_urls_failure(
    client, admin_headers, desk, receiver, db
):
    bad_ids = [insert_endpoint(db, url) for url in STORED_BAD_URLS]  # first: their deliveries are claimed first
    register(client, admin_headers, receiver.url)
    register(client, admin_headers, receiver.url.replace("/hook", "/other"))
    settle_many(desk, 2)
    command = [sys.executable, "-m", "app", "worker", "--once", "--batch", "4", "--poll-interval", "0.05"]
    env = {**os.environ, "LOG_LEVEL": "WARNING"}
    done = subprocess.run(command, check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"delivered 4 ({4 + 2 * len(bad_ids)} attempts)"), done.stdout
    assert len(receiver.requests) == 4
    good = rows(db, "SELECT status FROM webhook_deliveries WHERE NOT endpoint_id = ANY(:ids)", ids=bad_ids)
    assert [d.status for d in good] == ["delivered"] * 4
    failed = rows(db, "SELECT d.status, d.last_error, d.next_attempt_at > now() AS later, a.status_code, a.error"
                      " FROM webhook_deliveries d JOIN webhook_attempts a ON a.delivery_id = d.id"
                      " WHERE d.endpoint_id = ANY(:ids)", ids=bad_ids)
    assert len(failed) == 2 * len(bad_ids)
    for delivery in failed:
        assert delivery.status == "pending" and delivery.later  # backing off, not stalling the queue
        assert delivery.status_code is None and delivery.error == delivery.last_error
        assert delivery.error.startswith("invalid URL: must be an http or https URL"), delivery.error


def test_a_poison_delivery_backs_off_and_ends_failed_like_any_other(client, admin_headers, desk, receiver, db):
    insert_endpoint(db, "http://0177.0.0.1/")
    register(client, admin_headers, receiver.url)
    settle_many(desk, 3)
    db.execute(text("UPDATE webhook_deliveries SET max_attempts = 3"))
    db.commit()
    run_until(Worker(FAST), lambda: not rows(db, "SELECT id FROM webhook_deliveries WHERE status = 'pending'"))

    outcomes = rows(db, "SELECT e.url, d.status, d.attempt_count FROM webhook_deliveries d"
                        " JOIN webhook_endpoints e ON e.id = d.endpoint_id ORDER BY d.id")
    assert sorted((o.url == receiver.url, o.status, o.attempt_count) for o in outcomes) == [
        (False, "failed", 3)] * 3 + [(True, "delivered", 1)] * 3
    assert len(receiver.requests) == 3


@pytest.mark.parametrize("exception", [ValueError("bad"), UnicodeError("label empty or too long"),
                                       RuntimeError("surprise"), KeyError("x"), RecursionError()])
def test_whatever_one_delivery_raises_is_recorded_and_the_others_are_delivered(
    client, admin_headers, desk, receiver, db, monkeypatch, exception
):
    poison = receiver.url.replace("/hook", "/poison")
    register(client, admin_headers, poison)
    register(client, admin_headers, receiver.url)
    settle_many(desk, 2)
    real_resolve = targets.resolve

    def resolve(url, **kwargs):
        if url == poison:
            raise exception
        return real_resolve(url, **kwargs)

    monkeypatch.setattr(targets, "resolve", resolve)
    assert Worker(ONE_TRY).run(once=True) == 2

    attempts = rows(db, "SELECT e.url, a.status_code, a.error FROM webhook_attempts a"
                        " JOIN webhook_deliveries d ON d.id = a.delivery_id"
                        " JOIN webhook_endpoints e ON e.id = d.endpoint_id"
                        " ORDER BY a.id")
    assert sorted((a.url == poison, a.status_code) for a in attempts) == [(False, 200)] * 2 + [(True, None)] * 2
    errors = {a.error for a in attempts if a.url == poison}
    assert errors == {f"{type(exception).__name__}: {exception}"}


def test_a_stored_secret_that_cannot_sign_fails_only_its_own_delivery(client, admin_headers, desk, receiver, db):
    insert_endpoint(db, receiver.url, secret="whsec_not*base64")
    register(client, admin_headers, receiver.url)
    settle_many(desk, 1)
    assert Worker(ONE_TRY).run(once=True) == 1
    # The two deliveries run side by side, so their attempts may be stored in either order.
    errors = sorted((a.error for a in rows(db, "SELECT error FROM webhook_attempts")), key=lambda e: e is None)
    assert len(errors) == 2 and errors[0] and errors[0].startswith("Error: ") and errors[1] is None, errors


def test_an_error_message_is_stored_printable_and_short(client, admin_headers, desk, receiver, db, monkeypatch):
    register(client, admin_headers, receiver.url)
    settle_many(desk, 1)
    monkeypatch.setattr(targets, "resolve", lambda url, **kwargs: (_ for _ in ()).throw(ValueError("\x00\x07" * 400)))
    assert Worker(ONE_TRY).run(once=True) == 0
    [attempt] = rows(db, "SELECT error FROM webhook_attempts")
    assert attempt.error.startswith("ValueError: ??") and len(attempt.error) <= 300 and "\x00" not in attempt.error


def test_each_outcome_is_committed_as_soon_as_it_is_known(client, admin_headers, desk, receiver, db, database_url):
    register(client, admin_headers, receiver.url)
    settle_many(desk, 3)
    engine = create_engine(database_url, poolclass=pool.NullPool)
    seen: list[int] = []
    answer = receiver.handle

    def handle(headers, body):
        # What another connection sees while the worker is still in the middle of its batch.
        with engine.connect() as conn:
            delivered = "SELECT count(*) FROM webhook_deliveries WHERE status = 'delivered'"
            seen.append(conn.execute(text(delivered)).scalar_one())
        return answer(headers, body)

    receiver.handle = handle
    try:
        assert Worker(FAST).run(once=True) == 3
    finally:
        engine.dispose()
    assert seen == [0, 1, 2]


def test_a_running_worker_survives_a_database_error_and_polls_again(
    client, admin_headers, desk, receiver, db, monkeypatch
):
    register(client, admin_headers, receiver.url)
    settle_many(desk, 1)
    monkeypatch.setattr(worker_module, "RETRY_AFTER_DATABASE_ERROR", 0.05)
    worker = Worker(FAST)
    real_claim = worker._claim
    failures = iter([OperationalError("SELECT", {}, Exception("server closed the connection"))])

    def claim():
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return real_claim()

    monkeypatch.setattr(worker, "_claim", claim)
    run_until(worker, lambda: len(receiver.requests) == 1, seconds=10)
    assert worker.delivered == 1
    with pytest.raises(OperationalError):  # --once reports it instead
        failing = Worker(FAST)
        down = OperationalError("SELECT", {}, Exception("down"))
        monkeypatch.setattr(failing, "_claim", lambda: (_ for _ in ()).throw(down))
        failing.run(once=True)
