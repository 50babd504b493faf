"""The case screen, `/cases/{id}`: transaction, scores, account history, timeline, decision.

Every action (claim, renew, release, decide) answers with the whole case page; HTMX
swaps its `#case-main` in place, so the timeline and state are always current. A
conflict or invalid input comes back as the same page with the message where the user
acted (409/422, which the htmx config swaps).
"""

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Form, Path, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.cases import comments, flows
from app.cases import service as cases
from app.cases.context import StaleContext
from app.cases.enums import RECONCILIATION_ESCALATION_CODES
from app.cases.models import REASON_CODES
from app.cases.schemas import CommentCreate, DecisionRequest
from app.db import DbSession
from app.errors import Conflict, DomainError, Forbidden, field_errors
from app.reconciliation import service as reconciliation
from app.security.deps import Principal
from app.settings.service import get_review_settings
from app.uow.routing import AnswerAfterCommit
from app.uow.unit import OrmSession
from app.web.deps import BrowserUser, ScreenRoute
from app.web.templating import money, render

router = APIRouter(route_class=ScreenRoute)

CaseId = Annotated[int, Path(ge=1, lt=2**63)]
COMMENT_MAX = 4000


def _page(
    request: Request, session: OrmSession, principal: Principal, case_id: int, *, status_code: int = 200, **context
):
    detail = flows.case_detail(session=session, case_id=case_id)
    settings = get_review_settings(session=session)
    tx = detail.transaction
    payments = ([tx] if tx is not None else []) + detail.grouped_transactions
    needs_two = any(Decimal(p.amount) > settings.dual_control_threshold for p in payments)
    is_reconciliation = detail.case.kind == "reconciliation"
    return render(
        request, "cases/detail.html",
        {"detail": detail, "case": detail.case, "tx": detail.transaction,
         "reason_codes": RECONCILIATION_ESCALATION_CODES if is_reconciliation else REASON_CODES,
         "is_reconciliation": is_reconciliation, "needs_two_approvals": needs_two, "changed_panels": [],
         "comment_form": {}, "comment_error": None,
         "dual_control_threshold_text": money(settings.dual_control_threshold, tx.currency if tx else None),
         "me": principal, "active_nav": "queue", "bank_events": _bank_events(session, detail.case),
         "form": {}, "field_errors": {}, **context},
        principal=principal, status_code=status_code,
    )


def _bank_events(session: Session, case) -> list:
    # Reconciliation cases show the bank event(s) next to the ledger record (issue 5).
    if case.kind != "reconciliation":
        return []
    return reconciliation.events_for_case(session=session, case_id=case.id)


def _page_after_commit(request: Request, session: OrmSession, principal: Principal, case_id: int, **context):
    # The page shown after an action includes the action's own audit events, which the
    # chain writes at commit: the screen route commits, then this page is read and rendered.
    return AnswerAfterCommit(lambda: _page(request, session, principal, case_id, **context))


def _after_failure(session: OrmSession, error: DomainError) -> dict:
    # Nothing of the failed action is kept, and no row lock is held while the page renders;
    # the caller's session check, if no statement carried it yet, still runs first.
    session.unit.send_deferred()
    session.rollback()
    # A decision on a changed case: the page shows the panels that changed, marked.
    changed = error.changed if isinstance(error, StaleContext) else []
    return {"status_code": error.status_code, "action_error": error.detail, "changed_panels": changed}


@router.get("/cases/{case_id}")
def case_page(case_id: CaseId, request: Request, session: DbSession, principal: BrowserUser):
    return _page(request, session, principal, case_id)


@router.post("/cases/{case_id}/claim")
def claim_case(case_id: CaseId, request: Request, session: DbSession, principal: BrowserUser):
    try:
        claimed = cases.claim(session=session, actor=principal.actor, case_id=case_id)
    except (Conflict, Forbidden) as error:
        return _page(request, session, principal, case_id, **_after_failure(session, error))
    until = claimed.lease_expires_at.strftime("%H:%M UTC") if claimed.lease_expires_at else ""
    return _page_after_commit(request, session, principal, case_id,
                              action_message=f"You hold this case until {until}.")


@router.post("/cases/{case_id}/release")
def release_case(case_id: CaseId, request: Request, session: DbSession, principal: BrowserUser):
    try:
        cases.release(session=session, actor=principal.actor, case_id=case_id)
    except (Conflict, Forbidden) as error:
        return _page(request, session, principal, case_id, **_after_failure(session, error))
    return _page_after_commit(request, session, principal, case_id,
                              action_message="Released: the case is back in the queue.")


@router.post("/cases/{case_id}/decision")
def decide_case(
    case_id: CaseId,
    request: Request,
    session: DbSession,
    principal: BrowserUser,
    decision: Annotated[str, Form()] = "",
    reason_code: Annotated[str, Form()] = "",
    note: Annotated[str, Form(max_length=10_000)] = "",
    version: Annotated[str, Form(max_length=20)] = "",
    seen: Annotated[str, Form(max_length=200)] = "",
):
    form = {"decision": decision, "reason_code": reason_code, "note": note, "version": version, "seen": seen}
    try:
        data = DecisionRequest.model_validate({k: v for k, v in form.items() if v != ""})
    except ValidationError as exc:
        errors = {e["field"] or "decision": e["msg"] for e in field_errors(exc.errors(include_input=False))}
        return _page(request, session, principal, case_id, status_code=422, form=form, field_errors=errors)
    try:
        _, message = cases.decide(session=session, actor=principal.actor, case_id=case_id, data=data)
    except (Conflict, Forbidden) as error:
        return _page(request, session, principal, case_id, form=form, **_after_failure(session, error))
    except RequestValidationError as exc:  # the reason does not fit the case's kind
        session.unit.send_deferred()
        session.rollback()
        errors = {e["field"] or "decision": e["msg"] for e in field_errors(exc.errors())}
        return _page(request, session, principal, case_id, status_code=422, form=form, field_errors=errors)
    return _page_after_commit(request, session, principal, case_id, action_message=message, decided=True)


@router.post("/cases/{case_id}/comments")
def add_comment(
    case_id: CaseId, request: Request, session: DbSession, principal: BrowserUser,
    text: Annotated[str, Form(max_length=10_000)] = "",
):
    try:
        data = CommentCreate.model_validate({"text": text})
    except ValidationError as exc:
        if not text.strip():
            error = "Write something before adding a comment."
        elif len(text) > COMMENT_MAX:
            error = f"A comment can be at most {COMMENT_MAX:,} characters."
        else:
            error = "The comment " + field_errors(exc.errors(include_input=False))[0]["msg"] + "."
        return _page(request, session, principal, case_id, status_code=422, comment_form={"text": text},
                     comment_error=error)
    comments.add(session=session, actor=principal.actor, case_id=case_id, text=data.text)
    return _page_after_commit(request, session, principal, case_id, action_message="Comment added.")
