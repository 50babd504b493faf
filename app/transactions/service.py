"""Transactions: idempotent creation by reference, lookup, keyset listing, settlement.

Creation is one `INSERT … ON CONFLICT (reference) DO NOTHING RETURNING`: the unique
index decides the race, so any number of concurrent identical posts create one row; the
losers read the winner's row and compare payloads (identical → replay, else 409).
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from sqlalchemy import Row, Select, bindparam, func, select, text, update
from sqlalchemy.orm import Session

from app import cursors, money
from app.audit import service as audit
from app.audit.service import Actor
from app.errors import Conflict, NotFound
from app.risk.models import RiskScore
from app.transactions.enums import ReviewStatus, TransactionStatus
from app.transactions.models import Transaction
from app.transactions.schemas import SettlementRequest, TransactionCreate, TransactionOut
from app.uow.unit import AnySession, OrmSession, RequestContext
from app.webhooks import outbox as webhooks

# Statements are built once: construction and its cache key cost more than the insert itself.
# Core, not ORM: a new row is only read back to answer, so it skips the identity map; the
# metadata column comes back as `metadata_`, so rows and ORM objects read alike.
_COLUMNS = Transaction.__table__.c
_RETURNED = [c.label("metadata_") if c.key == "metadata" else c for c in _COLUMNS]
LATEST_RISK_SCORE = (
    select(RiskScore.score)
    .where(RiskScore.transaction_id == _COLUMNS.id)
    .order_by(RiskScore.id.desc())
    .limit(1)
    .scalar_subquery()
    .label("risk_score")
)
READ_COLUMNS = [*_RETURNED, LATEST_RISK_SCORE]
# Every create (a single POST, a group of them, a batch) is this statement. The rows travel
# as one JSON array (amounts as strings, so numeric gets them exactly) and go in in array
# order: one parameter to quote instead of eight per row.
_BATCH_COLUMNS = {
    "reference": "text", "account_id": "text", "amount": "numeric", "currency": "text", "counterparty": "text",
    "description": "text", "metadata": "jsonb", "created_by": "bigint",
}
_BATCH_NAMES = ", ".join(_BATCH_COLUMNS)
INSERT_MANY_IF_NEW = text(
    f"INSERT INTO transactions ({_BATCH_NAMES}) SELECT {_BATCH_NAMES} FROM ROWS FROM (json_to_recordset(:rows) AS "
    f"({', '.join(f'{name} {kind}' for name, kind in _BATCH_COLUMNS.items())})) "
    f"WITH ORDINALITY AS r({_BATCH_NAMES}, n) "
    "ORDER BY n ON CONFLICT (reference) DO NOTHING RETURNING "
    + ", ".join("metadata AS metadata_" if c.key == "metadata" else c.key for c in _COLUMNS)
    # The rule generation rides along, so the rules' cache needs no query to know it is current.
    + ", (SELECT generation FROM rule_generation WHERE id = 1) AS rules_generation"
)
READ_BY_REFERENCE = select(*READ_COLUMNS).where(_COLUMNS.reference == bindparam("reference"))
BY_REFERENCE_FOR_UPDATE = select(Transaction).where(Transaction.reference == bindparam("reference")).with_for_update()
COMPARED_FIELDS = ("account_id", "amount", "currency", "counterparty", "description", "metadata")


@dataclass(frozen=True)
class CreateOutcome:
    # a fresh insert's returned row (its columns as a mapping once a rule flagged it), or the stored object
    transaction: Transaction | Row | Mapping[str, Any]
    created: bool


_PLAIN_FIELDS = (
    "id", "account_id", "reference", "amount", "currency", "status", "review_status", "counterparty",
    "description", "metadata", "settlement_reason", "settled_at", "created_at", "updated_at",
)
_ROW_FIELDS = tuple("metadata_" if name == "metadata" else name for name in _PLAIN_FIELDS)
_FROM_ROW = itemgetter(*_ROW_FIELDS)


def as_plain(tx: Transaction | Row | Mapping[str, Any]) -> dict[str, Any]:
    """The transaction as plain data in TransactionOut's shape and field order.

    A row without a risk_score column (a fresh insert) has no score yet. A batch answers with
    a thousand of these, so a row's columns are read in one call.
    """
    if isinstance(tx, Row | Mapping):
        columns = tx._mapping if isinstance(tx, Row) else tx
        plain = dict(zip(_PLAIN_FIELDS, _FROM_ROW(columns)))
        plain["risk_score"] = columns.get("risk_score")
    else:
        plain = {name: getattr(tx, field) for name, field in zip(_PLAIN_FIELDS, _ROW_FIELDS)}
        plain["risk_score"] = None
    plain["amount"] = money.format_amount(plain["amount"], plain["currency"])
    return plain


def to_out(tx: Transaction | Row | Mapping[str, Any]) -> TransactionOut:
    return TransactionOut(**as_plain(tx))


def _row_values(data: TransactionCreate, actor: Actor) -> dict[str, Any]:
    return {
        "reference": data.reference,
        "account_id": data.account_id,
        "amount": data.amount,
        "currency": data.currency,
        "counterparty": data.counterparty,
        "description": data.description,
        "metadata": data.metadata or {},
        "created_by": actor.id,
    }


def _differences(existing: Transaction, data: TransactionCreate) -> list[str]:
    incoming = {
        "account_id": data.account_id,
        "amount": data.amount,
        "currency": data.currency,
        "counterparty": data.counterparty,
        "description": data.description,
        "metadata": data.metadata or {},
    }
    stored = {
        "account_id": existing.account_id,
        "amount": existing.amount,
        "currency": existing.currency,
        "counterparty": existing.counterparty,
        "description": existing.description,
        "metadata": existing.metadata_,
    }
    return [name for name in COMPARED_FIELDS if incoming[name] != stored[name]]


def _created_event(session: AnySession, actor: Actor, tx: Transaction, context: RequestContext | None) -> None:
    audit.record(
        session,
        context=context,
        actor=actor,
        action="transaction.created",
        entity_type="transaction",
        entity_id=tx.reference,
        after={
            "id": tx.id,
            "account_id": tx.account_id,
            "amount": money.format_amount(tx.amount, tx.currency),
            "currency": tx.currency,
            "status": tx.status,
        },
    )


def _replay_or_conflict(existing: Transaction, data: TransactionCreate) -> CreateOutcome:
    differing = _differences(existing, data)
    if differing:
        raise Conflict(
            {
                "message": f"reference {data.reference!r} already exists with a different payload",
                "reference": data.reference,
                "differing_fields": differing,
            }
        )
    return CreateOutcome(existing, created=False)


@dataclass(frozen=True)
class NewTransaction:
    """One transaction to create: the request's data, who asks, and from which request
    (None: the session's own context; set when one unit of work carries several requests)."""

    data: TransactionCreate
    actor: Actor
    context: RequestContext | None = None


def create_many(*, session: AnySession, items: Sequence[NewTransaction]) -> list[CreateOutcome | Conflict]:
    """Insert them in one statement; results in input order (replays and conflicts included).
    Callers go through app/transactions/flows.py, which runs the rules on what was inserted.

    A later item with the reference of an earlier one is its replay or conflict, as if posted after it.
    """
    first_index: dict[str, int] = {}
    for index, item in enumerate(items):
        first_index.setdefault(item.data.reference, index)
    unique = [items[i] for i in sorted(first_index.values())]
    created: dict[str, Transaction] = {}
    if unique:
        # Rows go in reference order, so concurrent batches take the unique-index locks in
        # one global order: overlapping batches wait for each other instead of deadlocking.
        rows = [_row_values(item.data, item.actor)
                for item in sorted(unique, key=lambda item: item.data.reference)]
        for tx in session.execute(INSERT_MANY_IF_NEW, {"rows": json.dumps(rows, default=str)}):
            created[tx.reference] = tx
        for item in unique:
            if item.data.reference in created:
                _created_event(session, item.actor, created[item.data.reference], item.context)
    missing = [item.data.reference for item in unique if item.data.reference not in created]
    existing = {
        tx.reference: tx
        for tx in session.execute(select(*_RETURNED).where(_COLUMNS.reference.in_(missing)))
    } if missing else {}

    results: list[CreateOutcome | Conflict] = []
    for index, item in enumerate(items):
        reference = item.data.reference
        tx = created.get(reference)
        if tx is not None and first_index[reference] == index:
            results.append(CreateOutcome(tx, created=True))
            continue
        try:
            results.append(_replay_or_conflict(tx or existing[reference], item.data))
        except Conflict as conflict:
            results.append(conflict)
    return results


def _not_found(reference: str) -> NotFound:
    return NotFound(f"transaction {reference!r} not found")


def _check_reference(reference: str) -> None:
    if "\x00" in reference:
        # No stored reference holds NUL, and the driver cannot send one: not found, not a 500.
        raise _not_found(reference)


def read_by_reference(*, session: AnySession, reference: str) -> Row:
    """The transaction with this reference as a read-only row, or NotFound."""
    _check_reference(reference)
    row = session.execute(READ_BY_REFERENCE, {"reference": reference}).one_or_none()
    if row is None:
        raise _not_found(reference)
    return row


def get_for_update(*, session: Session, reference: str) -> Transaction:
    """The transaction with this reference, row-locked for a state change, or NotFound."""
    _check_reference(reference)
    tx = session.scalars(BY_REFERENCE_FOR_UPDATE, {"reference": reference}).one_or_none()
    if tx is None:
        raise _not_found(reference)
    return tx


CURSOR_PREFIX = "id"


def encode_cursor(last_id: int) -> str:
    """The transactions cursor that points after id `last_id`."""
    return cursors.encode(CURSOR_PREFIX, last_id)


def decode_cursor(cursor: str) -> int:
    """The id a transactions cursor points after; ValueError if it is not one of ours."""
    (last_id,) = cursors.decode(cursor, CURSOR_PREFIX, 1)
    return last_id


def list_page(
    *,
    session: Session,
    limit: int,
    after_id: int | None = None,
    account_id: str | None = None,
    status: TransactionStatus | None = None,
    review_status: ReviewStatus | None = None,
) -> tuple[list[Row], str | None]:
    """Newest first, keyset-paginated by id; returns the page and the next cursor."""
    statement = select(*READ_COLUMNS).order_by(_COLUMNS.id.desc()).limit(limit + 1)
    if after_id is not None:
        statement = statement.where(_COLUMNS.id < after_id)
    if account_id is not None:
        statement = statement.where(_COLUMNS.account_id == account_id)
    if status is not None:
        statement = statement.where(_COLUMNS.status == status)
    if review_status is not None:
        statement = statement.where(_COLUMNS.review_status == review_status)
    rows = list(session.execute(statement))
    next_cursor = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
    return rows[:limit], next_cursor


REVIEW_BLOCKS_SETTLEMENT: dict[str, str] = {
    ReviewStatus.FLAGGED: "its review case is still open",
    ReviewStatus.REJECTED: "it was rejected in review",
}


def settle(*, session: OrmSession, actor: Actor, reference: str, request: SettlementRequest) -> Transaction:
    """Move a pending transaction to settled or failed; the same outcome again is a no-op."""
    tx = get_for_update(session=session, reference=reference)
    if tx.status == request.status:
        return tx
    if tx.status != TransactionStatus.PENDING:
        raise Conflict(f"transaction {reference!r} is already {tx.status}; it cannot become {request.status}")
    if TransactionStatus(request.status) == TransactionStatus.SETTLED and tx.review_status in REVIEW_BLOCKS_SETTLEMENT:
        raise Conflict(f"transaction {reference!r} cannot be settled: {REVIEW_BLOCKS_SETTLEMENT[tx.review_status]}")
    before = {"status": tx.status}
    session.execute(
        update(Transaction)
        .where(Transaction.id == tx.id)
        .values(status=request.status, settlement_reason=request.reason, settled_at=func.now(), updated_at=func.now())
    )
    session.refresh(tx)
    audit.record(
        session,
        actor=actor,
        action=f"transaction.{request.status}",
        entity_type="transaction",
        entity_id=tx.reference,
        before=before,
        after={"status": tx.status},
        reason=request.reason,
    )
    # Outbound webhook: in this transaction, so it exists iff the settlement commits.
    webhooks.enqueue(session, f"transaction.{tx.status}", {
        "reference": tx.reference, "account_id": tx.account_id, "status": tx.status,
        "amount": money.format_amount(tx.amount, tx.currency), "currency": tx.currency, "reason": tx.settlement_reason,
    })
    return tx


def set_review_status(*, session: OrmSession, actor: Actor, tx: Transaction, status: ReviewStatus, reason: str) -> None:
    """Move the transaction's review status (flagged by a case, then its decision), audited; no-op if unchanged."""
    if tx.review_status == status:
        return
    before = tx.review_status
    session.execute(
        update(Transaction).where(_COLUMNS.id == tx.id).values(review_status=status, updated_at=func.now())
    )
    tx.review_status = status
    audit.record(
        session, actor=actor, action="transaction.review_status_changed", entity_type="transaction",
        entity_id=tx.reference, before={"review_status": before}, after={"review_status": status}, reason=reason,
    )


@dataclass(frozen=True)
class NewFlag:
    """A transaction created in this unit of work that a case now holds."""

    transaction_id: int
    reference: str
    actor: Actor
    reason: str


def flag_new(*, session: AnySession, flags: Sequence[NewFlag]) -> None:
    """Mark new (still clear) transactions flagged, set-wise, each audited."""
    if not flags:
        return
    session.execute(
        update(Transaction.__table__)
        .where(_COLUMNS.id.in_([f.transaction_id for f in flags]), _COLUMNS.review_status != ReviewStatus.FLAGGED)
        .values(review_status=ReviewStatus.FLAGGED, updated_at=func.now())
    )
    for f in flags:
        audit.record(
            session, actor=f.actor, action="transaction.review_status_changed", entity_type="transaction",
            entity_id=f.reference, before={"review_status": ReviewStatus.CLEAR},
            after={"review_status": ReviewStatus.FLAGGED}, reason=f.reason,
        )


# --- for the account context (app/accounts): one statement built from these parts -------

def recent_of_account(account_id, limit: int) -> Select:
    """The account's `limit` newest transactions, in READ_COLUMNS (the latest score included)."""
    return select(*READ_COLUMNS).where(_COLUMNS.account_id == account_id).order_by(_COLUMNS.id.desc()).limit(limit)


def totals_of_account(account_id) -> Select:
    """The account's count and sum of amounts per currency and status."""
    return (
        select(_COLUMNS.currency, _COLUMNS.status, func.count().label("count"),
               func.sum(_COLUMNS.amount).label("amount"))
        .where(_COLUMNS.account_id == account_id).group_by(_COLUMNS.currency, _COLUMNS.status)
    )
