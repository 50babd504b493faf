"""Opening review cases: the one code path for risk cases (scores, amount rules) and
reconciliation cases (mismatches with the bank).

Each opened case is audited (`case.opened`) and announced to webhooks in the caller's
transaction. One undecided case per transaction and kind: the partial unique index
`uq_review_cases_one_undecided` decides any race, and a case already waiting is reused.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert

from app.audit import service as audit
from app.audit.service import Actor
from app.cases import grouping
from app.cases.enums import UNDECIDED_STATES, CaseKind, CaseState
from app.cases.models import UNDECIDED_SQL, ReviewCase
from app.cases.queries import UNDECIDED, C
from app.transactions import service as transactions
from app.transactions.enums import ReviewStatus
from app.transactions.models import Transaction
from app.uow.unit import AnySession, OrmSession
from app.webhooks import outbox as webhooks

# Literal, not an expanding IN: the partial index predicate of uq_review_cases_one_undecided, in an executemany.
UNDECIDED_PREDICATE = text(UNDECIDED_SQL)
TX = Transaction.__table__.c


def open_for_transaction(*, session: OrmSession, actor: Actor, tx: Transaction, risk: int, reason: str) -> int:
    """The id of the transaction's undecided risk case, opening one (and flagging the transaction) if none.

    The caller holds the transaction's row lock; the partial unique index is the backstop
    that makes a second undecided case impossible even without it.
    """
    joined = grouping.join_open_case(session=session, actor=actor, tx=tx, risk=risk, reason=reason)
    if joined is not None:
        return joined
    opened = session.execute(
        pg_insert(ReviewCase)
        .values(kind=CaseKind.RISK, transaction_id=tx.id, risk=risk, amount=tx.amount, currency=tx.currency,
                reason=reason)
        .on_conflict_do_nothing(index_elements=["transaction_id", "kind"], index_where=UNDECIDED)
        .returning(C.id)
    ).scalar()
    if opened is None:  # a higher score updates the waiting case's risk and reason
        waiting = session.execute(
            select(C.id).where(C.transaction_id == tx.id, C.kind == CaseKind.RISK, UNDECIDED)
        ).scalar_one()
        return grouping.raise_risk(session=session, actor=actor, case_id=waiting, risk=risk, reason=reason)
    audit.record(
        session, actor=actor, action="case.opened", entity_type="case", entity_id=opened,
        after={"state": CaseState.OPEN, "kind": CaseKind.RISK, "risk": risk, "transaction": tx.reference},
        reason=reason,
    )
    transactions.set_review_status(session=session, actor=actor, tx=tx, status=ReviewStatus.FLAGGED,
                                   reason=f"case {opened} opened")
    webhooks.enqueue(session, "case.opened", {"case_id": opened, "kind": CaseKind.RISK, "risk": risk,
                                              "reference": tx.reference, "reason": reason})
    return opened


@dataclass(frozen=True)
class MismatchCase:
    """A bank event that does not agree with the ledger, to be reviewed."""

    transaction_id: int | None  # None: the ledger has no such transaction
    risk: int
    amount: Decimal
    currency: str
    reason: str
    bank_reference: str
    reference: str

    def values(self) -> dict[str, Any]:
        return {"kind": CaseKind.RECONCILIATION, "transaction_id": self.transaction_id, "risk": self.risk,
                "amount": self.amount, "currency": self.currency, "reason": self.reason}


def open_for_mismatches(*, session: OrmSession, actor: Actor, mismatches: Sequence[MismatchCase]) -> list[int]:
    """The case id of each mismatch, in order: one undecided reconciliation case per transaction (one
    already waiting is reused, the first mismatch of a transaction describes a new one), and a case
    of its own for each mismatch without a transaction."""
    case_ids: list[int] = [0] * len(mismatches)
    opened: list[tuple[int, MismatchCase]] = []
    first_of: dict[int, MismatchCase] = {}
    for mismatch in mismatches:
        if mismatch.transaction_id is not None:
            first_of.setdefault(mismatch.transaction_id, mismatch)
    by_transaction: dict[int, int] = {}
    if first_of:
        statement = pg_insert(ReviewCase.__table__).on_conflict_do_nothing(
            index_elements=["transaction_id", "kind"], index_where=UNDECIDED_PREDICATE
        ).returning(C.id, C.transaction_id)
        new = {row.transaction_id: row.id
               for row in session.execute(statement, [m.values() for m in first_of.values()])}
        opened.extend((case_id, first_of[tx_id]) for tx_id, case_id in new.items())
        waiting = [tx_id for tx_id in first_of if tx_id not in new]
        existing = dict(session.execute(
            select(C.transaction_id, C.id).where(
                C.transaction_id.in_(waiting), C.kind == CaseKind.RECONCILIATION, C.state.in_(UNDECIDED_STATES))
        ).tuples().all()) if waiting else {}
        by_transaction = {**existing, **new}
    loose = [i for i, mismatch in enumerate(mismatches) if mismatch.transaction_id is None]
    if loose:
        ids = session.execute(
            insert(ReviewCase.__table__).returning(C.id, sort_by_parameter_order=True),
            [mismatches[i].values() for i in loose],
        ).scalars().all()
        for i, case_id in zip(loose, ids, strict=True):
            case_ids[i] = case_id
            opened.append((case_id, mismatches[i]))
    for i, mismatch in enumerate(mismatches):
        if mismatch.transaction_id is not None:
            case_ids[i] = by_transaction[mismatch.transaction_id]
    _announce_mismatch_cases(session, actor, opened)
    return case_ids


def _announce_mismatch_cases(session: OrmSession, actor: Actor, opened: list[tuple[int, MismatchCase]]) -> None:
    for case_id, mismatch in opened:
        audit.record(
            session, actor=actor, action="case.opened", entity_type="case", entity_id=case_id,
            after={"state": CaseState.OPEN, "kind": CaseKind.RECONCILIATION, "risk": mismatch.risk,
                   "bank_reference": mismatch.bank_reference, "reference": mismatch.reference},
            reason=mismatch.reason,
        )
    webhooks.enqueue_many(session, [
        ("case.opened", {"case_id": case_id, "kind": CaseKind.RECONCILIATION, "reason": mismatch.reason,
                         "bank_reference": mismatch.bank_reference, "reference": mismatch.reference})
        for case_id, mismatch in opened
    ])


@dataclass(frozen=True)
class NewTransactionCase:
    """A case for a transaction created in this unit of work (a rule flagged it as it arrived)."""

    transaction_id: int
    reference: str
    account_id: str
    amount: Decimal
    currency: str
    actor: Actor
    risk: int
    reason: str


def open_for_new_transactions(*, session: AnySession, cases: Sequence[NewTransactionCase]) -> dict[int, int]:
    """Open the cases and flag their transactions, set-wise; transaction id → case id.

    Works on either session kind (a commit group's Core session included). The transactions are
    new, so no case waits for them yet; the partial unique index still has the last word. With
    the `group_flags_by_account` setting on, a flag joins its account's open risk case, and the
    flags of one account without one share the case its first flag opens.
    """
    if not cases:
        return {}
    targets = grouping.open_cases_of_accounts(session, (case.account_id for case in cases))
    if targets is None:
        return _open_new(session, cases)
    opening_now: dict[str, NewTransactionCase] = {}
    for case in cases:
        if case.account_id not in targets:
            opening_now.setdefault(case.account_id, case)
    opened = _open_new(session, list(opening_now.values()))
    for account_id, case in opening_now.items():
        targets[account_id] = opened[case.transaction_id]
    joining = [case for case in cases if case.transaction_id not in opened]
    grouping.join_new_flags(session, [
        grouping.JoiningFlag(transaction_id=case.transaction_id, reference=case.reference,
                             case_id=targets[case.account_id], actor=case.actor, risk=case.risk, reason=case.reason)
        for case in joining
    ])
    return {**opened, **{case.transaction_id: targets[case.account_id] for case in joining}}


def _open_new(session: AnySession, cases: Sequence[NewTransactionCase]) -> dict[int, int]:
    if not cases:
        return {}
    statement = pg_insert(ReviewCase.__table__).on_conflict_do_nothing(
        index_elements=["transaction_id", "kind"], index_where=UNDECIDED_PREDICATE
    ).returning(C.id, C.transaction_id)
    opened = {row.transaction_id: row.id for row in session.execute(statement, [
        {"kind": CaseKind.RISK, "transaction_id": case.transaction_id, "risk": case.risk, "amount": case.amount,
         "currency": case.currency, "reason": case.reason} for case in cases
    ])}
    announced = [case for case in cases if case.transaction_id in opened]
    for case in announced:
        audit.record(
            session, actor=case.actor, action="case.opened", entity_type="case", entity_id=opened[case.transaction_id],
            after={"state": CaseState.OPEN, "kind": CaseKind.RISK, "risk": case.risk, "transaction": case.reference},
            reason=case.reason,
        )
    transactions.flag_new(session=session, flags=[
        transactions.NewFlag(case.transaction_id, case.reference, case.actor,
                             f"case {opened[case.transaction_id]} opened") for case in announced])
    webhooks.enqueue_many(session, [
        ("case.opened", {"case_id": opened[case.transaction_id], "kind": CaseKind.RISK, "risk": case.risk,
                         "reference": case.reference, "reason": case.reason})
        for case in announced
    ])
    return opened
