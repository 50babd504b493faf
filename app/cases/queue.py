"""The review queue: highest risk first, then oldest, with filters, search and live counts."""

import time
from collections.abc import Sequence

from sqlalchemy import Text, and_, cast, func, literal, or_, select, text
from sqlalchemy.dialects.postgresql import ARRAY, array
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from app import cursors
from app.cases.enums import CaseState
from app.cases.models import ReviewCaseSearch
from app.cases.queries import CASE_ROWS, CLAIM_IS_LIVE, UNDECIDED, C, state_condition, to_out
from app.cases.schemas import CaseOut, QueueFilter
from app.users.models import User

CURSOR_PREFIX = "q"
S = ReviewCaseSearch.__table__.c


def encode_cursor(risk: int, case_id: int) -> str:
    """The queue cursor that points after the case (`risk`, `case_id`)."""
    return cursors.encode(CURSOR_PREFIX, risk, case_id)


def decode_cursor(cursor: str) -> tuple[int, int]:
    """The (risk, id) a queue cursor points after; ValueError if it is not one of ours."""
    risk, case_id = cursors.decode(cursor, CURSOR_PREFIX, 2)
    return risk, case_id


def _conditions(filters: QueueFilter, session: Session) -> list[ColumnElement[bool]]:
    """The WHERE of the queue's filters (without the page's cursor)."""
    conditions = [state_condition(filters.state)]
    if filters.kind:
        conditions.append(C.kind == filters.kind)
    if filters.currency:
        conditions.append(C.currency == filters.currency)
    if filters.min_amount is not None:
        conditions.append(C.amount >= filters.min_amount)
    if filters.max_amount is not None:
        conditions.append(C.amount <= filters.max_amount)
    if filters.min_score is not None:
        conditions.append(C.risk >= filters.min_score)
    if filters.max_score is not None:
        conditions.append(C.risk <= filters.max_score)
    if filters.assignee:
        user_id = select(User.id).where(User.username == filters.assignee).scalar_subquery()
        conditions += [C.assignee_id == user_id, CLAIM_IS_LIVE]
    if filters.q:
        conditions.append(search_condition(filters.q, common=common_grams(session=session)))
    return conditions


def search_condition(search: str, common: Sequence[str] = ()) -> ColumnElement[bool]:
    """Cases whose reference, account or counterparty contains `search`, in any case; `common`: grams
    most cases have, left out of the index lookup (the substring check still sees them)."""
    return C.id.in_(select(S.case_id).where(*search_matches(search, common)))


def search_matches(search: str, common: Sequence[str] = ()) -> list[ColumnElement[bool]]:
    """The conditions on review_case_search rows whose text contains `search`."""
    escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    # Lower-cased by PostgreSQL, as the stored text was, so both sides agree on every letter.
    lowered = func.lower(literal(search, Text))
    matches: list[ColumnElement[bool]] = [
        S.search_text.like(func.lower(literal("%" + escaped + "%", Text)), escape="\\")]
    # The row's 2- and 3-grams hold the text's trigrams (those that narrow the search), or
    # the text itself when it is two characters long (the GIN index), then the real check;
    # one character: only that.
    if len(search) >= 3:
        keys = func.riskdesk_trigrams_except(lowered, cast(literal(list(common), ARRAY(Text)), ARRAY(Text)),
                                             type_=ARRAY(Text))
        matches.insert(0, S.grams.op("@>")(keys))
    elif len(search) == 2:
        matches.insert(0, S.grams.op("@>")(array([lowered], type_=Text)))
    return matches


# A gram in at least this share of the search rows narrows a lookup too little to be worth
# reading; pg_stats knows which (ANALYZE keeps it current), read again every few minutes.
COMMON_GRAM_SHARE = 0.5
COMMON_GRAMS_TTL_SECONDS = 300
_common_grams: tuple[float, list[str]] = (float("-inf"), [])
COMMON_GRAMS_SQL = text(
    "SELECT most_common_elems::text::text[] AS grams, most_common_elem_freqs AS shares FROM pg_stats"
    " WHERE schemaname = current_schema() AND tablename = 'review_case_search' AND attname = 'grams'"
)


def common_grams(*, session: Session) -> list[str]:
    """The grams at least COMMON_GRAM_SHARE of the cases' search rows hold, by the planner's statistics."""
    global _common_grams
    read_at, grams = _common_grams
    if time.monotonic() - read_at < COMMON_GRAMS_TTL_SECONDS:
        return grams
    row = session.execute(COMMON_GRAMS_SQL).one_or_none()
    grams = [] if row is None or row.grams is None else [
        gram for gram, share in zip(row.grams, row.shares, strict=False) if share >= COMMON_GRAM_SHARE]
    _common_grams = (time.monotonic(), grams)
    return grams


def list_page(
    *, session: Session, filters: QueueFilter, limit: int, after: tuple[int, int] | None = None
) -> tuple[list[CaseOut], str | None]:
    """Highest risk first, then oldest; keyset-paginated on (risk, id)."""
    page = select(C.id).where(*_conditions(filters, session)).order_by(C.risk.desc(), C.id).limit(limit + 1)
    if after is not None:
        risk, case_id = after
        page = page.where(or_(C.risk < risk, and_(C.risk == risk, C.id > case_id)))
    # The page's ids from the cases alone (a search may find many), then only those joined to
    # their transaction and users.
    rows = session.execute(CASE_ROWS.where(C.id.in_(page.scalar_subquery())).order_by(C.risk.desc(), C.id)).all()
    next_cursor = encode_cursor(rows[limit - 1].risk, rows[limit - 1].id) if len(rows) > limit else None
    return [to_out(row) for row in rows[:limit]], next_cursor


# The queue screen's result count stops at RESULT_COUNT_CAP ("1,000+ cases"): past that a
# number tells a reviewer nothing the live counts do not, and counting reads at most that many.
RESULT_COUNT_CAP = 1_000


def count_matching(*, session: Session, filters: QueueFilter) -> int:
    """How many cases the filters find, at most RESULT_COUNT_CAP."""
    return session.execute(
        select(func.count()).select_from(
            select(C.id).where(*_conditions(filters, session)).limit(RESULT_COUNT_CAP).subquery())
    ).scalar_one()


# Live counts stop at COUNT_CAP ("10,000+"): a queue that long needs no exact number, and
# each count then reads at most that many index entries however deep the backlog is.
COUNT_CAP = 10_000


def _capped_count(condition):
    return (
        select(func.count())
        .select_from(select(C.id).where(UNDECIDED, condition).limit(COUNT_CAP).subquery())
        .scalar_subquery()
    )


def counts(*, session: Session, user_id: int) -> dict[str, int]:
    """Live queue counts (each at most COUNT_CAP): open, in review, escalated, awaiting a second approval, mine."""
    row = session.execute(
        select(
            _capped_count(state_condition(CaseState.OPEN)).label("open"),
            _capped_count(state_condition(CaseState.IN_REVIEW)).label("in_review"),
            _capped_count(C.state == CaseState.ESCALATED).label("escalated"),
            _capped_count(and_(C.first_approved_by.is_not(None), C.state != CaseState.ESCALATED)).label(
                "awaiting_second_approval"
            ),
            _capped_count(and_(C.assignee_id == user_id, CLAIM_IS_LIVE)).label("mine"),
        )
    ).one()
    return row._asdict()
