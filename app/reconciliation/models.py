"""Reconciliation: runs, the bank events they received, and CSV uploads being processed.

`bank_events` keeps every bank event that was not a replay. `bank_reference` is the
bank's idempotency key: the first version of an event is its primary row (unique), an
identical resend is a replay and stores nothing, and a different payload under a known
bank_reference is kept as a non-primary row whose outcome is `duplicate_bank_event`.
A mismatch links the event to its review case (`case_id`).
"""

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.reconciliation.enums import OUTCOMES, BankStatus, RunStatus

SOURCES = ("api", "csv")


def _in(values) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


class ReconciliationRun(Base):
    __tablename__ = "reconciliation_runs"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    source: Mapped[str] = mapped_column(String(8), nullable=False)
    filename: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default=RunStatus.PROCESSING.value)
    total_rows: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    rows_processed: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    matched: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    mismatched: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    replayed: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    malformed: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    created_by: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint(f"status IN {_in(RunStatus)}", name="status"),
        CheckConstraint(f"source IN {_in(SOURCES)}", name="source"),
        CheckConstraint("rows_processed <= total_rows", name="progress"),
    )


class ReconciliationUpload(Base):
    """An uploaded CSV still being processed: its bytes and how far processing got."""

    __tablename__ = "reconciliation_uploads"

    run_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("reconciliation_runs.id"), primary_key=True)
    content: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    next_offset: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    next_line: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")


class BankEvent(Base):
    __tablename__ = "bank_events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    run_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("reconciliation_runs.id"), nullable=False)
    line_no: Mapped[int | None] = mapped_column(Integer)
    bank_reference: Mapped[str] = mapped_column(String(128), nullable=False)
    reference: Mapped[str] = mapped_column(String(128), nullable=False)
    amount: Mapped[Decimal] = mapped_column(Numeric(19, 4), nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    booked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    digest: Mapped[str] = mapped_column(String(64), nullable=False)
    is_primary: Mapped[bool] = mapped_column(Boolean, nullable=False)
    outcome: Mapped[str] = mapped_column(String(32), nullable=False)
    transaction_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("transactions.id"))
    case_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("review_cases.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    __table_args__ = (
        CheckConstraint(f"status IN {_in(BankStatus)}", name="status"),
        CheckConstraint(f"outcome IN {_in(OUTCOMES)}", name="outcome"),
        CheckConstraint("amount > 0 AND amount < 1000000000000000", name="amount_range"),
        # The idempotency key: one primary event per bank reference, one row per distinct payload.
        Index("uq_bank_events_primary", "bank_reference", unique=True, postgresql_where=text("is_primary")),
        Index("uq_bank_events_bank_reference_digest", "bank_reference", "digest", unique=True),
        Index("ix_bank_events_run_id_id", "run_id", "id"),
        Index("ix_bank_events_case_id", "case_id", postgresql_where=text("case_id IS NOT NULL")),
        Index("ix_bank_events_transaction_id", "transaction_id",
              postgresql_where=text("is_primary AND transaction_id IS NOT NULL")),
    )


class ReconciliationRowError(Base):
    """A malformed CSV row: its line number and what was wrong; the rest of the file goes on."""

    __tablename__ = "reconciliation_row_errors"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    run_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("reconciliation_runs.id"), nullable=False)
    line_no: Mapped[int] = mapped_column(Integer, nullable=False)
    field: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(String(500), nullable=False)

    __table_args__ = (Index("ix_reconciliation_row_errors_run_id_line_no", "run_id", "line_no"),)
