"""The audit explorer screen, `/admin/audit`: filters, keyset "load more", CSV download, chain status.

Filters swap `#audit-results` (rows, count line and the download link, which carries the
same filters); "load more" swaps only its own row. The chain status shows the latest
stored verification at once; its buttons run a new one (incremental or full) in place.
"""

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from pydantic import ValidationError

from app.audit import explorer, verification
from app.audit.evidence_routes import CaseId, evidence_download
from app.audit.routes import csv_download, parse_or_refuse
from app.db import DbSession
from app.web.deps import BrowserAdmin, ScreenRoute
from app.web.messages import label_for, labelled_errors
from app.web.templating import is_htmx, render

router = APIRouter(route_class=ScreenRoute)


def _sentences(params: dict[str, str], errors: dict[str, str]) -> dict[str, str]:
    """The explorer's refusals as sentences with the filter's label ("From (UTC) must be a date and time …")."""
    if not errors:
        return errors
    try:
        explorer.AuditQuery.model_validate({k: v for k, v in params.items() if v.strip()})
    except ValidationError as exc:
        worded = labelled_errors(exc.errors(include_input=False))
        if "form" in worded and "until" in errors and "until" not in worded:  # the range rule of the two ends
            worded["until"] = "Until (UTC) must be later than From (UTC)."
        return {name: worded.get(name) or f"{label_for(name)}: {message}" for name, message in errors.items()}
    return errors


@router.get("/admin/audit")
def audit_page(request: Request, session: DbSession, principal: BrowserAdmin):
    query, errors = explorer.parse_query(dict(request.query_params))
    errors = _sentences(dict(request.query_params), errors)
    items, next_cursor = explorer.list_page(session=session, query=query)
    params = query.filters().as_params()
    context: dict[str, Any] = {
        "items": items, "errors": errors, "raw": request.query_params, "params": params,
        "export_query": urlencode(params), "next_query": urlencode({**params, "cursor": next_cursor or ""}),
        "next_cursor": next_cursor, "is_first_page": query.cursor is None, "active_nav": "audit",
        "known_actions": explorer.KNOWN_ACTIONS,
    }
    target = request.headers.get("hx-target") if is_htmx(request) else None
    if target == "load-more":
        return render(request, "admin/audit/_rows.html", context, principal=principal)
    if target == "audit-results":
        return render(request, "admin/audit/_results.html", context, principal=principal)
    context["verification"] = verification.latest(session=session)
    context["checkpoint"] = verification.latest_checkpoint(session=session)
    return render(request, "admin/audit/index.html", context, principal=principal)


@router.post("/admin/audit/verify")
def verify_chain(request: Request, session: DbSession, principal: BrowserAdmin,
                 mode: Annotated[str, Form(max_length=16)] = "incremental"):
    _, result = verification.run(session=session, verified_by=principal.actor.name, full=mode == "full")
    return render(request, "admin/audit/_chain_status.html",
                  {"verification": result, "checkpoint": verification.latest_checkpoint(session=session)},
                  principal=principal)


@router.get("/admin/audit/export.csv")
def export_csv(request: Request, session: DbSession, principal: BrowserAdmin):
    return csv_download(session, principal, parse_or_refuse(request).filters())


@router.get("/admin/audit/cases/{case_id}/evidence")
def case_evidence(session: DbSession, principal: BrowserAdmin, case_id: CaseId):
    """The case page's "Download evidence": the API's pack, for a signed-in admin."""
    return evidence_download(session, principal, case_id)
