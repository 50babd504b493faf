"""Password login, throttled across instances (app/auth/throttle.py has the design).

The throttle reserves the password check in a transaction of its own before Argon2 runs
outside any transaction; the outcome (failure record or success, and its audit event) is
written in the caller's unit of work.
"""

from dataclasses import dataclass

from sqlalchemy import select

from app.audit import service as audit
from app.audit.service import SYSTEM_ACTOR, Actor
from app.auth import throttle
from app.config import Settings
from app.security import tokens
from app.security.passwords import verify_password
from app.uow.unit import OrmSession
from app.users.models import User


@dataclass(frozen=True)
class LoginResult:
    access_token: str | None = None
    expires_in: int = 0
    user: User | None = None
    throttled: bool = False


def _allowance(reservation: throttle.Reservation) -> str:
    return reservation.known_client.split(":", 1)[0] if reservation.known_client else "stranger"


def login(*, session: OrmSession, username: str, password: str, client_addr: str, settings: Settings,
          device_id: str | None = None) -> LoginResult:
    """Check the password and issue a token; failures are recorded and throttled.

    `device_id` is the browser's verified device cookie, if any (app/auth/devices.py): on
    success it becomes a known client of the user.
    """
    reservation = throttle.reserve(bind=session.get_bind().engine, username=username, client_addr=client_addr,
                                   device_id=device_id, settings=settings)
    if reservation.refused_by is not None:
        throttle.record_refusal(session, reservation=reservation, settings=settings)
        return LoginResult(throttled=True)

    # Argon2 runs here, outside any transaction or lock: the attempt is already counted.
    account = reservation.account
    password_ok = verify_password(password, account.password_hash if account else None)
    user = None
    if account is not None and password_ok:
        user = session.execute(select(User).where(User.id == account.id)).scalar_one_or_none()
        if user is None or user.password_hash != account.password_hash:
            password_ok = False  # deleted or given a new password while this one was checked
    if user is None or not password_ok or not user.is_active:
        throttle.record_failure(session, reservation=reservation)
        audit.record(
            session, actor=SYSTEM_ACTOR, action="auth.login_failed", entity_type="user",
            entity_id=username[:128],
            reason="user disabled" if user is not None and password_ok else "bad credentials",
            after={"allowance": _allowance(reservation)},
        )
        return LoginResult()

    throttle.record_success(session, reservation=reservation, device_id=device_id, settings=settings)
    token, expires_in = tokens.issue(
        user_id=user.id, username=user.username, role=user.role, token_version=user.token_version,
        key=settings.signing_key, ttl_seconds=settings.access_token_minutes * 60,
    )
    audit.record(
        session, actor=Actor(name=user.username, id=user.id, role=user.role),
        action="auth.login", entity_type="user", entity_id=user.id,
        after={"allowance": _allowance(reservation)},
    )
    return LoginResult(access_token=token, expires_in=expires_in, user=user)
