"""account_count and account_sum, for every transaction of a request at once.

One statement per request, whatever the number of transactions and rules: each transaction
is one probe, and one index range scan over (account_id, created_at) — the index carries
currency and amount, so no table page is read — fills every window the running rules use
(FILTER per window, the widest bounds the scan). "Before this one" is by creation time, and
within one statement's rows (a batch, a commit group: they share created_at) by id, so items
of one batch count the earlier ones.
`account_count` counts the account's other transactions in any currency; `account_sum` adds
those in the transaction's own currency (amounts of different currencies do not add up).
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache

from sqlalchemy import TextClause, text

from app.uow.unit import AnySession


@dataclass(frozen=True)
class Probe:
    id: int
    account_id: str
    currency: str
    created_at: datetime


# (transaction id, window) → (count, sum)
Stats = dict[tuple[int, timedelta], tuple[int, Decimal]]


@lru_cache(maxsize=64)
def _statement(windows: tuple[timedelta, ...]) -> TextClause:
    columns = []
    for i, window in enumerate(windows):
        since = f"p.created_at - make_interval(secs => {window.total_seconds()})"
        columns.append(f"count(*) FILTER (WHERE t.created_at > {since}) AS c{i}")
        columns.append(f"COALESCE(sum(t.amount) FILTER (WHERE t.created_at > {since} AND t.currency = p.currency), 0)"
                       f" AS s{i}")
    widest = max(windows).total_seconds()
    return text(
        "SELECT p.id, agg.* FROM json_to_recordset(CAST(:probes AS json)) "
        "AS p(id bigint, account_id text, currency text, created_at timestamptz) "
        f"CROSS JOIN LATERAL (SELECT {', '.join(columns)} FROM transactions t "
        "WHERE t.account_id = p.account_id "
        f"AND t.created_at > p.created_at - make_interval(secs => {widest}) "
        "AND (t.created_at < p.created_at OR (t.created_at = p.created_at AND t.id < p.id))) agg"
    )


def compute(session: AnySession, probes: Iterable[Probe], windows: frozenset[timedelta]) -> Stats:
    """Every window's count and sum for every probe, in one statement."""
    probes = list(probes)
    if not probes or not windows:
        return {}
    ordered = tuple(sorted(windows))
    rows = session.execute(_statement(ordered), {"probes": json.dumps([
        {"id": p.id, "account_id": p.account_id, "currency": p.currency, "created_at": p.created_at.isoformat()}
        for p in probes
    ])})
    stats: Stats = {}
    for row in rows:
        values = row._mapping
        for i, window in enumerate(ordered):
            stats[(row.id, window)] = (int(values[f"c{i}"]), Decimal(values[f"s{i}"]))
    return stats
