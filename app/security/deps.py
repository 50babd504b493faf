"""Typed auth dependencies: the permission is a type in the route's signature."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import select

from app.audit.service import Actor
from app.config import get_settings
from app.db import DbSession
from app.errors import Forbidden, Unauthorized
from app.security import tokens
from app.users.models import User


@dataclass(frozen=True)
class Principal:
    user_id: int
    username: str
    role: str

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


def authenticate(session, token: str | None) -> Principal:
    """The token's live user: disabled users and changed roles are refused."""
    if not token:
        raise Unauthorized("Not authenticated")
    try:
        claims = tokens.decode(token, key=get_settings().signing_key)
    except tokens.InvalidToken:
        raise Unauthorized("Invalid or expired token") from None
    row = session.execute(
        select(User.username, User.role, User.is_active, User.token_version).where(User.id == claims.user_id)
    ).one_or_none()
    if row is None or not row.is_active or row.role != claims.role or row.token_version != claims.token_version:
        raise Unauthorized("Token is no longer valid")
    return Principal(user_id=claims.user_id, username=row.username, role=row.role)


def current_principal(request: Request, session: DbSession) -> Principal:
    return authenticate(session, bearer_token(request))


class RequireRole:
    """Dependency: the caller must hold one of `roles` (401 without a token, 403 otherwise)."""

    def __init__(self, *roles: str) -> None:
        self.roles = frozenset(roles)

    # async: a pure check, so it runs on the event loop instead of costing a threadpool hop.
    async def __call__(self, principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.role not in self.roles:
            raise Forbidden(f"This action needs one of the roles: {', '.join(sorted(self.roles))}")
        return principal


AnyUser = Annotated[Principal, Depends(RequireRole("admin", "analyst", "agent"))]
TransactionWriter = Annotated[Principal, Depends(RequireRole("admin", "agent"))]
Reviewer = Annotated[Principal, Depends(RequireRole("admin", "analyst"))]
Admin = Annotated[Principal, Depends(RequireRole("admin"))]
