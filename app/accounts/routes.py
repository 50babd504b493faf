from fastapi import APIRouter

from app.accounts import service
from app.accounts.schemas import AccountContext
from app.db import CoreDb
from app.fields import Identifier64
from app.openapi import AUTH_ERRORS
from app.security.deps import AnyUser
from app.uow.routing import ReadOnlyRoute

# Every route here only reads: no BEGIN or COMMIT to send (ReadOnlyRoute).
router = APIRouter(prefix="/accounts", tags=["accounts"], route_class=ReadOnlyRoute)


@router.get(
    "/{account_id}/context",
    response_model=AccountContext,
    summary="Everything an agent needs about an account, in one bounded call",
    description=(
        "Recent transactions, totals by currency and status, open cases, recent decisions with reasons, "
        "risk-score statistics, the policy in force and what the caller may do next. An account with no "
        "transactions answers 200 with empty lists."
    ),
    responses={**AUTH_ERRORS, 422: {"description": "account_id is not 1-64 printable characters"}},
)
def account_context(account_id: Identifier64, principal: AnyUser, session: CoreDb):
    return service.get_context(session=session, account_id=account_id, principal=principal)
