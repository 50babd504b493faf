"""The OpenAPI document, completed with the error shapes every client has to handle.

FastAPI documents the 422 body with its own ValidationError (which echoes the input); ours is
`{"detail": [{"loc", "field", "msg", "type"}]}` and never echoes. Every other error is
`{"detail": ...}`. Any operation that reaches the database can also answer 503 (database
unavailable, a statement or lock timeout, the pool exhausted) with Retry-After.
"""

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

# Error answers that routes list in `responses=` (the body schema is added by `complete`).
Responses = dict[int | str, dict[str, Any]]
AUTH_ERRORS: Responses = {401: {"description": "Missing or invalid token"}, 403: {"description": "Role not allowed"}}
BAD_INPUT: Responses = {422: {"description": "Invalid input; each error names its field"},
                        413: {"description": "Body over 1 MiB"}}

WITHOUT_DATABASE = {"/healthz", "/metrics"}
ERROR_BODY = {"$ref": "#/components/schemas/ErrorBody"}
ERROR_SCHEMAS = {
    "ValidationError": {
        "title": "ValidationError",
        "type": "object",
        "required": ["loc", "field", "msg", "type"],
        "properties": {
            "loc": {"title": "Location", "type": "array",
                    "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
            "field": {"title": "Field", "anyOf": [{"type": "string"}, {"type": "null"}],
                      "description": "Dotted path of the offending field, e.g. `amount` or `items.3.currency`"},
            "msg": {"title": "Message", "type": "string"},
            "type": {"title": "Error Type", "type": "string", "description": "Pydantic's stable error code"},
        },
    },
    "ErrorBody": {
        "title": "ErrorBody",
        "type": "object",
        "required": ["detail"],
        "properties": {"detail": {"title": "Detail", "description": "What went wrong, for a person to read"}},
    },
}
UNAVAILABLE = {
    "description": "The database is unavailable or busy (restart, statement or lock timeout, pool exhausted); "
                   "retry after the Retry-After seconds",
    "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait"}},
    "content": {"application/json": {"schema": ERROR_BODY}},
}


def complete(document: dict[str, Any]) -> dict[str, Any]:
    """Give every error response its body schema and add the 503 every database operation can return."""
    document.setdefault("components", {}).setdefault("schemas", {}).update(ERROR_SCHEMAS)
    for path, operations in document.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status, response in responses.items():
                if status == "422":
                    response["content"] = {"application/json": {
                        "schema": {"$ref": "#/components/schemas/HTTPValidationError"}}}
                elif status.startswith("4") or status == "503":
                    response.setdefault("content", {"application/json": {"schema": ERROR_BODY}})
            if path not in WITHOUT_DATABASE:
                responses.setdefault("503", UNAVAILABLE)
    return document


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes,
            ))
        return app.openapi_schema

    # FastAPI's documented way to customise the schema is to replace this method.
    app.openapi = openapi  # type: ignore[method-assign]
