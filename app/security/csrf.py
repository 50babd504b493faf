"""CSRF tokens for the browser: an HMAC of what the request's session is bound to.

A signed-in page carries HMAC(key, "csrf:" + session jti), so the token needs no storage,
changes with every sign-in and dies with the session. The login form has no session yet;
it is bound to a random pre-session cookie instead ("login:" + nonce, a signed double
submit), so a third-party page cannot sign a victim into the attacker's account.
"""

import hashlib
import hmac
import secrets


def token_for(binding: str, *, key: str) -> str:
    """The CSRF token for a session jti (or "login:" + a pre-session nonce)."""
    return hmac.new(key.encode(), f"csrf:{binding}".encode(), hashlib.sha256).hexdigest()


def is_valid(candidate: str | None, binding: str | None, *, key: str) -> bool:
    """Whether `candidate` is the token for `binding`, compared in constant time."""
    if not candidate or not binding:
        return False
    return hmac.compare_digest(candidate.encode(), token_for(binding, key=key).encode())


def new_login_nonce() -> str:
    """A random value for the pre-session cookie the login form is bound to."""
    return secrets.token_urlsafe(32)


def login_binding(nonce: str | None) -> str | None:
    return f"login:{nonce}" if nonce else None
