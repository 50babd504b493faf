"""The login throttle's vocabulary (app/auth/throttle.py)."""

from enum import StrEnum


class AttemptState(StrEnum):
    """A row of login_failures: a password check reserved (running) or spent on a wrong password."""

    PENDING = "pending"
    FAILED = "failed"


class ThrottleScope(StrEnum):
    """Which allowance refused a login."""

    USER = "user"  # strangers' attempts at one username
    ADDRESS = "address"  # strangers' attempts from one client address
    KNOWN_CLIENT = "known_client"  # one known device or address of one user


class KnownClientKind(StrEnum):
    """How a client that signed in as a user before is recognised; the prefix of its key."""

    DEVICE = "device"  # the browser's signed device cookie
    ADDRESS = "address"  # the client address of an earlier successful login
