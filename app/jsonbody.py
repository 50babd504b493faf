"""JSON request bodies parsed without binary floats.

Every JSON number with a fraction or exponent becomes a Decimal (NaN and Infinity too,
so validators can refuse them by field name); amounts never pass through float.
"""

import json
from decimal import Decimal
from typing import Any

from fastapi import Request


def loads(body: bytes | str) -> Any:
    return json.loads(body, parse_float=Decimal, parse_constant=Decimal)


class DecimalJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads(await self.body())
        return self._json
