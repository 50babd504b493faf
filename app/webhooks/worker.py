"""`python -m app worker`: delivers the outbox, signed per Standard Webhooks.

Claiming: one statement picks due deliveries with FOR UPDATE SKIP LOCKED, counts the
attempt and pushes `next_attempt_at` a lease into the future, then commits. So several
workers never pick the same delivery, and no transaction stays open during HTTP calls;
a worker that dies mid-delivery leaves the lease to run out and the delivery is retried
(at-least-once; receivers deduplicate on webhook-id, which never changes on retries).
Every attempt is recorded; failures back off exponentially with jitter up to max_attempts.
"""

import json
import logging
import os
import random
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from sqlalchemy import text

from app.config import get_settings
from app.db import database
from app.webhooks import signing, targets

log = logging.getLogger("riskdesk.webhooks")

CLAIM = text(
    """
    WITH due AS (
      SELECT d.id FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
      WHERE d.status = 'pending' AND d.next_attempt_at <= now() AND e.is_active
      ORDER BY d.next_attempt_at, d.id LIMIT :batch
      FOR UPDATE OF d SKIP LOCKED
    )
    UPDATE webhook_deliveries d
    SET attempt_count = d.attempt_count + 1, updated_at = now(),
        next_attempt_at = now() + make_interval(secs => :lease)
    FROM due, webhook_endpoints e, webhook_events v
    WHERE d.id = due.id AND e.id = d.endpoint_id AND v.id = d.event_id
    RETURNING d.id, d.attempt_count, d.max_attempts, e.url, e.secret, v.message_id, v.event_type,
              v.payload, v.created_at
    """
)
RECORD = text(
    """
    WITH attempt AS (
      INSERT INTO webhook_attempts (delivery_id, attempt_no, started_at, duration_ms, status_code, error, worker)
      VALUES (:id, :attempt_no, :started_at, :duration_ms, :status_code, :error, :worker)
    )
    UPDATE webhook_deliveries
    SET status = :status, last_status_code = :status_code, last_error = :error, updated_at = now(),
        next_attempt_at = now() + make_interval(secs => :retry_in),
        delivered_at = CASE WHEN :status = 'delivered' THEN now() END
    WHERE id = :id AND attempt_count = :attempt_no
    """
)
RELEASE = text(
    "UPDATE webhook_deliveries SET attempt_count = attempt_count - 1, next_attempt_at = now()"
    " WHERE id = :id AND attempt_count = :attempt_no"
)


@dataclass(frozen=True)
class WorkerConfig:
    batch: int = 20
    timeout: float = 10.0  # seconds per HTTP attempt
    backoff_base: float = 5.0  # first retry after ~5 s, then 10, 20, … (±50 % jitter)
    backoff_cap: float = 3600.0
    poll_interval: float = 1.0
    # None: the setting WEBHOOK_PRIVATE_TARGETS (app/webhooks/targets.py).
    allow_private_targets: bool | None = None

    @property
    def lease_seconds(self) -> float:
        return self.timeout + 60.0


def backoff(attempt: int, config: WorkerConfig) -> float:
    """Seconds before retrying after the attempt-th failure: exponential, capped, with jitter."""
    return min(config.backoff_cap, config.backoff_base * 2 ** (attempt - 1)) * random.uniform(0.5, 1.5)


def body_of(claimed) -> bytes:
    created = claimed.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return json.dumps({"type": claimed.event_type, "timestamp": created, "data": claimed.payload},
                      separators=(",", ":"), default=str).encode()


class Worker:
    def __init__(self, config: WorkerConfig | None = None, name: str | None = None) -> None:
        self.config = config or WorkerConfig()
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        allow = self.config.allow_private_targets
        self.allow_private_targets = get_settings().allows_private_webhook_targets if allow is None else allow
        self._stop = threading.Event()
        self.delivered = 0
        self.attempts = 0

    def stop(self) -> None:
        """Finish the delivery in flight, hand back the rest of the batch, then return from run()."""
        self._stop.set()

    def run(self, *, once: bool = False, max_seconds: float | None = None) -> int:
        """Deliver until stopped (or, with `once`, until nothing is due); returns deliveries that succeeded."""
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        with httpx.Client(timeout=self.config.timeout, follow_redirects=False) as client:
            while not self._stop.is_set() and (deadline is None or time.monotonic() < deadline):
                claimed = self._claim()
                if not claimed:
                    if once:
                        break
                    self._stop.wait(self.config.poll_interval)
                    continue
                results = []
                for index, delivery in enumerate(claimed):
                    if self._stop.is_set() or (deadline is not None and time.monotonic() >= deadline):
                        self._release(claimed[index:])
                        break
                    results.append(self._attempt(client, delivery))
                self._record(results)
        return self.delivered

    def _claim(self) -> list:
        with database.session() as session:
            rows = session.execute(CLAIM, {"batch": self.config.batch, "lease": self.config.lease_seconds}).all()
            session.commit()
        return rows

    def _release(self, deliveries: list) -> None:
        with database.session() as session:
            for delivery in deliveries:
                session.execute(RELEASE, {"id": delivery.id, "attempt_no": delivery.attempt_count})
            session.commit()

    def _attempt(self, client: httpx.Client, delivery) -> dict:
        """POST one signed delivery; the attempt's record and the delivery's next state."""
        body = body_of(delivery)
        headers = signing.headers(delivery.secret, delivery.message_id, int(time.time()), body)
        started_at = datetime.now(UTC)
        started = time.perf_counter()
        status_code, error = None, None
        try:
            target = targets.resolve(delivery.url, allow_private=self.allow_private_targets)
            response = client.post(target.url, content=body, headers={**headers, **target.headers},
                                   extensions=target.extensions)
            status_code = response.status_code
            if not 200 <= status_code < 300:
                error = f"HTTP {status_code}"
        except httpx.TimeoutException:
            error = f"timed out after {self.config.timeout:g} s"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        except targets.TargetError as exc:
            error = str(exc)[:500]
        self.attempts += 1
        if error is None:
            status, retry_in = "delivered", 0.0
            self.delivered += 1
        elif delivery.attempt_count >= delivery.max_attempts:
            status, retry_in = "failed", 0.0
        else:
            status, retry_in = "pending", backoff(delivery.attempt_count, self.config)
        if error:
            log.info("webhook delivery failed", extra={"delivery_id": delivery.id, "attempt": delivery.attempt_count,
                                                       "error": error, "next": status})
        return {
            "id": delivery.id, "attempt_no": delivery.attempt_count, "started_at": started_at,
            "duration_ms": int((time.perf_counter() - started) * 1000), "status_code": status_code, "error": error,
            "worker": self.name[:64], "status": status, "retry_in": retry_in,
        }

    def _record(self, results: list[dict]) -> None:
        # One commit per claimed batch: a crash before it only means those are delivered again.
        if not results:
            return
        with database.session() as session:
            session.execute(RECORD, results)
            session.commit()
