"""`python -m app worker`: delivers the outbox, signed per Standard Webhooks.

Claiming: one statement picks due deliveries with FOR UPDATE SKIP LOCKED, counts the
attempt and pushes `next_attempt_at` a lease into the future, then commits. So several
workers never pick the same delivery, and no transaction stays open during HTTP calls;
a worker that dies mid-delivery leaves the lease to run out and the delivery is retried
(at-least-once; receivers deduplicate on webhook-id, which never changes on retries).
Every attempt is recorded; failures back off exponentially with jitter up to max_attempts.

One bad delivery never stops the worker: whatever an attempt raises (an unparsable URL
stored before URLs were checked, a bad secret, anything) is recorded as that attempt's
failure, and each outcome is committed as soon as it is known, so a crash loses at most
the delivery in flight and a poison delivery backs off and ends `failed` like any other.
Each worker also upserts its heartbeat row (`webhook_workers`) while it polls and
delivers, so the deliveries screen can say when none is running.
"""

import json
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import Row, text

from app.config import get_settings
from app.db import database
from app.webhooks import signing, targets
from app.webhooks.enums import DeliveryStatus

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
HEARTBEAT = text(
    """
    INSERT INTO webhook_workers (worker_id, hostname, pid, started_at, last_seen_at)
    VALUES (:worker_id, :hostname, :pid, :started_at, now())
    ON CONFLICT (worker_id) DO UPDATE
    SET hostname = EXCLUDED.hostname, pid = EXCLUDED.pid, started_at = EXCLUDED.started_at,
        last_seen_at = EXCLUDED.last_seen_at
    """
)
FORGET_GONE_WORKERS = text("DELETE FROM webhook_workers WHERE last_seen_at < now() - interval '7 days'")
HEARTBEAT_SECONDS = 10.0  # at most one heartbeat write per worker this often (the screen's threshold is minutes)
RETRY_AFTER_DATABASE_ERROR = 5.0  # seconds a running worker waits when the database fails it
MAX_ERROR_CHARS = 300
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
    # How often a running worker considers a signed audit checkpoint (app/audit/flows.py);
    # None: AUDIT_CHECKPOINT_MINUTES. The first comes one interval after the worker starts,
    # and `--once` never makes one.
    checkpoint_seconds: float | None = None

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
        self.started_at = datetime.now(UTC)
        self._last_heartbeat: float | None = None
        every = self.config.checkpoint_seconds
        self.checkpoint_seconds = get_settings().audit_checkpoint_minutes * 60.0 if every is None else every
        self._next_checkpoint = time.monotonic() + self.checkpoint_seconds
        self.delivered = 0
        self.attempts = 0
        self.checkpoints = 0

    def stop(self) -> None:
        """Finish the delivery in flight, hand back the rest of the batch, then return from run()."""
        self._stop.set()

    def run(self, *, once: bool = False, max_seconds: float | None = None) -> int:
        """Deliver until stopped (or, with `once`, until nothing is due); returns deliveries that succeeded."""
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        with httpx.Client(timeout=self.config.timeout, follow_redirects=False) as client:
            while not self._stop.is_set() and (deadline is None or time.monotonic() < deadline):
                try:
                    if not once:
                        self._maybe_checkpoint()
                    claimed = self._claim()
                    if not claimed:
                        if once:
                            break
                        self._stop.wait(self.config.poll_interval)
                        continue
                    self._deliver(client, claimed, deadline)
                except Exception:
                    # Only the database can fail here (attempts catch everything): a long-running
                    # worker waits and polls again; what it had claimed is retried when the lease ends.
                    if once:
                        raise
                    self._last_heartbeat = None  # its transaction may not have committed
                    log.exception("webhook worker: database error, polling again shortly")
                    self._stop.wait(max(self.config.poll_interval, RETRY_AFTER_DATABASE_ERROR))
        return self.delivered

    def _deliver(self, client: httpx.Client, claimed: Sequence[Row], deadline: float | None) -> None:
        for index, delivery in enumerate(claimed):
            if self._stop.is_set() or (deadline is not None and time.monotonic() >= deadline):
                self._release(claimed[index:])
                return
            # Recorded at once, not at the end of the batch: a later failure cannot lose it.
            self._record(self._attempt(client, delivery))

    def _maybe_checkpoint(self) -> None:
        if time.monotonic() < self._next_checkpoint:
            return
        from app.audit.flows import periodic_checkpoint

        self._next_checkpoint = time.monotonic() + self.checkpoint_seconds
        if periodic_checkpoint(get_settings(), timedelta(seconds=self.checkpoint_seconds)) is not None:
            self.checkpoints += 1

    def _heartbeat(self, session) -> None:
        """Upsert this worker's row, at most every HEARTBEAT_SECONDS (in the caller's transaction)."""
        now = time.monotonic()
        if self._last_heartbeat is not None and now - self._last_heartbeat < HEARTBEAT_SECONDS:
            return
        if self._last_heartbeat is None:
            session.execute(FORGET_GONE_WORKERS)
        session.execute(HEARTBEAT, {"worker_id": self.name[:64], "hostname": socket.gethostname()[:255],
                                    "pid": os.getpid(), "started_at": self.started_at})
        self._last_heartbeat = now

    def _claim(self) -> Sequence[Row]:
        with database.session() as session:
            self._heartbeat(session)
            rows = session.execute(CLAIM, {"batch": self.config.batch, "lease": self.config.lease_seconds}).all()
            session.commit()
        return rows

    def _release(self, deliveries: Sequence[Row]) -> None:
        with database.session() as session:
            for delivery in deliveries:
                session.execute(RELEASE, {"id": delivery.id, "attempt_no": delivery.attempt_count})
            session.commit()

    def _attempt(self, client: httpx.Client, delivery) -> dict:
        """Try one delivery; the attempt's record and the delivery's next state (never raises)."""
        started_at = datetime.now(UTC)
        started = time.perf_counter()
        try:
            status_code, error = self._post(client, delivery)
        except Exception as exc:  # one delivery, whatever it raises, must not stop the others
            status_code, error = None, _short(f"{type(exc).__name__}: {exc}")
            log.warning("webhook delivery raised", exc_info=True, extra={"delivery_id": delivery.id})
        self.attempts += 1
        if error is None:
            status, retry_in = DeliveryStatus.DELIVERED, 0.0
            self.delivered += 1
        elif delivery.attempt_count >= delivery.max_attempts:
            status, retry_in = DeliveryStatus.FAILED, 0.0
        else:
            status, retry_in = DeliveryStatus.PENDING, backoff(delivery.attempt_count, self.config)
        if error:
            log.info("webhook delivery failed", extra={"delivery_id": delivery.id, "attempt": delivery.attempt_count,
                                                       "error": error, "next": status})
        return {
            "id": delivery.id, "attempt_no": delivery.attempt_count, "started_at": started_at,
            "duration_ms": int((time.perf_counter() - started) * 1000), "status_code": status_code, "error": error,
            "worker": self.name[:64], "status": status, "retry_in": retry_in,
        }

    def _post(self, client: httpx.Client, delivery) -> tuple[int | None, str | None]:
        """POST one signed delivery: (status code, error), the error None on a 2xx answer."""
        body = body_of(delivery)
        headers = signing.headers(delivery.secret, delivery.message_id, int(time.time()), body)
        try:
            target = targets.resolve(delivery.url, allow_private=self.allow_private_targets)
            response = client.post(target.url, content=body, headers={**headers, **target.headers},
                                   extensions=target.extensions)
        except httpx.TimeoutException:
            return None, f"timed out after {self.config.timeout:g} s"
        except httpx.HTTPError as exc:
            return None, _short(f"{type(exc).__name__}: {exc}")
        except targets.TargetError as exc:
            return None, _short(str(exc))
        if not 200 <= response.status_code < 300:
            return response.status_code, f"HTTP {response.status_code}"
        return response.status_code, None

    def _record(self, result: dict) -> None:
        """Commit one attempt and its delivery's next state (and, when due, the heartbeat)."""
        with database.session() as session:
            session.execute(RECORD, result)
            self._heartbeat(session)
            session.commit()


def _short(message: str) -> str:
    """An error fit to store and show: printable (PostgreSQL text cannot hold NUL), and short."""
    message = "".join(c if c.isprintable() else "?" for c in message)
    return message if len(message) <= MAX_ERROR_CHARS else message[:MAX_ERROR_CHARS - 1] + "…"
