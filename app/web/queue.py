"""The review queue screen, `/`: filters, keyset "load more", live counts, "Next case".

One URL serves the page and, for HTMX requests, only the rows (filters and "load more"
swap rows in place); counts refresh themselves from /queue/counts.
"""

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from pydantic import Field, ValidationError

from app import cursors
from app.cases import claims
from app.cases import queue as cases_queue
from app.cases.schemas import QueueFilter
from app.db import DbSession
from app.errors import field_errors
from app.web.deps import BrowserUser, ScreenRoute
from app.web.errors import redirect
from app.web.templating import is_htmx, render

router = APIRouter(route_class=ScreenRoute)

PAGE_SIZE = 50


class QueueQuery(QueueFilter):
    """The queue's filters as typed in the filter bar, and the page; blank fields mean "any"."""

    cursor: Annotated[str | None, Field(max_length=64)] = None

    def query_string(self, **changes: Any) -> str:
        values = {**self.model_dump(exclude_none=True), **changes}
        return urlencode({k: v for k, v in values.items() if v is not None})


def _parse(request: Request) -> tuple[QueueQuery, dict[str, str]]:
    raw = {key: value for key, value in request.query_params.items() if value.strip()}  # blank means "any"
    try:
        return QueueQuery.model_validate(raw), {}
    except ValidationError as exc:
        errors = {e["field"] or "filters": e["msg"] for e in field_errors(exc.errors(include_input=False))}
        valid = {k: v for k, v in raw.items() if k not in errors}
        try:
            return QueueQuery.model_validate(valid), errors
        except ValidationError:
            return QueueQuery(), errors


@router.get("/")
def queue(request: Request, session: DbSession, principal: BrowserUser):
    query, errors = _parse(request)
    after = None
    if query.cursor:
        try:
            after = cases_queue.decode_cursor(query.cursor)
        except ValueError:
            errors["cursor"] = cursors.INVALID
    items, next_cursor = cases_queue.list_page(session=session, filters=query, limit=PAGE_SIZE, after=after)
    context: dict[str, Any] = {
        "items": items, "next_cursor": next_cursor, "query": query, "errors": errors, "raw": request.query_params,
        "active_nav": "queue",
    }
    if is_htmx(request) and request.headers.get("hx-target") in ("queue-rows", "load-more"):
        return render(request, "queue/_rows.html", context, principal=principal)
    # The counts load themselves from /queue/counts right after the page: the rows never wait for them.
    context["empty_notice"] = request.query_params.get("empty") == "1"
    return render(request, "queue/index.html", context, principal=principal)


@router.get("/queue/counts")
def queue_counts(request: Request, session: DbSession, principal: BrowserUser):
    counts = cases_queue.counts(session=session, user_id=principal.user_id)
    return render(request, "queue/_counts.html", {"counts": counts}, principal=principal)


@router.post("/cases/next")
def next_case(request: Request, session: DbSession, principal: BrowserUser):
    claimed = claims.claim_next(session=session, actor=principal.actor)
    if claimed is None:
        if is_htmx(request):
            return render(request, "queue/_next_empty.html", principal=principal)
        return redirect(request, "/?empty=1")
    return redirect(request, f"/cases/{claimed.id}")
