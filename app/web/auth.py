"""Login and logout screens: the session cookie's beginning and end."""

from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from app.auth import devices
from app.auth import service as auth
from app.auth.routes import client_address
from app.config import Settings, get_settings
from app.db import DbSession
from app.security import csrf as csrf_tokens
from app.security.sessions import end as end_session
from app.security.sessions import login_settings
from app.web.csrf import login_form_token
from app.web.deps import BrowserSession, LoginFormRoute, ScreenRoute
from app.web.errors import redirect, safe_return_path
from app.web.session import (
    LOGIN_COOKIE,
    LOGIN_PATH,
    clear_login_cookie,
    clear_session_cookie,
    set_login_cookie,
    set_session_cookie,
)
from app.web.templating import render

router = APIRouter(route_class=ScreenRoute)
login_form = APIRouter(route_class=LoginFormRoute)  # POST /login; included in `router` below

MAX_USERNAME = 256
MAX_PASSWORD = 1024
# The signed device id of an earlier sign-in (app/auth/devices.py): it gives this browser its
# own login allowance for the users it signed in as, so strangers cannot lock them out.
DEVICE_COOKIE = "riskdesk_device"


def _set_device_cookie(response: Response, device_id: str, settings: Settings) -> None:
    response.set_cookie(
        DEVICE_COOKIE, devices.cookie_value(device_id, settings), max_age=settings.login_known_client_days * 86400,
        path=LOGIN_PATH, httponly=True, samesite="strict", secure=settings.is_production,
    )


def _login_form(request: Request, *, next_path: str | None, status_code: int = 200, error: str | None = None,
                notice: str | None = None, username: str = "", headers: dict[str, str] | None = None) -> Response:
    # Reuse the browser's pre-session nonce so several open login tabs all keep working.
    nonce = request.cookies.get(LOGIN_COOKIE) or csrf_tokens.new_login_nonce()
    response = render(request, "login.html", {
        "login_csrf_token": login_form_token(nonce), "next": next_path or "", "error": error, "notice": notice,
        "username": username,
    }, status_code=status_code, headers=headers)
    set_login_cookie(response, nonce, settings=get_settings())
    return response


@router.get("/login")
def login_page(request: Request, next: str | None = None, signed_out: bool = False):
    return _login_form(request, next_path=safe_return_path(next),
                       notice="You have signed out." if signed_out else None)


@login_form.post("/login")
def login(
    request: Request,
    session: DbSession,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
):
    settings = get_settings()
    next_path = safe_return_path(next)
    if not username or not password:
        return _login_form(request, next_path=next_path, status_code=422, username=username[:MAX_USERNAME],
                           error="Enter your username and password.")
    if len(username) > MAX_USERNAME or len(password) > MAX_PASSWORD or "\x00" in username:
        return _login_form(request, next_path=next_path, status_code=401, error="Incorrect username or password.")
    # A browser without a valid device cookie is offered a new id, remembered only if it signs in.
    device_id = devices.verified_device_id(request.cookies.get(DEVICE_COOKIE), settings) or devices.new_device_id()
    # Failures are returned, not raised, so the unit of work commits the failure record and audit event.
    result = auth.login(session=session, username=username, password=password,
                        client_addr=client_address(request), settings=login_settings(settings), device_id=device_id)
    if result.throttled:
        minutes = settings.login_failure_window_seconds // 60
        return _login_form(request, next_path=next_path, status_code=429, username=username,
                           error=f"Too many failed sign-in attempts. Try again in {minutes} minutes.",
                           headers={"Retry-After": str(settings.login_failure_window_seconds)})
    if result.access_token is None:
        return _login_form(request, next_path=next_path, status_code=401, username=username,
                           error="Incorrect username or password.")
    response = redirect(request, next_path or "/")
    set_session_cookie(response, result.access_token, settings=settings)
    clear_login_cookie(response, settings=settings)
    _set_device_cookie(response, device_id, settings)
    return response


@router.post("/logout")
def logout(request: Request, session: DbSession, principal: BrowserSession):
    end_session(session=session, principal=principal)
    response = redirect(request, "/login?signed_out=1")
    clear_session_cookie(response, settings=get_settings())
    return response


router.include_router(login_form)
