"""The outbox: `enqueue` writes a webhook event, and one delivery per subscribed endpoint,
in the caller's transaction, so an event exists exactly when the change it announces
committed. Fan-out happens here (at enqueue time): an endpoint registered later does not
receive earlier events, and a delivery keeps the endpoint it was meant for.
"""

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, insert, text

from app.uow.unit import AnySession
from app.webhooks.models import WebhookEvent

INSERT_EVENTS = insert(WebhookEvent).returning(WebhookEvent.id)
# One event: a Core statement built once (its values come as parameters), not one built and hashed per call.
INSERT_EVENT = insert(WebhookEvent.__table__).returning(WebhookEvent.__table__.c.id)
FAN_OUT = text(
    """
    INSERT INTO webhook_deliveries (event_id, endpoint_id)
    SELECT ev.id, ep.id
    FROM webhook_events ev
    JOIN webhook_endpoints ep
      ON ep.is_active AND ep.deleted_at IS NULL AND ev.event_type = ANY(ep.event_types)
    WHERE ev.id IN :ids
    """
).bindparams(bindparam("ids", expanding=True))


def new_message_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def enqueue_many(session: AnySession, events: Sequence[tuple[str, dict[str, Any]]]) -> list[int]:
    """Write (event_type, payload) events to the outbox and fan them out; returns the event ids."""
    if not events:
        return []
    rows = [{"message_id": new_message_id(), "event_type": kind, "payload": payload} for kind, payload in events]
    ids = list(session.execute(INSERT_EVENTS, rows).scalars()) if len(rows) > 1 else [
        session.execute(INSERT_EVENT, rows[0]).scalar_one()
    ]
    session.execute(FAN_OUT, {"ids": ids})
    return ids


def enqueue(session: AnySession, event_type: str, payload: dict[str, Any]) -> int:
    """Write one event to the outbox (and a delivery per subscribed endpoint); returns its id."""
    return enqueue_many(session, [(event_type, payload)])[0]


def enqueue_for_endpoint(session: AnySession, endpoint_id: int, event_type: str, payload: dict[str, Any]) -> int:
    """Write one event with a single delivery, to `endpoint_id` only (a test event); returns the delivery id."""
    event_id = session.execute(
        INSERT_EVENT, {"message_id": new_message_id(), "event_type": event_type, "payload": payload}
    ).scalar_one()
    return session.execute(
        text("INSERT INTO webhook_deliveries (event_id, endpoint_id) VALUES (:event, :endpoint) RETURNING id"),
        {"event": event_id, "endpoint": endpoint_id},
    ).scalar_one()
