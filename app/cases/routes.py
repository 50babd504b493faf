"""JSON for internal tools: the same queue, claims and decisions as the analyst screens."""

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from app import cursors
from app.cases import assignment, bulk, claims, comments, decisions, flows, queue
from app.cases.messages import decision_message
from app.cases.schemas import (
    CaseDetail,
    CaseListQuery,
    CaseOut,
    CasePage,
    CommentCreate,
    CommentOut,
    DecisionOut,
    DecisionRequest,
    QueueCounts,
)
from app.db import DbSession
from app.openapi import AUTH_ERRORS, BAD_INPUT, Responses
from app.security.deps import Reviewer
from app.uow.routing import ApiRoute

router = APIRouter(prefix="/api/cases", tags=["review cases"], route_class=ApiRoute)

CaseId = Annotated[int, Path(ge=1, lt=2**63)]
NOT_FOUND: Responses = {404: {"description": "Unknown case"}}
CONFLICT: Responses = {
    409: {"description": "Decided already, claimed by someone else, or changed since loaded (says which)"},
}


@router.get(
    "",
    response_model=CasePage,
    summary="The review queue: highest risk first, then oldest (keyset pagination)",
    responses={**AUTH_ERRORS, 422: {"description": "Invalid filter or cursor"}},
)
def list_cases(principal: Reviewer, session: DbSession, query: Annotated[CaseListQuery, Query()]):
    after = cursors.from_query(query.cursor, queue.decode_cursor)
    items, next_cursor = queue.list_page(session=session, filters=query, limit=query.limit, after=after)
    return CasePage(items=items, next_cursor=next_cursor)


@router.get("/counts", response_model=QueueCounts, summary="Live queue counts", responses=AUTH_ERRORS)
def queue_counts(principal: Reviewer, session: DbSession):
    return QueueCounts(**queue.counts(session=session, user_id=principal.user_id))


@router.post(
    "/next",
    response_model=CaseOut,
    summary="Claim the top free case (or get the one you hold); 204 when the queue is empty",
    responses={204: {"description": "Nothing to review"}, **AUTH_ERRORS},
)
def claim_next_case(principal: Reviewer, session: DbSession):
    claimed = claims.claim_next(session=session, actor=principal.actor)
    return claimed if claimed is not None else Response(status_code=204)


@router.post(
    "/{case_id}/assign",
    response_model=CaseOut,
    summary="Assign a case to a named analyst or admin (admins: anyone; analysts: themselves)",
    responses={**NOT_FOUND, **CONFLICT, **AUTH_ERRORS, **BAD_INPUT,
               403: {"description": "An analyst assigning someone else"}},
)
def assign_case(case_id: CaseId, data: assignment.AssignRequest, principal: Reviewer, session: DbSession):
    return assignment.assign(session=session, actor=principal.actor, case_id=case_id, username=data.assignee,
                             version=data.version)


@router.post(
    "/bulk",
    response_model=bulk.BulkResponse,
    summary="Assign, release or escalate up to 100 cases; a result per case, in order",
    responses={**AUTH_ERRORS, **BAD_INPUT, 403: {"description": "An analyst assigning someone else"}},
)
def bulk_action(data: bulk.BulkRequest, principal: Reviewer, session: DbSession):
    return bulk.run(session=session, actor=principal.actor, request=data)


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
    return claims.claim(session=session, actor=principal.actor, case_id=case_id)


@router.post(
    "/{case_id}/release",
    response_model=CaseOut,
    summary="Give your claimed case back to the queue",
    responses={**NOT_FOUND, **CONFLICT, **AUTH_ERRORS},
)
def release_case(case_id: CaseId, principal: Reviewer, session: DbSession):
    return claims.release(session=session, actor=principal.actor, case_id=case_id)


@router.post(
    "/{case_id}/decision",
    response_model=DecisionOut,
    summary="Approve, reject or escalate (a note is required to reject or escalate); "
            "a reconciliation case is resolved by approve with its outcome as reason_code",
    responses={**NOT_FOUND, **CONFLICT, **AUTH_ERRORS, **BAD_INPUT,
               403: {"description": "Escalated cases are decided by an admin"}},
)
def decide_case(case_id: CaseId, data: DecisionRequest, principal: Reviewer, session: DbSession):
    outcome = decisions.decide(session=session, actor=principal.actor, case_id=case_id, data=data)
    return DecisionOut(**outcome.case.model_dump(), message=decision_message(outcome))


@router.get(
    "/{case_id}/comments",
    response_model=list[CommentOut],
    summary="The case's comments, oldest first",
    responses={**NOT_FOUND, **AUTH_ERRORS},
)
def list_comments(case_id: CaseId, principal: Reviewer, session: DbSession):
    return comments.list_for_case(session=session, case_id=case_id)


@router.post(
    "/{case_id}/comments",
    response_model=CommentOut,
    status_code=201,
    summary="Add a comment to the case (append-only: comments are never edited or deleted)",
    responses={**NOT_FOUND, **AUTH_ERRORS, **BAD_INPUT},
)
def add_comment(case_id: CaseId, data: CommentCreate, principal: Reviewer, session: DbSession):
    return comments.add(session=session, actor=principal.actor, case_id=case_id, text=data.text)
