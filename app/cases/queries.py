"""Reading review cases: the row every screen and API shows, and the conditions they share.

A claim is live while its lease runs: an `in_review` case whose lease ran out reads as
`open` again (EFFECTIVE_STATE), so nothing has to sweep stale claims.
"""

from sqlalchemy import BigInteger, Row, Select, and_, bindparam, func, literal, or_, select
from sqlalchemy import case as sql_case
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from app import money
from app.audit.models import AuditEvent
from app.cases.enums import UNDECIDED_STATES, CaseKind, CaseState
from app.cases.models import ReviewCase
from app.cases.schemas import CaseOut
from app.errors import NotFound
from app.transactions.models import Transaction
from app.users.models import User

C = ReviewCase.__table__.c
T = Transaction.__table__.c
UNDECIDED = C.state.in_(UNDECIDED_STATES)
CLAIM_IS_LIVE = and_(C.assignee_id.is_not(None), C.lease_expires_at > func.now())
CLAIM_IS_FREE = or_(C.assignee_id.is_(None), C.lease_expires_at <= func.now())
EFFECTIVE_STATE = sql_case(
    (and_(C.state == CaseState.IN_REVIEW, CLAIM_IS_FREE), literal(CaseState.OPEN.value)), else_=C.state
)

_assignee = aliased(User.__table__, name="assignee")
_first_approver = aliased(User.__table__, name="first_approver")
_decider = aliased(User.__table__, name="decider")
ASSIGNEE = _assignee.c

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
    """A CASE_ROWS row as the API shows it, the amount in the currency's minor units."""
    values = row._asdict()
    values["amount"] = money.format_amount(row.amount, row.currency) if row.amount is not None else None
    return CaseOut(**values)


# Built once (get runs with every case action): building and hashing it costs more than running it.
_CASE_BY_ID = CASE_ROWS.where(C.id == bindparam("case_id", type_=BigInteger))


def get(*, session: Session, case_id: int) -> CaseOut:
    """The case as a reader sees it, or NotFound."""
    row = session.execute(_CASE_BY_ID, {"case_id": case_id}).one_or_none()
    if row is None:
        raise NotFound(f"case {case_id} not found")
    return to_out(row)


def state_condition(state: CaseState | None) -> ColumnElement[bool]:
    """Cases in `state` as a reader sees it (a lapsed claim is open); None: every undecided case."""
    if state is None:
        return UNDECIDED
    if state == CaseState.OPEN:
        return or_(C.state == CaseState.OPEN, and_(C.state == CaseState.IN_REVIEW, CLAIM_IS_FREE))
    if state == CaseState.IN_REVIEW:
        return and_(C.state == CaseState.IN_REVIEW, CLAIM_IS_LIVE)
    return C.state == state


def username_of(session: Session, user_id: int | None) -> str | None:
    """The user's name, for messages that say who holds or decided a case."""
    return None if user_id is None else session.execute(select(User.username).where(User.id == user_id)).scalar()


def undecided_case_id(*, session: Session, transaction_id: int) -> int | None:
    """The transaction's undecided risk case, if any."""
    return session.execute(
        select(C.id).where(C.transaction_id == transaction_id, C.kind == CaseKind.RISK, UNDECIDED)
    ).scalar()


def timeline(*, session: Session, case_id: int, reference: str | None, limit: int = 200) -> list[AuditEvent]:
    """The newest `limit` audit events of the case and of its transaction, oldest first."""
    condition = and_(AuditEvent.entity_type == "case", AuditEvent.entity_id == str(case_id))
    if reference is not None:
        condition = or_(condition, and_(AuditEvent.entity_type == "transaction", AuditEvent.entity_id == reference))
    newest = session.scalars(select(AuditEvent).where(condition).order_by(AuditEvent.id.desc()).limit(limit))
    return list(reversed(newest.all()))


# --- for the account context (app/accounts): one statement built from these parts -------

def top_undecided_of_account(account_id, limit: int) -> Select:
    """The account's `limit` riskiest undecided cases as CASE_ROWS, for the caller to order."""
    # Picked from the cases alone (an index by account); only those few are then joined to
    # their transaction and users.
    top = select(C.id).where(C.account_id == account_id, UNDECIDED).order_by(C.risk.desc(), C.id).limit(limit)
    return CASE_ROWS.where(C.id.in_(top))


def recent_decisions_of_account(account_id, limit: int) -> Select:
    """The account's `limit` latest decisions: case_id, transaction_reference, decision, reason_code,
    note, decided_by (a name), decided_at."""
    # The latest decided cases first (an index by account), then only those joined to their
    # transaction and decider.
    decided = (
        select(C.id, C.transaction_id, C.decision, C.reason_code, C.note, C.decided_by, C.decided_at)
        .where(C.account_id == account_id, C.decided_at.is_not(None))
        .order_by(C.decided_at.desc(), C.id.desc()).limit(limit)
        .subquery("decided")
    )
    users = User.__table__.c
    return (
        select(decided.c.id.label("case_id"), T.reference.label("transaction_reference"),
               decided.c.decision, decided.c.reason_code, decided.c.note,
               select(users.username).where(users.id == decided.c.decided_by).scalar_subquery().label("decided_by"),
               decided.c.decided_at)
        .select_from(decided).join(Transaction.__table__, T.id == decided.c.transaction_id)
    )
