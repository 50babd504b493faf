"""JSON request bodies parsed without binary floats.

Every JSON number with a fraction or exponent becomes a Decimal (NaN and Infinity too,
so validators can refuse them by field name); amounts never pass through float.
"""

import json
from decimal import Decimal
from typing import Any

from fastapi import Request


def loads(body: bytes | str) -> Any:
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")  # JSON on the wire is UTF-8 (RFC 8259)
        except UnicodeDecodeError as exc:
            # A JSONDecodeError becomes FastAPI's 422 json_invalid, like any other malformed body.
            raise json.JSONDecodeError("body is not valid UTF-8", "", exc.start) from None
    return json.loads(body, parse_float=Decimal, parse_constant=Decimal)


class DecimalJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads(await self.body())
        return self._json
