"""Review case shapes for /api/cases."""

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator

from app.cases.enums import ALL_REASON_CODES, CaseKind, CaseState, Decision
from app.fields import Currency, Identifier64, clean_text, refuse_unstorable
from app.risk.schemas import RiskScoreOut
from app.rules.schemas import Explanation
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


# A context token: `name:value` parts joined by ";" (app/cases/context.py).
SEEN_PATTERN = r"^[a-z_]+:[A-Za-z0-9_.-]*(;[a-z_]+:[A-Za-z0-9_.-]*)*$"


class DecisionRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [
            {"decision": "reject", "reason_code": "suspected_fraud", "note": "Card testing pattern", "version": 3}
        ]},
    )

    decision: Decision
    # A fraud reason for a transaction's case; for a reconciliation case, its outcome
    # (matched_manually, ledger_corrected, bank_error, written_off). app/cases/decisions.py
    # checks which fits the case.
    reason_code: Annotated[str, Field(json_schema_extra={"enum": list(ALL_REASON_CODES)})]
    note: Annotated[
        Annotated[str, Field(max_length=2000)] | None, BeforeValidator(clean_text), Field(validate_default=True)
    ] = None
    # The case version the reviewer saw; a decision on a stale view is refused with 409.
    version: Annotated[int | None, Field(ge=1)] = None
    # The context token the reviewer's page (or GET /api/cases/{id}) carried, `seen`: when a
    # new score, a grouped flag or a settlement arrived since, the decision is refused (409)
    # saying what changed. Absent: not checked.
    seen: Annotated[str | None, Field(min_length=1, max_length=200, pattern=SEEN_PATTERN)] = None

    @field_validator("reason_code")
    @classmethod
    def _known_reason_code(cls, code: str) -> str:
        if code not in ALL_REASON_CODES:
            raise ValueError("must be one of " + ", ".join(ALL_REASON_CODES))
        return code

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
    # The event in a sentence, for people ("alice claimed the case, lease until 21:29 UTC").
    summary: str = ""


class CaseDetail(BaseModel):
    case: CaseOut
    transaction: TransactionOut | None
    scores: list[RiskScoreOut]
    timeline: list[TimelineEvent]
    account_history: list[TransactionOut]
    # Transactions whose flags joined this case (the group_flags_by_account setting).
    grouped_transactions: list[TransactionOut] = []
    # What this view showed (latest score, settlement, grouped flags): send it back as the
    # decision's `seen` to have a decision on changed context refused.
    seen: str = ""
    # Why rules flagged the case's payments: each match with the values its condition read.
    explanations: list[Explanation] = []


class CommentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"text": "Called the customer."}]})

    text: Annotated[str, BeforeValidator(clean_text), Field(min_length=1, max_length=4000)]

    @field_validator("text")
    @classmethod
    def _not_blank(cls, text: str) -> str:
        if not text.strip():
            raise ValueError("a comment cannot be empty")
        return text.strip()


class CommentOut(BaseModel):
    id: int
    case_id: int
    author: str
    text: str
    created_at: datetime


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
