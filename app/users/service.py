"""Users: creation and lookup. Services flush; the caller's unit of work commits."""

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.audit.service import Actor
from app.errors import Conflict
from app.security.passwords import check_password_strength, hash_password
from app.users.models import ROLES, User

USERNAME_MAX = 64


def validate_username(username: str) -> str:
    if not username or len(username) > USERNAME_MAX or not username.isprintable() or username.strip() != username:
        raise ValueError(f"username must be 1-{USERNAME_MAX} printable characters without surrounding spaces")
    return username


def get_by_username(*, session: Session, username: str) -> User | None:
    """The user with this name, or None."""
    return session.execute(select(User).where(User.username == username)).scalar_one_or_none()


def create(*, session: Session, actor: Actor, username: str, role: str, password: str) -> User:
    """A new active user; Conflict when the name is taken."""
    validate_username(username)
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    check_password_strength(password)
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
