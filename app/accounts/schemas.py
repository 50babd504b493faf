"""The account context: everything an agent needs about one account in one bounded answer."""

from datetime import datetime

from pydantic import BaseModel, Field

from app.cases.schemas import CaseOut
from app.rules.schemas import AccountRuleHit
from app.transactions.schemas import TransactionOut


class Total(BaseModel):
    currency: str
    status: str
    count: int
    amount: str = Field(description="Sum of amounts, with the currency's minor units", examples=["1250.50"])


class Decision(BaseModel):
    case_id: int
    transaction_reference: str | None
    decision: str
    reason_code: str | None
    note: str | None
    decided_by: str | None
    decided_at: datetime | None


class ScoreStats(BaseModel):
    count: int
    flagged: int
    mean: str | None = Field(description="Mean score to one decimal, as a string")
    min: int | None
    max: int | None
    latest: int | None


class Policy(BaseModel):
    flag_threshold: int
    dual_control_threshold: str
    amount_rules: dict[str, str] = Field(description="Currency → amount at or above which a score flags")
    claim_lease_minutes: int


class NextAction(BaseModel):
    action: str
    method: str
    path: str
    why: str


class AccountContext(BaseModel):
    account_id: str
    generated_at: datetime
    recent_transactions: list[TransactionOut] = Field(description="Newest first, at most 20")
    totals: list[Total] = Field(description="Every transaction of the account, by currency and status")
    open_cases: list[CaseOut] = Field(description="Undecided review cases, highest risk first, at most 20")
    recent_decisions: list[Decision] = Field(description="Newest first, at most 10")
    risk_scores: ScoreStats
    policy: Policy
    next_actions: list[NextAction] = Field(description="What the caller's role may do next, at most 20")
    rule_hits: list[AccountRuleHit] = Field(
        default=[], description="Why rules flagged the account's payments: newest matches first (shadow too), "
                                "each with the values its condition read, at most 20")
