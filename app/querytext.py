"""Free text that arrives in a query string or path and is sent to PostgreSQL.

PostgreSQL `text` cannot hold NUL, and a lone surrogate (a JSON `"\\ud800"` escape, say)
cannot be encoded as UTF-8 at all: sent as a parameter, either is a driver error, a 500.
Such a value can never match a stored row, so it is refused as bad input naming its
field. Use `QueryText` for every free-text query parameter (FastAPI `Query`, pydantic
filter models); `refuse_unstorable` is the same check for hand-parsed values.
"""

import re
from typing import Annotated

from pydantic import AfterValidator

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


QueryText = Annotated[str, AfterValidator(refuse_unstorable)]
