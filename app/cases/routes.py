"""JSON for internal tools: the same queue, claims and decisions as the analyst screens."""

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from fastapi.exceptions import RequestValidationError

from app.cases import flows, service
from app.cases.schemas import (
    CaseDetail, CaseKind, CaseOut, CasePage, CaseState, DecisionOut, DecisionRequest, QueueCounts,
)
from app.db import DbSession
from app.routing import ApiRoute
from app.security.deps import Reviewer
from app.transactions.routes import AUTH_ERRORS, BAD_INPUT
from app.transactions.schemas import Currency, Identifier64

router = APIRouter(prefix="/api/cases", tags=["review cases"], route_class=ApiRoute)

CaseId = Annotated[int, Path(ge=1, lt=2**63)]
NOT_FOUND = {404: {"description": "Unknown case"}}
CONFLICT = {409: {"description": "Decided already, claimed by someone else, or changed since loaded (says which)"}}


def _bad_query(field: str, message: str) -> RequestValidationError:
    return RequestValidationError([{"loc": ("query", field), "msg": message, "type": "value_error"}])


@router.get(
    "",
    response_model=CasePage,
    summary="The review queue: highest risk first, then oldest (keyset pagination)",
    responses={**AUTH_ERRORS, 422: {"description": "Invalid filter or cursor"}},
)
def list_cases(
    principal: Reviewer,
    session: DbSession,
    state: CaseState | None = None,
    kind: CaseKind | None = None,
    currency: Annotated[Currency | None, Query()] = None,
    min_amount: Annotated[Decimal | None, Query(ge=0, lt=10**15, allow_inf_nan=False)] = None,
    max_amount: Annotated[Decimal | None, Query(ge=0, lt=10**15, allow_inf_nan=False)] = None,
    min_score: Annotated[int | None, Query(ge=0, le=100)] = None,
    max_score: Annotated[int | None, Query(ge=0, le=100)] = None,
    assignee: Annotated[Identifier64 | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
):
    after = None
    if cursor is not None:
        try:
            after = service.decode_cursor(cursor)
        except ValueError:
            raise _bad_query("cursor", "invalid cursor") from None
    filters = service.QueueFilter(
        state=state, kind=kind, currency=currency, min_amount=min_amount, max_amount=max_amount,
        min_score=min_score, max_score=max_score, assignee=assignee,
    )
    items, next_cursor = service.list_page(session=session, filters=filters, limit=limit, after=after)
    return CasePage(items=items, next_cursor=next_cursor)


@router.get("/counts", response_model=QueueCounts, summary="Live queue counts", responses=AUTH_ERRORS)
def queue_counts(principal: Reviewer, session: DbSession):
    return QueueCounts(**service.counts(session=session, user_id=principal.user_id))


@router.post(
    "/next",
    response_model=CaseOut,
    summary="Claim the top free case (or get the one you hold); 204 when the queue is empty",
    responses={204: {"description": "Nothing to review"}, **AUTH_ERRORS},
)
def claim_next_case(principal: Reviewer, session: DbSession):
    claimed = service.claim_next(session=session, actor=principal.actor)
    return claimed if claimed is not None else Response(status_code=204)


@router.get(
    "/{case_id}",
    response_model=CaseDetail,
    summary="One case with its transaction, every score, the account's recent history and the timeline",
    responses={**NOT_FOUND, **AUTH_ERRORS},
)
def get_case(case_id: CaseId, principal: Reviewer, session: DbSession):
    return flows.case_detail(session=session, case_id=case_id)


@router.post(
    "/{case_id}/claim",
    response_model=CaseOut,
    summary="Claim a case, or renew your claim's lease",
    responses={**NOT_FOUND, **CONFLICT, **AUTH_ERRORS},
)
def claim_case(case_id: CaseId, principal: Reviewer, session: DbSession):
    return service.claim(session=session, actor=principal.actor, case_id=case_id)


@router.post(
    "/{case_id}/release",
    response_model=CaseOut,
    summary="Give your claimed case back to the queue",
    responses={**NOT_FOUND, **CONFLICT, **AUTH_ERRORS},
)
def release_case(case_id: CaseId, principal: Reviewer, session: DbSession):
    return service.release(session=session, actor=principal.actor, case_id=case_id)


@router.post(
    "/{case_id}/decision",
    response_model=DecisionOut,
    summary="Approve, reject or escalate (a note is required to reject or escalate)",
    responses={**NOT_FOUND, **CONFLICT, **AUTH_ERRORS, **BAD_INPUT,
               403: {"description": "Escalated cases are decided by an admin"}},
)
def decide_case(case_id: CaseId, data: DecisionRequest, principal: Reviewer, session: DbSession):
    case, message = service.decide(session=session, actor=principal.actor, case_id=case_id, data=data)
    return DecisionOut(**case.model_dump(), message=message)
