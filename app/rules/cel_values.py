"""The values a rule condition computes with, and CEL's operators on them.

Numbers are Python ints and `decimal.Decimal`s, never floats: a literal such as
`999999999999999.98` is read as a Decimal, `tx.amount` arrives as one, and Python compares
int and Decimal exactly, so no binary float ever decides a comparison. Arithmetic runs in a
decimal context wide enough for any amount we store (38 significant digits).
A failing operation raises EvalError, which the evaluator turns into an `error` outcome.
"""

import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Context, Decimal, DivisionByZero, InvalidOperation
from typing import Any

DECIMAL_CONTEXT = Context(prec=38, traps=[DivisionByZero, InvalidOperation])
MAX_STRING = 65_536  # a computed string longer than this is an error, not a memory problem

Number = int | Decimal
# isinstance with a tuple of classes is faster than with a `X | Y` union, and this runs per node.
_NUMBER_TYPES = (int, Decimal)
_SEQUENCE_TYPES = (list, tuple)
_CONTAINER_TYPES = (list, tuple, Mapping)
_SIZED_TYPES = (str, list, tuple, Mapping)


class EvalError(Exception):
    """A condition failed while running (a missing key, a type mismatch, a division by zero…)."""


def type_name(value: Any) -> str:
    """CEL's name for a value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, Decimal):
        return "decimal"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "map"
    if isinstance(value, _SEQUENCE_TYPES):
        return "list"
    if isinstance(value, datetime):
        return "timestamp"
    if isinstance(value, timedelta):
        return "duration"
    return "unsupported value"


def is_number(value: Any) -> bool:
    return isinstance(value, _NUMBER_TYPES) and value.__class__ is not bool


def equal(left: Any, right: Any) -> bool:
    """CEL equality: numbers by value (int and decimal alike), other kinds only with their own kind."""
    if is_number(left) and is_number(right):
        return bool(left == right)
    if type_name(left) != type_name(right):
        return False
    if isinstance(left, Mapping):
        return left.keys() == right.keys() and all(equal(left[key], right[key]) for key in left)
    if isinstance(left, _SEQUENCE_TYPES):
        return len(left) == len(right) and all(equal(a, b) for a, b in zip(left, right))
    return bool(left == right)


def compare(left: Any, right: Any) -> int:
    """-1, 0 or 1; numbers with numbers, strings with strings, timestamps and durations with their own kind."""
    if is_number(left) and is_number(right):
        pass
    elif type_name(left) != type_name(right) or type_name(left) not in ("string", "timestamp", "duration", "bool"):
        raise EvalError(f"cannot compare {type_name(left)} with {type_name(right)}")
    return (left > right) - (left < right)


def truth(value: Any, operator: str) -> bool:
    if not isinstance(value, bool):
        raise EvalError(f"{operator} needs a bool, got {type_name(value)}")
    return value


INT_MIN, INT_MAX = -(2**63), 2**63 - 1


def int64(value: int) -> int:
    """CEL ints are 64-bit: overflow is an error, not a number that grows without bound."""
    if not INT_MIN <= value <= INT_MAX:
        raise EvalError("integer overflow")
    return value


def add(left: Any, right: Any) -> Any:
    if is_number(left) and is_number(right):
        if isinstance(left, int) and isinstance(right, int):
            return int64(left + right)
        return DECIMAL_CONTEXT.add(Decimal(left), Decimal(right))
    if isinstance(left, str) and isinstance(right, str):
        if len(left) + len(right) > MAX_STRING:
            raise EvalError("string too long")
        return left + right
    if isinstance(left, list) and isinstance(right, list):
        return left + right
    if isinstance(left, datetime) and isinstance(right, timedelta):
        return left + right
    if isinstance(left, timedelta) and isinstance(right, timedelta | datetime):
        return left + right
    raise EvalError(f"cannot add {type_name(left)} and {type_name(right)}")


def subtract(left: Any, right: Any) -> Any:
    if is_number(left) and is_number(right):
        if isinstance(left, int) and isinstance(right, int):
            return int64(left - right)
        return DECIMAL_CONTEXT.subtract(Decimal(left), Decimal(right))
    if isinstance(left, datetime) and isinstance(right, datetime | timedelta):
        return left - right
    if isinstance(left, timedelta) and isinstance(right, timedelta):
        return left - right
    raise EvalError(f"cannot subtract {type_name(right)} from {type_name(left)}")


def _numbers(left: Any, right: Any, operator: str) -> None:
    if not (is_number(left) and is_number(right)):
        raise EvalError(f"{operator} needs numbers, got {type_name(left)} and {type_name(right)}")


def multiply(left: Any, right: Any) -> Number:
    _numbers(left, right, "*")
    if isinstance(left, int) and isinstance(right, int):
        return int64(left * right)
    return DECIMAL_CONTEXT.multiply(Decimal(left), Decimal(right))


def divide(left: Any, right: Any) -> Number:
    _numbers(left, right, "/")
    if right == 0:
        raise EvalError("division by zero")
    if isinstance(left, int) and isinstance(right, int):
        quotient = abs(left) // abs(right)  # CEL's integer division truncates toward zero
        return quotient if (left >= 0) == (right >= 0) else -quotient
    return DECIMAL_CONTEXT.divide(Decimal(left), Decimal(right))


def modulo(left: Any, right: Any) -> Number:
    _numbers(left, right, "%")
    if right == 0:
        raise EvalError("modulus by zero")
    if isinstance(left, int) and isinstance(right, int):
        return left - divide(left, right) * right  # sign follows the dividend, as in CEL
    return DECIMAL_CONTEXT.remainder(Decimal(left), Decimal(right))


def negate(value: Any) -> Any:
    if is_number(value):
        return -value
    if isinstance(value, timedelta):
        return -value
    raise EvalError(f"cannot negate {type_name(value)}")


def contains(container: Any, item: Any) -> bool:
    """CEL's `in`: an element of a list, a key of a map."""
    if item.__class__ is str and container.__class__ is list:  # the common case (a literal list of strings)
        return item in container
    if isinstance(item, str) and isinstance(container, _CONTAINER_TYPES):
        return item in container  # a string equals only the same string
    if isinstance(container, Mapping):
        return any(equal(key, item) for key in container)
    if isinstance(container, _SEQUENCE_TYPES):
        return any(equal(element, item) for element in container)
    raise EvalError(f"'in' needs a list or a map, got {type_name(container)}")


def index(container: Any, key: Any) -> Any:
    if isinstance(container, Mapping):
        if isinstance(key, str) and key in container:
            return plain(container[key])
        for candidate, value in container.items():
            if equal(candidate, key):
                return value
        raise EvalError(f"no such key: {format_value(key)}")
    if isinstance(container, _SEQUENCE_TYPES):
        if not isinstance(key, int) or isinstance(key, bool):
            raise EvalError(f"a list index must be an int, got {type_name(key)}")
        if not 0 <= key < len(container):
            raise EvalError(f"index {key} out of range (size {len(container)})")
        return plain(container[key])
    raise EvalError(f"cannot index {type_name(container)}")


def field(container: Any, name: str) -> Any:
    """`a.name` on a map (metadata, score): the key's value; nothing else has fields."""
    if container.__class__ is dict or isinstance(container, Mapping):
        if name in container:
            return plain(container[name])
        raise EvalError(f"no such key: '{name}'")
    raise EvalError(f"{type_name(container)} has no field '{name}'")


def is_present(container: Any, name: str) -> bool:
    """has(a.name): the map has the key with a value (a field left empty, such as a null counterparty, is absent)."""
    if not isinstance(container, Mapping):
        raise EvalError(f"has() needs a map, got {type_name(container)}")
    return container.get(name) is not None


def plain(value: Any) -> Any:
    """Metadata as JSON gave it, in the condition's terms: a JSON float becomes the decimal it was written as."""
    if isinstance(value, float):
        return Decimal(repr(value))
    return value


def size(value: Any) -> int:
    if isinstance(value, _SIZED_TYPES):
        return len(value)
    raise EvalError(f"size() needs a string, list or map, got {type_name(value)}")


def string_of(value: Any) -> str:
    return value if isinstance(value, str) else format_value(value)


DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s|us|ns)")
UNIT_SECONDS = {"h": Decimal(3600), "m": Decimal(60), "s": Decimal(1), "ms": Decimal("0.001"),
                "us": Decimal("0.000001"), "ns": Decimal("0.000000001")}


def parse_duration(text: str) -> timedelta:
    """A CEL duration string ("1h", "90m", "1h30m", "2.5s"); ValueError otherwise."""
    body = text[1:] if text.startswith("-") else text
    position, seconds = 0, Decimal(0)
    while position < len(body):
        match = DURATION_PART.match(body, position)
        if match is None:
            raise ValueError(f'"{text}" is not a duration (use h, m, s: "1h", "24h", "90m")')
        seconds += Decimal(match.group(1)) * UNIT_SECONDS[match.group(2)]
        position = match.end()
    if not body or seconds > 10**10:
        raise ValueError(f'"{text}" is not a duration (use h, m, s: "1h", "24h", "90m")')
    value = timedelta(seconds=float(seconds)) if seconds % 1 else timedelta(seconds=int(seconds))
    return -value if text.startswith("-") else value


def parse_timestamp(text: str) -> datetime:
    """An RFC 3339 timestamp with its offset ("2026-12-01T00:00:00Z"); ValueError otherwise."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f'timestamp "{text}" needs a UTC offset, e.g. "2026-12-01T00:00:00Z"')
    return value


def format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    if seconds and seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds and seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{value.total_seconds():g}s"


def format_value(value: Any) -> str:
    """A value as people read it in an explanation: amounts as stored, strings quoted, lists in brackets."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, _NUMBER_TYPES):
        return str(value)
    if isinstance(value, str):
        return '"' + (value if len(value) <= 200 else value[:200] + "…") + '"'
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{format_value(k)}: {format_value(v)}" for k, v in list(value.items())[:20]) + "}"
    if isinstance(value, Sequence):
        return "[" + ", ".join(format_value(item) for item in list(value)[:20]) + "]"
    return type_name(value)
