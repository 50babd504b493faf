"""Audit steps that reach other domains: the periodic checkpoint, announced as a webhook.

The webhook worker calls `periodic_checkpoint` as it polls. Receivers subscribed to
`audit.checkpoint` get each signed checkpoint document, so copies live where the database
cannot reach them; `AUDIT_CHECKPOINT_DIR`, when set, gets a file as well.
"""

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import text

from app.audit import checkpoints
from app.audit import service as audit
from app.audit.service import SYSTEM_ACTOR, Actor
from app.config import Settings
from app.db import database
from app.webhooks import outbox
from app.webhooks.enums import EventType

log = logging.getLogger("riskdesk.audit")
CHECKPOINT_CREATED = "audit.checkpoint_created"
# One worker at a time makes the periodic checkpoint (others find it done).
_CHECKPOINT_LOCK = 7355608002
_LATEST = text("SELECT last_id, created_at FROM audit_checkpoints ORDER BY last_id DESC LIMIT 1")
# Events a new checkpoint would cover, other than the notes of earlier checkpoints.
_NEW_EVENTS = text("SELECT EXISTS (SELECT 1 FROM audit_events WHERE id > :after AND action <> :note)")


def _announce(session, document: dict[str, Any], actor: Actor) -> None:
    """Every checkpoint is audited and sent to `audit.checkpoint` subscribers, in its transaction."""
    outbox.enqueue(session, EventType.AUDIT_CHECKPOINT, document)
    audit.record(session, actor=actor, action=CHECKPOINT_CREATED, entity_type="audit_checkpoint",
                 entity_id=document["last_id"],
                 after={name: document[name] for name in ("last_id", "hash", "count", "merkle_root", "key_id")})


def checkpoint_now(settings: Settings, actor: Actor) -> dict[str, Any]:
    """`python -m app audit checkpoint`: verify, sign, keep, audit and announce one now."""
    key = checkpoints.signing_key(settings)
    with database.session() as session:
        document = checkpoints.create(session.connection(), key)
        _announce(session, document, actor)
        session.commit()
    return document


def periodic_checkpoint(settings: Settings, interval: timedelta) -> dict[str, Any] | None:
    """A new signed checkpoint when the newest is older than `interval` (the worker's:
    AUDIT_CHECKPOINT_MINUTES) and events came since; audited and sent as an
    `audit.checkpoint` webhook. None when not due."""
    key = checkpoints.signing_key(settings)
    with database.session() as session:
        conn = session.connection()
        if not conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": _CHECKPOINT_LOCK}).scalar():
            return None
        latest = conn.execute(_LATEST).first()
        now = conn.execute(text("SELECT now()")).scalar_one()
        if latest is not None and latest.created_at > now - interval:
            return None
        after = latest.last_id if latest else 0
        if not conn.execute(_NEW_EVENTS, {"after": after, "note": CHECKPOINT_CREATED}).scalar():
            return None
        document = checkpoints.create(conn, key)
        _announce(session, document, SYSTEM_ACTOR)
        session.commit()
    if settings.audit_checkpoint_dir is not None:
        checkpoints.save(document, settings.audit_checkpoint_dir)
    log.info("audit checkpoint through event %s", document["last_id"])
    return document
