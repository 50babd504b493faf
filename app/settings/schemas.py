from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationInfo, field_validator

from app import money

Hours = Annotated[int, Field(ge=1, le=720)]


class SettingsUpdate(BaseModel):
    """Any subset of the review settings; every bound is named in its field's error."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"flag_threshold": 80, "dual_control_threshold": "25000.00"}, {"claim_lease_minutes": 30}]})

    flag_threshold: Annotated[int, Field(ge=0, le=100)] | None = None
    dual_control_threshold: Decimal | None = None
    claim_lease_minutes: Annotated[int, Field(ge=1, le=480)] | None = None
    sla_hours_risk: Hours | None = None
    sla_hours_reconciliation: Hours | None = None
    # Group new flags on an account into its open risk case instead of opening a second one.
    group_flags_by_account: StrictBool | None = None

    @field_validator("dual_control_threshold", mode="before")
    @classmethod
    def _positive_decimal(cls, value: Any) -> Any:
        return None if value is None else money.parse_amount(value)

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class AmountRuleSet(BaseModel):
    """A rule's currency and threshold: positive, within the currency's minor units."""

    model_config = ConfigDict(extra="forbid")

    currency: str
    threshold: Decimal

    @field_validator("currency", mode="before")
    @classmethod
    def _currency(cls, value: Any) -> str:
        return money.validate_currency(value)

    @field_validator("threshold", mode="before")
    @classmethod
    def _threshold(cls, value: Any, info: ValidationInfo) -> Decimal:
        amount = money.parse_amount(value)
        currency = info.data.get("currency")
        return money.check_minor_units(amount, currency) if currency else amount


class AmountRuleOut(BaseModel):
    currency: str
    threshold: str


class SettingsOut(BaseModel):
    flag_threshold: int
    dual_control_threshold: str
    claim_lease_minutes: int
    sla_hours_risk: int
    sla_hours_reconciliation: int
    group_flags_by_account: bool
    amount_rules: list[AmountRuleOut]
