"""Idempotency-Key for writes: a retried request gets the stored answer, not a second effect.

The key row is inserted inside the request's own unit of work, before the endpoint runs,
and the answer is stored in it just before that unit of work commits. A concurrent
request with the same key waits on the unique index until the first commits, then
replays its answer; if the first failed and rolled back, the second simply runs.
Failed requests (4xx/5xx raised as errors) store nothing, so they may be retried.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from starlette.responses import Response

from app.errors import Conflict
from app.idempotency.models import IdempotencyKey
from app.uow.unit import AnySession

HEADER = "idempotency-key"
KEY_MAX = 255
RETENTION = timedelta(hours=24)
_KEPT_HEADERS = ("content-type", "idempotent-replayed", "location")


@dataclass(frozen=True)
class IdempotentRequest:
    key: str
    method: str
    path: str
    request_hash: str


def _invalid_key(message: str) -> RequestValidationError:
    return RequestValidationError([{"loc": ("header", "Idempotency-Key"), "msg": message, "type": "value_error"}])


async def from_request(request: Request) -> IdempotentRequest | None:
    """The request's Idempotency-Key and body fingerprint, or None without the header."""
    key = request.headers.get(HEADER)
    if key is None or request.method != "POST":
        return None
    if not 1 <= len(key) <= KEY_MAX or not key.isascii() or not key.isprintable() or key.strip() != key:
        raise _invalid_key(f"must be 1-{KEY_MAX} printable ASCII characters")
    body = await request.body()
    try:  # the same JSON, however it is spaced or ordered, is the same request
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, UnicodeDecodeError):
        canonical = body
    digest = hashlib.sha256(request.url.path.encode() + b"\n" + canonical).hexdigest()
    return IdempotentRequest(key=key, method=request.method, path=request.url.path, request_hash=digest)


def begin(session: AnySession, user_id: int, request: IdempotentRequest) -> Response | None:
    """Claim the key for this request (None), or the stored answer to replay."""
    claimed = session.execute(
        insert(IdempotencyKey)
        .values(user_id=user_id, key=request.key, method=request.method, path=request.path,
                request_hash=request.request_hash, expires_at=func.now() + RETENTION)
        .on_conflict_do_update(
            index_elements=["user_id", "key"],
            # An expired key is free again; a live one is left alone (and not returned).
            set_={"method": request.method, "path": request.path, "request_hash": request.request_hash,
                  "status_code": None, "response_body": None, "response_headers": None,
                  "created_at": func.now(), "expires_at": func.now() + RETENTION},
            where=IdempotencyKey.expires_at < func.now(),
        )
        .returning(IdempotencyKey.key)
    ).scalar()
    if claimed is not None:
        return None
    stored = session.execute(
        select(IdempotencyKey.__table__).where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == request.key)
    ).one()
    if stored.request_hash != request.request_hash or stored.path != request.path:
        raise _invalid_key("was already used for a different request; use a new key for a new request")
    if stored.status_code is None:
        raise Conflict("a request with this Idempotency-Key is still being processed; retry shortly")
    headers = {**(stored.response_headers or {}), "Idempotent-Replayed": "true"}
    return Response(stored.response_body, status_code=stored.status_code, headers=headers)


def finish(session: AnySession, user_id: int, request: IdempotentRequest, response: Response) -> None:
    """Store the answer with the key, in the same transaction as the write it answers."""
    if not hasattr(response, "body"):
        raise TypeError("an idempotent endpoint must answer with a complete body, not a stream")
    headers = {k: v for k, v in response.headers.items() if k.lower() in _KEPT_HEADERS}
    session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == request.key)
        .values(status_code=response.status_code, response_body=bytes(response.body), response_headers=headers)
    )

