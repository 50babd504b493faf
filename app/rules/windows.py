"""account_count and account_sum, for every transaction of a request at once.

One statement per request, whatever the number of transactions and rules: each transaction
is one probe carrying its window bounds (computed once, here), and per probe one index-only
range scan over (account_id, created_at) — the index carries currency and amount, so no
table page is read — takes the account's rows strictly before it within the widest window,
plus a small scan of the rows at its very instant with a lower id. "Before this one" is by
creation time, and within one statement's rows (a batch, a commit group: they share
created_at) by id, so items of one batch count the earlier ones. Each window is a FILTER over
those rows; a window's sum is computed only when some running condition reads it.
`account_count` counts the account's other transactions in any currency; `account_sum` adds
those in the transaction's own currency (amounts of different currencies do not add up).
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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


# transaction id → window → (count, sum); the sum is None for a window whose sum nobody reads
Stats = dict[int, dict[timedelta, tuple[int, Decimal | None]]]


@lru_cache(maxsize=64)
def _statement(windows: tuple[timedelta, ...], summed: tuple[bool, ...]) -> TextClause:
    columns = []
    for i, with_sum in enumerate(summed):
        columns.append(f"count(*) FILTER (WHERE t.created_at > p.b{i})")
        if with_sum:
            columns.append(f"COALESCE(sum(t.amount) FILTER (WHERE t.created_at > p.b{i} "
                           "AND t.currency = p.currency), 0)")
    bounds = "".join(f", b{i} timestamptz" for i in range(len(windows)))
    widest = f"p.b{len(windows) - 1}"  # windows are in ascending order
    return text(
        "SELECT p.id, agg.* FROM json_to_recordset(CAST(:probes AS json)) "
        f"AS p(id bigint, account_id text, currency text, created_at timestamptz{bounds}) "
        f"CROSS JOIN LATERAL (SELECT {', '.join(columns)} FROM ("
        "SELECT created_at, currency, amount FROM transactions t "
        f"WHERE t.account_id = p.account_id AND t.created_at > {widest} AND t.created_at < p.created_at "
        "UNION ALL SELECT created_at, currency, amount FROM transactions t "
        "WHERE t.account_id = p.account_id AND t.created_at = p.created_at AND t.id < p.id) t) agg"
    )


def compute(session: AnySession, probes: Iterable[Probe], windows: frozenset[timedelta],
            sums: frozenset[timedelta] | None = None) -> Stats:
    """Every window's count, and the sum of those in `sums` (default: all), for every probe, in one statement."""
    probes = list(probes)
    if not probes or not windows:
        return {}
    ordered = tuple(sorted(windows))
    summed = tuple(sums is None or window in sums for window in ordered)
    payload = []
    for p in probes:
        at = p.created_at.astimezone(UTC)  # bounds as absolute instants, whatever the offset
        item = {"id": p.id, "account_id": p.account_id, "currency": p.currency, "created_at": at.isoformat()}
        for i, window in enumerate(ordered):
            item[f"b{i}"] = (at - window).isoformat()
        payload.append(item)
    stats: Stats = {}
    for row in session.execute(_statement(ordered, summed), {"probes": json.dumps(payload)}):
        values = iter(row[1:])
        stats[row[0]] = {window: (next(values), next(values) if with_sum else None)
                         for window, with_sum in zip(ordered, summed)}
    return stats
