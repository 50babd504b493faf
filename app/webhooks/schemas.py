"""Webhook endpoint and delivery shapes; a secret appears only in the creation response."""

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.config import get_settings
from app.fields import OptionalText200, Text
from app.webhooks import targets
from app.webhooks.enums import EventType


class EndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"url": "https://hooks.example.com/riskdesk", "event_types": ["case.opened", "case.decided"],
         "description": "Ops alerts"}
    ]})

    url: Annotated[Text, Field(min_length=1, max_length=2000)]
    event_types: list[EventType] = Field(min_length=1, max_length=len(EventType))
    description: OptionalText200 = None

    @field_validator("url")
    @classmethod
    def http_url(cls, url: str) -> str:
        # The worker's own parser and checks (app/webhooks/targets.py); stored as it will be
        # requested, a Unicode host name in IDNA form (https://xn--bcher-kva.example/).
        parsed = targets.parse_url(url.strip())  # InvalidTargetURL is a ValueError: a 422 on url
        problem = targets.literal_host_problem(parsed.raw_host.decode("ascii"))
        if problem and not get_settings().allows_private_webhook_targets:
            raise ValueError(f"must not point at {problem}")
        return str(parsed)

    @field_validator("event_types")
    @classmethod
    def unique(cls, values: list[str]) -> list[str]:
        return sorted(set(values))


class EndpointUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"is_active": False}]})

    is_active: bool


class EndpointOut(BaseModel):
    id: int
    url: str
    description: str | None
    event_types: list[str]
    is_active: bool
    created_at: datetime


class EndpointCreated(EndpointOut):
    secret: str = Field(description="Shown once, now; never returned again")


class AttemptOut(BaseModel):
    attempt_no: int
    started_at: datetime
    duration_ms: int
    status_code: int | None
    error: str | None


class DeliveryOut(BaseModel):
    id: int
    endpoint_id: int
    endpoint_url: str
    event_type: str
    message_id: str
    status: str
    attempt_count: int
    max_attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime
    attempts: list[AttemptOut] = []


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]


class WorkerStatus(BaseModel):
    """Whether a delivery worker has been seen lately (its heartbeat in webhook_workers)."""

    seen_within_minutes: int
    last_seen_at: datetime | None = None
    seconds_ago: int | None = None
    worker_id: str | None = None
    is_running: bool = False
