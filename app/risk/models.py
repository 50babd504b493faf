from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    FetchedValue,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class RiskScore(Base):
    """One model's opinion of one transaction; scores are never edited, only added."""

    __tablename__ = "risk_scores"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    transaction_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("transactions.id"), nullable=False)
    # The transaction's account, copied by the database on insert (migrations/versions/0009).
    account_id: Mapped[str] = mapped_column(String(64), nullable=False, server_default=FetchedValue())
    score: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    model: Mapped[str] = mapped_column(String(100), nullable=False)
    model_version: Mapped[str | None] = mapped_column(String(100))
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, nullable=False)
    is_flagged: Mapped[bool] = mapped_column(nullable=False)
    created_by: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    __table_args__ = (
        CheckConstraint("score BETWEEN 0 AND 100", name="score_range"),
        Index("ix_risk_scores_transaction_id_id", "transaction_id", "id",
              postgresql_include=["score", "is_flagged"]),  # a transaction's latest score
        Index("ix_risk_scores_account_id_id", "account_id", "id",
              postgresql_include=["score", "is_flagged"]),  # account context score statistics
    )
