from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, CheckConstraint, DateTime, FetchedValue, Index, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class AuditEvent(Base):
    """One append-only, hash-chained entry; id, occurred_at and hashes are set by the database."""

    __tablename__ = "audit_events"

    # Assigned by the chain trigger under the chain lock, so ids follow commit order.
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False, server_default=FetchedValue())
    occurred_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=text("clock_timestamp()")
    )
    actor: Mapped[str] = mapped_column(String(64), nullable=False)
    actor_id: Mapped[int | None] = mapped_column(BigInteger)
    actor_role: Mapped[str | None] = mapped_column(String(16))
    actor_type: Mapped[str] = mapped_column(String(8), nullable=False)
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    entity_type: Mapped[str] = mapped_column(String(32), nullable=False)
    entity_id: Mapped[str] = mapped_column(String(128), nullable=False)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONB(none_as_null=True))
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONB(none_as_null=True))
    reason: Mapped[str | None] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(String(128))
    client_addr: Mapped[str | None] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    hash: Mapped[str] = mapped_column(String(64), nullable=False)

    __table_args__ = (
        CheckConstraint("actor_type IN ('human', 'agent', 'system')", name="actor_type"),
        Index("ix_audit_events_entity", "entity_type", "entity_id", "id"),
        Index("ix_audit_events_actor", "actor", "id"),
        Index("ix_audit_events_action", "action", "id"),
        Index("ix_audit_events_occurred_at", "occurred_at"),
        # The explorer's role filter, newest first (admin actions are rare among millions).
        Index("ix_audit_events_actor_role", "actor_role", "id"),
        # The dashboard's per-day and per-actor-type counts of a few actions over a window:
        # an index-only scan instead of reading every event of the window.
        Index("ix_audit_events_action_occurred_at", "action", "occurred_at", postgresql_include=["actor_type"]),
    )


class AuditVerification(Base):
    """The outcome of one run of the chain check, so the explorer shows the latest at once.

    `last_hash` is the hash of `last_verified_id` as it was when checked: an incremental
    run starts from it, so events verified once are not re-read every time.
    """

    __tablename__ = "audit_verifications"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    verified_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    verified_by: Mapped[str] = mapped_column(String(64), nullable=False)
    is_full: Mapped[bool] = mapped_column(Boolean, nullable=False)
    ok: Mapped[bool] = mapped_column(Boolean, nullable=False)
    events: Mapped[int] = mapped_column(BigInteger, nullable=False)
    first_broken_id: Mapped[int | None] = mapped_column(BigInteger)
    last_verified_id: Mapped[int | None] = mapped_column(BigInteger)
    last_hash: Mapped[str | None] = mapped_column(String(64))
    duration_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)


class AuditCheckpoint(Base):
    """A signed checkpoint the app made, kept so the screens show the latest and evidence
    packs can reuse it. The copies that count are those outside the database (files written
    by `audit checkpoint --out`, webhook receivers): this row proves nothing by itself."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    last_id: Mapped[int] = mapped_column(BigInteger, nullable=False, unique=True)
    hash: Mapped[str] = mapped_column(String(64), nullable=False)
    count: Mapped[int] = mapped_column(BigInteger, nullable=False)
    merkle_root: Mapped[str] = mapped_column(String(64), nullable=False)
    key_id: Mapped[str] = mapped_column(String(16), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    document: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
