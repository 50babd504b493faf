from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

from app import migrations
from app.db import database
from app.observability import metrics_text

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


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics():
    return Response(metrics_text(), media_type="text/plain; version=0.0.4; charset=utf-8")
