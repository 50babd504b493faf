"""Security headers on every response, as a pure ASGI middleware (no per-request task hop).

The CSP allows only our own scripts and styles: no inline code, no eval, so an injected
<script> or on* attribute is inert even if escaping ever failed. /docs is no exception:
Swagger UI is vendored in static/ and started by a static script (app/main.py).

Nothing that carries personal data or credentials may be kept by a browser or proxy cache:
screens (HTML) and JSON answers get `Cache-Control: no-store` (RFC 6749 §5.1 requires it,
with `Pragma: no-cache`, for the token endpoint). Only public, data-free JSON may be cached.
"""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
# JSON that holds no personal data (the process's health, the API description).
CACHEABLE_JSON_PATHS = frozenset({"/healthz", "/readyz", "/openapi.json"})
TOKEN_PATH = "/auth/token"
COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}
HSTS = "max-age=31536000; includeSubDomains"


def _is_json(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


def _is_private(content_type: str, path: str | None) -> bool:
    """A screen, or JSON that may hold personal data: no cache may keep it."""
    return content_type.startswith("text/html") or (_is_json(content_type) and path not in CACHEABLE_JSON_PATHS)


def _raw(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]


# What every response gets unless it set the header itself, as ASGI header pairs, built once.
_EVERY_RESPONSE = _raw({**COMMON_HEADERS, "Content-Security-Policy": CONTENT_SECURITY_POLICY})
_EVERY_PRODUCTION_RESPONSE = _EVERY_RESPONSE + _raw({"Strict-Transport-Security": HSTS})
_CACHE_CONTROL, _NO_STORE = b"cache-control", b"no-store"
_PRAGMA, _NO_CACHE = b"pragma", b"no-cache"


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, production: bool = False) -> None:
        self.app = app
        self.defaults = _EVERY_PRODUCTION_RESPONSE if production else _EVERY_RESPONSE

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path")
        defaults = self.defaults

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                # One pass over the response's own headers; then each missing default is added.
                headers = list(message.get("headers", ()))
                present = set()
                content_type = None
                for name, value in headers:
                    name = name.lower()
                    present.add(name)
                    if content_type is None and name == b"content-type":
                        content_type = value.decode("latin-1")
                headers.extend(pair for pair in defaults if pair[0] not in present)
                if path == TOKEN_PATH:
                    headers = [pair for pair in headers if pair[0].lower() != _CACHE_CONTROL]
                    headers.append((_CACHE_CONTROL, _NO_STORE))
                    if _PRAGMA not in present:
                        headers.append((_PRAGMA, _NO_CACHE))
                elif _CACHE_CONTROL not in present and content_type is not None and _is_private(content_type, path):
                    headers.append((_CACHE_CONTROL, _NO_STORE))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
