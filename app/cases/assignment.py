"""Assignment: an admin hands a case to a named reviewer, an analyst takes one for themself.

An assignment is a claim made on someone's behalf: it sets the case's assignee and lease
exactly as that reviewer's own claim would (app/cases/claims.py), so the queue, "Claimed
by me", the case page and every decision check see the assignee as the holder, and a
lease nobody renews frees the case again as any claim does. Admins may take a case from
its holder (reassign) and release anyone's claim; analysts only assign themselves and
release their own. Callers lock the case rows first (`lock_cases`, in id order, so two
requests over the same cases wait for each other instead of deadlocking) and then judge
each row as it is after the lock.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Row, func, literal, select, update

from app.audit import service as audit
from app.audit.service import Actor
from app.cases.claims import _claim_statement
from app.cases.enums import UNDECIDED_STATES, CaseState
from app.cases.models import ReviewCase
from app.cases.queries import CLAIM_IS_LIVE, C, get, username_of
from app.cases.schemas import CaseOut
from app.errors import Conflict, DomainError, Forbidden, NotFound
from app.fields import Identifier64
from app.uow.unit import OrmSession
from app.users.enums import Role
from app.users.models import User

ASSIGNABLE_ROLES = (Role.ANALYST, Role.ADMIN)


class InvalidAssignee(DomainError):
    """422 naming the `assignee` field, in the shape of a validation error."""

    status_code = 422

    def __init__(self, message: str) -> None:
        super().__init__([{"loc": ["body", "assignee"], "field": "assignee", "msg": message, "type": "value_error"}])


class AssignRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"assignee": "alice", "version": 3}]})

    assignee: Identifier64
    # The case version the assigner saw; an assignment on a stale view is refused with 409.
    version: Annotated[int | None, Field(ge=1)] = None


@dataclass(frozen=True)
class Assignee:
    id: int
    username: str
    role: str

    @property
    def actor(self) -> Actor:
        return Actor(name=self.username, id=self.id, role=self.role)


def find_assignee(*, session: OrmSession, actor: Actor, username: str) -> Assignee:
    """The active analyst or admin named `username` whom `actor` may assign; InvalidAssignee or Forbidden."""
    row = session.execute(
        select(User.id, User.username, User.role).where(
            User.username == username, User.is_active, User.role.in_(ASSIGNABLE_ROLES))
    ).one_or_none()
    if row is None:
        raise InvalidAssignee(f"{username} is not an active analyst or admin")
    if actor.role != Role.ADMIN and row.id != actor.id:
        raise Forbidden("Analysts can assign cases only to themselves; an admin can assign them to anyone.")
    return Assignee(row.id, row.username, row.role)


def active_reviewers(*, session: OrmSession) -> list[str]:
    """Names of everyone a case can be assigned to, for the screens' pickers."""
    return list(session.scalars(
        select(User.username).where(User.is_active, User.role.in_(ASSIGNABLE_ROLES)).order_by(User.username)))


def lock_cases(*, session: OrmSession, case_ids: Sequence[int]) -> dict[int, Row]:
    """The cases' rows, locked FOR UPDATE in id order; missing ids are left out."""
    rows = session.execute(
        select(C.id, C.state, C.assignee_id, C.first_approved_by, C.version, CLAIM_IS_LIVE.label("is_live"))
        .where(C.id.in_(sorted(set(case_ids))))
        .order_by(C.id)
        .with_for_update()
    ).all()
    return {row.id: row for row in rows}


def _check_version(row: Row, version: int | None) -> None:
    if version is not None and version != row.version:
        raise Conflict(f"case {row.id} changed since you loaded it; reload to see what happened")


def assign_locked(*, session: OrmSession, actor: Actor, row: Row, assignee: Assignee,
                  version: int | None = None) -> CaseOut:
    """Assign the locked case to `assignee` (their claim, with a fresh lease); Conflict if it cannot be."""
    case_id = row.id
    if row.state not in UNDECIDED_STATES:
        raise Conflict(f"case {case_id} is already {row.state}")
    _check_version(row, version)
    if row.state == CaseState.ESCALATED and assignee.role != Role.ADMIN:
        raise Conflict(f"case {case_id} is escalated; only an admin can take it")
    if row.first_approved_by == assignee.id:
        raise Conflict(f"case {case_id} awaits a second approval; {assignee.username} gave the first, "
                       "so another reviewer must take it")
    held_by_other = row.is_live and row.assignee_id != assignee.id
    if held_by_other and actor.role != Role.ADMIN:
        raise Conflict(f"case {case_id} is claimed by {username_of(session, row.assignee_id)}")
    previous = username_of(session, row.assignee_id) if row.is_live else None
    assigned = session.execute(
        _claim_statement(assignee.id, C.id == case_id, literal(row.state))
        .returning(C.state, C.lease_expires_at)
    ).one()
    audit.record(
        session, actor=actor, action="case.assigned", entity_type="case", entity_id=case_id,
        before={"state": row.state, "assignee": previous},
        after={"state": assigned.state, "assignee": assignee.username,
               "lease_expires_at": assigned.lease_expires_at.isoformat()},
    )
    return get(session=session, case_id=case_id)


def release_locked(*, session: OrmSession, actor: Actor, row: Row, version: int | None = None) -> CaseOut:
    """Give the locked case back to the queue: an admin releases anyone's claim, an analyst their own."""
    case_id = row.id
    if not row.is_live:
        raise Conflict(f"case {case_id} is not claimed by anyone")
    _check_version(row, version)
    if row.assignee_id != actor.id and actor.role != Role.ADMIN:
        raise Conflict(f"case {case_id} is claimed by {username_of(session, row.assignee_id)}; "
                       "only they or an admin can release it")
    holder = username_of(session, row.assignee_id)
    new_state = CaseState.ESCALATED if row.state == CaseState.ESCALATED else CaseState.OPEN
    session.execute(
        update(ReviewCase)
        .where(C.id == case_id)
        .values(state=new_state, assignee_id=None, lease_expires_at=None, version=C.version + 1,
                updated_at=func.now())
    )
    audit.record(
        session, actor=actor, action="case.released", entity_type="case", entity_id=case_id,
        before={"state": row.state, "assignee": holder}, after={"state": new_state, "assignee": None},
    )
    return get(session=session, case_id=case_id)


def assign(*, session: OrmSession, actor: Actor, case_id: int, username: str, version: int | None = None) -> CaseOut:
    """Assign one case to the reviewer named `username` (POST /api/cases/{id}/assign)."""
    assignee = find_assignee(session=session, actor=actor, username=username)
    row = lock_cases(session=session, case_ids=[case_id]).get(case_id)
    if row is None:
        raise NotFound(f"case {case_id} not found")
    return assign_locked(session=session, actor=actor, row=row, assignee=assignee, version=version)
