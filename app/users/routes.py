"""Admin JSON for users: create, disable, re-enable, change role, reset password.

Each change revokes the user's existing tokens and is audited (app/users/service.py).
"""

from typing import Annotated

from fastapi import APIRouter, Path

from app.db import DbSession
from app.openapi import AUTH_ERRORS, BAD_INPUT, Responses
from app.security.deps import Admin
from app.security.passwords import WeakPassword
from app.uow.routing import ApiRoute
from app.users import service
from app.users.schemas import PasswordReset, RoleChange, UserCreate, UserList, UserOut

router = APIRouter(prefix="/api/users", tags=["users"], route_class=ApiRoute)

UserId = Annotated[int, Path(ge=1, lt=2**63)]
NOT_FOUND: Responses = {404: {"description": "Unknown user"}}
LAST_ADMIN: Responses = {409: {"description": "Would leave no active admin"}}


@router.get("", response_model=UserList, summary="Every user", responses=AUTH_ERRORS)
def list_users(principal: Admin, session: DbSession):
    return UserList(items=[UserOut.model_validate(u) for u in service.list_all(session=session)])


@router.post("", response_model=UserOut, status_code=201, summary="Create a user",
             responses={**AUTH_ERRORS, **BAD_INPUT, 409: {"description": "The name is taken"}})
def create_user(data: UserCreate, principal: Admin, session: DbSession):
    user = service.create(session=session, actor=principal.actor, username=data.username, role=data.role,
                          password=data.password)
    return UserOut.model_validate(user)


@router.post("/{user_id}/disable", response_model=UserOut, summary="Disable a user and revoke their tokens",
             responses={**AUTH_ERRORS, **NOT_FOUND, **LAST_ADMIN})
def disable_user(user_id: UserId, principal: Admin, session: DbSession):
    return UserOut.model_validate(service.set_active(session=session, actor=principal.actor, user_id=user_id,
                                                     is_active=False))


@router.post("/{user_id}/enable", response_model=UserOut, summary="Re-enable a disabled user",
             responses={**AUTH_ERRORS, **NOT_FOUND})
def enable_user(user_id: UserId, principal: Admin, session: DbSession):
    return UserOut.model_validate(service.set_active(session=session, actor=principal.actor, user_id=user_id,
                                                     is_active=True))


@router.put("/{user_id}/role", response_model=UserOut, summary="Change a user's role and revoke their tokens",
            responses={**AUTH_ERRORS, **BAD_INPUT, **NOT_FOUND, **LAST_ADMIN})
def change_role(user_id: UserId, data: RoleChange, principal: Admin, session: DbSession):
    return UserOut.model_validate(service.change_role(session=session, actor=principal.actor, user_id=user_id,
                                                      role=data.role))


@router.put("/{user_id}/password", response_model=UserOut, summary="Set a new password and revoke their tokens",
            responses={**AUTH_ERRORS, **BAD_INPUT, **NOT_FOUND})
def reset_password(user_id: UserId, data: PasswordReset, principal: Admin, session: DbSession):
    try:
        user = service.reset_password(session=session, actor=principal.actor, user_id=user_id, password=data.password)
    except WeakPassword as exc:  # the schema cannot see the username; the service can
        raise service.password_refused(exc) from None
    return UserOut.model_validate(user)
