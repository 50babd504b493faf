"""JWT access tokens: HS256 only, the one module that imports python-jose.

A token signed with our key is still only input: every claim's type and range is checked
in one place (`Claims`), so no claim can reach SQL, a datetime or a log as something its
reader does not expect (a 500); a token that fails any check is an InvalidToken (a 401).
"""

import math
import time
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any, Literal

from jose import jwt
from jose.exceptions import JOSEError
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from app.config import Settings, get_settings
from app.fields import refuse_unstorable
from app.users.enums import Role

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ("sub", "role", "iat", "exp", "jti", "ver")
# A token issued by a clock slightly ahead of ours is fine; one from the future is not.
IAT_LEEWAY_SECONDS = 60
# The latest NumericDate datetime can represent (9999-12-31T23:59:59Z).
MAX_NUMERIC_DATE = 253_402_300_799
INT32_MAX = 2**31 - 1


class InvalidToken(Exception):
    """The token is malformed, forged, expired or missing a claim."""


def _numeric_date(value: Any) -> int:
    # RFC 7519 NumericDate: a JSON number (a fraction is allowed, and dropped), never a string or bool.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a number")  # noqa: TRY004 (pydantic turns only ValueError into a field error)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a finite number")
    return int(value)


def _user_id(value: Any) -> int:
    # Issued as str(user_id); the only accepted form is that one: decimal digits, no sign or space.
    if not isinstance(value, str) or not value.isascii() or not value.isdigit() or value.startswith("0"):
        raise ValueError("must be a user id as a decimal string")
    return int(value)


NumericDate = Annotated[int, BeforeValidator(_numeric_date), Field(ge=0, le=MAX_NUMERIC_DATE)]
ClaimText = Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(refuse_unstorable)]


class Claims(BaseModel):
    """The claims of a well-signed token, each of the type and range its readers rely on."""

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)

    sub: Annotated[int, BeforeValidator(_user_id), Field(ge=1, lt=2**63)]
    role: Literal[Role.ADMIN, Role.ANALYST, Role.AGENT]
    iat: NumericDate
    exp: NumericDate
    jti: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    ver: Annotated[int, Field(ge=0, le=INT32_MAX)]  # users.token_version is an int4
    name: ClaimText | None = None  # users.username is varchar(64)

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


def max_lifetime_seconds(settings: Settings | None = None) -> int:
    """The longest lifetime the app issues: an API token or a browser session, whichever is longer."""
    settings = settings or get_settings()
    return max(settings.access_token_minutes, settings.browser_session_minutes) * 60


def decode(token: str, *, key: str, max_lifetime: int | None = None) -> TokenClaims:
    """Verified claims, or InvalidToken: the algorithm is pinned, every claim is checked, and the
    token is unexpired, not issued in the future, and lives no longer than the app ever issues."""
    claims = _verified_claims(token, key)
    now = time.time()
    if claims.expires_at <= now:
        raise InvalidToken("token expired")
    if claims.issued_at > now + IAT_LEEWAY_SECONDS:
        raise InvalidToken("token issued in the future")
    if claims.expires_at - claims.issued_at > (max_lifetime if max_lifetime is not None else max_lifetime_seconds()):
        raise InvalidToken("token lifetime too long")
    return claims


# A token's signature check gives the same answer every time, so agents that reuse one
# token pay for it once; expiry, issue time and lifetime are still checked on every call
# (above). Failures are exceptions and are never cached.
@lru_cache(maxsize=4096)
def _verified_claims(token: str, key: str) -> TokenClaims:
    try:
        header = jwt.get_unverified_header(token)
        if header.get("alg") != ALGORITHM:
            raise InvalidToken("unexpected algorithm")
        # python-jose checks exp/iat only loosely (and would raise on odd types); Claims does it.
        raw = jwt.decode(token, key, algorithms=[ALGORITHM],
                         options={"verify_exp": False, "verify_iat": False, "verify_nbf": False,
                                  "verify_aud": False, "verify_iss": False, "verify_sub": False,
                                  "verify_jti": False, "verify_at_hash": False})
    except JOSEError as exc:
        raise InvalidToken(str(exc)) from None
    except (ValueError, TypeError, KeyError, OverflowError, RecursionError):
        raise InvalidToken("malformed token") from None
    if not isinstance(raw, dict) or any(claim not in raw for claim in REQUIRED_CLAIMS):
        raise InvalidToken("missing claim")
    try:
        claims = Claims.model_validate(raw)
    except ValidationError as exc:
        fields = sorted({str(error["loc"][0]) for error in exc.errors() if error.get("loc")})
        raise InvalidToken(f"malformed claim: {', '.join(fields) or 'claims'}") from None
    if claims.exp <= claims.iat:
        raise InvalidToken("token expires before it was issued")
    return TokenClaims(user_id=claims.sub, role=claims.role, token_version=claims.ver, jti=claims.jti,
                       issued_at=claims.iat, expires_at=claims.exp, username=claims.name)
