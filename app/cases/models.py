from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    FetchedValue,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from app.cases.enums import UNDECIDED_STATES, CaseKind, CaseState, ReasonCode
from app.db import Base

# For the CHECK constraints (plain strings: their SQL must not change) and the decision form.
STATES = tuple(s.value for s in CaseState)
KINDS = tuple(k.value for k in CaseKind)
REASON_CODES = tuple(ReasonCode)
UNDECIDED_SQL = "state IN (" + ", ".join(f"'{s}'" for s in UNDECIDED_STATES) + ")"


class ReviewCase(Base):
    """A transaction (or a reconciliation mismatch) waiting for a human decision.

    `risk` (the highest score seen) orders the queue together with the id (age). A claim
    is `assignee_id` plus `lease_expires_at`: an expired lease is free to claim again.
    `version` goes up on every change, so a decision made on a stale page is refused.
    """

    __tablename__ = "review_cases"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False, server_default=CaseKind.RISK.value)
    state: Mapped[str] = mapped_column(String(16), nullable=False, server_default=CaseState.OPEN.value)
    transaction_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("transactions.id"))
    # The transaction's account, copied by the database on insert (migrations/versions/0009);
    # none for a case without a transaction.
    account_id: Mapped[str | None] = mapped_column(String(64), server_default=FetchedValue())
    risk: Mapped[int] = mapped_column(SmallInteger, nullable=False, server_default="0")
    # Copied from the transaction (immutable there) so queue filters need no join.
    amount: Mapped[Decimal | None] = mapped_column(Numeric(19, 4))
    currency: Mapped[str | None] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(String(500), nullable=False)
    assignee_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("users.id"))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    needs_second_approval: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    first_approved_by: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("users.id"))
    decided_by: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("users.id"))
    decision: Mapped[str | None] = mapped_column(String(16))
    reason_code: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    __table_args__ = (
        CheckConstraint(f"state IN {STATES!r}".replace('"', "'"), name="state"),
        CheckConstraint(f"kind IN {KINDS!r}".replace('"', "'"), name="kind"),
        CheckConstraint("risk BETWEEN 0 AND 100", name="risk_range"),
        CheckConstraint("(assignee_id IS NULL) = (lease_expires_at IS NULL)", name="claim_has_lease"),
        # Four-eyes, enforced by the database: an approval that needs a second reviewer is
        # final only when a different user than the first approver made it.
        CheckConstraint(
            "state <> 'approved' OR NOT needs_second_approval"
            " OR (first_approved_by IS NOT NULL AND decided_by IS NOT NULL AND first_approved_by <> decided_by)",
            name="four_eyes",
        ),
        CheckConstraint(
            "(state IN ('approved', 'rejected')) = (decided_at IS NOT NULL)", name="decided_at_when_decided"
        ),
        # One undecided case per transaction and kind: concurrent scores cannot open two.
        Index(
            "uq_review_cases_one_undecided", "transaction_id", "kind", unique=True,
            postgresql_where=text(UNDECIDED_SQL),
        ),
        # The queue and "next case": highest risk first, then oldest, over undecided cases.
        Index(
            "ix_review_cases_queue", text("risk DESC"), "id",
            postgresql_where=text(UNDECIDED_SQL),
        ),
        Index("ix_review_cases_transaction_id", "transaction_id"),
        Index("ix_review_cases_assignee_id", "assignee_id", postgresql_where=text("assignee_id IS NOT NULL")),
        # For the live counts: the few escalated cases and those awaiting a second approval.
        Index("ix_review_cases_escalated", "id", postgresql_where=text("state = 'escalated'")),
        Index(
            "ix_review_cases_first_approved_by", "first_approved_by",
            postgresql_where=text(f"first_approved_by IS NOT NULL AND {UNDECIDED_SQL}"),
        ),
        # The account context: an account's top undecided cases, and its latest decisions.
        Index(
            "ix_review_cases_account_undecided", "account_id", text("risk DESC"), "id",
            postgresql_where=text(UNDECIDED_SQL),
        ),
        Index(
            "ix_review_cases_account_decided", "account_id", text("decided_at DESC"), text("id DESC"),
            postgresql_where=text("decided_at IS NOT NULL"),
        ),
    )


class CaseComment(Base):
    """A reviewer's note on a case. Append-only: a trigger (migrations/versions/0015) refuses
    UPDATE and DELETE, so a comment reads tomorrow as it was written."""

    __tablename__ = "case_comments"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    case_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("review_cases.id"), nullable=False)
    author_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("users.id"))
    author: Mapped[str] = mapped_column(String(64), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    __table_args__ = (
        CheckConstraint("length(body) BETWEEN 1 AND 4000", name="body_length"),
        Index("ix_case_comments_case_id_id", "case_id", "id"),
    )


class CaseTransaction(Base):
    """A transaction whose flag joined another transaction's open case on the same account
    (the `group_flags_by_account` setting); it follows that case's decision."""

    __tablename__ = "case_transactions"

    case_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("review_cases.id"), primary_key=True)
    transaction_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("transactions.id"), primary_key=True)
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    __table_args__ = (Index("ix_case_transactions_transaction_id", "transaction_id"),)


class ReviewCaseSearch(Base):
    """What the queue's search box looks in: a case's transaction reference, account and counterparty.

    Written only by the database, when the case is opened (migrations/versions/0014), and
    never updated: claims and decisions rewrite review_cases rows many times, and keeping
    the n-gram index beside them would make each of those writes maintain it too.
    """

    __tablename__ = "review_case_search"

    case_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("review_cases.id", ondelete="CASCADE"), primary_key=True
    )
    # The three values, lower-cased, one per line.
    search_text: Mapped[str] = mapped_column(Text, nullable=False)
    # Every distinct 2- and 3-character piece of search_text.
    grams: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False)

    __table_args__ = (
        Index("ix_review_case_search_grams", "grams", postgresql_using="gin",
              postgresql_with={"fastupdate": "off"}),
    )
