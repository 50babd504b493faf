"""Domain exceptions, mapped to HTTP in one place; no stack trace ever reaches a client."""

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("riskdesk.errors")


class DomainError(Exception):
    status_code = 400

    def __init__(self, detail: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers


class NotFound(DomainError):
    status_code = 404


class Conflict(DomainError):
    status_code = 409


class Unauthorized(DomainError):
    status_code = 401

    def __init__(self, detail: Any = "Not authenticated") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(DomainError):
    status_code = 403


def field_errors(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Validation errors as [{"loc", "field", "msg", "type"}], never echoing the input."""
    shaped = []
    for error in errors:
        loc = [part for part in error.get("loc", ()) if part is not None]
        field_path = [str(part) for part in loc if part not in ("body", "query", "path", "header")]
        message = str(error.get("msg", "invalid value"))
        if error.get("type") == "json_invalid":
            # The location after "body" is a character offset, not a field: the field is the body.
            position = field_path[0] if field_path else "?"
            loc, field_path = ["body"], ["body"]
            message = f"{message} at character {position}"
        if message.startswith("Value error, "):
            message = message[len("Value error, "):]
        shaped.append(
            {
                "loc": [p if isinstance(p, (int, str)) else str(p) for p in loc],
                "field": ".".join(field_path) or None,
                "msg": message,
                "type": str(error.get("type", "value_error")),
            }
        )
    return shaped


def is_unavailable(exc: BaseException | None) -> bool:
    """The database out of reach or too slow (answered 503 with Retry-After; nothing was written)."""
    if isinstance(exc, PoolTimeoutError):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    pgcode = getattr(exc.orig, "pgcode", None)
    # 57014 query_canceled (statement timeout), 55P03 lock timeout, 57P0x server shutting down, 08xxx connection.
    return pgcode in {"57014", "55P03", "57P01", "57P02", "57P03"} or (pgcode or "").startswith("08") or (
        pgcode is None and exc.__class__.__name__ == "OperationalError"
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": field_errors(list(exc.errors()))}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(PoolTimeoutError)
    async def pool_exhausted(request: Request, exc: PoolTimeoutError) -> JSONResponse:
        log.warning("database pool exhausted")
        return _unavailable()

    @app.exception_handler(DBAPIError)
    async def database_error(request: Request, exc: DBAPIError) -> JSONResponse:
        if is_unavailable(exc):
            log.warning("database unavailable: %s", exc.__class__.__name__)
            return _unavailable()
        log.exception("database error")
        return _internal_error(request)

    @app.exception_handler(Exception)
    async def unhandled(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return _internal_error(request)


def _unavailable() -> JSONResponse:
    return JSONResponse(
        {"detail": "The database is unavailable; retry shortly."}, status_code=503, headers={"Retry-After": "1"}
    )


def _internal_error(request: Request) -> JSONResponse:
    request_id = request.scope.get("state", {}).get("request_id")
    # Unhandled errors are answered by Starlette's ServerErrorMiddleware, which sits outside
    # RequestContextMiddleware, so the request id header has to be set here.
    headers = {"X-Request-ID": request_id} if request_id else None
    return JSONResponse(
        {"detail": "Internal server error", "request_id": request_id}, status_code=500, headers=headers
    )
