"""The browser's device cookie: a random id, signed, that marks a browser as a known client.

Set on every successful sign-in in the browser (app/web/auth.py); the user and device
pair is remembered in login_known_clients, and the throttle gives that pair its own
allowance (app/auth/throttle.py). The signature (a key derived from SECRET_KEY) lets a
forged or tampered value be ignored without a lookup; a valid id is only worth anything
for the users who signed in with it.
"""

import hashlib
import hmac
import re
import secrets

from app.config import Settings

_ID = re.compile(r"^[0-9a-f]{32}$")


def _key(settings: Settings) -> bytes:
    return hmac.new(settings.signing_key.encode(), b"riskdesk:login-device", hashlib.sha256).digest()


def _mac(device_id: str, settings: Settings) -> str:
    return hmac.new(_key(settings), device_id.encode(), hashlib.sha256).hexdigest()


def new_device_id() -> str:
    """A fresh random device id."""
    return secrets.token_hex(16)


def cookie_value(device_id: str, settings: Settings) -> str:
    """The signed cookie value for a device id."""
    return f"{device_id}.{_mac(device_id, settings)}"


def verified_device_id(value: str | None, settings: Settings) -> str | None:
    """The device id of a well-signed cookie value, else None."""
    if not value or value.count(".") != 1:
        return None
    device_id, mac = value.split(".")
    if not _ID.match(device_id) or not hmac.compare_digest(mac, _mac(device_id, settings)):
        return None
    return device_id
