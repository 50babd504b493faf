"""Request and response shapes for transactions; amounts are Decimal, never float."""

import json
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.fields import (
    Amount,
    AmountInCurrency,
    Currency,
    Identifier64,
    Identifier128,
    OptionalText255,
    OptionalText500,
    OptionalText1000,
    clean_text,
)
from app.transactions.enums import ReviewStatus, TransactionStatus

METADATA_MAX_BYTES = 16 * 1024
METADATA_MAX_DEPTH = 32
DEFAULT_CURRENCY = "USD"


def _json_safe_number(value: Decimal) -> int | float | str:
    if not value.is_finite():
        raise ValueError("metadata numbers must be finite")
    if value == value.to_integral_value() and "E" not in str(value) and "." not in str(value):
        return int(value)
    as_float = float(value)
    return as_float if Decimal(repr(as_float)) == value else str(value)


def normalize_metadata(value: Any, depth: int = 0) -> Any:
    """JSON-safe metadata: numbers kept exact (as numbers when a double holds them, else strings)."""
    if isinstance(value, (dict, list)) and depth >= METADATA_MAX_DEPTH:
        # Refuse it before recursion overflows (here, in json.dumps, or writing the response): a 500.
        raise ValueError(f"must not nest objects or arrays more than {METADATA_MAX_DEPTH} levels deep")
    if isinstance(value, dict):
        return {clean_text(k): normalize_metadata(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [normalize_metadata(v, depth + 1) for v in value]
    if isinstance(value, Decimal):
        return _json_safe_number(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("metadata numbers must be finite")
        return value
    return clean_text(value)


class TransactionCreate(AmountInCurrency):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "account_id": "acct_001",
                    "reference": "txn_abc123",
                    "currency": "USD",
                    "amount": "1250.50",
                    "counterparty": "ACME Supplies Ltd",
                    "description": "Invoice 2291",
                    "metadata": {"channel": "card", "country": "DE"},
                }
            ]
        },
    )

    account_id: Identifier64
    reference: Identifier128
    # Declared before amount so the amount validator can check the currency's minor units.
    # Optional, "USD" when omitted: the seed's clients send no currency (SPEC.md).
    currency: Currency = DEFAULT_CURRENCY
    amount: Amount
    counterparty: OptionalText255 = None
    description: OptionalText1000 = None
    metadata: dict[str, Any] | None = None

    @field_validator("metadata")
    @classmethod
    def metadata_is_small_json(cls, metadata: dict[str, Any] | None) -> dict[str, Any]:
        normalized = normalize_metadata(metadata or {})
        if len(json.dumps(normalized, ensure_ascii=False).encode()) > METADATA_MAX_BYTES:
            raise ValueError(f"must be at most {METADATA_MAX_BYTES} bytes of JSON")
        return normalized


class TransactionOut(BaseModel):
    id: int
    account_id: str
    reference: str
    amount: str = Field(examples=["1250.50"])
    currency: str
    status: TransactionStatus
    review_status: ReviewStatus
    counterparty: str | None
    description: str | None
    metadata: dict[str, Any]
    settlement_reason: str | None
    settled_at: datetime | None
    created_at: datetime
    updated_at: datetime
    risk_score: int | None = Field(default=None, description="The latest risk score, if any")


class TransactionPage(BaseModel):
    items: list[TransactionOut]
    next_cursor: str | None


class SettlementRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"status": "settled"}]})

    status: Literal["settled", "failed"]  # the two TransactionStatus values a settlement reaches
    reason: OptionalText500 = None


BATCH_MAX_ITEMS = 1000


class BatchRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"items": [
            {"account_id": "acct_001", "reference": "txn_b1", "amount": "19.99", "currency": "EUR"},
            {"account_id": "acct_002", "reference": "txn_b2", "amount": "5000", "currency": "JPY",
             "counterparty": "Sakura Electronics"},
        ]}]},
    )

    items: list[Any] = Field(
        min_length=1,
        max_length=BATCH_MAX_ITEMS,
        description="Up to 1,000 transactions, each with the same shape and rules as POST /transactions",
        json_schema_extra={"items": {"$ref": "#/components/schemas/TransactionCreate"}},
    )


class BatchItemResult(BaseModel):
    index: int
    reference: str | None
    status_code: int
    replayed: bool = False
    transaction: TransactionOut | None = None
    error: Any = None


class BatchResponse(BaseModel):
    items: list[BatchItemResult]
    created: int
    replayed: int
    failed: int
