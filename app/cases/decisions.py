"""Decisions: approve, reject or escalate a case, with four-eyes above the dual-control threshold.

Lock order is always transaction row, then case row (scores and decisions both touch the
two), so the two paths cannot deadlock. `version` goes up on every change, so a decision
made on a stale page is refused.
"""

from dataclasses import dataclass
from decimal import Decimal

from fastapi.exceptions import RequestValidationError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.audit.service import Actor
from app.cases import context
from app.cases.enums import (
    DECIDED_STATES,
    RECONCILIATION_ESCALATION_CODES,
    STATE_AFTER,
    CaseKind,
    CaseState,
    Decision,
    ReasonCode,
    ReconciliationOutcome,
)
from app.cases.models import CaseTransaction, ReviewCase
from app.cases.queries import UNDECIDED, C, get, username_of
from app.cases.schemas import CaseOut, DecisionRequest
from app.errors import Conflict, Forbidden, NotFound
from app.settings.service import get_review_settings
from app.transactions import service as transactions
from app.transactions.enums import ReviewStatus
from app.transactions.models import Transaction
from app.uow.unit import OrmSession
from app.users.enums import Role
from app.webhooks import outbox as webhooks

REVIEW_STATUS_AFTER = {CaseState.APPROVED: ReviewStatus.APPROVED, CaseState.REJECTED: ReviewStatus.REJECTED}


@dataclass(frozen=True)
class SecondApprovalNeeded:
    """Why an approval was recorded as the first of two: the amount is above the dual-control threshold."""

    amount: Decimal
    currency: str
    threshold: Decimal


@dataclass(frozen=True)
class DecisionOutcome:
    """The case after a decision, and, for a first approval, why a second reviewer must approve."""

    case: CaseOut
    state: CaseState
    second_approval: SecondApprovalNeeded | None = None


def _lock_case_and_transaction(session: Session, case_id: int) -> tuple[ReviewCase, Transaction | None]:
    transaction_id = session.execute(select(C.transaction_id).where(C.id == case_id)).one_or_none()
    if transaction_id is None:
        raise NotFound(f"case {case_id} not found")
    tx = None
    if transaction_id[0] is not None:
        tx = session.execute(
            select(Transaction).where(Transaction.id == transaction_id[0]).with_for_update()
        ).scalar_one()
    # Transactions grouped into the case are locked before it too (the same order as a score
    # that joins a case: its transaction, then the case).
    session.execute(
        select(Transaction.id).where(Transaction.id.in_(
            select(CaseTransaction.transaction_id).where(CaseTransaction.case_id == case_id)
        )).order_by(Transaction.id).with_for_update()
    ).all()
    review_case = session.execute(
        select(ReviewCase).where(ReviewCase.id == case_id).with_for_update().execution_options(populate_existing=True)
    ).scalar_one()
    return review_case, tx


def _check_can_decide(session: Session, actor: Actor, review_case: ReviewCase, data: DecisionRequest) -> None:
    case_id = review_case.id
    if review_case.state in DECIDED_STATES:
        by = username_of(session, review_case.decided_by)
        raise Conflict(f"case {case_id} was already {review_case.state} by {by}")
    if data.version is not None and data.version != review_case.version:
        raise Conflict(f"case {case_id} changed since you loaded it; reload to see what happened")
    claim_is_live = (
        review_case.assignee_id is not None
        and session.execute(select(ReviewCase.lease_expires_at > func.now()).where(ReviewCase.id == case_id)).scalar()
    )
    if claim_is_live and review_case.assignee_id != actor.id:
        raise Conflict(f"case {case_id} is claimed by {username_of(session, review_case.assignee_id)}")
    if review_case.state == CaseState.ESCALATED:
        if actor.role != Role.ADMIN:
            raise Forbidden(f"case {case_id} is escalated; an admin decides it")
        if data.decision == Decision.ESCALATE:
            raise Conflict(f"case {case_id} is already escalated")
    if data.decision == Decision.APPROVE and review_case.first_approved_by == actor.id:
        raise Conflict(f"case {case_id} needs a second approval from a different reviewer")
    if data.seen is not None:
        context.check(session=session, case_id=case_id, seen=data.seen)


def _refused(field: str, message: str) -> RequestValidationError:
    return RequestValidationError([{"loc": ("body", field), "msg": message, "type": "value_error"}])


def check_fits_kind(kind: str, data: DecisionRequest) -> None:
    """A reconciliation case is resolved (approve) or escalated with a reconciliation outcome;
    a transaction's case takes the fraud reason codes. 422 naming the field otherwise."""
    if kind == CaseKind.RECONCILIATION:
        if data.decision == Decision.REJECT:
            raise _refused("decision", "a reconciliation case is resolved (approve with its outcome) "
                                       "or escalated, not rejected")
        allowed = (RECONCILIATION_ESCALATION_CODES if data.decision == Decision.ESCALATE
                   else tuple(ReconciliationOutcome))
        if data.reason_code not in allowed:
            raise _refused("reason_code", "a reconciliation case needs an outcome: " + ", ".join(allowed))
    elif data.reason_code not in tuple(ReasonCode):
        raise _refused("reason_code", f"{data.reason_code} is an outcome for reconciliation cases; "
                                      "this case needs one of " + ", ".join(ReasonCode))


def decide(*, session: OrmSession, actor: Actor, case_id: int, data: DecisionRequest) -> DecisionOutcome:
    """Record a decision (or the first of two approvals); returns what it did."""
    review_case, tx = _lock_case_and_transaction(session, case_id)
    _check_can_decide(session, actor, review_case, data)
    check_fits_kind(review_case.kind, data)
    settings = get_review_settings(session=session)
    before = {"state": review_case.state, "version": review_case.version}
    reason = f"{data.reason_code}: {data.note}" if data.note else data.reason_code

    payments = ([tx] if tx is not None else []) + _grouped(session, case_id)
    # Four-eyes when any payment the approval clears is above the threshold (in its currency).
    above = [p for p in payments if p.amount > settings.dual_control_threshold]
    needs_two = data.decision == Decision.APPROVE and bool(above)
    if needs_two and review_case.first_approved_by is None:
        still = CaseState.ESCALATED if review_case.state == CaseState.ESCALATED else CaseState.OPEN
        _apply(session, review_case, state=still, needs_second_approval=True, first_approved_by=actor.id)
        audit.record(
            session, actor=actor, action="case.first_approval", entity_type="case", entity_id=case_id,
            before=before, after={"state": review_case.state, "first_approved_by": actor.name}, reason=reason,
        )
        return DecisionOutcome(
            case=get(session=session, case_id=case_id), state=still,
            second_approval=SecondApprovalNeeded(above[0].amount, above[0].currency,
                                                 settings.dual_control_threshold),
        )

    state = STATE_AFTER[data.decision]
    decided = state in REVIEW_STATUS_AFTER
    _apply(
        session, review_case, state=state,
        decision=data.decision if decided else review_case.decision,
        reason_code=data.reason_code, note=data.note,
        decided_by=actor.id if decided else None,
        decided_at=func.now() if decided else None,
        needs_second_approval=needs_two or review_case.needs_second_approval,
    )
    audit.record(
        session, actor=actor, action=f"case.{state}", entity_type="case", entity_id=case_id,
        before=before, after={"state": state, "decision": data.decision, "reason_code": data.reason_code},
        reason=reason,
    )
    if decided:
        for each in payments:
            if state == CaseState.REJECTED or not _other_undecided_case(session, each.id, case_id):
                transactions.set_review_status(session=session, actor=actor, tx=each,
                                               status=REVIEW_STATUS_AFTER[state], reason=f"case {case_id} {state}")
    # Outbound webhook, in the same transaction as the decision.
    webhooks.enqueue(session, "case.decided", {
        "case_id": case_id, "kind": review_case.kind, "state": state, "decision": data.decision,
        "reason_code": data.reason_code, "decided_by": actor.name, "reference": tx.reference if tx else None,
    })
    return DecisionOutcome(case=get(session=session, case_id=case_id), state=state)


def _grouped(session: Session, case_id: int) -> list[Transaction]:
    # The transactions whose flags joined the case follow its decision (already locked).
    return list(session.scalars(
        select(Transaction).join(CaseTransaction, CaseTransaction.transaction_id == Transaction.id)
        .where(CaseTransaction.case_id == case_id).order_by(Transaction.id)
        .execution_options(populate_existing=True)
    ))


def _other_undecided_case(session: Session, transaction_id: int, case_id: int) -> bool:
    # An approval clears the transaction only when no other case of it still waits.
    return session.execute(
        select(C.id).where(C.transaction_id == transaction_id, C.id != case_id, UNDECIDED).limit(1)
    ).first() is not None


def _apply(session: Session, review_case: ReviewCase, **values) -> None:
    """Write a decision's changes, release the claim and bump the version."""
    session.execute(
        update(ReviewCase)
        .where(ReviewCase.id == review_case.id)
        .values(**values, assignee_id=None, lease_expires_at=None, version=ReviewCase.version + 1,
                updated_at=func.now())
    )
    review_case.state = values["state"]
