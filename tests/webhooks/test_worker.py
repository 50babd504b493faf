"""The worker against a real HTTP receiver: signatures, retries with backoff, attempts, several workers."""

import base64
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import text

from app.webhooks.worker import Worker, WorkerConfig
from tests.webhooks.conftest import register, rows

ROOT = Path(__file__).resolve().parents[2]
FAST = WorkerConfig(batch=10, timeout=2.0, backoff_base=0.05, poll_interval=0.05)


def settle_many(desk, count: int) -> None:
    for i in range(count):
        desk.transaction(f"tx-{i}")
        assert desk.settle(f"tx-{i}").status_code == 200


def run_until(worker: Worker, done, seconds: float = 20.0) -> None:
    thread = threading.Thread(target=worker.run, kwargs={"max_seconds": seconds})
    thread.start()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not done():
        time.sleep(0.05)
    worker.stop()
    thread.join(10)
    assert not thread.is_alive()


def expected_signature(secret: str, headers: dict[str, str], body: bytes) -> str:
    """Standard Webhooks, computed here independently of app/webhooks/signing.py."""
    key = base64.b64decode(secret[len("whsec_"):])
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.{body.decode()}".encode()
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def test_deliveries_are_signed_per_standard_webhooks(client, admin_headers, desk, receiver, db):
    endpoint = register(client, admin_headers, receiver.url)
    settle_many(desk, 1)
    assert Worker(FAST).run(once=True) == 1
    [request] = receiver.requests
    assert request.headers["webhook-signature"] == expected_signature(endpoint["secret"], request.headers, request.body)
    assert request.headers["webhook-id"].startswith("msg_")
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 60
    body = json.loads(request.body)
    assert body["type"] == "transaction.settled" and body["data"]["reference"] == "tx-0"
    assert body["data"]["amount"] == "125.50"
    [delivery] = rows(db, "SELECT status, attempt_count, delivered_at FROM webhook_deliveries")
    assert (delivery.status, delivery.attempt_count) == ("delivered", 1) and delivery.delivered_at


def test_a_receiver_failing_twice_gets_one_success_after_three_recorded_attempts(
    client, admin_headers, desk, receiver, db
):
    register(client, admin_headers, receiver.url)
    receiver.fail_first = 2
    settle_many(desk, 1)
    worker = Worker(FAST)
    run_until(worker, lambda: rows(db, "SELECT id FROM webhook_deliveries WHERE status = 'delivered'"))
    assert [r.headers["webhook-id"] for r in receiver.requests].count(receiver.requests[0].headers["webhook-id"]) == 3
    attempts = rows(db, "SELECT attempt_no, status_code, error, duration_ms FROM webhook_attempts ORDER BY id")
    assert [(a.attempt_no, a.status_code, a.error) for a in attempts] == [
        (1, 500, "HTTP 500"), (2, 500, "HTTP 500"), (3, 200, None)]
    assert all(a.duration_ms >= 0 for a in attempts)
    [delivery] = rows(db, "SELECT status, attempt_count FROM webhook_deliveries")
    assert (delivery.status, delivery.attempt_count) == ("delivered", 3)
    assert worker.delivered == 1


def test_a_delivery_gives_up_after_max_attempts_and_an_admin_can_retry_it(
    client, admin_headers, desk, receiver, db
):
    register(client, admin_headers, receiver.url)
    receiver.fail_first = 10**6
    settle_many(desk, 1)
    db.execute(text("UPDATE webhook_deliveries SET max_attempts = 2"))
    db.commit()
    run_until(Worker(FAST), lambda: rows(db, "SELECT id FROM webhook_deliveries WHERE status = 'failed'"))
    [delivery] = rows(db, "SELECT id, attempt_count FROM webhook_deliveries")
    assert delivery.attempt_count == 2 and len(receiver.requests) == 2

    receiver.fail_first = 0
    receiver.requests.clear()
    retried = client.post(f"/api/webhooks/deliveries/{delivery.id}/retry", headers=admin_headers)
    assert retried.status_code == 200 and retried.json()["status"] == "pending"
    assert Worker(FAST).run(once=True) == 1
    listed = client.get("/api/webhooks/deliveries", headers=admin_headers).json()["items"]
    assert [(d["status"], len(d["attempts"])) for d in listed] == [("delivered", 3)]
    assert rows(db, "SELECT action FROM audit_events WHERE action = 'webhook.delivery_retried'")


def test_a_timeout_is_recorded_as_a_failed_attempt(client, admin_headers, desk, db):
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts connections, never answers
    try:
        register(client, admin_headers, f"http://127.0.0.1:{listener.getsockname()[1]}/slow")
        settle_many(desk, 1)
        worker = Worker(WorkerConfig(timeout=0.3, backoff_base=60, poll_interval=0.05))
        assert worker.run(once=True) == 0
    finally:
        listener.close()
    [attempt] = rows(db, "SELECT status_code, error FROM webhook_attempts")
    assert attempt.status_code is None and "timed out" in attempt.error
    [delivery] = rows(db, "SELECT status, next_attempt_at > now() + interval '20 seconds' AS later"
                          " FROM webhook_deliveries")
    assert delivery.status == "pending" and delivery.later


def test_two_worker_processes_never_deliver_one_event_twice(client, admin_headers, desk, receiver, db):
    register(client, admin_headers, receiver.url)
    receiver.delay = 0.05  # 3 s of work for one worker: both are running while deliveries remain
    settle_many(desk, 60)
    env = {**os.environ, "LOG_LEVEL": "WARNING"}
    command = [sys.executable, "-m", "app", "worker", "--once", "--batch", "3", "--poll-interval", "0.05"]
    workers = [subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [w.communicate(timeout=120)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0]
    ids = Counter(r.headers["webhook-id"] for r in receiver.requests)
    assert len(ids) == 60 and set(ids.values()) == {1}
    delivered = [int(out.split()[1]) for out in outputs]
    assert sum(delivered) == 60 and min(delivered) > 0, delivered
    assert rows(db, "SELECT count(*) AS n FROM webhook_attempts")[0].n == 60


def test_the_worker_stops_cleanly_on_sigterm(database_url, db):
    process = subprocess.Popen([sys.executable, "-m", "app", "worker", "--poll-interval", "0.1"], cwd=ROOT,
                               env={**os.environ, "LOG_LEVEL": "WARNING"}, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60  # running once its heartbeat is in: a loaded machine starts slowly
    while not rows(db, "SELECT count(*) AS n FROM webhook_workers WHERE pid = :pid", pid=process.pid)[0].n:
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=10)
    assert process.returncode == 0 and out.startswith("delivered 0")
