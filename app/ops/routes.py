"""Operations: liveness and readiness probes, Prometheus metrics (behind a bearer token when one is set)."""

import hmac

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

from app import migrations
from app.config import get_settings
from app.db import database
from app.errors import Unauthorized
from app.observability import metrics_text
from app.security.deps import bearer_token

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is up")
def healthz():
    return {"status": "ok"}


@router.get("/readyz", summary="The database is reachable and migrated to head",
            responses={503: {"description": "Database unreachable or not migrated", "content": {"application/json": {
                "schema": {"type": "object", "required": ["status", "database"], "properties": {
                    "status": {"const": "unavailable"}, "database": {"type": "string"},
                    "migration": {"type": ["string", "null"]}, "expected": {"type": "string"}}}}}}})
def readyz():
    try:
        with database.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            current = migrations.current_revision(conn)
    except Exception:
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
    head = migrations.head_revision()
    if current != head:
        return JSONResponse(
            {"status": "unavailable", "database": "ok", "migration": current, "expected": head}, status_code=503
        )
    return {"status": "ok", "database": "ok", "migration": current}


def metrics_allowed(request: Request, expected: str | None) -> bool:
    """True when no METRICS_TOKEN is set, or the request's bearer token is it (compared in constant time)."""
    if not expected:
        return True
    presented = bearer_token(request) or ""
    return hmac.compare_digest(presented.encode(), expected.encode())


@router.get("/metrics", summary="Prometheus metrics (a bearer token when METRICS_TOKEN is set)",
            response_class=Response, responses={401: {"description": "METRICS_TOKEN is set and the bearer token "
                                                                     "is missing or wrong"}})
def metrics(request: Request):
    if not metrics_allowed(request, get_settings().metrics_token):
        raise Unauthorized("This metrics endpoint needs its bearer token")
    return Response(metrics_text(), media_type="text/plain; version=0.0.4; charset=utf-8")
