"""The API route class: Decimal JSON bodies and a one-hop unit of work.

FastAPI runs every sync dependency, the sync endpoint and the response validation in
separate threadpool hops; under load each hop costs more CPU than the request's SQL. An
ApiRoute runs a sync endpoint as one unit of work in one hop instead: check the caller's
token against the users table (sent with the first statement, app/security/deps.py), run
the endpoint, commit (or roll back), close the session, and serialize the returned model once. JWT signature and role checks stay on the event loop (app/security/deps.py).
"""

import functools
import inspect
from dataclasses import dataclass
import typing
from contextvars import ContextVar
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
import pydantic_core
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app.idempotency import service as idempotency

from app.jsonbody import DecimalJSONRequest
from app.db import CoreSession, send_deferred
from app.security.deps import Principal, rejection, verify_principal


def _parameters_of_type(endpoint: Callable[..., Any], wanted: type | tuple[type, ...]) -> list[str]:
    hints = typing.get_type_hints(endpoint, include_extras=True)
    names = []
    for name, hint in hints.items():
        base = typing.get_args(hint)[0] if typing.get_origin(hint) is Annotated else hint
        if inspect.isclass(base) and issubclass(base, wanted):
            names.append(name)
    return names


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


def _as_response(result: Any, status_code: int, sub_response: Response | None) -> Any:
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


def _refused_token_or(error: BaseException, checked_session: Session | None) -> BaseException:
    """What a failed unit of work raises: a 401 if the caller's token was refused, else `error`.

    `checked_session` is the session of a unit of work with principals. If the error came
    before any statement carried their check, the check is sent now: a refused token is a
    401 before any other error.
    """
    if checked_session is not None and isinstance(error, Exception) and not isinstance(error, DBAPIError):
        try:
            send_deferred(checked_session)
        except DBAPIError as check_error:
            error = check_error
    if isinstance(error, DBAPIError):
        return rejection(error) or error
    return error


# The current request's Idempotency-Key, set on the event loop and read in the endpoint's thread.
_IDEMPOTENT: ContextVar[idempotency.IdempotentRequest | None] = ContextVar("idempotent_request", default=None)


def group_commit(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """Mark an endpoint that commits its write in a group transaction (app/transactions/group.py).

    The group checks each member's token in its own transaction, so the unit of work does
    not check it up front: the endpoint gets an unverified principal (`username` None) and
    must hand it to the group. An Idempotency-Key ties the request to its own transaction
    (the key, the write and the stored answer commit together); then the unit of work checks
    the token as usual and the principal arrives verified.
    """
    endpoint.checks_principal_in_group = True  # type: ignore[attr-defined]
    return endpoint


def unit_of_work(endpoint: Callable[..., Any], status_code: int) -> Callable[..., Any]:
    """Wrap a sync endpoint: verify principals, run it, commit, serialize — in one thread."""
    sessions = _parameters_of_type(endpoint, (Session, CoreSession))
    principals = _parameters_of_type(endpoint, Principal)
    responses = _parameters_of_type(endpoint, Response)
    checks_in_group = getattr(endpoint, "checks_principal_in_group", False)
    if principals and not sessions:
        raise TypeError(f"{endpoint.__name__} takes a Principal, so it must also take a DbSession")

    @functools.wraps(endpoint)
    def run(*args: Any, **kwargs: Any) -> Any:
        session: Session | None = kwargs[sessions[0]] if sessions else None
        idempotent = _IDEMPOTENT.get() if principals else None
        try:
            if idempotent is not None or not checks_in_group:
                for name in principals:
                    verify_principal(session, kwargs[name])
            if idempotent is not None:
                user_id = kwargs[principals[0]].user_id
                replay = idempotency.begin(session, user_id, idempotent)
                if replay is not None:
                    return replay
            result = endpoint(*args, **kwargs)
            response = _as_response(result, status_code, kwargs[responses[0]] if responses else None)
            if idempotent is not None:
                idempotency.finish(session, user_id, idempotent, response)
            if session is not None:
                session.commit()  # sends the principal check if nothing else did
        except BaseException as error:
            if session is None:
                raise
            answer = _refused_token_or(error, session if principals else None)
            session.rollback()  # here, in this thread, rather than in another hop later
            if answer is error:
                raise
            raise answer from None
        finally:
            if session is not None:
                session.close()
        return response

    run.verifies_principals = True  # type: ignore[attr-defined]
    return run


IDEMPOTENCY_DOCS = {
    "parameters": [{
        "name": "Idempotency-Key", "in": "header", "required": False,
        "description": "Optional. A retry with the same key and body gets the stored response "
                       "(header Idempotent-Replayed: true) instead of acting twice; the same key with a "
                       "different body is a 422. Keys are kept for 24 hours, per user.",
        "schema": {"type": "string", "minLength": 1, "maxLength": idempotency.KEY_MAX},
    }],
}


class ApiRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        self.is_idempotent_write = False
        if not inspect.iscoroutinefunction(endpoint):
            self.is_idempotent_write = "POST" in (kwargs.get("methods") or ()) and bool(
                _parameters_of_type(endpoint, Principal)
            )
            endpoint = unit_of_work(endpoint, kwargs.get("status_code") or 200)
        if self.is_idempotent_write:
            kwargs["openapi_extra"] = {**IDEMPOTENCY_DOCS, **(kwargs.get("openapi_extra") or {})}
            kwargs["responses"] = {422: {"description": "Invalid input, or an Idempotency-Key reused"},
                                   **(kwargs.get("responses") or {})}
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        is_idempotent_write = self.is_idempotent_write

        async def decimal_json_handler(request: Request) -> Response:
            request = DecimalJSONRequest(request.scope, request.receive)
            if not is_idempotent_write:
                return await handler(request)
            token = _IDEMPOTENT.set(await idempotency.from_request(request))
            try:
                return await handler(request)
            finally:
                _IDEMPOTENT.reset(token)

        return decimal_json_handler
