"""Password login with throttling shared across instances (failures live in the database)."""

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.audit.service import SYSTEM_ACTOR, Actor
from app.config import Settings
from app.security import tokens
from app.security.passwords import verify_password
from app.users.models import LoginFailure, User


@dataclass(frozen=True)
class LoginResult:
    access_token: str | None = None
    expires_in: int = 0
    user: User | None = None
    throttled: bool = False


def _recent_failures(session: Session, *, username: str, client_addr: str, settings: Settings) -> tuple[int, int]:
    since = func.now() - timedelta(seconds=settings.login_failure_window_seconds)
    row = session.execute(
        select(
            func.count().filter(LoginFailure.username == username),
            func.count().filter(LoginFailure.client_addr == client_addr),
        ).where(
            LoginFailure.failed_at > since,
            or_(LoginFailure.username == username, LoginFailure.client_addr == client_addr),
        )
    ).one()
    return row[0], row[1]


def login(*, session: Session, username: str, password: str, client_addr: str, settings: Settings) -> LoginResult:
    """Check the password and issue a token; failures are recorded and throttled."""
    by_user, by_addr = _recent_failures(session, username=username, client_addr=client_addr, settings=settings)
    if by_user >= settings.login_max_failures_per_user or by_addr >= settings.login_max_failures_per_address:
        audit.record(
            session, actor=SYSTEM_ACTOR, action="auth.login_throttled", entity_type="user",
            entity_id=username[:128], reason="too many failed logins",
        )
        return LoginResult(throttled=True)

    user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    password_ok = verify_password(password, user.password_hash if user else None)
    if user is None or not password_ok or not user.is_active:
        session.add(LoginFailure(username=username[:64], client_addr=client_addr[:64]))
        audit.record(
            session, actor=SYSTEM_ACTOR, action="auth.login_failed", entity_type="user",
            entity_id=username[:128],
            reason="user disabled" if user is not None and password_ok else "bad credentials",
        )
        return LoginResult()

    session.execute(delete(LoginFailure).where(LoginFailure.username == username))
    token, expires_in = tokens.issue(
        user_id=user.id, username=user.username, role=user.role, token_version=user.token_version,
        key=settings.signing_key, ttl_seconds=settings.access_token_minutes * 60,
    )
    audit.record(
        session, actor=Actor(name=user.username, id=user.id, role=user.role),
        action="auth.login", entity_type="user", entity_id=user.id,
    )
    return LoginResult(access_token=token, expires_in=expires_in, user=user)
