"""Request ids, JSON logs and Prometheus metrics, as one pure ASGI middleware."""

import json
import logging
import random
import re
import sys
import time
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = b"x-request-id"
# Request ids correlate log lines; they are not secrets. A generator seeded once from the
# OS avoids a getrandom() call, which releases the GIL, on every request.
_request_ids = random.Random()
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

registry = CollectorRegistry(auto_describe=True)
REQUESTS = Counter(
    "riskdesk_http_requests_total", "HTTP requests by method, route and status", ["method", "route", "status"],
    registry=registry,
)
LATENCY = Histogram(
    "riskdesk_http_request_duration_seconds", "HTTP request latency by method and route", ["method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=registry,
)
LOGIN_THROTTLED = Counter(
    "riskdesk_login_throttled_total", "Logins refused (429) by throttling, by the allowance that refused them",
    ["scope"], registry=registry,
)


def metrics_text() -> bytes:
    return generate_latest(registry)


# The children of REQUESTS and LATENCY by (method, route, status): `.labels()` builds and
# looks up its label tuple under a lock on every call, a tenth of a small request's CPU.
# The keys are the metrics' own label sets, so this holds no more entries than they do.
_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def _metrics_for(method: str, route: str, status: int) -> tuple[Any, Any]:
    """The request counter and latency histogram children of one method, route and status."""
    children = _children.get((method, route, status))
    if children is None:
        children = _children[(method, route, status)] = (
            REQUESTS.labels(method, route, str(status)), LATENCY.labels(method, route))
    return children


class JsonFormatter(logging.Formatter):
    """One JSON object per line; extra fields passed with `extra=` are kept."""

    _STANDARD = set(vars(logging.makeLogRecord({})))

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in self._STANDARD and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Our middleware writes the access log, with the request id.
    logging.getLogger("uvicorn.access").disabled = True


access_log = logging.getLogger("riskdesk.access")


def _request_id_from(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == REQUEST_ID_HEADER:
            candidate = value.decode("latin-1")
            if _VALID_REQUEST_ID.match(candidate):
                return candidate
            break
    return f"{_request_ids.getrandbits(128):032x}"


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=f"Request body over {limit} bytes")


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class RequestContextMiddleware:
    """Assigns the request id (the caller's, if well-formed), echoes it, limits the body
    size (413 as JSON, with the request id), logs and measures."""

    def __init__(
        self, app: ASGIApp, max_body_bytes: int = 1024 * 1024, path_limits: dict[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        # Deliberate exceptions by exact path (the bank statement upload); every other path keeps the default.
        self.path_limits = dict(path_limits or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id_from(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status_holder = [500]

        async def send_with_request_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != REQUEST_ID_HEADER]
                headers.append((REQUEST_ID_HEADER, request_id.encode()))
                message["headers"] = headers
            await send(message)

        limit = self.path_limits.get(scope.get("path", ""), self.max_body_bytes)
        received = 0

        async def receive_within_limit() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        try:
            declared = _declared_length(scope)
            if declared is not None and declared > limit:
                response = JSONResponse({"detail": f"Request body over {limit} bytes"}, status_code=413)
                await response(scope, receive, send_with_request_id)
            else:
                await self.app(scope, receive_within_limit, send_with_request_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            route_path = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            requests, latency = _metrics_for(method, route_path, status_holder[0])
            requests.inc()
            latency.observe(elapsed)
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    "request",
                    extra={
                        "request_id": request_id,
                        "method": method,
                        "path": scope.get("path"),
                        "route": route_path,
                        "status": status_holder[0],
                        "duration_ms": round(elapsed * 1000, 2),
                        "client": (scope.get("client") or ("", 0))[0],
                    },
                )
