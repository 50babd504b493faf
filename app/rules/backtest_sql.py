"""The backtest's one statement: stored transactions, each with its windows as of its own time.

account_count/account_sum have the hot path's meaning (app/rules/windows.py): the account's
other transactions with created_at in (t - window, t), or at t with a smaller id; the count
in any currency, the sum in the transaction's own. Here they are window functions over one
scan, for exactly the windows the condition uses:

    count = count(*) OVER (PARTITION BY account_id ORDER BY created_at
                           RANGE BETWEEN window - 1µs PRECEDING AND CURRENT ROW EXCLUDE GROUP)
          + row_number() OVER (PARTITION BY account_id, created_at ORDER BY id) - 1

The frame is the earlier times within the window (timestamps are whole microseconds, so
"≥ t - window + 1µs" is "> t - window"; EXCLUDE GROUP drops time t itself), and row_number
adds the rows at time t with a smaller id. The sum is the same with currency in the
partition, and the rows at t with a smaller id summed by a ROWS frame. All count windows
share one sort (account_id, created_at, id), all sum windows another.

The scan reads back to `since - widest window` (those rows count in windows) and stops at
`until` (a window only looks back). Every in-range row comes out so `evaluated` counts it,
but the ones a pre-filter bound (app/rules/backtest_plan.py) rules out come as bare rows:
`p` false and no other column read. Each row carries the state of its transaction's latest
risk case, for the outcomes.
"""

from datetime import timedelta

from app.rules.backtest_plan import ScanPlan

# The columns a condition's tx may read, beyond the ones every scan reads.
OPTIONAL_COLUMNS = {"counterparty": "t.counterparty", "description": "t.description", "metadata": "t.metadata"}
BASE_COLUMNS = ("id", "reference", "account_id", "amount", "currency", "created_at")


def _interval(window: timedelta, less: timedelta = timedelta(0)) -> str:
    microseconds = (window - less) // timedelta(microseconds=1)
    return f"interval '{microseconds} microseconds'"


def _frame(window: timedelta) -> str:
    return (f"ORDER BY t.created_at RANGE BETWEEN {_interval(window, timedelta(microseconds=1))} PRECEDING "
            "AND CURRENT ROW EXCLUDE GROUP")


def statement(plan: ScanPlan, windows: tuple[timedelta, ...], *, since: bool, until: bool) -> str:
    """The SQL; parameters :since and :until (timestamptz) when those flags are set."""
    inner = [f"t.{name}" for name in BASE_COLUMNS]
    inner += [column for field, column in OPTIONAL_COLUMNS.items() if field in plan.fields]
    definitions = []
    if windows and plan.uses_count:
        definitions.append("peers AS (PARTITION BY t.account_id, t.created_at ORDER BY t.id)")
    if windows and plan.uses_sum:
        definitions.append("currency_peers AS (PARTITION BY t.account_id, t.currency, t.created_at ORDER BY t.id "
                           "ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)")
    for i, window in enumerate(windows):
        if plan.uses_count:
            definitions.append(f"count_{i} AS (PARTITION BY t.account_id {_frame(window)})")
            inner.append(f"count(*) OVER count_{i} + row_number() OVER peers - 1 AS c{i}")
        if plan.uses_sum:
            definitions.append(f"sum_{i} AS (PARTITION BY t.account_id, t.currency {_frame(window)})")
            inner.append(f"COALESCE(sum(t.amount) OVER sum_{i}, 0) + COALESCE(sum(t.amount) OVER currency_peers, 0)"
                         f" AS s{i}")
    where = []
    if since and windows:  # earlier rows count in the windows of the first ones in range
        where.append(f"t.created_at > CAST(:since AS timestamptz) - {_interval(max(windows))}")
    elif since:
        where.append("t.created_at >= CAST(:since AS timestamptz)")
    if until:
        where.append("t.created_at < CAST(:until AS timestamptz)")
    scan = (f"SELECT {', '.join(inner)} FROM transactions t"
            + (f" WHERE {' AND '.join(where)}" if where else "")
            + (f" WINDOW {', '.join(definitions)}" if definitions else ""))

    conditions = []
    for bound in plan.bounds:
        if bound.subject == "amount":
            conditions.append(bound.sql("w.amount"))
        elif bound.window in windows and (plan.uses_count if bound.subject == "count" else plan.uses_sum):
            index = windows.index(bound.window)
            conditions.append(bound.sql(f"w.{'c' if bound.subject == 'count' else 's'}{index}"))
    passes = " AND ".join(conditions) if conditions else "true"
    computed = ["id", "reference", "account_id", "amount", "currency", "created_at"]
    computed += [field for field in OPTIONAL_COLUMNS if field in plan.fields]
    computed += [f"c{i}" for i in range(len(windows)) if plan.uses_count]
    computed += [f"s{i}" for i in range(len(windows)) if plan.uses_sum]
    # A bare row (p false) reads nothing but the flag: it still counts as evaluated.
    outer = ", ".join(f"CASE WHEN p THEN w.{name} END AS {name}" for name in computed)
    return (
        f"SELECT f.p, {outer.replace('w.', 'f.')}, lc.state FROM ("
        f"SELECT w.*, ({passes}) AS p FROM ({scan}) w"
        + (" WHERE w.created_at >= CAST(:since AS timestamptz)" if since else "")
        + ") f LEFT JOIN LATERAL (SELECT c.state FROM review_cases c WHERE f.p AND c.transaction_id = f.id "
        "AND c.kind = 'risk' ORDER BY c.id DESC LIMIT 1) lc ON true"
    )
