"""JSON for reconciliation: post bank events (agents and admins), read runs (any role)."""

from typing import Annotated

from fastapi import APIRouter, Path, Query

from app.db import DbSession
from app.openapi import AUTH_ERRORS, BAD_INPUT
from app.reconciliation import service
from app.reconciliation.schemas import BankEventsRequest, ReconciliationResult, RunPage
from app.security.deps import AnyUser, TransactionWriter
from app.uow.routing import ApiRoute

router = APIRouter(tags=["reconciliation"], route_class=ApiRoute)
# The screens own /reconciliation/runs/…; the JSON reads live under /api like /api/cases.


@router.post(
    "/reconciliation/bank-events",
    response_model=ReconciliationResult,
    summary="Match bank events to transactions; mismatches open reconciliation cases",
    responses={**AUTH_ERRORS, **BAD_INPUT, 422: {
        "description": "Invalid input, each error naming its field as events.N.field; nothing is stored"
    }},
)
def post_bank_events(data: BankEventsRequest, principal: TransactionWriter, session: DbSession):
    return service.reconcile_events(session=session, actor=principal.actor, events=data.events)


@router.get("/api/reconciliation/runs", response_model=RunPage, summary="Past reconciliation runs, newest first",
            responses=AUTH_ERRORS)
def list_runs(principal: AnyUser, session: DbSession, limit: Annotated[int, Query(ge=1, le=200)] = 50):
    return RunPage(items=service.list_runs(session=session, limit=limit))


@router.get("/api/reconciliation/runs/{run_id}", summary="A run's summary with its mismatches (first 500)",
            responses={**AUTH_ERRORS, 404: {"description": "Unknown run"}})
def get_run(run_id: Annotated[int, Path(ge=1, lt=2**63)], principal: AnyUser, session: DbSession):
    run = service.get_run(session=session, run_id=run_id)
    return {
        **run.model_dump(mode="json"),
        "mismatch_counts": service.mismatch_counts(session=session, run_id=run_id),
        "mismatches": [m.model_dump() for m in service.mismatches(session=session, run_id=run_id)],
        "row_errors": [{"line": e.line_no, "field": e.field, "message": e.message}
                       for e in service.row_errors(session=session, run_id=run_id)],
    }
