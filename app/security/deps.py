"""Typed auth dependencies: the permission is a type in the route's signature.

Two steps. On the event loop: the bearer token's signature, expiry and role (no I/O).
Then, in the request's unit of work: the user row must still be active with the token's
role and version, so disabling a user or changing a role revokes old tokens at once.
ApiRoute endpoints do the second step in their own thread (app/uow/routing.py); a route of
any other class is refused, so no route can skip it.
"""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.exc import DBAPIError

from app.audit.service import Actor
from app.config import get_settings
from app.errors import Forbidden, Unauthorized
from app.security import tokens
from app.uow.request import current_work
from app.uow.unit import AnySession
from app.users.enums import Role

# Raises SQLSTATE RD401/RD402 unless the token's user is active with the token's role and
# version (and, for a browser session, not logged out); see migrations/versions/0006.
ASSERT_PRINCIPAL = "SELECT riskdesk_assert_principal(%s, %s, %s, %s, %s)"
REJECTIONS = {"RD401": "Token is no longer valid", "RD402": "Session has ended"}


@dataclass(frozen=True, slots=True)
class PrincipalClaims:
    """Who a well-signed, unexpired token says the caller is; the database has not confirmed it yet.

    The route's unit of work turns it into a `Principal` (verify_principal) before the
    endpoint runs; only a group-commit endpoint is handed the claims themselves.
    """

    user_id: int
    role: str
    token_version: int
    # The username the token names (signed, so trusted once the check has passed).
    claimed_username: str | None = None
    # Set for browser sessions only: the token's id and expiry (epoch seconds), for logout.
    jti: str | None = None
    expires_at: int | None = None


@dataclass(frozen=True, slots=True)
class Principal:
    """A caller the database has confirmed: the user is active, with the token's role and version."""

    user_id: int
    role: str
    token_version: int
    username: str
    jti: str | None = None
    expires_at: int | None = None

    @property
    def actor(self) -> Actor:
        return Actor(name=self.username, id=self.user_id, role=self.role)


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def principal_from_token(token: str | None) -> PrincipalClaims:
    """The claims of a well-signed, unexpired token; Unauthorized otherwise."""
    if not token:
        raise Unauthorized("Not authenticated")
    try:
        claims = tokens.decode(token, key=get_settings().signing_key)
    except tokens.InvalidToken:
        raise Unauthorized("Invalid or expired token") from None
    return PrincipalClaims(user_id=claims.user_id, role=claims.role, token_version=claims.token_version,
                           claimed_username=claims.username)


def verify_principal(session: AnySession, claims: PrincipalClaims) -> Principal:
    """The principal `claims` name, once the check that the token's user is still active with the
    same role and token version (and, for a browser session, that it was not logged out) is owed.

    The check rides with the unit of work's first statement (`UnitOfWork.defer`): a refused
    token makes that statement fail with RD401/RD402, which `rejection` turns into a 401,
    and nothing the request did is committed. The unit of work sends the check on its own
    before answering if no statement was sent (app/uow/routing.py). A token without a `name`
    claim (issued by an older version) waits for the check, which returns the username.
    """
    arguments = (claims.user_id, claims.role, claims.token_version, claims.jti, claims.claimed_username)
    if claims.claimed_username is None:
        username = session.connection().exec_driver_sql(ASSERT_PRINCIPAL, arguments).scalar_one()
    else:
        session.unit.defer(ASSERT_PRINCIPAL, arguments)
        username = claims.claimed_username
    return Principal(user_id=claims.user_id, role=claims.role, token_version=claims.token_version,
                     username=username, jti=claims.jti, expires_at=claims.expires_at)


def rejection(error: DBAPIError) -> Unauthorized | None:
    """The 401 for a database error raised by the principal check, or None for any other error."""
    message = REJECTIONS.get(getattr(error.orig, "pgcode", None) or "")
    return Unauthorized(message) if message else None


class RequiresPrincipal:
    """A dependency that gives the principal the route's unit of work verifies (app/uow/routing.py)."""


class RequireRole(RequiresPrincipal):
    """Dependency: the caller must hold one of `roles` (401 without a valid token, 403 otherwise)."""

    def __init__(self, *roles: Role) -> None:
        self.roles = frozenset(roles)

    async def __call__(self, request: Request) -> PrincipalClaims:
        current_work("role checks")
        principal = principal_from_token(bearer_token(request))
        if principal.role not in self.roles:
            raise Forbidden(f"This action needs one of the roles: {', '.join(sorted(self.roles))}")
        return principal


AnyUser = Annotated[Principal, Depends(RequireRole(Role.ADMIN, Role.ANALYST, Role.AGENT))]
TransactionWriter = Annotated[Principal, Depends(RequireRole(Role.ADMIN, Role.AGENT))]
Reviewer = Annotated[Principal, Depends(RequireRole(Role.ADMIN, Role.ANALYST))]
Admin = Annotated[Principal, Depends(RequireRole(Role.ADMIN))]
