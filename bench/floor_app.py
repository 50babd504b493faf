"""The "floor": the least a FastAPI endpoint on our stack can do for the same request.

Same stack as the real app — FastAPI, sync endpoints in the threadpool, SQLAlchemy 2
engine on psycopg2 built by the app's build_engine (pool settings, pipelined dialect) — but no auth, no
audit, no middleware, no idempotency comparison: one statement per request in its own
transaction. The benchmark compares the real endpoints against these.

Run: DATABASE_URL=... uvicorn --app-dir bench floor_app:app
"""

import json
import os
from datetime import datetime
from decimal import Decimal
from typing import Any

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field
from sqlalchemy import text

from app.config import get_settings
from app.db import build_engine

settings = get_settings()
# The app's own engine factory: same pool sizes, timeouts and connect options.
engine = build_engine(os.environ["DATABASE_URL"], settings)

COLUMNS = (
    "id, reference, account_id, amount, currency, counterparty, description, metadata, status, "
    "review_status, settlement_reason, settled_at, created_at, updated_at"
)
INSERT = text(
    "INSERT INTO transactions (reference, account_id, amount, currency, counterparty, description, metadata) "
    "VALUES (:reference, :account_id, :amount, :currency, :counterparty, :description, CAST(:metadata AS jsonb)) "
    f"ON CONFLICT (reference) DO NOTHING RETURNING {COLUMNS}"
)
SELECT = text(f"SELECT {COLUMNS} FROM transactions WHERE reference = :reference")


class FloorCreate(BaseModel):
    account_id: str = Field(min_length=1, max_length=64)
    reference: str = Field(min_length=1, max_length=128)
    amount: Decimal
    currency: str = Field(min_length=3, max_length=3)
    counterparty: str | None = None
    description: str | None = None
    metadata: dict[str, Any] | None = None


class FloorOut(BaseModel):
    id: int
    reference: str
    account_id: str
    amount: str
    currency: str
    counterparty: str | None
    description: str | None
    metadata: dict[str, Any]
    status: str
    review_status: str
    settlement_reason: str | None
    settled_at: datetime | None
    created_at: datetime
    updated_at: datetime


def _out(row) -> FloorOut:
    values = row._asdict()
    values["amount"] = f"{values['amount']:f}"
    return FloorOut(**values)


app = FastAPI(title="Riskdesk floor", docs_url=None, redoc_url=None, openapi_url=None)


@app.get("/healthz")
def healthz():
    return {"status": "ok"}


@app.post("/floor/transactions", response_model=FloorOut)
def create(data: FloorCreate):
    params = data.model_dump()
    params["metadata"] = json.dumps(params["metadata"] or {})
    with engine.begin() as conn:
        row = conn.execute(INSERT, params).one_or_none()
    if row is None:
        raise HTTPException(status_code=409, detail="reference exists")
    return _out(row)


@app.get("/floor/transactions/{reference}", response_model=FloorOut)
def read(reference: str):
    with engine.connect() as conn:
        row = conn.execute(SELECT, {"reference": reference}).one_or_none()
    if row is None:
        raise HTTPException(status_code=404, detail="not found")
    return _out(row)
