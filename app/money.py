"""Exact money: ISO 4217 currencies with their minor units, and Decimal amounts.

Minor units come from the `iso4217` package (the ISO maintenance agency's list), not a
hand-typed table. Codes without minor units (gold, test codes, SDRs) are not payment
currencies and are refused.
"""

import re
from decimal import Decimal, InvalidOperation
from functools import cache, lru_cache

from iso4217 import Currency

MAX_AMOUNT_EXCLUSIVE = Decimal(10) ** 15
# Plain ASCII decimal notation. Decimal() alone also takes "1_000" and non-ASCII digits.
_DECIMAL_STRING = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


@lru_cache(maxsize=1)
def _minor_units_by_code() -> dict[str, int]:
    return {c.code: c.exponent for c in Currency if c.exponent is not None}


def minor_units(currency: str) -> int:
    """Decimal places the currency allows; KeyError for an unknown code."""
    return _minor_units_by_code()[currency]


def validate_currency(value: object) -> str:
    """An upper-case ISO 4217 payment currency code, or ValueError saying why not."""
    if not isinstance(value, str):
        raise ValueError("must be a 3-letter ISO 4217 currency code")
    if len(value) != 3 or not value.isascii() or not value.isalpha() or not value.isupper():
        raise ValueError("must be a 3-letter upper-case ISO 4217 currency code, e.g. USD")
    if value not in _minor_units_by_code():
        raise ValueError(f"{value} is not an ISO 4217 payment currency")
    return value


def parse_amount(value: object) -> Decimal:
    """A finite positive Decimal below 10^15 from a JSON number or a decimal string.

    Floats are refused: by the time an amount is a float it may already be wrong.
    """
    if isinstance(value, bool) or isinstance(value, float):
        raise ValueError("must be a decimal number or a decimal string, not a binary float")
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, Decimal):
        amount = value
    elif isinstance(value, str):
        text = value.strip()
        if text != value or len(text) > 64 or not _DECIMAL_STRING.fullmatch(text):
            raise ValueError("must be a decimal number such as \"1250.50\"")
        try:
            amount = Decimal(text)
        except InvalidOperation:
            raise ValueError("must be a decimal number such as \"1250.50\"") from None
    else:
        raise ValueError("must be a decimal number or a decimal string")
    if not amount.is_finite():
        raise ValueError("must be a finite number")
    if amount <= 0:
        raise ValueError("must be greater than 0")
    if amount >= MAX_AMOUNT_EXCLUSIVE:
        raise ValueError("must be less than 10^15")
    return amount


def check_minor_units(amount: Decimal, currency: str) -> Decimal:
    """The amount at the currency's scale; ValueError if that would need rounding."""
    places = minor_units(currency)
    quantum = Decimal(1).scaleb(-places)
    scaled = amount.quantize(quantum)
    if scaled != amount:
        noun = "decimal place" if places == 1 else "decimal places"
        raise ValueError(
            f"{currency} allows {places} {noun}; {amount} would have to be rounded"
            if places
            else f"{currency} has no minor unit; {amount} would have to be rounded"
        )
    return scaled


@cache  # only codes minor_units knows get in: an unknown one raises
def _smallest_unit(currency: str) -> Decimal:
    return Decimal(1).scaleb(-minor_units(currency))


def format_amount(amount: Decimal, currency: str) -> str:
    """The amount as a string with exactly the currency's minor units ("500" JPY)."""
    return f"{amount.quantize(_smallest_unit(currency)):f}"


def display(amount: Decimal, currency: str) -> str:
    """The amount as people read it, the same on every screen and in every message: "1,250.50 USD"."""
    return f"{Decimal(format_amount(amount, currency)):,f} {currency}"
