from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import ValidationError

from app import cursors
from app.db import CoreDb, DbSession
from app.errors import Conflict, field_errors
from app.fields import Identifier64
from app.openapi import AUTH_ERRORS, BAD_INPUT
from app.security.deps import AnyUser, PrincipalClaims, TransactionWriter
from app.transactions import flows, service
from app.transactions.enums import ReviewStatus, TransactionStatus
from app.transactions.group import groups
from app.transactions.schemas import (
    BatchRequest,
    BatchResponse,
    SettlementRequest,
    TransactionCreate,
    TransactionOut,
    TransactionPage,
)
from app.uow.routing import ApiRoute, GroupCommitRoute, ReadOnlyRoute, Shaped

router = APIRouter(prefix="/transactions", tags=["transactions"], route_class=ApiRoute)


def create_transaction(data: TransactionCreate, response: Response, principal: TransactionWriter, session: CoreDb):
    if isinstance(principal, PrincipalClaims):  # not yet checked: the group checks it in its transaction
        outcome = groups.create(data, principal, session.info["context"])
    else:  # with an Idempotency-Key, in the request's own transaction
        outcome = flows.create(session=session, actor=principal.actor, data=data)
    if not outcome.created:
        response.headers["Idempotent-Replayed"] = "true"
    return Shaped(service.as_plain(outcome.transaction))


# The write joins a group transaction (app/transactions/group.py): a GroupCommitRoute.
router.add_api_route(
    "",
    create_transaction,
    methods=["POST"],
    route_class_override=GroupCommitRoute,
    response_model=TransactionOut,
    summary="Create a transaction (idempotent by reference)",
    responses={
        200: {"description": "Created, or an identical replay (header Idempotent-Replayed: true)"},
        409: {"description": "The reference exists with a different payload"},
        **AUTH_ERRORS,
        **BAD_INPUT,
    },
)


@router.post(
    "/batch",
    response_model=BatchResponse,
    summary="Create up to 1,000 transactions; per-item results in order",
    responses={**AUTH_ERRORS, **BAD_INPUT},
)
def create_batch(payload: BatchRequest, principal: TransactionWriter, session: CoreDb):
    # Built as plain data in BatchResponse's shape (see Shaped): a model per item would cost
    # more than inserting it.
    results: list[dict[str, Any] | None] = [None] * len(payload.items)
    valid: list[tuple[int, TransactionCreate]] = []
    for index, item in enumerate(payload.items):
        try:
            valid.append((index, TransactionCreate.model_validate(item)))
        except ValidationError as exc:
            reference = item.get("reference") if isinstance(item, dict) else None
            results[index] = _batch_item(index, reference if isinstance(reference, str) else None, 422,
                                         error={"detail": field_errors(exc.errors())})
    actor = principal.actor
    outcomes = flows.create_many(session=session, items=[service.NewTransaction(data, actor) for _, data in valid])
    for (index, data), outcome in zip(valid, outcomes, strict=True):
        if isinstance(outcome, Conflict):
            results[index] = _batch_item(index, data.reference, 409, error={"detail": outcome.detail})
        else:
            results[index] = _batch_item(index, data.reference, 200, replayed=not outcome.created,
                                         transaction=service.as_plain(outcome.transaction))
    items = [r for r in results if r is not None]
    return Shaped({
        "items": items,
        "created": sum(1 for r in items if r["status_code"] == 200 and not r["replayed"]),
        "replayed": sum(1 for r in items if r["replayed"]),
        "failed": sum(1 for r in items if r["status_code"] != 200),
    })


def _batch_item(index: int, reference: str | None, status_code: int, *, replayed: bool = False,
                transaction: dict[str, Any] | None = None, error: Any = None) -> dict[str, Any]:
    """One BatchItemResult as plain data, its fields in the model's order."""
    return {"index": index, "reference": reference, "status_code": status_code, "replayed": replayed,
            "transaction": transaction, "error": error}


@router.get(
    "",
    response_model=TransactionPage,
    summary="List transactions, newest first (keyset pagination)",
    responses={**AUTH_ERRORS, 422: {"description": "Invalid filter or cursor"}},
)
def list_transactions(
    principal: AnyUser,
    session: DbSession,
    account_id: Annotated[Identifier64 | None, Query()] = None,
    status: TransactionStatus | None = None,
    review_status: ReviewStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
):
    after_id = cursors.from_query(cursor, service.decode_cursor)
    rows, next_cursor = service.list_page(
        session=session, limit=limit, after_id=after_id,
        account_id=account_id, status=status, review_status=review_status,
    )
    return TransactionPage(items=[service.to_out(tx) for tx in rows], next_cursor=next_cursor)


def get_transaction(reference: str, principal: AnyUser, session: CoreDb):
    return Shaped(service.as_plain(service.read_by_reference(session=session, reference=reference)))


# A read: the token check and the SELECT go in one message, with no BEGIN or COMMIT (ReadOnlyRoute).
router.add_api_route(
    "/{reference}",
    get_transaction,
    methods=["GET"],
    route_class_override=ReadOnlyRoute,
    response_model=TransactionOut,
    summary="Get one transaction with its latest risk score",
    responses={404: {"description": "Unknown reference"}, **AUTH_ERRORS},
)


@router.post(
    "/{reference}/settlement",
    response_model=TransactionOut,
    summary="Settle or fail a pending transaction",
    responses={
        404: {"description": "Unknown reference"},
        409: {"description": "Not pending, a different outcome, or blocked by review (says why)"},
        **AUTH_ERRORS,
        **BAD_INPUT,
    },
)
def settle_transaction(reference: str, request: SettlementRequest, principal: TransactionWriter, session: DbSession):
    service.settle(session=session, actor=principal.actor, reference=reference, request=request)
    return service.to_out(service.read_by_reference(session=session, reference=reference))
