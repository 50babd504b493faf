"""JWT access tokens: HS256 only, the one module that imports python-jose."""

import time
import uuid
from functools import lru_cache
from dataclasses import dataclass

from jose import jwt
from jose.exceptions import JOSEError

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ("sub", "role", "iat", "exp", "jti", "ver")


class InvalidToken(Exception):
    """The token is malformed, forged, expired or missing a claim."""


@dataclass(frozen=True)
class TokenClaims:
    user_id: int
    role: str
    token_version: int
    jti: str
    issued_at: int
    expires_at: int
    username: str | None = None  # tokens issued before the `name` claim existed have none


def issue(
    *, user_id: int, role: str, token_version: int, key: str, ttl_seconds: int, username: str | None = None
) -> tuple[str, int]:
    """A signed token and its lifetime in seconds."""
    now = int(time.time())
    claims = {
        "sub": str(user_id),
        "role": role,
        "iat": now,
        "exp": now + ttl_seconds,
        "jti": uuid.uuid4().hex,
        "ver": token_version,
    }
    if username is not None:
        claims["name"] = username
    return jwt.encode(claims, key, algorithm=ALGORITHM), ttl_seconds


def decode(token: str, *, key: str) -> TokenClaims:
    """Verified claims, or InvalidToken; the algorithm is pinned and exp is required."""
    claims = _verified_claims(token, key)
    if claims.expires_at <= time.time():
        raise InvalidToken("token expired")
    return claims


# A token's signature check gives the same answer every time, so agents that reuse one
# token pay for it once; expiry is still checked on every call (above). Failures are
# exceptions and are never cached.
@lru_cache(maxsize=4096)
def _verified_claims(token: str, key: str) -> TokenClaims:
    try:
        header = jwt.get_unverified_header(token)
        if header.get("alg") != ALGORITHM:
            raise InvalidToken("unexpected algorithm")
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            options={"require_exp": True, "require_iat": True, "require_sub": True, "require_jti": True},
        )
    except JOSEError as exc:
        raise InvalidToken(str(exc)) from None
    except (ValueError, TypeError, KeyError) as exc:
        raise InvalidToken("malformed token") from exc
    if any(claim not in claims for claim in REQUIRED_CLAIMS):
        raise InvalidToken("missing claim")
    try:
        user_id = int(claims["sub"])
        if not 0 < user_id < 2**63:
            raise ValueError("sub out of range")
        return TokenClaims(
            user_id=user_id,
            role=str(claims["role"]),
            token_version=int(claims["ver"]),
            jti=str(claims["jti"]),
            issued_at=int(claims["iat"]),
            expires_at=int(claims["exp"]),
            username=str(claims["name"]) if "name" in claims else None,
        )
    except (TypeError, ValueError):
        raise InvalidToken("malformed claim") from None
