from fastapi import APIRouter

from app.db import DbSession
from app.openapi import AUTH_ERRORS, BAD_INPUT
from app.risk import service
from app.risk.schemas import RiskScoreCreate, RiskScoreCreated
from app.security.deps import TransactionWriter
from app.uow.routing import ApiRoute

router = APIRouter(prefix="/transactions", tags=["risk scores"], route_class=ApiRoute)


@router.post(
    "/{reference}/risk-scores",
    response_model=RiskScoreCreated,
    status_code=201,
    summary="Post a risk score; at or above the flag threshold, or matching an amount rule, opens a review case",
    responses={404: {"description": "Unknown reference"}, **AUTH_ERRORS, **BAD_INPUT},
)
def post_risk_score(reference: str, data: RiskScoreCreate, principal: TransactionWriter, session: DbSession):
    return service.post_score(session=session, actor=principal.actor, reference=reference, data=data)
