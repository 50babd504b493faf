"""Rule, version, hit, snooze, stats and list shapes; every bound is named in its field's error."""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.fields import Identifier64, OptionalText1000, StrippedText, Text
from app.rules.enums import RuleMode

RuleName = Annotated[StrippedText, StringConstraints(min_length=1, max_length=100)]
Reason = Annotated[StrippedText, StringConstraints(min_length=1, max_length=500)]
# Conditions are length-checked by the compiler, which names the position (SPEC: over 4,096
# characters is a 422 on `condition`); the body limit (1 MiB) bounds what reaches it.
Condition = Annotated[Text, Field(min_length=1, examples=['tx.amount > 10000 && tx.currency == "USD"'])]
ListName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_-]{1,64}$")]
ListValue = Annotated[Text, StringConstraints(min_length=1, max_length=256)]
MAX_LIST_ITEMS = 10_000


class Action(BaseModel):
    """What a hit does: the case's risk (1–100) and the reason shown with it."""

    model_config = ConfigDict(extra="forbid")

    risk: Annotated[int, Field(ge=1, le=100, strict=True)]
    reason: Reason


class RuleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "name": "Large first payment", "condition": "tx.amount >= 5000 && account_count(\"720h\") == 0",
        "action": {"risk": 80, "reason": "First payment of the account is large"}, "mode": "shadow",
    }]})

    name: RuleName
    description: OptionalText1000 = None
    condition: Condition
    action: Action
    mode: Literal["draft", "shadow", "active"] = "draft"


class RuleUpdate(BaseModel):
    """A new draft version (condition and/or action; the others are kept), or a new description."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"condition": "tx.amount >= 7500"}]})

    condition: Condition | None = None
    action: Action | None = None
    description: OptionalText1000 = None


class PublishRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"version": 2, "mode": "active"}]})

    version: Annotated[int, Field(ge=1, lt=2**31, strict=True)]
    mode: Literal["shadow", "active"]


class VersionOut(BaseModel):
    version: int
    condition: str
    action: Action
    created_by: int | None
    created_at: datetime
    is_running: bool


class RuleOut(BaseModel):
    """A rule with every version: `version` is the newest, `running_version` the published one (or null)."""

    id: int
    name: str
    description: str | None
    mode: RuleMode
    version: int
    running_version: int | None
    versions: list[VersionOut]
    created_at: datetime
    updated_at: datetime


class RuleSummary(BaseModel):
    """A rule in the list: what runs, and the condition and action of that version (else the newest)."""

    id: int
    name: str
    description: str | None
    mode: RuleMode
    version: int
    running_version: int | None
    condition: str
    action: Action
    updated_at: datetime
    hits_24h: int = Field(description="Hits (active and shadow) in the last 24 hours")
    precision: float | None = Field(description="rejected ÷ (approved + rejected) among hit transactions")


class Explanation(BaseModel):
    """Why a rule flagged a transaction: the rule, the version that ran, and the values its condition read."""

    rule_id: int
    rule_name: str
    version: int
    mode: Literal["shadow", "active"]
    risk: int
    reason: str
    values: dict[str, str]


class AccountRuleHit(Explanation):
    transaction_reference: str
    created_at: datetime


class HitOut(BaseModel):
    id: int
    rule_id: int
    version: int
    mode: Literal["shadow", "active"]
    outcome: Literal["hit", "error"]
    event: str
    transaction_id: int
    transaction_reference: str
    account_id: str
    values: dict[str, Any]
    error: str | None
    risk: int
    reason: str
    case_id: int | None
    snoozed: bool
    created_at: datetime


class HitPage(BaseModel):
    items: list[HitOut]
    next_cursor: str | None


class SnoozeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "account_id": "acct_1", "until": "2026-12-31T00:00:00Z", "reason": "Known payroll run, confirmed by phone",
    }]})

    account_id: Identifier64
    until: datetime = Field(description="When the snooze ends: with a time zone, in the future, at most 90 days ahead")
    reason: Reason


class SnoozeOut(BaseModel):
    id: int
    rule_id: int
    account_id: str
    until: datetime
    reason: str
    created_by: int | None
    created_at: datetime
    is_active: bool


class Outcomes(BaseModel):
    """How the cases of hit transactions were decided (a transaction without a case is not_reviewed)."""

    approved: int = 0
    rejected: int = 0
    escalated: int = 0
    undecided: int = 0
    not_reviewed: int = 0


class RuleStats(BaseModel):
    hits: int = Field(description="Hits of the rule while active")
    shadow_hits: int = Field(description="Hits while in shadow (recorded, no case)")
    errors: int = Field(description="Evaluations that failed at run time")
    hits_24h: int = Field(description="Hits (active and shadow) in the last 24 hours")
    cases_opened: int = Field(description="Cases the rule's hits opened or joined")
    outcomes: Outcomes
    precision: float | None = Field(description="rejected ÷ (approved + rejected) among hit transactions; "
                                                "null when none was decided")


class ListReplace(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "description": "Counterparties we never pay", "items": ["ACME Shell Co", "Bad Actor Ltd"]}]})

    description: OptionalText1000 = None
    items: list[ListValue] = Field(max_length=MAX_LIST_ITEMS)


class ListItemsAdd(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"items": ["Bad Actor Ltd"]}]})

    items: list[ListValue] = Field(min_length=1, max_length=MAX_LIST_ITEMS)


class ListSummary(BaseModel):
    name: str
    description: str | None
    item_count: int
    created_at: datetime
    updated_at: datetime


class ListOut(ListSummary):
    items: list[str]
