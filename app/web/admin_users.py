"""The users screen, `/admin/users`: create, disable, re-enable, change role, reset password.

Every action answers with the users panel (`#users-panel`), swapped in place, carrying
the outcome: a confirmation, or the refusal (409 last admin, 422 invalid input) where
the admin acted. The rules live in app/users/service.py.
"""

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Form, Path, Request
from sqlalchemy.orm import Session

from app.db import DbSession
from app.errors import NotFound
from app.security.deps import Principal
from app.security.passwords import WeakPassword
from app.users import service as users
from app.users.models import User
from app.users.schemas import PasswordReset, RoleChange, UserCreate
from app.web.admin_forms import apply_change
from app.web.deps import BrowserAdmin, ScreenRoute
from app.web.templating import render

router = APIRouter(route_class=ScreenRoute)

ROLE_POWERS = {"admin": "Admins manage users, settings, rules and webhooks and read the audit log.",
               "analyst": "Analysts review and decide cases; they cannot change users or settings.",
               "agent": "Agent accounts use the API only; they cannot use these screens."}
ROLES = tuple(ROLE_POWERS)
UserId = Annotated[int, Path(ge=1, lt=2**63)]
Text = Annotated[str, Form(max_length=300)]
Confirm = Annotated[str, Form(max_length=10)]


def _panel(request: Request, session: Session, principal: Principal, *, status_code: int = 200, **context):
    partial = request.headers.get("hx-target") == "users-panel"
    template = "admin/users/_panel.html" if partial else "admin/users/index.html"
    return render(request, template, {"users": users.list_all(session=session), "active_nav": "users",
                                      "form": {}, "field_errors": {}, **context},
                  principal=principal, status_code=status_code)


def _act(request: Request, session: Session, principal: Principal, change: Callable[[], str], **context):
    outcome = apply_change(session, change)
    return _panel(request, session, principal, **outcome, **(context if "error" in outcome else {}))


@router.get("/admin/users")
def users_page(request: Request, session: DbSession, principal: BrowserAdmin):
    return _panel(request, session, principal)


@router.post("/admin/users")
def create_user(request: Request, session: DbSession, principal: BrowserAdmin,
                username: Text = "", role: Text = "", password: Text = ""):
    def change() -> str:
        data = UserCreate.model_validate({"username": username, "role": role, "password": password})
        users.create(session=session, actor=principal.actor, username=data.username, role=data.role,
                     password=data.password)
        return f"Created {data.username} ({data.role})."
    return _act(request, session, principal, change, form={"username": username, "role": role})


def _user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("No such user.")
    return user


def _ask(request: Request, session: Session, principal: Principal, action: str, question: str, detail: str,
         button: str, **fields: str):
    """The confirm step: the panel asks before a change that locks someone out or changes their powers."""
    confirm = {"question": question, "detail": detail, "action": action, "fields": fields, "button": button,
               "cancel": "/admin/users", "hx_target": "#users-panel"}
    return _panel(request, session, principal, confirm=confirm)


def _set_active(request: Request, session, principal, user_id: int, is_active: bool, done: str):
    def change() -> str:
        user = users.set_active(session=session, actor=principal.actor, user_id=user_id, is_active=is_active)
        return done.format(user.username)
    return _act(request, session, principal, change)


@router.post("/admin/users/{user_id}/disable")
def disable_user(user_id: UserId, request: Request, session: DbSession, principal: BrowserAdmin, confirm: Confirm = ""):
    if confirm != "yes":
        user = _user(session, user_id)
        return _ask(request, session, principal, f"/admin/users/{user_id}/disable", f"Disable {user.username}?",
                    f"{user.username} is signed out everywhere at once and their API tokens stop working. "
                    "You can re-enable the account later.", f"Disable {user.username}")
    return _set_active(request, session, principal, user_id, False,
                       "Disabled {}; their sessions and tokens no longer work.")


@router.post("/admin/users/{user_id}/enable")
def enable_user(user_id: UserId, request: Request, session: DbSession, principal: BrowserAdmin):
    return _set_active(request, session, principal, user_id, True, "Re-enabled {}.")


@router.post("/admin/users/{user_id}/role")
def change_role(user_id: UserId, request: Request, session: DbSession, principal: BrowserAdmin, role: Text = "",
                confirm: Confirm = ""):
    user = _user(session, user_id)
    if confirm != "yes" and role != user.role and role in ROLES:
        return _ask(request, session, principal, f"/admin/users/{user_id}/role",
                    f"Change the role of {user.username} from {user.role} to {role}?",
                    f"{ROLE_POWERS[role]} {user.username} is signed out everywhere and signs in again with the new "
                    "role.", f"Make {user.username} {role}", role=role)

    def change() -> str:
        data = RoleChange.model_validate({"role": role})
        user = users.change_role(session=session, actor=principal.actor, user_id=user_id, role=data.role)
        return f"{user.username} is now {user.role}; their old sessions and tokens no longer work."
    return _act(request, session, principal, change)


@router.post("/admin/users/{user_id}/password")
def reset_password(user_id: UserId, request: Request, session: DbSession, principal: BrowserAdmin,
                   password: Text = ""):
    def change() -> str:
        data = PasswordReset.model_validate({"password": password})
        try:
            user = users.reset_password(session=session, actor=principal.actor, user_id=user_id,
                                        password=data.password)
        except WeakPassword as exc:  # it contains the username, which only the service knows
            raise users.password_refused(exc) from None
        return f"New password set for {user.username}; their old sessions and tokens no longer work."
    return _act(request, session, principal, change)
