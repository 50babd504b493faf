"""Bank events in and reconciliation results out; amounts are Decimal, never float."""

from datetime import UTC, datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from app.fields import Amount, AmountInCurrency, Currency, Identifier128
from app.reconciliation.enums import BankStatus, MismatchKind

MAX_EVENTS_PER_REQUEST = 5000


class BankEventIn(AmountInCurrency):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{
            "bank_reference": "BNK-2026-000123", "reference": "txn_abc123", "amount": "1250.50",
            "currency": "USD", "status": "booked", "booked_at": "2026-11-24T10:15:00Z",
        }]},
    )

    bank_reference: Identifier128
    reference: Identifier128
    currency: Currency  # before amount, so the amount validator can check the minor units
    amount: Amount
    status: BankStatus
    booked_at: AwareDatetime = Field(description="ISO 8601 with a time zone, e.g. 2026-11-24T10:15:00Z")

    @field_validator("booked_at")
    @classmethod
    def in_utc(cls, value: datetime) -> datetime:
        try:
            return value.astimezone(UTC)
        except OverflowError:  # 0001-01-01T00:00+00:01 is before the first representable UTC time
            raise ValueError("must be a time between years 1 and 9999 in UTC") from None


class BankEventsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"events": [{
        "bank_reference": "BNK-2026-000123", "reference": "txn_abc123", "amount": "1250.50",
        "currency": "USD", "status": "booked", "booked_at": "2026-11-24T10:15:00Z",
    }]}]})

    events: list[BankEventIn] = Field(min_length=1, max_length=MAX_EVENTS_PER_REQUEST)


class Mismatch(BaseModel):
    bank_reference: str
    reference: str
    kind: MismatchKind
    case_id: int
    line: int | None = Field(default=None, description="CSV line number (or 0-based index in `events`)")


class ReconciliationResult(BaseModel):
    run_id: int
    matched: int
    mismatches: list[Mismatch]
    replayed: int = Field(description="Identical bank events received before: nothing new was stored")


class RunOut(BaseModel):
    id: int
    source: str
    filename: str | None
    status: str
    total_rows: int
    rows_processed: int
    matched: int
    mismatched: int
    replayed: int
    malformed: int
    created_by: str | None
    created_at: datetime
    completed_at: datetime | None


class RunPage(BaseModel):
    items: list[RunOut]
