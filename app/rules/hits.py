"""A rule's hits, newest first, in keyset pages of (created_at, id) with each transaction's reference."""

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, tuple_

from app import cursors
from app.rules import service as rules
from app.rules.models import RuleHit
from app.rules.schemas import HitOut
from app.transactions.models import Transaction
from app.uow.unit import AnySession

H = RuleHit.__table__.c
T = Transaction.__table__.c
CURSOR_PREFIX = "hit"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
HIT_COLUMNS = [c for c in RuleHit.__table__.c]


def encode_cursor(created_at: datetime, hit_id: int) -> str:
    """The cursor that points after this hit."""
    return cursors.encode(CURSOR_PREFIX, (created_at - EPOCH) // MICROSECOND, hit_id)


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """The (created_at, id) a hits cursor points after; ValueError if it is not one of ours."""
    micros, hit_id = cursors.decode(cursor, CURSOR_PREFIX, 2)
    try:
        return EPOCH + micros * MICROSECOND, hit_id
    except OverflowError:
        raise ValueError(cursors.INVALID) from None


def list_page(*, session: AnySession, rule_id: int, limit: int, after: tuple[datetime, int] | None,
              mode: str | None = None, outcome: str | None = None) -> tuple[list[HitOut], str | None]:
    """Up to `limit` hits of the rule after the cursor's, and the next page's cursor (None at the end)."""
    rules.require(session=session, rule_id=rule_id)
    statement: Any = (
        select(*HIT_COLUMNS, T.reference.label("transaction_reference"))
        .join(Transaction.__table__, T.id == H.transaction_id)
        .where(H.rule_id == rule_id)
        .order_by(H.created_at.desc(), H.id.desc())
        .limit(limit + 1)
    )
    if after is not None:
        statement = statement.where(tuple_(H.created_at, H.id) < tuple_(*after))
    if mode is not None:
        statement = statement.where(H.mode == mode)
    if outcome is not None:
        statement = statement.where(H.outcome == outcome)
    rows = session.execute(statement).all()
    items = [HitOut(**row._asdict()) for row in rows[:limit]]
    last = items[-1] if len(rows) > limit else None
    return items, None if last is None else encode_cursor(last.created_at, last.id)
