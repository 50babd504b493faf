"""Browser sessions: a JWT in an HttpOnly cookie, ended server-side by logout.

Session tokens are signed with a key derived from SECRET_KEY, not SECRET_KEY itself:
a cookie lifted from a browser is then no bearer token for the API (which would
ignore its revocation), and an API token pasted into a cookie opens no screen.
"""

import hashlib
import hmac
from datetime import UTC, datetime

from sqlalchemy import delete, func
from sqlalchemy.dialects.postgresql import insert

from app.audit import service as audit
from app.config import Settings
from app.security import tokens
from app.security.deps import Principal, PrincipalClaims
from app.security.models import RevokedToken
from app.uow.unit import OrmSession


def session_key(settings: Settings) -> str:
    """The key that signs browser session tokens (and their CSRF tokens)."""
    return hmac.new(settings.signing_key.encode(), b"riskdesk:browser-session", hashlib.sha256).hexdigest()


def login_settings(settings: Settings) -> Settings:
    """Settings under which app.auth.service.login issues a browser session token.

    login() signs with `signing_key` for `access_token_minutes`; a copy with the session
    key and lifetime reuses its password check, throttling and audit unchanged.
    """
    return settings.model_copy(
        update={"secret_key": session_key(settings), "access_token_minutes": settings.browser_session_minutes}
    )


def principal_from_session_token(token: str | None, settings: Settings) -> PrincipalClaims | None:
    """The claims of a well-signed, unexpired session token; None otherwise."""
    if not token:
        return None
    try:
        claims = tokens.decode(token, key=session_key(settings), max_lifetime=tokens.max_lifetime_seconds(settings))
    except tokens.InvalidToken:
        return None
    return PrincipalClaims(
        user_id=claims.user_id, role=claims.role, token_version=claims.token_version,
        jti=claims.jti, expires_at=claims.expires_at, claimed_username=claims.username,
    )


def end(*, session: OrmSession, principal: Principal) -> None:
    """Revoke a verified browser session until its token would have expired, and audit it."""
    if principal.jti is None or principal.expires_at is None:
        raise ValueError("only a browser session can be ended")
    expires_at = datetime.fromtimestamp(principal.expires_at, UTC)
    session.execute(
        insert(RevokedToken).values(jti=principal.jti, expires_at=expires_at).on_conflict_do_nothing()
    )
    # Rows are useless once their token has expired; pruning here keeps the table small
    # without a scheduled job (the expires_at index makes this a short range delete).
    session.execute(delete(RevokedToken).where(RevokedToken.expires_at < func.now()))
    audit.record(
        session, actor=principal.actor, action="auth.logout", entity_type="user", entity_id=principal.user_id,
    )
