"""The audit history: every state change queues an event in its unit of work.

`record` only queues; `write_pending` (run by the session's before_commit hook) inserts
the queued events as the last statement of the transaction, where the database chains
them (see migrations/versions/0001_foundation.py). Verification recomputes every hash
in the database in one ordered scan.
"""

import json
from dataclasses import dataclass
from typing import Any

import psycopg2
from sqlalchemy.exc import DBAPIError
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.db import RequestContext, execute_and_commit

PENDING_KEY = "audit_pending"
SAVEPOINTS_KEY = "audit_savepoints"
SYSTEM = "system"


@dataclass(frozen=True)
class Actor:
    """Who acted: a user (human or agent account) or the system itself."""

    name: str
    id: int | None = None
    role: str | None = None

    @property
    def type(self) -> str:
        if self.role is None:
            return "system"
        return "agent" if self.role == "agent" else "human"


SYSTEM_ACTOR = Actor(name=SYSTEM)


def record(
    session: Session,
    *,
    actor: Actor,
    action: str,
    entity_type: str,
    entity_id: str | int,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str | None = None,
    context: RequestContext | None = None,
) -> None:
    """Queue an audit event; it is written in the same transaction, just before commit.

    `context` is the request the event comes from; by default the unit of work's.
    """
    context = context or session.info.get("context") or RequestContext()
    session.info.setdefault(PENDING_KEY, []).append(
        {
            "actor": actor.name,
            "actor_id": actor.id,
            "actor_role": actor.role,
            "actor_type": actor.type,
            "action": action,
            "entity_type": entity_type,
            "entity_id": str(entity_id),
            "before": before,
            "after": after,
            "reason": reason,
            "request_id": context.request_id,
            "client_addr": context.client_addr,
        }
    )


# The queued events go to the server as one JSON array, which riskdesk_append_audit
# (migrations/versions/0008) inserts in queue order with a plan the session keeps: one
# parameter to quote, nothing to plan per commit.
_INSERT_EVENTS = "SELECT riskdesk_append_audit(%s)"


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str, separators=(",", ":"))


def write_pending(session: Session) -> None:
    """Insert the queued events and COMMIT, in one message to the server.

    The chain trigger takes its lock at the insert and COMMIT releases it. Sent together,
    no client round trip (nor a wait for Python's GIL in a busy worker) happens while the
    lock is held, so writers serialize only for the server-side insert and WAL flush. The
    commit SQLAlchemy issues afterwards finds the transaction over and sends nothing (app/db.py).
    """
    session.info.pop(SAVEPOINTS_KEY, None)
    pending = session.info.pop(PENDING_KEY, None)
    if not pending:
        return
    session.flush()
    try:
        with session.connection().connection.cursor() as cursor:
            statement = cursor.mogrify(_INSERT_EVENTS, (_dumps(pending),))
        execute_and_commit(session, statement)
    except psycopg2.Error as exc:
        # A raw cursor bypasses SQLAlchemy's wrapping; wrap here so app/errors.py maps a lock
        # or statement timeout to 503 like any other database error.
        raise DBAPIError.instance("INSERT INTO audit_events …", None, exc, psycopg2.Error) from exc


def mark_savepoint(session: Session, savepoint: Any) -> None:
    """Remember how many events were queued when a savepoint began."""
    session.info.setdefault(SAVEPOINTS_KEY, {})[savepoint] = len(session.info.get(PENDING_KEY, ()))


def discard_pending(session: Session, transaction: Any = None) -> None:
    """Forget events of what was rolled back: a savepoint's own, or all of them."""
    if transaction is not None and transaction.nested:
        mark = session.info.get(SAVEPOINTS_KEY, {}).pop(transaction, None)
        if mark is not None and PENDING_KEY in session.info:
            del session.info[PENDING_KEY][mark:]
        return
    if transaction is not None and transaction.parent is not None:
        return  # the internal subtransaction of a failed flush; the outer one decides
    session.info.pop(PENDING_KEY, None)
    session.info.pop(SAVEPOINTS_KEY, None)


@dataclass(frozen=True)
class ChainStatus:
    ok: bool
    events: int
    first_broken_id: int | None = None
    last_verified_id: int | None = None


# One ordered scan: each event's hash is recomputed and linked to its predecessor's. From
# :after_id on, the first event must link to :start_hash (the hash verified last time).
VERIFY_SQL = text(
    """
    WITH checked AS (
      SELECT id, hash,
             hash = audit_event_hash(prev_hash, e) AS hash_ok,
             prev_hash = coalesce(lag(hash) OVER (ORDER BY id), :start_hash) AS link_ok
      FROM audit_events e
      WHERE id > :after_id
    )
    SELECT count(*) AS events,
           min(id) FILTER (WHERE NOT (hash_ok AND link_ok)) AS first_broken_id,
           max(id) AS last_id
    FROM checked
    """
)
GENESIS_HASH = "0" * 64
# A full check of millions of events takes seconds; the request's usual limit is shorter.
VERIFY_STATEMENT_TIMEOUT = "300s"


def verify_chain(session: Session, *, after_id: int = 0, start_hash: str = GENESIS_HASH) -> ChainStatus:
    """Recompute every event's hash and link (or only those after `after_id`); report the first broken event.

    `events` counts the events checked by this call.
    """
    session.execute(text("SELECT set_config('statement_timeout', :t, true)"), {"t": VERIFY_STATEMENT_TIMEOUT})
    row = session.execute(VERIFY_SQL, {"after_id": after_id, "start_hash": start_hash}).one()
    if row.first_broken_id is not None:
        last_good = session.execute(
            text("SELECT max(id) FROM audit_events WHERE id < :id"), {"id": row.first_broken_id}
        ).scalar()
        return ChainStatus(False, row.events, row.first_broken_id, last_good)
    return ChainStatus(True, row.events, None, row.last_id if row.last_id is not None else (after_id or None))
