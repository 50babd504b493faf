from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Index, Numeric, String, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.transactions.enums import ReviewStatus, TransactionStatus


class Transaction(Base):
    __tablename__ = "transactions"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    reference: Mapped[str] = mapped_column(String(128), nullable=False, unique=True)
    account_id: Mapped[str] = mapped_column(String(64), nullable=False)
    # 15 integer digits (amounts stay below 10^15) and 4 decimals, ISO 4217's widest minor unit.
    amount: Mapped[Decimal] = mapped_column(Numeric(19, 4), nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    counterparty: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(String(1000))
    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata", JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default=TransactionStatus.PENDING.value)
    review_status: Mapped[str] = mapped_column(String(16), nullable=False, server_default=ReviewStatus.CLEAR.value)
    settlement_reason: Mapped[str | None] = mapped_column(String(500))
    settled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    __table_args__ = (
        CheckConstraint("amount > 0 AND amount < 1000000000000000", name="amount_range"),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_code"),
        CheckConstraint("status IN ('pending', 'settled', 'failed')", name="status"),
        CheckConstraint("review_status IN ('clear', 'flagged', 'approved', 'rejected')", name="review_status"),
        Index("ix_transactions_account_id_id", "account_id", "id",
              postgresql_include=["currency", "status", "amount"]),  # account context totals
        Index("ix_transactions_status_id", "status", "id"),
        Index("ix_transactions_review_status_id", "review_status", "id"),
    )
