"""What a request's dependencies hand to the unit of work that runs its endpoint.

The route class (app/uow/routing.py) starts a `RequestWork` before FastAPI resolves the
endpoint's dependencies; `DbSession`/`CoreDb` put the unit of work they open in it, and
the endpoint's thread finds it there, not by looking through the endpoint's signature, and
records the caller it verified. A dependency used by a route of
another class finds no RequestWork and refuses to work: such a route would never commit,
nor verify its caller.
"""

from contextvars import ContextVar
from typing import Any

from app.uow.unit import UnitOfWork


class RequestWork:
    """One request's unit of work (once a session dependency opened it), and what the endpoint's thread learns."""

    __slots__ = ("read_only", "unit", "idempotent", "principal")

    def __init__(self, *, read_only: bool = False) -> None:
        self.read_only = read_only  # a ReadOnlyRoute's: its CoreDb sends no BEGIN and no COMMIT
        self.unit: UnitOfWork | None = None
        self.idempotent: Any = None  # the request's Idempotency-Key (app/idempotency), if any
        self.principal: Any = None  # the caller, once verified (app.security.deps.Principal)


# Where a screen's RequestWork is kept on the request, for the pages rendered after its endpoint.
WORK_SCOPE_KEY = "riskdesk.work"

# Set on the event loop by the route class; FastAPI's threadpool copies it into the endpoint's thread.
_CURRENT: ContextVar[RequestWork | None] = ContextVar("riskdesk_request_work", default=None)


def current_work(what: str) -> RequestWork:
    """The running request's RequestWork; RuntimeError outside a route of the unit-of-work classes."""
    work = _CURRENT.get()
    if work is None:
        raise RuntimeError(f"{what} are only for routes of class app.uow.routing.ApiRoute or ScreenRoute")
    return work


def start(work: RequestWork) -> Any:
    """Make `work` the running request's; returns the token `finish` takes."""
    return _CURRENT.set(work)


def finish(token: Any) -> None:
    _CURRENT.reset(token)
