"""Keyset-pagination cursors: opaque to clients, one format for every list.

A cursor is a prefix naming the list and the integers of the last row's sort key,
`prefix:n[:n…]`, in unpadded URL-safe base64. Anything else is refused as "invalid cursor",
a 422 naming the `cursor` parameter.
"""

import base64
import binascii
from collections.abc import Callable
from typing import TypeVar

from fastapi.exceptions import RequestValidationError

INVALID = "invalid cursor"
K = TypeVar("K")


def encode(prefix: str, *key: int) -> str:
    """The cursor that points after the row whose sort key is `key`."""
    return base64.urlsafe_b64encode(":".join([prefix, *map(str, key)]).encode()).decode().rstrip("=")


def decode(cursor: str, prefix: str, length: int) -> tuple[int, ...]:
    """The sort key a cursor of `prefix` points after; ValueError if it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValueError(INVALID) from None
    parts = raw.split(":")
    # Up to 19 digits: a bigint; more would fail in the database instead of here.
    if len(parts) != length + 1 or parts[0] != prefix or not all(
        p.isascii() and p.isdigit() and len(p) <= 19 for p in parts[1:]
    ):
        raise ValueError(INVALID)
    return tuple(int(p) for p in parts[1:])


def from_query(cursor: str | None, decode: Callable[[str], K]) -> K | None:
    """The key a `cursor` query parameter points after (None without one), or the 422 naming it."""
    if cursor is None:
        return None
    try:
        return decode(cursor)
    except ValueError:
        raise RequestValidationError([{"loc": ("query", "cursor"), "msg": INVALID, "type": "value_error"}]) from None
