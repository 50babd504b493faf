"""Risk score shapes: a 0–100 integer score with the model's reasons."""

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from app.fields import OptionalText100, Text


def _whole_number(value: Any) -> Any:
    # JSON numbers arrive as Decimal; 87.5 must be refused, not truncated.
    if isinstance(value, bool):
        raise ValueError("must be an integer from 0 to 100")
    if isinstance(value, Decimal):
        if not value.is_finite() or value != value.to_integral_value():
            raise ValueError("must be an integer from 0 to 100")
        return int(value)
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


NonBlank = Annotated[Text, AfterValidator(_not_blank)]


class Reason(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Annotated[NonBlank, Field(min_length=1, max_length=64)]
    description: Annotated[NonBlank, Field(min_length=1, max_length=1000)]
    weight: Annotated[Decimal | None, Field(ge=-1000, le=1000, allow_inf_nan=False)] = None


class RiskScoreCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{
            "score": 87, "model": "fraud-gbm", "model_version": "2026.11",
            "reasons": [{"code": "velocity", "description": "9 payments in 10 minutes", "weight": "0.41"}],
        }]},
    )

    score: Annotated[int, BeforeValidator(_whole_number), Field(ge=0, le=100, strict=False)]
    model: Annotated[NonBlank, Field(min_length=1, max_length=100)]
    model_version: OptionalText100 = None
    reasons: Annotated[list[Reason], Field(max_length=50)] = []


class RiskScoreCreated(BaseModel):
    id: int
    score: int
    flagged: bool
    case_id: int | None


class RiskScoreOut(BaseModel):
    id: int
    score: int
    model: str
    model_version: str | None
    reasons: list[dict[str, Any]]
    flagged: bool
    created_at: datetime
