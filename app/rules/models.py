"""Detection rules and what they leave behind: versions, hits, lists, snoozes, the generation counter.

A rule's `mode` is how its `running_version` runs (shadow or active); a draft or disabled
rule runs no version (a CHECK keeps the two in step). `latest_version` is the newest
version's number. Every publish, disable, rollback and list change bumps the one
`rule_generation` row in its transaction, so a process caching the compiled running rules
knows when to reload (app/rules/generation.py).
"""

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.rules.enums import RUNNING_MODES, HitOutcome, RuleEvent, RuleMode
from app.transactions.models import Transaction


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")"


MODES = tuple(m.value for m in RuleMode)
HIT_MODES = tuple(m.value for m in RUNNING_MODES)
OUTCOMES = tuple(o.value for o in HitOutcome)
EVENTS = tuple(e.value for e in RuleEvent)
LIST_NAME_PATTERN = "^[a-z0-9_-]{1,64}$"


class Rule(Base):
    __tablename__ = "rules"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False, unique=True)
    description: Mapped[str | None] = mapped_column(String(1000))
    mode: Mapped[str] = mapped_column(String(16), nullable=False, server_default=RuleMode.DRAFT.value)
    running_version: Mapped[int | None] = mapped_column(Integer)
    latest_version: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    __table_args__ = (
        CheckConstraint(_one_of("mode", MODES), name="mode"),
        CheckConstraint("char_length(name) >= 1", name="name_not_empty"),
        CheckConstraint(f"({_one_of('mode', HIT_MODES)}) = (running_version IS NOT NULL)",
                        name="running_when_published"),
        CheckConstraint("running_version BETWEEN 1 AND latest_version", name="running_version_exists"),
    )


class RuleVersion(Base):
    """One numbered, immutable condition and action of a rule."""

    __tablename__ = "rule_versions"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    rule_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("rules.id"), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    condition: Mapped[str] = mapped_column(Text, nullable=False)
    risk: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    reason: Mapped[str] = mapped_column(String(500), nullable=False)
    created_by: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    __table_args__ = (
        UniqueConstraint("rule_id", "version"),
        CheckConstraint("risk BETWEEN 1 AND 100", name="risk_range"),
        CheckConstraint("version >= 1", name="version_positive"),
    )


class RuleHit(Base):
    """One evaluation of a running rule that matched (`hit`) or failed at run time (`error`).

    `values` is what the condition read (each field and function result, as text), for
    explanations; `case_id` the case the hit opened or joined (active, not snoozed).
    """

    __tablename__ = "rule_hits"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    rule_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("rules.id"), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    mode: Mapped[str] = mapped_column(String(16), nullable=False)
    transaction_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("transactions.id"), nullable=False)
    account_id: Mapped[str] = mapped_column(String(64), nullable=False)
    event: Mapped[str] = mapped_column(String(32), nullable=False)
    outcome: Mapped[str] = mapped_column(String(16), nullable=False)
    values: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))
    error: Mapped[str | None] = mapped_column(Text)
    risk: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    reason: Mapped[str] = mapped_column(String(500), nullable=False)
    case_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("review_cases.id"))
    snoozed: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    __table_args__ = (
        CheckConstraint(_one_of("mode", HIT_MODES), name="mode"),
        CheckConstraint(_one_of("outcome", OUTCOMES), name="outcome"),
        CheckConstraint(_one_of("event", EVENTS), name="event"),
        CheckConstraint("(outcome = 'error') = (error IS NOT NULL)", name="error_when_error"),
        # A rule's hits newest first (GET /api/rules/{id}/hits, keyset on created_at, id) and its last 24 h.
        Index("ix_rule_hits_rule_id_created_at_id", "rule_id", "created_at", "id"),
        Index("ix_rule_hits_transaction_id", "transaction_id"),
        # The account context's newest hits of an account.
        Index("ix_rule_hits_account_id_id", "account_id", "id"),
    )


class RuleList(Base):
    """An admin-managed list of values, read by conditions through `in_list(name, value)`."""

    __tablename__ = "rule_lists"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    description: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    __table_args__ = (CheckConstraint(f"name ~ '{LIST_NAME_PATTERN}'", name="name_format"),)


class RuleListItem(Base):
    __tablename__ = "rule_list_items"

    list_name: Mapped[str] = mapped_column(
        String(64), ForeignKey("rule_lists.name", ondelete="CASCADE"), primary_key=True
    )
    value: Mapped[str] = mapped_column(String(256), primary_key=True)

    __table_args__ = (CheckConstraint("char_length(value) >= 1", name="value_not_empty"),)


class RuleSnooze(Base):
    """Until `until`, the rule's hits for the account are recorded but open no case."""

    __tablename__ = "rule_snoozes"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    rule_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("rules.id"), nullable=False)
    account_id: Mapped[str] = mapped_column(String(64), nullable=False)
    until: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    reason: Mapped[str] = mapped_column(String(500), nullable=False)
    created_by: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    __table_args__ = (Index("ix_rule_snoozes_rule_id_account_id_until", "rule_id", "account_id", "until"),)


class RuleGeneration(Base):
    """One row: a counter bumped by every change to what runs (app/rules/generation.py)."""

    __tablename__ = "rule_generation"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    generation: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")

    __table_args__ = (CheckConstraint("id = 1", name="one_row"),)


# The window functions (account_count/account_sum) are range scans of an account's
# transactions by time; amount and currency ride in the index, so they read no table page.
TRANSACTIONS_BY_ACCOUNT_TIME = Index(
    "ix_transactions_account_id_created_at",
    Transaction.__table__.c.account_id, Transaction.__table__.c.created_at,
    postgresql_include=["currency", "amount"],
)
