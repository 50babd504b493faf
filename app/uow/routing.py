"""The API route class, composed of single-purpose mixins (Polar's `AutoCommitAPIRoute` is the model).

  * `DecimalJSONRoute`: JSON bodies parsed with Decimal numbers (app/jsonbody.py).
  * `UnitOfWorkRoute`: a sync endpoint runs as one unit of work in one threadpool hop —
    verify the caller's token claims (sent with the first statement, app/security/deps.py),
    run the endpoint, commit (or roll back), close, serialize the answer once. FastAPI would
    run every sync dependency, the endpoint and the response validation in separate hops,
    each costing more CPU than the request's SQL. JWT signature and role checks stay on the
    event loop.
  * `IdempotencyKeyRoute`: a POST that acts for a caller honours an Idempotency-Key.
  * `GroupCommitRoute`: an ApiRoute whose write joins a group transaction.
  * `ReadOnlyRoute`: an ApiRoute that only reads, with no BEGIN or COMMIT to send.
What a route needs is read from what it declares: its route class, and its dependencies
(`DbSession`/`CoreDb` open the unit of work, app/db.py; `RequireRole`/`RequireBrowserRole`
name the principal to verify), methods and status code.
"""

import functools
import inspect
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import pydantic_core
from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError

from app.db import get_core_session, get_db_session
from app.idempotency import service as idempotency
from app.jsonbody import DecimalJSONRequest
from app.security.deps import RequiresPrincipal, rejection, verify_principal
from app.uow import request as request_work
from app.uow.request import RequestWork
from app.uow.unit import UnitOfWork


@dataclass(frozen=True, slots=True)
class Shaped:
    """An endpoint's answer as plain data (dicts, lists, str, datetime…) already in the shape
    and field order of its response model.

    For answers built from the endpoint's own rows, which need no validation: serializing
    them as they are skips building a model per row, most of the cost of a 1,000-item batch
    response. pydantic's serializer writes the same bytes the model would
    (tests/transactions/test_batch.py checks this).
    """

    data: Any


class AnswerAfterCommit:
    """An endpoint's answer to build once its unit of work has committed: `answer()` gives the response.

    For screens whose page shows what the commit wrote (a case's timeline holds the action's
    audit event). The reads run in a new transaction of the same session.
    """

    __slots__ = ("answer",)

    def __init__(self, answer: Callable[[], Any]) -> None:
        self.answer = answer


class NotShownAfterCommit(Exception):
    """The unit of work committed, but building its answer (AnswerAfterCommit) failed: the change is saved."""


def _as_response(result: Any, status_code: int, sub_response: Response | None) -> Any:
    body: str | bytes
    if isinstance(result, BaseModel):
        body = result.model_dump_json()
    elif isinstance(result, Shaped):
        body = pydantic_core.to_json(result.data)
    else:
        return result
    response = Response(
        body,
        status_code=(sub_response.status_code if sub_response and sub_response.status_code else status_code),
        media_type="application/json",
    )
    if sub_response is not None:
        for name, value in sub_response.headers.items():
            if name.lower() not in ("content-length", "content-type"):
                response.headers[name] = value
    return response


def _refused_token_or(error: BaseException, checked: UnitOfWork | None) -> BaseException:
    """What a failed unit of work raises: a 401 if the caller's token was refused, else `error`.

    `checked` is a unit of work with principals. If the error came before any statement
    carried their check, the check is sent now: a refused token is a 401 before any other error.
    """
    if checked is not None and isinstance(error, Exception) and not isinstance(error, DBAPIError):
        try:
            checked.send_deferred()
        except DBAPIError as check_error:
            error = check_error
    if isinstance(error, DBAPIError):
        return rejection(error) or error
    return error


@dataclass(slots=True)
class _EndpointNeeds:
    """What a sync endpoint declared, read from its dependencies once the route is built."""

    status_code: int
    checks_principal_in_group: bool
    read_only: bool
    principals: tuple[str, ...] = ()
    response: str | None = None

    def read(self, name: str, dependant: Dependant) -> None:
        calls = [(d.name, d.call) for d in dependant.dependencies]
        # A principal is always a parameter, so it has a name.
        self.principals = tuple(n for n, call in calls if isinstance(call, RequiresPrincipal) if n is not None)
        self.response = dependant.response_param_name
        opens_unit = any(call in (get_db_session, get_core_session) for _, call in calls)
        if self.principals and not opens_unit:
            raise TypeError(f"{name} takes a principal, so it must also take a DbSession or CoreDb")
        if self.read_only and any(call is get_db_session for _, call in calls):
            raise TypeError(f"{name} is read-only: it takes a CoreDb, not a DbSession")


def _run_in_unit_of_work(endpoint: Callable[..., Any], needs: _EndpointNeeds) -> Callable[..., Any]:
    """Wrap a sync endpoint: verify principals, run it, commit, serialize — in one thread."""

    @functools.wraps(endpoint)
    def run(*args: Any, **kwargs: Any) -> Any:
        work = request_work.current_work("unit-of-work endpoints")
        unit = work.unit
        idempotent = work.idempotent if needs.principals else None
        try:
            if unit is not None and (idempotent is not None or not needs.checks_principal_in_group):
                for name in needs.principals:
                    kwargs[name] = work.principal = verify_principal(unit.session, kwargs[name])
            if idempotent is not None:
                assert unit is not None  # a principal comes with a DbSession or CoreDb (_EndpointNeeds.read)
                user_id = kwargs[needs.principals[0]].user_id
                replay = idempotency.begin(unit.session, user_id, idempotent)
                if replay is not None:
                    return replay
            result = endpoint(*args, **kwargs)
            response = _as_response(result, needs.status_code, kwargs[needs.response] if needs.response else None)
            if idempotent is not None:
                assert unit is not None
                idempotency.finish(unit.session, user_id, idempotent, response)
            if unit is not None:
                unit.commit()  # sends the principal check if nothing else did
        except BaseException as error:
            if unit is None:
                raise
            answer = _refused_token_or(error, unit if needs.principals else None)
            unit.rollback()  # here, in this thread, rather than in another hop later
            if answer is error:
                raise
            raise answer from None
        else:
            if isinstance(response, AnswerAfterCommit):
                try:
                    response = response.answer()
                except Exception as error:
                    raise NotShownAfterCommit() from error
        finally:
            if unit is not None:
                unit.close()
        return response

    return run


class UnitOfWorkRoute(APIRoute):
    """A sync endpoint runs as one unit of work, in one thread (module docstring)."""

    checks_principal_in_group = False  # GroupCommitRoute
    read_only = False  # ReadOnlyRoute

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        self.needs: _EndpointNeeds | None = None
        if not inspect.iscoroutinefunction(endpoint):
            self.needs = _EndpointNeeds(kwargs.get("status_code") or 200, self.checks_principal_in_group,
                                        self.read_only)
            endpoint = _run_in_unit_of_work(endpoint, self.needs)
        super().__init__(path, endpoint, **kwargs)
        if self.needs is not None:
            self.needs.read(endpoint.__name__, self.dependant)

    async def begin_work(self, request: Request) -> RequestWork:
        """The RequestWork the endpoint's dependencies fill in (subclasses add to it)."""
        return RequestWork(read_only=self.read_only)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.needs is None:
            return handler  # async: no unit of work, so DbSession and the role checks refuse to work

        async def unit_of_work_handler(request: Request) -> Response:
            token = request_work.start(await self.begin_work(request))
            try:
                return await handler(request)
            finally:
                request_work.finish(token)

        return unit_of_work_handler


IDEMPOTENCY_DOCS = {
    "parameters": [{
        "name": "Idempotency-Key", "in": "header", "required": False,
        "description": "Optional. A retry with the same key and body gets the stored response "
                       "(header Idempotent-Replayed: true) instead of acting twice; the same key with a "
                       "different body is a 422. Keys are kept for 24 hours, per user.",
        "schema": {"type": "string", "minLength": 1, "maxLength": idempotency.KEY_MAX},
    }],
}


class IdempotencyKeyRoute(UnitOfWorkRoute):
    """A sync POST acting for a caller answers a retried Idempotency-Key with its stored response."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        self.is_idempotent_write = (self.needs is not None and bool(self.needs.principals)
                                    and "POST" in (self.methods or ()))
        if self.is_idempotent_write:
            self.openapi_extra = {**IDEMPOTENCY_DOCS, **(self.openapi_extra or {})}
            self.responses = {422: {"description": "Invalid input, or an Idempotency-Key reused"}, **self.responses}

    async def begin_work(self, request: Request) -> RequestWork:
        work = await super().begin_work(request)
        if self.is_idempotent_write:
            work.idempotent = await idempotency.from_request(request)
        return work


class DecimalJSONRoute(APIRoute):
    """JSON request bodies are parsed with Decimal numbers, never binary floats."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def decimal_json_handler(request: Request) -> Response:
            return await handler(DecimalJSONRequest(request.scope, request.receive))

        return decimal_json_handler


class ApiRoute(DecimalJSONRoute, IdempotencyKeyRoute):
    """The JSON API's route class: Decimal bodies, one unit of work per request, Idempotency-Key."""


class GroupCommitRoute(ApiRoute):
    """An ApiRoute whose endpoint commits its write in a group transaction (app/transactions/group.py).

    The group checks each member's token in its own unit of work, so the request's unit does
    not check it up front: the endpoint gets the PrincipalClaims and must hand them to the
    group. With an Idempotency-Key the request keeps its own unit of work (the key, the write
    and the stored answer commit together); then the token is checked as usual and the
    endpoint gets the verified Principal.
    """

    checks_principal_in_group = True


class ReadOnlyRoute(ApiRoute):
    """An ApiRoute whose endpoint only reads: its CoreDb sends no BEGIN and no COMMIT.

    The caller's token check rides with the first read in one message, which the server
    runs as one implicit transaction (app/uow/dialect.py): one round trip for a one-statement
    read. Its session executes SELECTs only and records no audit event (CoreSession).
    """

    read_only = True
