"""Password hashing with Argon2id, and the strength rule every new password meets.

Strength is zxcvbn's estimate (Dropbox's estimator, maintained on PyPI): it knows common
passwords, names, keyboard patterns and dates, and is given the username so a password
built on it scores low. A password must score at least MIN_SCORE (0-4) and must not
contain the username.
"""

import threading
from functools import cache
from typing import TypedDict

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from zxcvbn import zxcvbn

from app.config import get_settings


class _Cost(TypedDict, total=False):
    time_cost: int
    memory_cost: int
    parallelism: int


# Every stored hash carries its own parameters, so either profile verifies the other's.
_PROFILES: dict[str, _Cost] = {
    "standard": {},
    "fast": {"time_cost": 1, "memory_cost": 1024, "parallelism": 1},
}

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256
MIN_SCORE = 3  # zxcvbn: "safely unguessable: moderate protection from offline slow-hash scenario"
# zxcvbn's cost grows with the length; past this many characters the rest adds strength anyway.
_ESTIMATED_CHARACTERS = 72
# Shorter usernames ("al") occur in too many good passwords; zxcvbn still weighs them as user input.
_MIN_USERNAME_TO_MATCH = 3
# zxcvbn keeps the user inputs in a module-level dictionary during a call: one call at a time.
_zxcvbn_lock = threading.Lock()


class WeakPassword(ValueError):
    """The password does not meet the strength rule; the message says why, for a person."""


@cache
def _hasher() -> tuple[PasswordHasher, str]:
    """The hasher of the configured profile, and a real hash to verify against when the
    user does not exist, so timing does not tell."""
    hasher = PasswordHasher(**_PROFILES[get_settings().hash_profile])
    return hasher, hasher.hash("riskdesk-timing-equaliser")


def hash_password(password: str) -> str:
    return _hasher()[0].hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    """True when password matches; always spends the same work, known user or not."""
    try:
        hasher, dummy_hash = _hasher()
        return hasher.verify(password_hash or dummy_hash, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def check_password_strength(password: str, *, username: str | None = None) -> None:
    """Raise WeakPassword unless the password is long enough, hard to guess and free of the username."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise WeakPassword(f"password must be at most {MAX_PASSWORD_LENGTH} characters")
    if username and len(username) >= _MIN_USERNAME_TO_MATCH and username.casefold() in password.casefold():
        raise WeakPassword("password must not contain the username")
    with _zxcvbn_lock:
        estimate = zxcvbn(password[:_ESTIMATED_CHARACTERS], user_inputs=[username] if username else [])
    if estimate["score"] < MIN_SCORE:
        feedback = estimate["feedback"]
        advice = " ".join(part.strip() for part in [feedback.get("warning") or "", *feedback.get("suggestions", [])]
                          if part and part.strip())
        raise WeakPassword(f"password is too easy to guess: {advice or 'use a longer phrase of unrelated words.'}")
