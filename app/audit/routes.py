"""Admin JSON for the audit history: pages of events, the streamed CSV export, chain verification."""

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from app.audit import explorer, verification
from app.audit import service as audit
from app.audit.explorer import AuditFilter, AuditQuery
from app.db import DbSession
from app.openapi import AUTH_ERRORS, Responses
from app.security.deps import Admin, Principal
from app.uow.routing import ApiRoute
from app.uow.unit import OrmSession

router = APIRouter(prefix="/api/audit", tags=["audit"], route_class=ApiRoute)
BAD_FILTER: Responses = {422: {"description": "Invalid filter; each error names its field"}}
# The filters are parsed from the query string by hand (blank means "any"), so FastAPI cannot
# see them; they are documented here, from the model that parses them.
def _query_schema(schema: dict) -> dict:
    # "absent" is how a query string says None: document the value's own type only.
    choices = [choice for choice in schema.get("anyOf", ()) if choice.get("type") != "null"]
    return choices[0] if len(choices) == 1 else {k: v for k, v in schema.items() if k != "title"}


FILTER_PARAMETERS = {"parameters": [
    {"name": name, "in": "query", "required": False, "schema": _query_schema(schema)}
    for name, schema in AuditQuery.model_json_schema()["properties"].items()
]}
EXPORT_FILTER_PARAMETERS = {"parameters": [p for p in FILTER_PARAMETERS["parameters"]
                                           if p["name"] not in ("cursor", "limit")]}


class AuditEventOut(BaseModel):
    id: int
    occurred_at: datetime
    actor: str
    actor_id: int | None
    actor_role: str | None
    actor_type: str
    action: str
    entity_type: str
    entity_id: str
    before: Any
    after: Any
    reason: str | None
    request_id: str | None
    client_addr: str | None
    hash: str

    model_config = {"from_attributes": True}


class AuditPage(BaseModel):
    items: list[AuditEventOut]
    next_cursor: int | None


class ChainStatusOut(BaseModel):
    ok: bool
    events: int
    first_broken_id: int | None
    last_verified_id: int | None


def parse_or_refuse(request: Request) -> AuditQuery:
    """The request's filters; a 422 naming each refused field (an API never narrows silently)."""
    query, errors = explorer.parse_query(dict(request.query_params))
    if errors:
        raise RequestValidationError(
            [{"loc": ("query", field), "msg": message, "type": "value_error"} for field, message in errors.items()]
        )
    return query


def csv_download(session: OrmSession, principal: Principal, filters: AuditFilter) -> StreamingResponse:
    """Record who exported what, then stream the file on a connection of its own."""
    audit.record(session, actor=principal.actor, action="audit.exported", entity_type="audit", entity_id="export",
                 after=filters.as_params())
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return StreamingResponse(
        explorer.export_csv(filters), media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="audit-{stamp}.csv"', "Cache-Control": "no-store"},
    )


@router.get("/events", response_model=AuditPage, summary="Audit events, newest first (keyset pagination)",
            responses={**AUTH_ERRORS, **BAD_FILTER}, openapi_extra=FILTER_PARAMETERS)
def list_events(request: Request, principal: Admin, session: DbSession):
    query = parse_or_refuse(request)
    items, next_cursor = explorer.list_page(session=session, query=query)
    return AuditPage(items=[AuditEventOut.model_validate(e) for e in items], next_cursor=next_cursor)


@router.get("/export.csv", summary="Every event matching the filters as CSV, oldest first, streamed",
            response_class=StreamingResponse, responses={**AUTH_ERRORS, **BAD_FILTER},
            openapi_extra=EXPORT_FILTER_PARAMETERS)
def export_events(request: Request, principal: Admin, session: DbSession):
    return csv_download(session, principal, parse_or_refuse(request).filters())


@router.get("/verify", response_model=ChainStatusOut, summary="Check the whole hash chain (as `audit verify`)",
            responses=AUTH_ERRORS)
def verify(principal: Admin, session: DbSession):
    status, _ = verification.run(session=session, verified_by=principal.actor.name, full=True)
    return ChainStatusOut(ok=status.ok, events=status.events, first_broken_id=status.first_broken_id,
                          last_verified_id=status.last_verified_id)
