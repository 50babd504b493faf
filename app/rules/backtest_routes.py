"""POST /api/rules/backtest: how a condition or a stored rule version would have done (admins only)."""

from fastapi import APIRouter

from app.db import DbSession
from app.openapi import AUTH_ERRORS, Responses
from app.rules import backtest
from app.rules.routes import CONDITION_ERRORS
from app.security.deps import Admin
from app.uow.routing import ApiRoute

router = APIRouter(prefix="/api/rules", tags=["rules"], route_class=ApiRoute)
NOT_FOUND: Responses = {404: {"description": "Unknown rule, or the rule has no such version"}}


@router.post("/backtest", response_model=backtest.BacktestResult,
             summary="Evaluate a condition (or a rule's version) on stored transactions, each as of its own time",
             description="Admins only (analysts and agents get 403). Writes nothing but its `rule.backtested` "
                         "audit event. Conditions that read `score` see an empty score (stored transactions are "
                         "replayed as `transaction.created`).",
             responses={**AUTH_ERRORS, **CONDITION_ERRORS, **NOT_FOUND})
def run_backtest(data: backtest.BacktestRequest, principal: Admin, session: DbSession):
    return backtest.run(session=session, actor=principal.actor, data=data)
