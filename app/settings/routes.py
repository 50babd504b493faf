"""Admin JSON for review settings and amount rules; changes are audited and apply to the next request."""

from typing import Annotated, Any

from fastapi import APIRouter, Body
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from app import money
from app.db import DbSession
from app.fields import Currency
from app.openapi import AUTH_ERRORS, BAD_INPUT
from app.security.deps import Admin
from app.settings import service
from app.settings.schemas import AmountRuleOut, AmountRuleSet, SettingsOut, SettingsUpdate
from app.uow.routing import ApiRoute

router = APIRouter(prefix="/api/settings", tags=["settings"], route_class=ApiRoute)


def validated_rule(data: dict[str, Any]) -> AmountRuleSet:
    """The rule, or a 422 naming the field (the currency comes from the path, the threshold from the body)."""
    try:
        return AmountRuleSet.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_input=False)) from None


def current(session) -> SettingsOut:
    """The settings as shown to admins (screen and API)."""
    values = service.get_review_settings(session=session)
    return SettingsOut(
        flag_threshold=values.flag_threshold, dual_control_threshold=str(values.dual_control_threshold),
        claim_lease_minutes=values.claim_lease_minutes, sla_hours_risk=values.sla_hours_risk,
        sla_hours_reconciliation=values.sla_hours_reconciliation,
        group_flags_by_account=values.group_flags_by_account,
        amount_rules=[AmountRuleOut(currency=r.currency, threshold=money.format_amount(r.threshold, r.currency))
                      for r in service.amount_rules(session=session)],
    )


@router.get("", response_model=SettingsOut, summary="Review settings and amount rules", responses=AUTH_ERRORS)
def get_settings(principal: Admin, session: DbSession):
    return current(session)


@router.patch("", response_model=SettingsOut, summary="Change any of the review settings",
              responses={**AUTH_ERRORS, **BAD_INPUT})
def update_settings(data: SettingsUpdate, principal: Admin, session: DbSession):
    service.update(session=session, actor=principal.actor, changes=data.changes(), user_id=principal.user_id)
    return current(session)


@router.put("/amount-rules/{currency}", response_model=SettingsOut, summary="Add or change a currency's amount rule",
            responses={**AUTH_ERRORS, **BAD_INPUT})
def set_amount_rule(
    currency: Currency,
    data: Annotated[dict[str, Any], Body(description="The threshold at or above which a payment in this currency "
                                         "opens a review case", examples=[{"threshold": "5000.00"}])],
    principal: Admin,
    session: DbSession,
):
    rule = validated_rule({**data, "currency": currency})
    service.set_amount_rule(session=session, actor=principal.actor, currency=rule.currency,
                            threshold=rule.threshold, user_id=principal.user_id)
    return current(session)


@router.delete("/amount-rules/{currency}", response_model=SettingsOut, summary="Remove a currency's amount rule",
               responses={**AUTH_ERRORS, 404: {"description": "No rule for this currency"}})
def remove_amount_rule(currency: Currency, principal: Admin, session: DbSession):
    service.remove_amount_rule(session=session, actor=principal.actor, currency=currency)
    return current(session)
