"""The audit chain recomputed in Python from the stored columns, trusting no database function.

The database's trigger and `audit_event_hash` define each hash; someone who can replace
those functions (the table's owner, a superuser) could make a check that calls them
report OK over rewritten rows. This module recomputes every hash itself from the raw
columns, so `audit verify` depends on PostgreSQL only to hand over the rows.

The canonical form of an event (the text its hash covers, after the previous hash) is the
JSON array PostgreSQL's `json_build_array` renders in migration 0001's `CANONICAL_ARRAY`:

    [id, "occurred_at", actor, actor_id, actor_role, actor_type, action, entity_type,
     entity_id, before, after, reason, request_id, client_addr]

- elements separated by `", "`, the array in `[` `]`; SQL NULL is `null`;
- `id` and `actor_id` as decimal integers;
- `occurred_at` in UTC as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (always six fractional digits);
- text columns as JSON strings escaped the way PostgreSQL's `escape_json` does: `\\"`,
  `\\\\`, `\\b`, `\\f`, `\\n`, `\\r`, `\\t`, other characters below U+0020 as `\\u00XX`
  (lower-case hex), everything else, non-ASCII included, as it is;
- `before` and `after` (JSONB) as PostgreSQL's own JSONB text output (`before::text`,
  the built-in output function, not one of ours).

hash = hex(SHA-256(UTF-8(prev_hash ‖ canonical))), and prev_hash is the previous event's
hash (64 zeros for the first). tests/audit/test_python_chain.py checks this against the
database's `audit_event_hash` for events with every kind of value.
"""

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, text

GENESIS_HASH = "0" * 64
_BATCH = 20_000

# Every column an event's hash covers, as the canonical form takes them. occurred_at comes
# as the canonical text, rendered by PostgreSQL's built-in to_char exactly as CANONICAL_ARRAY
# renders it (schema-qualified: no function of ours, or of a search_path, takes part).
EVENT_COLUMNS = (
    "id, pg_catalog.to_char(pg_catalog.timezone('UTC', occurred_at), "
    "'YYYY-MM-DD\"T\"HH24\\:MI\\:SS.US\"Z\"') AS occurred_at, "  # \\: is a colon, not a bind parameter
    "actor, actor_id, actor_role, actor_type, action, entity_type, entity_id, "
    "before::text AS before, after::text AS after, reason, request_id, client_addr, prev_hash, hash"
)
_ROWS_SQL = text(f"SELECT {EVENT_COLUMNS} FROM audit_events WHERE id > :after_id AND id <= :until_id ORDER BY id")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_ESCAPE_TABLE = str.maketrans({**{chr(c): f"\\u{c:04x}" for c in range(0x20)}, **_ESCAPES})


_NEEDS_ESCAPE = re.compile(r'[\x00-\x1f"\\]').search


def _string(value: str | None) -> str:
    if value is None:
        return "null"
    return '"' + (value.translate(_ESCAPE_TABLE) if _NEEDS_ESCAPE(value) else value) + '"'


def format_time(value: datetime) -> str:
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def canonical(row: Any) -> str:
    """The canonical text of one event row (attribute access: a SQLAlchemy Row or similar)."""
    return "[" + ", ".join((
        str(row.id),
        '"' + (row.occurred_at if isinstance(row.occurred_at, str) else format_time(row.occurred_at)) + '"',
        _string(row.actor),
        "null" if row.actor_id is None else str(row.actor_id),
        _string(row.actor_role),
        _string(row.actor_type),
        _string(row.action),
        _string(row.entity_type),
        _string(row.entity_id),
        "null" if row.before is None else row.before,
        "null" if row.after is None else row.after,
        _string(row.reason),
        _string(row.request_id),
        _string(row.client_addr),
    )) + "]"


def event_hash(prev_hash: str, row: Any) -> str:
    return hashlib.sha256((prev_hash + canonical(row)).encode()).hexdigest()


@dataclass(frozen=True)
class PythonChainStatus:
    ok: bool
    events: int  # events checked by this run
    first_broken_id: int | None
    last_verified_id: int | None
    last_hash: str | None  # the hash of the last event that verified


def check(rows: Iterable[Any], *, start_hash: str = GENESIS_HASH, after_id: int | None = None) -> PythonChainStatus:
    """Walk events in id order: each must link to the one before and hash to its stored hash."""
    previous, last_id, events = start_hash, after_id, 0
    for row in rows:
        if row.prev_hash != previous or event_hash(previous, row) != row.hash:
            return PythonChainStatus(False, events, row.id, last_id, previous)
        previous, last_id, events = row.hash, row.id, events + 1
    return PythonChainStatus(True, events, None, last_id, previous)


def stored_rows(conn: Connection, *, after_id: int = 0, until_id: int = 2**63 - 1) -> Iterator[Any]:
    """Every event after `after_id` (up to `until_id`), in id order, streamed from a server-side cursor."""
    yield from conn.execute(_ROWS_SQL, {"after_id": after_id, "until_id": until_id},
                            execution_options={"stream_results": True, "yield_per": _BATCH})


# A million events stream in well under a minute; the request's usual statement timeout is shorter.
VERIFY_STATEMENT_TIMEOUT = "300s"


def allow_long_scan(conn: Connection) -> None:
    """Lift the statement timeout for this transaction: a full scan outlasts a request's."""
    conn.execute(text("SELECT set_config('statement_timeout', :t, true)"), {"t": VERIFY_STATEMENT_TIMEOUT})


def verify(conn: Connection, *, after_id: int = 0, start_hash: str = GENESIS_HASH) -> PythonChainStatus:
    """Recompute the chain after `after_id` (all of it by default) in Python."""
    allow_long_scan(conn)
    return check(stored_rows(conn, after_id=after_id), start_hash=start_hash, after_id=after_id or None)
