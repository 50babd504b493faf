"""The audit history: every state change queues an event in its unit of work.

`record` only queues the event on the session's unit of work (app/uow/unit.py) and
registers `_append_queued` there once; at commit the unit sends what that hook returns as
the transaction's last statement, in the same message as COMMIT, where the database chains
the events (see migrations/versions/0001_foundation.py). A rolled-back unit (or savepoint)
forgets its events with everything else. Verification recomputes every hash in the
database in one ordered scan.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text

from app.uow.unit import AnySession, LastStatement, RequestContext, UnitOfWork

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
    session: AnySession,
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
    """Queue an audit event; it is written in the same transaction, as its last statement.

    `context` is the request the event comes from; by default the unit of work's.
    """
    unit = session.unit
    context = context or unit.context
    unit.audit_events.append(
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
    unit.before_commit(_append_queued)


# The queued events go to the server as one JSON array, which riskdesk_append_audit
# (migrations/versions/0008) inserts in queue order with a plan the session keeps: one
# parameter to quote, nothing to plan per commit.
_INSERT_EVENTS = "SELECT riskdesk_append_audit(%s)"


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str, separators=(",", ":"))


def _append_queued(unit: UnitOfWork) -> LastStatement | None:
    """The unit's last statement: insert its queued events (sent with COMMIT, in one message).

    The chain trigger takes its lock at the insert and COMMIT releases it. Sent together,
    no client round trip (nor a wait for Python's GIL in a busy worker) happens while the
    lock is held, so writers serialize only for the server-side insert and WAL flush.
    """
    if not unit.audit_events:
        return None  # all of them were in a rolled-back savepoint
    return _INSERT_EVENTS, (_dumps(unit.audit_events),)


def use_given_times(session: AnySession, time_of: Callable[[dict[str, Any]], datetime]) -> None:
    """Write this unit's queued events with the times `time_of` gives them (the demo seed's history).

    The events are put in time order (queue order among equal times) and the transaction
    asks the chain trigger to keep their times (migration 0019): a time after the server's
    clock, or before the chain's newest event, fails the commit. Each hash covers the stored
    time as always, so the chain verifies as any other.
    """
    unit = session.unit
    for event in unit.audit_events:
        event["occurred_at"] = time_of(event)
    unit.audit_events.sort(key=lambda event: event["occurred_at"])
    session.execute(text("SELECT set_config('riskdesk.audit_given_times', 'on', true)"))


@dataclass(frozen=True)
class ChainStatus:
    ok: bool
    events: int
    first_broken_id: int | None = None
    last_verified_id: int | None = None
