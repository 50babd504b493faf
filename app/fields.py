"""Field types every domain shares: identifiers, free text, currency and amount.

PostgreSQL `text` cannot hold NUL, and a lone surrogate (a JSON `"\\ud800"` escape, say)
cannot be encoded as UTF-8 at all: sent as a parameter, either is a driver error, a 500.
Such a value can never match a stored row either, so it is refused as bad input naming
its field. Bodies use the types below (`Text`, `OptionalText255`, `Identifier64` …); free-text
query and path parameters use `QueryText`; `refuse_unstorable` is the same check for
hand-parsed values.
"""

import re
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, ValidationInfo, field_validator

from app import money

_NUL_OR_SURROGATE = re.compile("[\x00\ud800-\udfff]")


def unstorable_reason(value: str) -> str | None:
    """Why PostgreSQL cannot take `value` as text, or None if it can."""
    found = _NUL_OR_SURROGATE.search(value)
    if found is None:
        return None
    if found.group() == "\x00":
        return "must not contain NUL characters"
    return "must be valid Unicode text (no lone surrogates)"


def refuse_unstorable(value: str) -> str:
    """`value` unchanged, or ValueError (a 422 naming the field) when PostgreSQL cannot take it."""
    reason = unstorable_reason(value)
    if reason:
        raise ValueError(reason)
    return value


def clean_text(value: Any) -> Any:
    """A string PostgreSQL can store, unchanged; anything else is left for the field's type to judge."""
    return refuse_unstorable(value) if isinstance(value, str) else value


def clean_stripped_text(value: Any) -> Any:
    """clean_text, without leading and trailing whitespace (a blank text then fails min_length)."""
    value = clean_text(value)
    return value.strip() if isinstance(value, str) else value


def _identifier(value: Any) -> Any:
    value = clean_text(value)
    if isinstance(value, str) and (value != value.strip() or not value.isprintable()):
        raise ValueError("must be printable and have no leading or trailing spaces")
    return value


# Text up to N characters, or null. The length applies to the text alone: pydantic cannot
# apply it to a `str | None` union behind a BeforeValidator, and an explicit null was a 500.
# Spelled out per length, as a type checker reads an annotation only as a type.
OptionalText100 = Annotated[Annotated[str, Field(max_length=100)] | None, BeforeValidator(clean_text)]
OptionalText200 = Annotated[Annotated[str, Field(max_length=200)] | None, BeforeValidator(clean_text)]
OptionalText255 = Annotated[Annotated[str, Field(max_length=255)] | None, BeforeValidator(clean_text)]
OptionalText500 = Annotated[Annotated[str, Field(max_length=500)] | None, BeforeValidator(clean_text)]
OptionalText1000 = Annotated[Annotated[str, Field(max_length=1000)] | None, BeforeValidator(clean_text)]
QueryText = Annotated[str, AfterValidator(refuse_unstorable)]
Text = Annotated[str, BeforeValidator(clean_text)]
# Stripped before the constraints that follow it apply (StringConstraints' own strip_whitespace
# runs after min_length behind a BeforeValidator, so "  " passed min_length=1 as "").
StrippedText = Annotated[str, BeforeValidator(clean_stripped_text)]
Identifier64 = Annotated[str, BeforeValidator(_identifier), Field(min_length=1, max_length=64)]
Identifier128 = Annotated[str, BeforeValidator(_identifier), Field(min_length=1, max_length=128)]
Currency = Annotated[str, BeforeValidator(money.validate_currency), Field(examples=["USD"])]
Amount = Annotated[
    Decimal,
    BeforeValidator(money.parse_amount),
    Field(description="A decimal string or JSON number, > 0 and < 10^15, within the currency's minor units",
          examples=["1250.50"]),
]


class AmountInCurrency(BaseModel):
    """An `amount` checked against the minor units of a `currency` declared before it."""

    @field_validator("amount", check_fields=False)
    @classmethod
    def amount_fits_currency(cls, amount: Decimal, info: ValidationInfo) -> Decimal:
        currency = info.data.get("currency")
        return money.check_minor_units(amount, currency) if currency else amount
