"""Security headers on every response, as a pure ASGI middleware (no per-request task hop).

The CSP allows only our own scripts and styles: no inline code, no eval, so an injected
<script> or on* attribute is inert even if escaping ever failed. /docs is no exception:
Swagger UI is vendored in static/ and started by a static script (app/main.py).

Nothing that carries personal data or credentials may be kept by a browser or proxy cache:
screens (HTML) and JSON answers get `Cache-Control: no-store` (RFC 6749 §5.1 requires it,
with `Pragma: no-cache`, for the token endpoint). Only public, data-free JSON may be cached.
"""

from starlette.datastructures import MutableHeaders
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


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, production: bool = False) -> None:
        self.app = app
        self.production = production

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in COMMON_HEADERS.items():
                    headers.setdefault(name, value)
                headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
                if self.production:
                    headers.setdefault("Strict-Transport-Security", HSTS)
                content_type = headers.get("content-type", "")
                is_private_json = _is_json(content_type) and path not in CACHEABLE_JSON_PATHS
                if content_type.startswith("text/html") or is_private_json:
                    headers.setdefault("Cache-Control", "no-store")
                if path == TOKEN_PATH:
                    headers["Cache-Control"] = "no-store"
                    headers.setdefault("Pragma", "no-cache")
            await send(message)

        await self.app(scope, receive, send_with_headers)
