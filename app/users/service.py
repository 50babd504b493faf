"""Users: creation, lookup and the admin's changes. Services flush; the caller's unit of work commits.

Every change bumps `token_version`, which revokes the user's existing tokens, and is
audited with before/after. The last active admin cannot be disabled or demoted: the
check runs with every active admin row locked, so two concurrent demotions serialize.
"""

from fastapi.exceptions import RequestValidationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.audit.service import Actor
from app.errors import Conflict, NotFound
from app.security.passwords import WeakPassword, check_password_strength, hash_password
from app.uow.unit import OrmSession
from app.users.enums import Role
from app.users.models import ROLES, User

USERNAME_MAX = 64


def validate_username(username: str) -> str:
    if not username or len(username) > USERNAME_MAX or not username.isprintable() or username.strip() != username:
        raise ValueError(f"username must be 1-{USERNAME_MAX} printable characters without surrounding spaces")
    return username


def password_refused(error: WeakPassword) -> RequestValidationError:
    """A weak password as the 422 the API and the screens answer, naming the field."""
    return RequestValidationError([{"loc": ("body", "password"), "msg": str(error), "type": "value_error"}])


def get_by_username(*, session: Session, username: str) -> User | None:
    """The user with this name, or None."""
    return session.execute(select(User).where(User.username == username)).scalar_one_or_none()


def create(*, session: OrmSession, actor: Actor, username: str, role: str, password: str) -> User:
    """A new active user; Conflict when the name is taken."""
    validate_username(username)
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    check_password_strength(password, username=username)  # WeakPassword, a ValueError
    user = User(username=username, role=role, password_hash=hash_password(password), is_active=True, token_version=0)
    try:
        with session.begin_nested():
            session.add(user)
            session.flush()
    except IntegrityError:
        raise Conflict(f"user {username!r} already exists") from None
    audit.record(
        session,
        actor=actor,
        action="user.created",
        entity_type="user",
        entity_id=user.id,
        after={"username": username, "role": role, "is_active": True},
    )
    return user


def list_all(*, session: Session) -> list[User]:
    """Every user: admins first, then by name."""
    return list(session.scalars(select(User).order_by(User.role != Role.ADMIN, User.username)))


def _lock_active_admins(session: Session) -> list[int]:
    # Locked in id order, so two admins changing each other cannot deadlock; a concurrent
    # change waits here and then sees the committed result (a demoted admin drops out).
    return list(session.scalars(
        select(User.id).where(User.role == Role.ADMIN, User.is_active).order_by(User.id).with_for_update()
    ))


def _locked(session: Session, user_id: int, *, removes_admin: bool) -> User:
    admins = _lock_active_admins(session) if removes_admin else []
    user = session.scalars(
        select(User).where(User.id == user_id).with_for_update().execution_options(populate_existing=True)
    ).one_or_none()
    if user is None:
        raise NotFound(f"no user with id {user_id}")
    if removes_admin and user.id in admins and len(admins) <= 1:
        raise Conflict(f"{user.username} is the last active admin; make another admin first")
    return user


def _change(session: OrmSession, actor: Actor, user: User, action: str, before: dict, after: dict) -> User:
    # Every change revokes the user's tokens: old bearer tokens and browser sessions carry the old version.
    user.token_version += 1
    user.updated_at = func.now()
    session.flush()
    session.refresh(user, ["updated_at"])
    audit.record(session, actor=actor, action=action, entity_type="user", entity_id=user.id,
                 before={**before, "token_version": user.token_version - 1},
                 after={**after, "token_version": user.token_version})
    return user


def set_active(*, session: OrmSession, actor: Actor, user_id: int, is_active: bool) -> User:
    """Disable or re-enable a user; Conflict when that would leave no active admin."""
    user = _locked(session, user_id, removes_admin=not is_active)
    if user.is_active == is_active:
        return user  # nothing changes, nothing to revoke or audit
    user.is_active = is_active
    return _change(session, actor, user, "user.enabled" if is_active else "user.disabled",
                   {"is_active": not is_active}, {"is_active": is_active})


def change_role(*, session: OrmSession, actor: Actor, user_id: int, role: str) -> User:
    """Give a user another role; Conflict when that would leave no active admin."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    user = _locked(session, user_id, removes_admin=role != Role.ADMIN)
    if user.role == role:
        return user
    before = user.role
    user.role = role
    return _change(session, actor, user, "user.role_changed", {"role": before}, {"role": role})


def reset_password(*, session: OrmSession, actor: Actor, user_id: int, password: str) -> User:
    """Set a new password; the user's existing sessions and tokens stop working. WeakPassword if it is weak."""
    user = _locked(session, user_id, removes_admin=False)
    check_password_strength(password, username=user.username)
    user.password_hash = hash_password(password)
    return _change(session, actor, user, "user.password_reset", {}, {"password_changed": True})
