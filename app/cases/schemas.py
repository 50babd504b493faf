"""Review case shapes for /api/cases."""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator

from app.risk.schemas import RiskScoreOut
from app.transactions.schemas import TransactionOut, _clean_text

Decision = Literal["approve", "reject", "escalate"]
ReasonCode = Literal[
    "false_positive", "verified_customer", "suspected_fraud", "account_takeover",
    "sanctions_concern", "policy_violation", "needs_more_info", "other",
]
CaseState = Literal["open", "in_review", "approved", "rejected", "escalated"]
CaseKind = Literal["risk", "reconciliation"]


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
        Annotated[str, Field(max_length=2000)] | None, BeforeValidator(_clean_text), Field(validate_default=True)
    ] = None
    # The case version the reviewer saw; a decision on a stale view is refused with 409.
    version: Annotated[int | None, Field(ge=1)] = None

    @field_validator("note")
    @classmethod
    def _note_required_to_reject_or_escalate(cls, note: str | None, info: ValidationInfo) -> str | None:
        note = (note or "").strip() or None
        decision = info.data.get("decision")
        if decision in ("reject", "escalate") and note is None:
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
