"""ScreenRoute and the browser's typed auth dependencies.

A screen endpoint is sync, takes `session: DbSession` and one of `BrowserUser`,
`BrowserAdmin` (or `BrowserSession`, any role), and returns `render(...)`. ScreenRoute
then, for every request:
  * refuses state changes without a valid CSRF token or from another site (csrf.enforce),
  * runs the endpoint in a unit of work (app/uow/routing.py), where verify_principal checks
    the session against the users table and revoked_tokens before the endpoint runs,
  * turns any exception into an HTML page / HTMX fragment, and 401 into the login page.
"""

import inspect
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.responses import Response

from app.errors import Forbidden, Unauthorized
from app.security.deps import Principal, PrincipalClaims, RequiresPrincipal
from app.uow.request import WORK_SCOPE_KEY, RequestWork, current_work
from app.uow.routing import UnitOfWorkRoute
from app.users.enums import Role
from app.web import csrf
from app.web.errors import screen_error
from app.web.session import session_principal

# Set by ScreenRoute on the request scope; the browser dependencies refuse to work without it,
# so a cookie can never authorize a route that skips the CSRF check.
_SCREEN_SCOPE_KEY = "riskdesk.screen"


class ScreenRoute(UnitOfWorkRoute):
    # The login form's POST binds its CSRF token to the pre-session cookie (LoginFormRoute).
    is_login_form = False

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if inspect.iscoroutinefunction(endpoint):
            # Principals are verified only around sync endpoints (one thread, one unit of work).
            raise TypeError(f"screen endpoint {endpoint.__name__} must be a plain def, not async def")
        kwargs["include_in_schema"] = False  # screens are not part of the API contract
        super().__init__(path, endpoint, **kwargs)

    async def begin_work(self, request: Request) -> RequestWork:
        work = await super().begin_work(request)
        request.scope[WORK_SCOPE_KEY] = work  # the error pages show who is signed in (web/session.py)
        return work

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        # No Decimal-JSON request (ApiRoute's): screens post forms, and the CSRF check must
        # parse the form on the very Request the handler reads.
        handler = super().get_route_handler()
        is_login_form = self.is_login_form

        async def screen_handler(request: Request) -> Response:
            request.scope[_SCREEN_SCOPE_KEY] = True
            try:
                if request.method in csrf.UNSAFE_METHODS:
                    await csrf.enforce(request, login_form=is_login_form)
                return await handler(request)
            except Exception as exc:  # every failure of a screen becomes a page, never JSON or a trace
                return screen_error(request, exc)
            finally:
                await request.close()  # a form parsed only for its CSRF field holds temp files

        return screen_handler


class LoginFormRoute(ScreenRoute):
    """The login form's POST: no session yet, so its CSRF token is bound to the pre-session cookie."""

    is_login_form = True


class RequireBrowserRole(RequiresPrincipal):
    """Dependency: a signed-in browser session holding one of `roles` (login page / 403 page otherwise)."""

    def __init__(self, *roles: Role) -> None:
        self.roles = frozenset(roles)

    async def __call__(self, request: Request) -> PrincipalClaims:
        if not request.scope.get(_SCREEN_SCOPE_KEY):
            raise RuntimeError("browser role checks are only for routes of class app.web.deps.ScreenRoute")
        current_work("browser role checks")
        principal = session_principal(request)
        if principal is None:
            raise Unauthorized("Not signed in")
        if principal.role not in self.roles:
            raise Forbidden(f"Your role ({principal.role}) cannot use this screen.")
        return principal


BrowserSession = Annotated[Principal, Depends(RequireBrowserRole(Role.ADMIN, Role.ANALYST, Role.AGENT))]
BrowserUser = Annotated[Principal, Depends(RequireBrowserRole(Role.ADMIN, Role.ANALYST))]
BrowserAdmin = Annotated[Principal, Depends(RequireBrowserRole(Role.ADMIN))]
