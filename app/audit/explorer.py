"""The audit explorer's reads: filters, keyset pages (newest first) and a streamed CSV export.

Pages are keyset-paginated on the primary key (`id < cursor ORDER BY id DESC`), so page
1,000 costs what page 1 costs. The export runs on its own connection with a server-side
cursor: the request's session is closed as soon as the endpoint returns, while the body
is still being streamed, and a million rows must never sit in memory at once.
"""

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from app.db import database
from app.errors import field_errors
from app.fields import refuse_unstorable

EXPORT_BATCH = 5_000

# Text PostgreSQL cannot take (NUL) is refused naming the field (the screen shows the sentence), not a 500.
_Stored = AfterValidator(refuse_unstorable)
Text32 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32), _Stored]
Text64 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64), _Stored]
Text128 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128), _Stored]
EXPORT_COLUMNS = (
    "id", "occurred_at", "actor", "actor_id", "actor_role", "actor_type", "action", "entity_type", "entity_id",
    "before", "after", "reason", "request_id", "client_addr", "prev_hash", "hash",
)
# Known actions for the filter's suggestions; any other value can still be typed.
KNOWN_ACTIONS = (
    "auth.login", "auth.login_failed", "auth.login_throttled", "transaction.created", "transaction.settled",
    "transaction.failed", "transaction.review_status_changed", "risk_score.posted", "case.opened", "case.claimed",
    "case.claim_renewed", "case.released", "case.first_approval", "case.approved", "case.rejected",
    "case.escalated", "case.commented", "case.risk_raised", "case.flag_grouped",
    "user.created", "user.disabled", "user.enabled", "user.role_changed",
    "user.password_reset", "setting.changed", "amount_rule.changed", "amount_rule.removed", "audit.exported",
    "rule.created", "rule.updated", "rule.published", "rule.rolled_back", "rule.disabled", "rule.snoozed",
    "list.replaced", "list.items_added", "list.item_removed", "rule.backtested", "case.assigned",
    "auth.logout", "case.evidence_exported", "reconciliation.run_started", "reconciliation.run_completed",
    "webhook.endpoint_created", "webhook.endpoint_enabled", "webhook.endpoint_disabled", "webhook.endpoint_deleted",
    "webhook.delivery_retried", "webhook.test_sent",
)


def _as_utc(value: datetime | None) -> datetime | None:
    # A datetime-local field has no zone; the explorer shows and takes UTC. An offset is
    # applied here: PostgreSQL refuses offsets past ±15:59 that Python accepts (up to ±23:59).
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is before the first representable UTC time
        raise ValueError("must be a time between years 1 and 9999 in UTC") from None


class AuditFilter(BaseModel):
    """The explorer's filters; blank means "any". `role=system` means events of no user."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    actor: Text64 | None = None
    role: Literal["admin", "analyst", "agent", "system"] | None = None
    action: Text64 | None = None
    entity_type: Text32 | None = None
    entity_id: Text128 | None = None
    since: datetime | None = None
    until: datetime | None = None

    @field_validator("since", "until")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return _as_utc(value)

    @model_validator(mode="after")
    def _range(self) -> "AuditFilter":
        if self.since and self.until and self.until <= self.since:
            raise ValueError("until must be after since")
        return self

    def apply(self, query: Select) -> Select:
        """`query` restricted to matching events."""
        if self.actor:
            query = query.where(AuditEvent.actor == self.actor)
        if self.role == "system":
            query = query.where(AuditEvent.actor_type == "system")
        elif self.role:
            query = query.where(AuditEvent.actor_role == self.role)
        if self.action:
            query = query.where(AuditEvent.action == self.action)
        if self.entity_type:
            query = query.where(AuditEvent.entity_type == self.entity_type)
        if self.entity_id:
            query = query.where(AuditEvent.entity_id == self.entity_id)
        if self.since:
            query = query.where(AuditEvent.occurred_at >= self.since)
        if self.until:
            query = query.where(AuditEvent.occurred_at < self.until)
        return query

    def as_params(self) -> dict[str, str]:
        """The filters as query parameters (for links, the export button and cursors)."""
        values = self.model_dump(exclude_none=True)
        return {k: (v.strftime("%Y-%m-%dT%H:%M") if isinstance(v, datetime) else str(v)) for k, v in values.items()}


class AuditQuery(AuditFilter):
    cursor: Annotated[int | None, Field(ge=1, lt=2**63)] = None
    limit: Annotated[int, Field(ge=1, le=500)] = 50

    def filters(self) -> AuditFilter:
        return AuditFilter(**self.model_dump(exclude={"cursor", "limit"}))


def parse_query(params: dict[str, str]) -> tuple[AuditQuery, dict[str, str]]:
    """The query from raw parameters (blank = any) and a message per refused field.

    Refused fields are dropped, never silently widened into a different filter: the
    caller shows the messages (screens) or refuses the request (API).
    """
    raw = {key: value for key, value in params.items() if value.strip()}
    try:
        return AuditQuery.model_validate(raw), {}
    except ValidationError as exc:
        errors = {e["field"] or "filters": e["msg"] for e in field_errors(exc.errors(include_input=False))}
    if "filters" in errors:  # a cross-field rule (the time range): drop both ends
        raw = {k: v for k, v in raw.items() if k not in ("since", "until")}
        errors = {"until": errors.pop("filters"), **errors}
    try:
        return AuditQuery.model_validate({k: v for k, v in raw.items() if k not in errors}), errors
    except ValidationError:
        return AuditQuery(), errors


def list_page(*, session: Session, query: AuditQuery) -> tuple[list[AuditEvent], int | None]:
    """One page of matching events, newest first, and the cursor of the next page (or None)."""
    statement = query.apply(select(AuditEvent))
    if query.cursor is not None:
        statement = statement.where(AuditEvent.id < query.cursor)
    rows = list(session.scalars(statement.order_by(AuditEvent.id.desc()).limit(query.limit + 1)))
    if len(rows) > query.limit:
        return rows[: query.limit], rows[query.limit - 1].id
    return rows, None


# What makes a spreadsheet read a cell as a formula: these characters first, ASCII or
# full-width (Excel and LibreOffice fold ＝＋－＠ to =+-@), after any leading whitespace,
# and a cell that starts with a line break or tab at all.
FORMULA_STARTS = frozenset("=+-@\uff1d\uff0b\uff0d\uff20")
LEADING_BREAKS = ("\t", "\r", "\n")


def is_formula_like(value: str) -> bool:
    """Could a spreadsheet run this cell as a formula (so the export must defuse it)?"""
    if value.startswith(LEADING_BREAKS):
        return True
    return value.lstrip()[:1] in FORMULA_STARTS


def _cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), default=str)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, str) and is_formula_like(value):
        return "'" + value  # a spreadsheet must not run a field as a formula
    return value


def export_csv(filters: AuditFilter) -> Iterator[bytes]:
    """CSV of every matching event, oldest first, in chunks; owns its connection until exhausted or closed."""
    columns = [getattr(AuditEvent, name) for name in EXPORT_COLUMNS]
    statement = filters.apply(select(*columns)).order_by(AuditEvent.id)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_COLUMNS)
    connection = database.engine.connect()
    try:
        # One snapshot for the whole file; DECLARE … CURSOR keeps memory flat.
        connection.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        result = connection.execution_options(stream_results=True, yield_per=EXPORT_BATCH).execute(statement)
        for rows in result.partitions():
            writer.writerows([_cell(value) for value in row] for row in rows)
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
        if buffer.tell():
            yield buffer.getvalue().encode()
    finally:
        connection.close()
