"""Claims: who is reviewing a case, held by a lease.

A case is claimed by setting `assignee_id` and `lease_expires_at`; a lease that ran out
leaves the case free for anyone, so nothing has to sweep stale claims. "Next case" picks
the top free case with `FOR UPDATE SKIP LOCKED`, so concurrent analysts never wait for or
receive the same row.
"""

from sqlalchemy import (
    BigInteger,
    BindParameter,
    Integer,
    Row,
    bindparam,
    cast,
    func,
    literal,
    literal_column,
    select,
    update,
)
from sqlalchemy import case as sql_case

from app.audit import service as audit
from app.audit.service import Actor
from app.cases.enums import UNDECIDED_STATES, CaseState
from app.cases.models import ReviewCase
from app.cases.queries import CLAIM_IS_FREE, CLAIM_IS_LIVE, UNDECIDED, C, get, username_of
from app.cases.schemas import CaseOut
from app.errors import Conflict, Forbidden, NotFound
from app.settings.models import Setting
from app.settings.service import DEFAULTS
from app.uow.unit import OrmSession
from app.users.enums import Role

# The lease end, computed by the claiming UPDATE itself from the current setting.
LEASE_END = func.now() + literal_column("interval '1 minute'") * func.coalesce(
    select(cast(Setting.value.op("#>>")(literal_column("'{}'")), Integer))
    .where(Setting.key == "claim_lease_minutes")
    .scalar_subquery(),
    DEFAULTS["claim_lease_minutes"],
)


# Held until the transaction ends; the key is the analyst's (claim_next).
CLAIM_NEXT_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"


# Escalated cases wait for an admin; analysts never receive them.
_ADMIN_CLAIMABLE: tuple[CaseState, ...] = (CaseState.OPEN, CaseState.IN_REVIEW, CaseState.ESCALATED)
_ANALYST_CLAIMABLE: tuple[CaseState, ...] = (CaseState.OPEN, CaseState.IN_REVIEW)


def _claimable_states(actor: Actor) -> tuple[CaseState, ...]:
    return _ADMIN_CLAIMABLE if actor.role == Role.ADMIN else _ANALYST_CLAIMABLE


# claim_next's statements take the caller as `actor_id`. They are built once: building and
# hashing them for the statement cache took more of the worker's CPU than running them.
_ACTOR_ID = bindparam("actor_id", type_=BigInteger)
_HELD = (
    select(C.id).where(C.assignee_id == _ACTOR_ID, CLAIM_IS_LIVE, UNDECIDED).order_by(C.risk.desc(), C.id).limit(1)
)


def _claim_statement(assignee_id: int | None | BindParameter[int], where, previous_state):
    return (
        update(ReviewCase.__table__)
        .where(where)
        .values(
            state=sql_case((previous_state == CaseState.ESCALATED.value, CaseState.ESCALATED.value),
                           else_=CaseState.IN_REVIEW.value),
            assignee_id=assignee_id, lease_expires_at=LEASE_END, version=C.version + 1, updated_at=func.now(),
        )
    )


def _claim_top_free(states: tuple[CaseState, ...]):
    picked = (
        select(C.id, C.state, C.assignee_id)
        .where(
            C.state.in_(states),
            CLAIM_IS_FREE,
            # Four-eyes: the first approver cannot be the second reviewer.
            C.first_approved_by.is_distinct_from(_ACTOR_ID),
        )
        .order_by(C.risk.desc(), C.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .cte("picked")
    )
    return (
        _claim_statement(_ACTOR_ID, C.id == picked.c.id, picked.c.state)
        .returning(C.id, C.state, C.lease_expires_at, picked.c.state.label("previous_state"),
                   picked.c.assignee_id.label("previous_assignee"))
    )


_CLAIM_TOP_FREE = {states: _claim_top_free(states) for states in (_ADMIN_CLAIMABLE, _ANALYST_CLAIMABLE)}


def claim_next(*, session: OrmSession, actor: Actor) -> CaseOut | None:
    """Claim the top free case for the actor (or return the one they already hold); None when empty."""
    # One "next" at a time per analyst, so parallel clicks cannot each claim a case: the
    # second waits for the first to commit and then finds the case it holds. The lock rides
    # with the check for a held case, in one message; the check still reads after the lock
    # is granted (each statement of a READ COMMITTED transaction sees what committed before it).
    session.unit.defer(CLAIM_NEXT_LOCK, (f"riskdesk.claim_next:{actor.id}",))
    caller = {"actor_id": actor.id}
    held = session.execute(_HELD, caller).scalar()
    if held is not None:
        return get(session=session, case_id=held)
    claimed = session.execute(_CLAIM_TOP_FREE[_claimable_states(actor)], caller).one_or_none()
    if claimed is None:
        return None
    _claimed_event(session, actor, claimed)
    return get(session=session, case_id=claimed.id)


def claim(*, session: OrmSession, actor: Actor, case_id: int) -> CaseOut:
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
    if row.state == CaseState.ESCALATED and actor.role != Role.ADMIN:
        raise Forbidden(f"case {case_id} is escalated; an admin decides it")
    if row.is_live and row.assignee_id != actor.id:
        # Looked up after the lock: a join in the locking query is not re-read after a wait.
        raise Conflict(f"case {case_id} is claimed by {username_of(session, row.assignee_id)}")
    if row.first_approved_by == actor.id:
        raise Conflict(f"case {case_id} awaits a second approval; you gave the first, so another reviewer must take it")
    claimed = session.execute(
        _claim_statement(actor.id, C.id == case_id, literal(row.state)).returning(
            C.id, C.state, C.lease_expires_at, literal(row.state).label("previous_state"),
            literal(row.assignee_id if row.is_live else None, BigInteger).label("previous_assignee"),
        )
    ).one()
    _claimed_event(session, actor, claimed)
    return get(session=session, case_id=case_id)


def _claimed_event(session: OrmSession, actor: Actor, claimed: Row) -> None:
    renewed = claimed.previous_assignee == actor.id
    audit.record(
        session, actor=actor, action="case.claim_renewed" if renewed else "case.claimed",
        entity_type="case", entity_id=claimed.id,
        before={"state": claimed.previous_state, "assignee_id": claimed.previous_assignee},
        after={"state": claimed.state, "assignee": actor.name,
               "lease_expires_at": claimed.lease_expires_at.isoformat()},
    )


def release(*, session: OrmSession, actor: Actor, case_id: int) -> CaseOut:
    """Give a claimed case back to the queue; Conflict unless the actor holds it."""
    row = session.execute(
        select(C.state, C.assignee_id, CLAIM_IS_LIVE.label("is_live")).where(C.id == case_id).with_for_update()
    ).one_or_none()
    if row is None:
        raise NotFound(f"case {case_id} not found")
    if not (row.is_live and row.assignee_id == actor.id):
        raise Conflict(f"case {case_id} is not claimed by you")
    new_state = CaseState.ESCALATED if row.state == CaseState.ESCALATED else CaseState.OPEN
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
