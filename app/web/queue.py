"""The review queue screen, `/`: search, filters, keyset "load more", live counts, "Next case", bulk actions.

One URL serves the page and, for HTMX requests, only the rows (search, filters and "load
more" swap rows in place, the result count rides along out of band); counts refresh
themselves from /queue/counts. The bulk bar posts the selected rows to /queue/bulk, which
answers with a result per case and tells the filter form to reload the rows.
"""

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from pydantic import Field, ValidationError

from app.cases import assignment, bulk, claims
from app.cases import queue as cases_queue
from app.cases.enums import UNDECIDED_STATES
from app.cases.schemas import CaseOut, QueueFilter
from app.db import DbSession
from app.errors import field_errors
from app.security.deps import Principal
from app.settings.service import ReviewSettings, get_review_settings
from app.uow.unit import OrmSession
from app.users.enums import Role
from app.web.deps import BrowserUser, ScreenRoute
from app.web.errors import redirect
from app.web.messages import labelled_errors
from app.web.templating import is_htmx, render

router = APIRouter(route_class=ScreenRoute)

PAGE_SIZE = 50
# The filter bar's labels, as shown beside each input and in its error sentences.
FILTER_LABELS = {
    "q": "Search", "state": "State", "kind": "Kind", "currency": "Currency", "min_amount": "Min amount",
    "max_amount": "Max amount", "min_score": "Min score", "max_score": "Max score", "assignee": "Assignee",
    "cursor": "Page",
}


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
        errors = labelled_errors(exc.errors(include_input=False), FILTER_LABELS)
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
            errors["cursor"] = "That “Load more” link no longer works: start again from the first page."
    items, next_cursor = cases_queue.list_page(session=session, filters=query, limit=PAGE_SIZE, after=after)
    context: dict[str, Any] = {
        "items": items, "next_cursor": next_cursor, "query": query, "errors": errors, "raw": request.query_params,
        "active_nav": "queue", "labels": FILTER_LABELS, "sla": _sla(items, get_review_settings(session=session)),
    }
    if after is None:  # the first page says how many cases match; "load more" does not count again
        context["total"] = cases_queue.count_matching(session=session, filters=query)
        context["count_cap"] = cases_queue.RESULT_COUNT_CAP
    if is_htmx(request) and request.headers.get("hx-target") in ("queue-rows", "load-more"):
        # The result count travels with the rows, swapped out of band into its place above the table.
        return render(request, "queue/_rows.html", {**context, "rows_only": True}, principal=principal)
    # The counts load themselves from /queue/counts right after the page: the rows never wait for them.
    context["empty_notice"] = request.query_params.get("empty") == "1"
    context["reviewers"] = _assignable(session, principal)
    return render(request, "queue/index.html", context, principal=principal)


def _sla(items: list[CaseOut], settings: ReviewSettings) -> dict[int, tuple[datetime, bool]]:
    """Each undecided case's SLA due time and whether it passed (as the dashboard counts: opened + its kind's hours)."""
    now = datetime.now(UTC)
    due = {case.id: case.opened_at + timedelta(hours=settings.sla_hours(case.kind))
           for case in items if case.state in UNDECIDED_STATES}
    return {case_id: (at, at < now) for case_id, at in due.items()}


def _assignable(session: OrmSession, principal: Principal) -> list[str]:
    # An analyst assigns only themself; an admin anyone active who reviews.
    if principal.role == Role.ADMIN:
        return assignment.active_reviewers(session=session)
    return [principal.username]


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


# The bulk bar's refusals as sentences, by the field pydantic named.
BULK_FIELD_MESSAGES = {
    "action": "Choose an action.",
    "case_ids": f"Select between 1 and {bulk.BULK_MAX_CASES} cases.",
    "assignee": "Choose who to assign the cases to.",
    "note": "Write a note to escalate (up to 2,000 characters).",
}
SELECTED = re.compile(r"^([0-9]{1,19}):([0-9]{1,10})$")


@router.post("/queue/bulk")
def bulk_action(
    request: Request,
    session: DbSession,
    principal: BrowserUser,
    action: Annotated[str, Form(max_length=20)] = "",
    case: Annotated[list[str] | None, Form()] = None,
    assignee: Annotated[str, Form(max_length=200)] = "",
    note: Annotated[str, Form(max_length=10_000)] = "",
):
    """The bulk bar: the selected rows (`case` = "id:version") and an action; a result per case."""
    selected = [SELECTED.match(value) for value in case or []]
    versions = {m.group(1): int(m.group(2)) for m in selected if m}
    form = {"action": action, "case_ids": [int(m.group(1)) for m in selected if m], "versions": versions,
            "assignee": assignee.strip() or None, "note": note or None}
    try:
        data = bulk.BulkRequest.model_validate(form)
    except ValidationError as exc:
        fields = [(e["field"] or "action").split(".")[0] for e in field_errors(exc.errors(include_input=False))]
        errors = list(dict.fromkeys(BULK_FIELD_MESSAGES.get(f, BULK_FIELD_MESSAGES["action"]) for f in fields))
        return render(request, "queue/_bulk_result.html", {"errors": errors}, principal=principal, status_code=422)
    result = bulk.run(session=session, actor=principal.actor, request=data)
    return render(request, "queue/_bulk_result.html", {"result": result}, principal=principal,
                  headers={"HX-Trigger": "queue-changed"})
