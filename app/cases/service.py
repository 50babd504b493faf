"""Review cases: opening, the queue, claims with leases, and decisions.

Claims: a case is claimed by setting `assignee_id` and `lease_expires_at`; a lease that
ran out leaves the case free for anyone, so nothing has to sweep stale claims. "Next
case" picks the top free case with `FOR UPDATE SKIP LOCKED`, so concurrent analysts
never wait for or receive the same row.

Lock order is always transaction row, then case row (scores and decisions both touch
the two), so the two paths cannot deadlock.
"""

import base64
import binascii
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import BigInteger, Integer, Row, and_, cast, case as sql_case, func, literal, literal_column, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, aliased

from app import money
from app.audit import service as audit
from app.audit.models import AuditEvent
from app.audit.service import Actor
from app.cases.models import UNDECIDED_STATES, ReviewCase
from app.cases.schemas import CaseOut, DecisionRequest
from app.errors import Conflict, Forbidden, NotFound
from app.settings.models import Setting
from app.settings.service import DEFAULTS, get_review_settings
from app.transactions.models import Transaction
from app.users.models import User
from app.webhooks import outbox as webhooks

C = ReviewCase.__table__.c
T = Transaction.__table__.c
UNDECIDED = C.state.in_(UNDECIDED_STATES)
CLAIM_IS_LIVE = and_(C.assignee_id.is_not(None), C.lease_expires_at > func.now())
CLAIM_IS_FREE = or_(C.assignee_id.is_(None), C.lease_expires_at <= func.now())
# What a reader should see: an in_review case whose lease ran out is open again.
EFFECTIVE_STATE = sql_case((and_(C.state == "in_review", CLAIM_IS_FREE), literal("open")), else_=C.state)

_assignee = aliased(User.__table__, name="assignee")
_first_approver = aliased(User.__table__, name="first_approver")
_decider = aliased(User.__table__, name="decider")

CASE_ROWS = (
    select(
        C.id, C.kind, EFFECTIVE_STATE.label("state"), C.risk, C.reason, C.amount, C.currency,
        T.reference.label("transaction_reference"), T.account_id, T.counterparty,
        sql_case((CLAIM_IS_LIVE, _assignee.c.username), else_=None).label("assignee"),
        sql_case((CLAIM_IS_LIVE, C.lease_expires_at), else_=None).label("lease_expires_at"),
        C.needs_second_approval, _first_approver.c.username.label("first_approved_by"),
        C.decision, C.reason_code, C.note, _decider.c.username.label("decided_by"), C.decided_at,
        C.version, C.opened_at, C.updated_at,
    )
    .select_from(ReviewCase.__table__)
    .outerjoin(Transaction.__table__, T.id == C.transaction_id)
    .outerjoin(_assignee, _assignee.c.id == C.assignee_id)
    .outerjoin(_first_approver, _first_approver.c.id == C.first_approved_by)
    .outerjoin(_decider, _decider.c.id == C.decided_by)
)


def to_out(row: Row) -> CaseOut:
    values = row._asdict()
    values["amount"] = money.format_amount(row.amount, row.currency) if row.amount is not None else None
    return CaseOut(**values)


def get(*, session: Session, case_id: int) -> CaseOut:
    """The case as a reader sees it, or NotFound."""
    row = session.execute(CASE_ROWS.where(C.id == case_id)).one_or_none()
    if row is None:
        raise NotFound(f"case {case_id} not found")
    return to_out(row)


# --- opening ---------------------------------------------------------------------------

def open_for_transaction(*, session: Session, actor: Actor, tx: Transaction, risk: int, reason: str) -> int:
    """The id of the transaction's undecided risk case, opening one (and flagging the transaction) if none.

    The caller holds the transaction's row lock; the partial unique index is the backstop
    that makes a second undecided case impossible even without it.
    """
    opened = session.execute(
        insert(ReviewCase)
        .values(kind="risk", transaction_id=tx.id, risk=risk, amount=tx.amount, currency=tx.currency, reason=reason)
        .on_conflict_do_nothing(index_elements=["transaction_id", "kind"], index_where=UNDECIDED)
        .returning(C.id)
    ).scalar()
    if opened is None:
        return session.execute(
            update(ReviewCase)
            .where(C.transaction_id == tx.id, C.kind == "risk", UNDECIDED)
            .values(risk=func.greatest(C.risk, risk), updated_at=func.now())
            .returning(C.id)
        ).scalar_one()
    audit.record(
        session, actor=actor, action="case.opened", entity_type="case", entity_id=opened,
        after={"state": "open", "kind": "risk", "risk": risk, "transaction": tx.reference}, reason=reason,
    )
    _set_review_status(session, actor, tx, "flagged", reason=f"case {opened} opened")
    # Outbound webhook (issue 5), in the same transaction as the case.
    webhooks.enqueue(session, "case.opened", {"case_id": opened, "kind": "risk", "risk": risk,
                                              "reference": tx.reference, "reason": reason})
    return opened


def undecided_case_id(*, session: Session, transaction_id: int) -> int | None:
    """The transaction's undecided risk case, if any."""
    return session.execute(
        select(C.id).where(C.transaction_id == transaction_id, C.kind == "risk", UNDECIDED)
    ).scalar()


def _set_review_status(session: Session, actor: Actor, tx: Transaction, status: str, reason: str) -> None:
    if tx.review_status == status:
        return
    before = tx.review_status
    session.execute(
        update(Transaction).where(T.id == tx.id).values(review_status=status, updated_at=func.now())
    )
    tx.review_status = status
    audit.record(
        session, actor=actor, action="transaction.review_status_changed", entity_type="transaction",
        entity_id=tx.reference, before={"review_status": before}, after={"review_status": status}, reason=reason,
    )


# --- the queue -------------------------------------------------------------------------

@dataclass(frozen=True)
class QueueFilter:
    state: str | None = None  # None: every undecided case
    kind: str | None = None
    currency: str | None = None
    min_amount: Decimal | None = None
    max_amount: Decimal | None = None
    min_score: int | None = None
    max_score: int | None = None
    assignee: str | None = None


def encode_cursor(risk: int, case_id: int) -> str:
    return base64.urlsafe_b64encode(f"q:{risk}:{case_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    """The (risk, id) a queue cursor points after; ValueError if it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValueError("invalid cursor") from None
    parts = raw.split(":")
    if len(parts) != 3 or parts[0] != "q" or not parts[1].isdigit() or not parts[2].isdigit() or len(parts[2]) > 19:
        raise ValueError("invalid cursor")
    return int(parts[1]), int(parts[2])


def _state_condition(state: str | None):
    if state is None:
        return UNDECIDED
    if state == "open":
        return or_(C.state == "open", and_(C.state == "in_review", CLAIM_IS_FREE))
    if state == "in_review":
        return and_(C.state == "in_review", CLAIM_IS_LIVE)
    return C.state == state


def list_page(
    *, session: Session, filters: QueueFilter, limit: int, after: tuple[int, int] | None = None
) -> tuple[list[CaseOut], str | None]:
    """Highest risk first, then oldest; keyset-paginated on (risk, id)."""
    statement = CASE_ROWS.where(_state_condition(filters.state)).order_by(C.risk.desc(), C.id).limit(limit + 1)
    if after is not None:
        risk, case_id = after
        statement = statement.where(or_(C.risk < risk, and_(C.risk == risk, C.id > case_id)))
    if filters.kind:
        statement = statement.where(C.kind == filters.kind)
    if filters.currency:
        statement = statement.where(C.currency == filters.currency)
    if filters.min_amount is not None:
        statement = statement.where(C.amount >= filters.min_amount)
    if filters.max_amount is not None:
        statement = statement.where(C.amount <= filters.max_amount)
    if filters.min_score is not None:
        statement = statement.where(C.risk >= filters.min_score)
    if filters.max_score is not None:
        statement = statement.where(C.risk <= filters.max_score)
    if filters.assignee:
        statement = statement.where(_assignee.c.username == filters.assignee, CLAIM_IS_LIVE)
    rows = session.execute(statement).all()
    next_cursor = encode_cursor(rows[limit - 1].risk, rows[limit - 1].id) if len(rows) > limit else None
    return [to_out(row) for row in rows[:limit]], next_cursor


# Live counts stop at COUNT_CAP ("10,000+"): a queue that long needs no exact number, and
# each count then reads at most that many index entries however deep the backlog is.
COUNT_CAP = 10_000


def _capped_count(condition):
    return (
        select(func.count())
        .select_from(select(C.id).where(UNDECIDED, condition).limit(COUNT_CAP).subquery())
        .scalar_subquery()
    )


def counts(*, session: Session, user_id: int) -> dict[str, int]:
    """Live queue counts (each at most COUNT_CAP): open, in review, escalated, awaiting a second approval, mine."""
    row = session.execute(
        select(
            _capped_count(_state_condition("open")).label("open"),
            _capped_count(_state_condition("in_review")).label("in_review"),
            _capped_count(C.state == "escalated").label("escalated"),
            _capped_count(and_(C.first_approved_by.is_not(None), C.state != "escalated")).label(
                "awaiting_second_approval"
            ),
            _capped_count(and_(C.assignee_id == user_id, CLAIM_IS_LIVE)).label("mine"),
        )
    ).one()
    return row._asdict()


# --- claims ----------------------------------------------------------------------------

# The lease end, computed by the claiming UPDATE itself from the current setting.
LEASE_END = func.now() + literal_column("interval '1 minute'") * func.coalesce(
    select(cast(Setting.value.op("#>>")(literal_column("'{}'")), Integer)).where(Setting.key == "claim_lease_minutes").scalar_subquery(),
    DEFAULTS["claim_lease_minutes"],
)


def _claimable_states(actor: Actor) -> tuple[str, ...]:
    # Escalated cases wait for an admin; analysts never receive them.
    return ("open", "in_review", "escalated") if actor.role == "admin" else ("open", "in_review")


def claim_next(*, session: Session, actor: Actor) -> CaseOut | None:
    """Claim the top free case for the actor (or return the one they already hold); None when empty."""
    # One "next" at a time per analyst, so parallel clicks cannot each claim a case: the
    # second waits for the first to commit and then finds the case it holds.
    session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(f"riskdesk.claim_next:{actor.id}", 0))))
    held = session.execute(
        select(C.id).where(C.assignee_id == actor.id, CLAIM_IS_LIVE, UNDECIDED).order_by(C.risk.desc(), C.id).limit(1)
    ).scalar()
    if held is not None:
        return get(session=session, case_id=held)
    picked = (
        select(C.id, C.state, C.assignee_id)
        .where(
            C.state.in_(_claimable_states(actor)),
            CLAIM_IS_FREE,
            # Four-eyes: the first approver cannot be the second reviewer.
            C.first_approved_by.is_distinct_from(actor.id),
        )
        .order_by(C.risk.desc(), C.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .cte("picked")
    )
    claimed = session.execute(
        _claim_statement(actor, C.id == picked.c.id, picked.c.state)
        .returning(C.id, C.state, C.lease_expires_at, picked.c.state.label("previous_state"),
                   picked.c.assignee_id.label("previous_assignee"))
    ).one_or_none()
    if claimed is None:
        return None
    _claimed_event(session, actor, claimed)
    return get(session=session, case_id=claimed.id)


def claim(*, session: Session, actor: Actor, case_id: int) -> CaseOut:
    """Claim (or renew the claim on) one case; Conflict when someone else holds it or it is decided."""
    row = session.execute(
        select(C.id, C.state, C.assignee_id, C.first_approved_by, CLAIM_IS_LIVE.label("is_live"))
        .where(C.id == case_id)
        .with_for_update()
    ).one_or_none()
    if row is None:
        raise NotFound(f"case {case_id} not found")
    if row.state not in UNDECIDED_STATES:
        raise Conflict(f"case {case_id} is already {row.state}")
    if row.state == "escalated" and actor.role != "admin":
        raise Forbidden(f"case {case_id} is escalated; an admin decides it")
    if row.is_live and row.assignee_id != actor.id:
        # Looked up after the lock: a join in the locking query is not re-read after a wait.
        raise Conflict(f"case {case_id} is claimed by {_username(session, row.assignee_id)}")
    if row.first_approved_by == actor.id:
        raise Conflict(f"case {case_id} awaits a second approval; you gave the first, so another reviewer must take it")
    claimed = session.execute(
        _claim_statement(actor, C.id == case_id, literal(row.state)).returning(
            C.id, C.state, C.lease_expires_at, literal(row.state).label("previous_state"),
            literal(row.assignee_id if row.is_live else None, BigInteger).label("previous_assignee"),
        )
    ).one()
    _claimed_event(session, actor, claimed)
    return get(session=session, case_id=case_id)


def _claim_statement(actor: Actor, where, previous_state):
    return (
        update(ReviewCase.__table__)
        .where(where)
        .values(
            state=sql_case((previous_state == "escalated", "escalated"), else_="in_review"),
            assignee_id=actor.id, lease_expires_at=LEASE_END, version=C.version + 1, updated_at=func.now(),
        )
    )


def _claimed_event(session: Session, actor: Actor, claimed: Row) -> None:
    renewed = claimed.previous_assignee == actor.id
    audit.record(
        session, actor=actor, action="case.claim_renewed" if renewed else "case.claimed",
        entity_type="case", entity_id=claimed.id,
        before={"state": claimed.previous_state, "assignee_id": claimed.previous_assignee},
        after={"state": claimed.state, "assignee": actor.name, "lease_expires_at": claimed.lease_expires_at.isoformat()},
    )


def release(*, session: Session, actor: Actor, case_id: int) -> CaseOut:
    """Give a claimed case back to the queue; Conflict unless the actor holds it."""
    row = session.execute(
        select(C.state, C.assignee_id, CLAIM_IS_LIVE.label("is_live")).where(C.id == case_id).with_for_update()
    ).one_or_none()
    if row is None:
        raise NotFound(f"case {case_id} not found")
    if not (row.is_live and row.assignee_id == actor.id):
        raise Conflict(f"case {case_id} is not claimed by you")
    new_state = "escalated" if row.state == "escalated" else "open"
    session.execute(
        update(ReviewCase)
        .where(C.id == case_id)
        .values(state=new_state, assignee_id=None, lease_expires_at=None, version=C.version + 1, updated_at=func.now())
    )
    audit.record(
        session, actor=actor, action="case.released", entity_type="case", entity_id=case_id,
        before={"state": row.state, "assignee": actor.name}, after={"state": new_state, "assignee": None},
    )
    return get(session=session, case_id=case_id)


# --- decisions -------------------------------------------------------------------------

FINAL_STATE = {"approve": "approved", "reject": "rejected", "escalate": "escalated"}
REVIEW_STATUS_AFTER = {"approved": "approved", "rejected": "rejected"}


def _lock_case_and_transaction(session: Session, case_id: int) -> tuple[ReviewCase, Transaction | None]:
    transaction_id = session.execute(select(C.transaction_id).where(C.id == case_id)).one_or_none()
    if transaction_id is None:
        raise NotFound(f"case {case_id} not found")
    tx = None
    if transaction_id[0] is not None:
        tx = session.execute(
            select(Transaction).where(Transaction.id == transaction_id[0]).with_for_update()
        ).scalar_one()
    review_case = session.execute(
        select(ReviewCase).where(ReviewCase.id == case_id).with_for_update().execution_options(populate_existing=True)
    ).scalar_one()
    return review_case, tx


def _username(session: Session, user_id: int | None) -> str | None:
    return None if user_id is None else session.execute(select(User.username).where(User.id == user_id)).scalar()


def _check_can_decide(session: Session, actor: Actor, review_case: ReviewCase, data: DecisionRequest) -> None:
    case_id = review_case.id
    if review_case.state in ("approved", "rejected"):
        by = _username(session, review_case.decided_by)
        raise Conflict(f"case {case_id} was already {review_case.state} by {by}")
    if data.version is not None and data.version != review_case.version:
        raise Conflict(f"case {case_id} changed since you loaded it; reload to see what happened")
    claim_is_live = (
        review_case.assignee_id is not None
        and session.execute(select(ReviewCase.lease_expires_at > func.now()).where(ReviewCase.id == case_id)).scalar()
    )
    if claim_is_live and review_case.assignee_id != actor.id:
        raise Conflict(f"case {case_id} is claimed by {_username(session, review_case.assignee_id)}")
    if review_case.state == "escalated":
        if actor.role != "admin":
            raise Forbidden(f"case {case_id} is escalated; an admin decides it")
        if data.decision == "escalate":
            raise Conflict(f"case {case_id} is already escalated")
    if data.decision == "approve" and review_case.first_approved_by == actor.id:
        raise Conflict(f"case {case_id} needs a second approval from a different reviewer")


def decide(*, session: Session, actor: Actor, case_id: int, data: DecisionRequest) -> tuple[CaseOut, str]:
    """Record a decision; returns the case and a message saying what happened."""
    review_case, tx = _lock_case_and_transaction(session, case_id)
    _check_can_decide(session, actor, review_case, data)
    settings = get_review_settings(session=session)
    before = {"state": review_case.state, "version": review_case.version}
    reason = f"{data.reason_code}: {data.note}" if data.note else data.reason_code

    needs_two = (
        data.decision == "approve" and tx is not None and tx.amount > settings.dual_control_threshold
    )
    if needs_two and review_case.first_approved_by is None:
        _apply(session, review_case, state="escalated" if review_case.state == "escalated" else "open",
               needs_second_approval=True, first_approved_by=actor.id)
        audit.record(
            session, actor=actor, action="case.first_approval", entity_type="case", entity_id=case_id,
            before=before, after={"state": review_case.state, "first_approved_by": actor.name}, reason=reason,
        )
        threshold = money.format_amount(settings.dual_control_threshold, tx.currency)
        return get(session=session, case_id=case_id), (
            f"First approval recorded. {money.format_amount(tx.amount, tx.currency)} {tx.currency} is above the "
            f"dual-control threshold of {threshold} {tx.currency}; a second, different reviewer must approve."
        )

    state = FINAL_STATE[data.decision]
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
    if decided and tx is not None and (state == "rejected" or not _other_undecided_case(session, tx.id, case_id)):
        _set_review_status(session, actor, tx, REVIEW_STATUS_AFTER[state], reason=f"case {case_id} {state}")
    # Outbound webhook (issue 5), in the same transaction as the decision.
    webhooks.enqueue(session, "case.decided", {
        "case_id": case_id, "kind": review_case.kind, "state": state, "decision": data.decision,
        "reason_code": data.reason_code, "decided_by": actor.name, "reference": tx.reference if tx else None,
    })
    return get(session=session, case_id=case_id), f"Case {case_id} {state}."


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


# --- the case page ---------------------------------------------------------------------

def timeline(*, session: Session, case_id: int, reference: str | None, limit: int = 200) -> list[AuditEvent]:
    """The newest `limit` audit events of the case and of its transaction, oldest first."""
    condition = and_(AuditEvent.entity_type == "case", AuditEvent.entity_id == str(case_id))
    if reference is not None:
        condition = or_(condition, and_(AuditEvent.entity_type == "transaction", AuditEvent.entity_id == reference))
    newest = session.scalars(select(AuditEvent).where(condition).order_by(AuditEvent.id.desc()).limit(limit))
    return list(reversed(newest.all()))
