"""Review case shapes for /api/cases."""

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator

from app.cases.enums import CaseKind, CaseState, Decision, ReasonCode
from app.fields import Currency, Identifier64, clean_text, refuse_unstorable
from app.risk.schemas import RiskScoreOut
from app.transactions.schemas import TransactionOut


def _search_text(value: Any) -> Any:
    """Search text with its spaces collapsed (a line break never joins two searched values); blank: no search."""
    return (" ".join(refuse_unstorable(value).split()) or None) if isinstance(value, str) else value


SearchText = Annotated[Annotated[str, Field(max_length=128)] | None, BeforeValidator(_search_text)]


class QueueFilter(BaseModel):
    """The queue's filters, declared once for /api/cases and the queue screen; None means "any"."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    state: CaseState | None = None  # None: every undecided case
    kind: CaseKind | None = None
    currency: Currency | None = None
    min_amount: Annotated[Decimal | None, Field(ge=0, lt=10**15, allow_inf_nan=False)] = None
    max_amount: Annotated[Decimal | None, Field(ge=0, lt=10**15, allow_inf_nan=False)] = None
    min_score: Annotated[int | None, Field(ge=0, le=100)] = None
    max_score: Annotated[int | None, Field(ge=0, le=100)] = None
    assignee: Identifier64 | None = None
    # Part of a transaction reference, account or counterparty, in any case.
    q: SearchText = None


class CaseListQuery(QueueFilter):
    """GET /api/cases: the queue's filters and a page of it."""

    limit: Annotated[int, Field(ge=1, le=200)] = 50
    cursor: Annotated[str | None, Field(max_length=64)] = None


class DecisionRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [
            {"decision": "reject", "reason_code": "suspected_fraud", "note": "Card testing pattern", "version": 3}
        ]},
    )

    decision: Decision
    reason_code: ReasonCode
    note: Annotated[
        Annotated[str, Field(max_length=2000)] | None, BeforeValidator(clean_text), Field(validate_default=True)
    ] = None
    # The case version the reviewer saw; a decision on a stale view is refused with 409.
    version: Annotated[int | None, Field(ge=1)] = None

    @field_validator("note")
    @classmethod
    def _note_required_to_reject_or_escalate(cls, note: str | None, info: ValidationInfo) -> str | None:
        note = (note or "").strip() or None
        decision = info.data.get("decision")
        if decision in (Decision.REJECT, Decision.ESCALATE) and note is None:
            raise ValueError(f"a note is required to {decision}")
        return note


class CaseOut(BaseModel):
    id: int
    kind: str
    state: str
    risk: int
    reason: str
    amount: str | None
    currency: str | None
    transaction_reference: str | None
    account_id: str | None
    counterparty: str | None
    assignee: str | None
    lease_expires_at: datetime | None
    needs_second_approval: bool
    first_approved_by: str | None
    decision: str | None
    reason_code: str | None
    note: str | None
    decided_by: str | None
    decided_at: datetime | None
    version: int
    opened_at: datetime
    updated_at: datetime


class DecisionOut(CaseOut):
    message: str


class TimelineEvent(BaseModel):
    id: int
    occurred_at: datetime
    actor: str
    actor_role: str | None
    actor_type: Literal["human", "agent", "system"]
    action: str
    entity_type: str
    entity_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    reason: str | None


class CaseDetail(BaseModel):
    case: CaseOut
    transaction: TransactionOut | None
    scores: list[RiskScoreOut]
    timeline: list[TimelineEvent]
    account_history: list[TransactionOut]


class CasePage(BaseModel):
    items: list[CaseOut]
    next_cursor: str | None


class QueueCounts(BaseModel):
    """Each count stops at 10,000: a value of 10000 means "10,000 or more"."""

    open: int
    in_review: int
    escalated: int
    awaiting_second_approval: int
    mine: int
