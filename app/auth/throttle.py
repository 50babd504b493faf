"""Login throttling that holds under concurrency, with its own allowance for known clients.

**Reserve, then verify.** A password check costs ~170 ms of Argon2. Reading the failure
count, verifying, then recording the failure let 40 simultaneous wrong passwords for one
user all be checked: each read the count before any had been recorded. Here an attempt is
reserved *before* its password is checked, in a short transaction of its own: under
advisory locks on the username and on the client address (taken in that order, so two
attempts cannot deadlock), the recent attempts are counted and, when the allowance has
room, a `pending` row is inserted and committed. The password is then verified outside any
lock or transaction. The request's unit of work records the outcome: the row becomes
`failed` together with its `auth.login_failed` event, or a success deletes it together
with `auth.login`. However many attempts arrive at once, on however many app instances,
no more passwords are checked per window than the limit. A crash between the two leaves
the row pending, and it keeps counting until the window passes (fail closed).

**Allowances** (sliding window of `login_failure_window_seconds`):
- A stranger's attempts count against the username (`login_max_failures_per_user`) and
  against the client address (`login_max_failures_per_address`).
- A *known client* of the user is a browser holding the signed device cookie of an
  earlier sign-in as that user (app/auth/devices.py), or, with `login_remember_addresses`,
  the client address an earlier sign-in came from (API clients: POST /auth/token). Its
  attempts count only against its own allowance, `login_max_failures_per_known_client`
  per (user, client), and strangers' attempts never touch it. Five anonymous wrong
  passwords every 15 minutes thus lock strangers out of the admin's account, never the
  admin's own browser or address. The strangers' cap is not loosened: a client becomes
  known only by presenting the right password, the cookie cannot be forged, and an attacker
  who shares the admin's address gains only that address's capped allowance.
- A success clears the failures of its own allowance (its own client) only: failures
  from elsewhere keep counting.

**Refusals (429)** are counted, never audited one by one: `riskdesk_login_throttled_total`
by scope, and a row per (scope, key, fixed window) in `login_throttle_windows`. The
refusal that creates the row writes that window's single `auth.login_throttled` event
(with the previous window's count); `INSERT … ON CONFLICT` makes "one" hold across
instances.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, delete, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.audit.service import SYSTEM_ACTOR
from app.auth.enums import AttemptState, KnownClientKind, ThrottleScope
from app.config import Settings
from app.observability import LOGIN_THROTTLED
from app.uow.unit import OrmSession
from app.users.models import LoginFailure, LoginKnownClient, User

KEY_MAX = 64  # the width of login_failures.username and client_addr
# Namespaces (the first key) of the two advisory locks; the second key is hashtext of the value.
_USER_LOCK = 0x6C6F6775
_ADDRESS_LOCK = 0x6C6F6761

_KNOWN_CLIENT_SQL = text(
    "SELECT client_key FROM login_known_clients"
    " WHERE username = :username AND client_key = ANY(:candidates)"
    " AND last_login_at > now() - make_interval(days => :days)"
    " ORDER BY starts_with(client_key, 'device:') DESC LIMIT 1"
)

# One message: prune this user's and address's expired rows (skipping rows another attempt
# has locked, so pruning never waits or deadlocks), take the locks, then count and reserve.
# Each statement gets its own snapshot, so the count sees every reservation committed by
# the attempts that held the locks before.
_RESERVE_SQL = text(
    """
    DELETE FROM login_failures WHERE id IN (
      SELECT id FROM login_failures
      WHERE (username = :username OR client_addr = :client_addr)
        AND failed_at <= now() - make_interval(secs => :window)
      LIMIT 100 FOR UPDATE SKIP LOCKED);
    SELECT pg_advisory_xact_lock(:user_lock, hashtext(:username)),
           pg_advisory_xact_lock(:address_lock, hashtext(:client_addr));
    WITH recent AS (
      SELECT count(*) FILTER (WHERE username = :username AND known_client IS NULL) AS by_user,
             count(*) FILTER (WHERE client_addr = :client_addr AND known_client IS NULL) AS by_address,
             count(*) FILTER (WHERE username = :username AND known_client = :known_client) AS by_known
      FROM login_failures
      WHERE failed_at > now() - make_interval(secs => :window)
        AND (username = :username OR client_addr = :client_addr)
    ), reserved AS (
      INSERT INTO login_failures (username, client_addr, known_client, state)
      SELECT :username, :client_addr, :known_client, :pending FROM recent
      WHERE CASE WHEN CAST(:known_client AS text) IS NULL
                 THEN by_user < :max_user AND by_address < :max_address
                 ELSE by_known < :max_known END
      RETURNING id
    )
    SELECT by_user, by_address, by_known, (SELECT id FROM reserved) AS attempt_id FROM recent
    """
)

# The audit window is fixed (aligned to the epoch), so every instance agrees on its start.
_COUNT_REFUSAL_SQL = text(
    """
    INSERT INTO login_throttle_windows AS w (scope, key, window_start)
    VALUES (:scope, :key, to_timestamp(floor(extract(epoch FROM now()) / :window) * :window))
    ON CONFLICT (scope, key, window_start)
    DO UPDATE SET refused = w.refused + 1, last_refused_at = now()
    RETURNING w.refused, w.window_start,
      (SELECT p.refused FROM login_throttle_windows p
       WHERE p.scope = :scope AND p.key = :key
         AND p.window_start = w.window_start - make_interval(secs => :window)) AS previous_refused
    """
)


@dataclass(frozen=True)
class Account:
    """What the password check needs of a user, read before the check."""

    id: int
    username: str
    password_hash: str
    role: str
    is_active: bool


@dataclass(frozen=True)
class Reservation:
    """The throttle's answer: an attempt reserved (attempt_id), or the scope that refused it."""

    username: str
    client_addr: str
    known_client: str | None
    attempt_id: int | None
    refused_by: ThrottleScope | None
    limit: int
    account: Account | None


def device_key(device_id: str) -> str:
    return f"{KnownClientKind.DEVICE}:{device_id}"


def address_key(client_addr: str) -> str:
    return f"{KnownClientKind.ADDRESS}:{client_addr[:KEY_MAX]}"


def client_keys(*, client_addr: str, device_id: str | None, settings: Settings) -> list[str]:
    """The keys under which this client may be known to a user: its device first, then its address."""
    keys = [device_key(device_id)] if device_id else []
    if settings.login_remember_addresses:
        keys.append(address_key(client_addr))
    return keys


def reserve(*, bind: Engine, username: str, client_addr: str, device_id: str | None,
            settings: Settings) -> Reservation:
    """Reserve one password check for this attempt, or name the allowance that has no room; commits on its own."""
    username, client_addr = username[:KEY_MAX], client_addr[:KEY_MAX]
    candidates = client_keys(client_addr=client_addr, device_id=device_id, settings=settings)
    with bind.connect() as connection, connection.begin():
        known_client = connection.execute(_KNOWN_CLIENT_SQL, {
            "username": username, "candidates": candidates, "days": settings.login_known_client_days,
        }).scalar() if candidates else None
        row = connection.execute(_RESERVE_SQL, {
            "username": username, "client_addr": client_addr, "known_client": known_client,
            "pending": AttemptState.PENDING, "window": settings.login_failure_window_seconds,
            "user_lock": _USER_LOCK, "address_lock": _ADDRESS_LOCK,
            "max_user": settings.login_max_failures_per_user,
            "max_address": settings.login_max_failures_per_address,
            "max_known": settings.login_max_failures_per_known_client,
        }).one()
        account = None
        if row.attempt_id is not None:
            found = connection.execute(
                select(User.id, User.username, User.password_hash, User.role, User.is_active)
                .where(User.username == username)
            ).one_or_none()
            account = Account(*found) if found is not None else None
    refused_by, limit = _refusal(row, known_client, settings)
    return Reservation(username=username, client_addr=client_addr, known_client=known_client,
                       attempt_id=row.attempt_id, refused_by=refused_by, limit=limit, account=account)


def _refusal(row, known_client: str | None, settings: Settings) -> tuple[ThrottleScope | None, int]:
    if known_client is not None:
        limit = settings.login_max_failures_per_known_client
        return (None if row.attempt_id is not None else ThrottleScope.KNOWN_CLIENT), limit
    if row.attempt_id is not None:
        return None, settings.login_max_failures_per_user
    if row.by_user >= settings.login_max_failures_per_user:
        return ThrottleScope.USER, settings.login_max_failures_per_user
    return ThrottleScope.ADDRESS, settings.login_max_failures_per_address


def record_failure(session: Session, *, reservation: Reservation) -> None:
    """The reserved check found a wrong password (or a disabled user): the attempt now counts as a failure."""
    session.execute(
        update(LoginFailure).where(LoginFailure.id == reservation.attempt_id).values(state=AttemptState.FAILED)
    )


def record_success(session: Session, *, reservation: Reservation, device_id: str | None,
                   settings: Settings) -> None:
    """Clear this client's own failures for the user and remember the client as known to the user."""
    username = reservation.username
    same_allowance = (
        LoginFailure.known_client == reservation.known_client if reservation.known_client is not None
        else (LoginFailure.known_client.is_(None) & (LoginFailure.client_addr == reservation.client_addr))
    )
    # Failed rows only: a concurrent attempt's pending reservation stays counted.
    session.execute(delete(LoginFailure).where(
        LoginFailure.username == username,
        or_(LoginFailure.id == reservation.attempt_id, same_allowance & (LoginFailure.state == AttemptState.FAILED)),
    ))
    keys = client_keys(client_addr=reservation.client_addr, device_id=device_id, settings=settings)
    if keys:
        statement = insert(LoginKnownClient).values([{"username": username, "client_key": key} for key in keys])
        session.execute(statement.on_conflict_do_update(
            index_elements=["username", "client_key"], set_={"last_login_at": statement.excluded.last_login_at},
        ))
    forgotten = text("now() - make_interval(days => :days)").bindparams(days=settings.login_known_client_days)
    session.execute(delete(LoginKnownClient).where(
        LoginKnownClient.username == username, LoginKnownClient.last_login_at < forgotten,
    ))


def record_refusal(session: OrmSession, *, reservation: Reservation, settings: Settings) -> None:
    """Count a refused (429) login; the first refusal of a window for its allowance writes the one audit event."""
    scope = reservation.refused_by
    assert scope is not None
    LOGIN_THROTTLED.labels(scope).inc()
    if scope is ThrottleScope.ADDRESS:
        key, entity_type, entity_id = reservation.client_addr, "client_address", reservation.client_addr
    elif scope is ThrottleScope.USER:
        key, entity_type, entity_id = reservation.username, "user", reservation.username
    else:
        key, entity_type, entity_id = f"{reservation.username} {reservation.known_client}", "user", reservation.username
    row = session.execute(_COUNT_REFUSAL_SQL, {
        "scope": scope, "key": key, "window": settings.login_failure_window_seconds,
    }).one()
    if row.refused != 1:
        return  # this window's event exists; the count lives in login_throttle_windows and the metric
    window_start: datetime = row.window_start
    audit.record(
        session, actor=SYSTEM_ACTOR, action="auth.login_throttled", entity_type=entity_type, entity_id=entity_id,
        reason=f"too many failed logins ({scope} limit {reservation.limit}); throttled 1 attempt so far "
               "this window, later ones are counted in login_throttle_windows",
        after={"scope": str(scope), "window_start": window_start.isoformat(), "refused_so_far": row.refused,
               "refused_in_previous_window": row.previous_refused or 0},
    )
    session.execute(text(
        "DELETE FROM login_throttle_windows WHERE scope = :scope AND key = :key"
        " AND window_start < :start - make_interval(secs => :window)"
    ), {"scope": scope, "key": key, "start": window_start, "window": settings.login_failure_window_seconds})
