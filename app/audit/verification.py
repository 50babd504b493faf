"""Chain verification on demand, with the latest result kept for the explorer.

A full run recomputes every hash (what `python -m app audit verify` and
`GET /api/audit/verify` do). An incremental run starts after the last event a passing
run covered, from the hash that run saw, so checking the day's new events stays fast
however long the history grows. The append-only trigger keeps already-verified events
from changing under ordinary roles; a full run remains the authority and is one click away.
"""

import time

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit import chain
from app.audit.models import AuditCheckpoint, AuditVerification
from app.audit.service import ChainStatus


def latest(*, session: Session) -> AuditVerification | None:
    """The most recent verification, or None before the first."""
    return session.scalars(select(AuditVerification).order_by(AuditVerification.id.desc()).limit(1)).first()


def latest_checkpoint(*, session: Session) -> AuditCheckpoint | None:
    """The newest signed checkpoint the app made (the copies outside the database are what count)."""
    return session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.last_id.desc()).limit(1)).first()


def _last_passing(session: Session) -> AuditVerification | None:
    return session.scalars(
        select(AuditVerification)
        .where(AuditVerification.ok, AuditVerification.last_verified_id.is_not(None))
        .order_by(AuditVerification.id.desc()).limit(1)
    ).first()


def run(*, session: Session, verified_by: str, full: bool = True) -> tuple[ChainStatus, AuditVerification]:
    """Verify the chain (all of it, or what is new since the last passing run) and keep the result.

    Hashes are recomputed in Python (app/audit/chain.py), not by the database's functions.
    """
    started = time.monotonic()
    anchor = None if full else _last_passing(session)
    conn = session.connection()
    if anchor is None or anchor.last_verified_id is None or anchor.last_hash is None:
        anchor = None
        status = chain.verify(conn)
        total = status.events
    else:
        status = chain.verify(conn, after_id=anchor.last_verified_id, start_hash=anchor.last_hash)
        total = anchor.events + status.events
    result = AuditVerification(
        verified_by=verified_by, is_full=anchor is None, ok=status.ok, events=total,
        first_broken_id=status.first_broken_id, last_verified_id=status.last_verified_id,
        last_hash=status.last_hash if status.ok and status.last_verified_id is not None else None,
        duration_ms=int((time.monotonic() - started) * 1000),
    )
    session.add(result)
    session.flush()
    return ChainStatus(status.ok, total, status.first_broken_id, status.last_verified_id), result
