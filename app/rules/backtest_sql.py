"""The backtest's one statement: stored transactions, each with its windows as of its own time.

account_count/account_sum have the hot path's meaning (app/rules/windows.py): the account's
other transactions with created_at in (t - window, t), or at t with a smaller id; the count
in any currency, the sum in the transaction's own. Here they are window functions over one
scan, for exactly the windows the condition uses:

    count = count(*) OVER (PARTITION BY account_id ORDER BY created_at
                           RANGE BETWEEN window - 1µs PRECEDING AND CURRENT ROW)
          - count(*) OVER (PARTITION BY account_id, created_at ORDER BY id
                           ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING)

The RANGE frame is every row at a time in [t - window + 1µs, t] (timestamps are whole
microseconds, so that is "> t - window"), all rows at time t included; the second window
takes back the rows at time t with an id not smaller than this one (itself included). Both
frames are moving aggregates (no EXCLUDE clause, which would recompute every frame). The sum
is the same with currency in the partitions. All count windows share one sort (account_id,
created_at, id), all sum windows another.

The scan reads back to `since - widest window` (those rows count in windows) and stops at
`until` (a window only looks back). Each in-range row gets a code `k`: 0, ruled out by a
pre-filter bound (app/rules/backtest_plan.py); 1, a hit decided in SQL (a covered condition
on exact values); 2, to evaluate in Python. Rows with k > 0 come out, with the state of
their transaction's latest risk case; so does one row per account (k = 0 reads nothing but
its code), carrying `n`, the account's number of in-range rows: `evaluated` is their sum,
from the same snapshot, without sending the ruled-out rows.
"""

from datetime import timedelta
from functools import lru_cache

from app.money import _minor_units_by_code
from app.rules.backtest_plan import Bound, ScanPlan

# The columns a condition's tx may read, beyond the ones every scan reads.
OPTIONAL_COLUMNS = ("counterparty", "description", "metadata")
BASE_COLUMNS = ("id", "reference", "account_id", "amount", "currency", "created_at")
# For the scan's statement only (SET LOCAL, then put back): the sort stays in memory, and a
# sequential scan plus one sort beats walking the (account_id, created_at) index, whose
# every row is a random heap read.
SETTINGS = {"work_mem": "128MB", "enable_indexscan": "off"}
SAMPLE_SIZE = 20
# Partitions compare bytes: the same groups as the columns' collation (equality is by bytes
# there too), and a sort several times faster than by the database's locale.
ACCOUNT = 't.account_id COLLATE "C"'
ACCOUNT_CURRENCY = 't.account_id COLLATE "C", t.currency COLLATE "C"'


def _interval(window: timedelta, less: timedelta = timedelta(0)) -> str:
    microseconds = (window - less) // timedelta(microseconds=1)
    return f"interval '{microseconds} microseconds'"


def _frame(window: timedelta) -> str:
    since = _interval(window, timedelta(microseconds=1))
    return f"ORDER BY t.created_at RANGE BETWEEN {since} PRECEDING AND CURRENT ROW"


@lru_cache(maxsize=1)
def _minor_units() -> str:
    """CASE w.currency …: the currency's minor unit digits (2 unless listed)."""
    odd = sorted((code, units) for code, units in _minor_units_by_code().items() if units != 2)
    return "CASE w.currency " + " ".join(f"WHEN '{code}' THEN {units}" for code, units in odd) + " ELSE 2 END"


def _scan(plan: ScanPlan, windows: tuple[timedelta, ...], *, since: bool, until: bool) -> str:
    inner = [f"t.{name}" for name in BASE_COLUMNS] + [f"t.{name}" for name in OPTIONAL_COLUMNS if name in plan.fields]
    definitions = []
    if windows and plan.uses_count:
        definitions.append(f"later_peers AS (PARTITION BY {ACCOUNT}, t.created_at ORDER BY t.id "
                           "ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING)")
    if windows and plan.uses_sum:
        definitions.append(f"later_currency_peers AS (PARTITION BY {ACCOUNT_CURRENCY}, t.created_at "
                           "ORDER BY t.id ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING)")
    for i, window in enumerate(windows):
        if plan.uses_count:
            definitions.append(f"count_{i} AS (PARTITION BY {ACCOUNT} {_frame(window)})")
            inner.append(f"count(*) OVER count_{i} - count(*) OVER later_peers AS c{i}")
        if plan.uses_sum:
            definitions.append(f"sum_{i} AS (PARTITION BY {ACCOUNT_CURRENCY} {_frame(window)})")
            inner.append(f"sum(t.amount) OVER sum_{i} - sum(t.amount) OVER later_currency_peers AS s{i}")
    where = []
    if since and windows:  # earlier rows count in the windows of the first ones in range
        where.append(f"t.created_at > CAST(:since AS timestamptz) - {_interval(max(windows))}")
    elif since:
        where.append("t.created_at >= CAST(:since AS timestamptz)")
    if until:
        where.append("t.created_at < CAST(:until AS timestamptz)")
    return (f"SELECT {', '.join(inner)} FROM transactions t"
            + (f" WHERE {' AND '.join(where)}" if where else "")
            + (f" WINDOW {', '.join(definitions)}" if definitions else ""))


def _column(bound: Bound, plan: ScanPlan, windows: tuple[timedelta, ...]) -> str | None:
    if bound.subject == "amount":
        return "w.amount"
    if bound.window in windows and (plan.uses_count if bound.subject == "count" else plan.uses_sum):
        return f"w.{'c' if bound.subject == 'count' else 's'}{windows.index(bound.window)}"
    return None


def _code(plan: ScanPlan, windows: tuple[timedelta, ...]) -> str:
    usable = [(bound, column) for bound in plan.bounds if (column := _column(bound, plan, windows))]
    if not usable:
        return "2"
    passes = " AND ".join(bound.sql(column) for bound, column in usable)
    if not plan.covered or len(usable) != len(plan.bounds):
        return f"CASE WHEN {passes} THEN 2 ELSE 0 END"
    exact = " AND ".join(sorted({f"{column} = round({column}, {_minor_units()})" for bound, column in usable
                                 if bound.subject != "count"})) or "true"
    matches = " AND ".join(bound.sql(column, widened=False) for bound, column in usable)
    return (f"CASE WHEN NOT ({passes}) THEN 0 WHEN NOT ({exact}) THEN 2 WHEN {matches} THEN 1 ELSE 0 END")


def statement(plan: ScanPlan, windows: tuple[timedelta, ...], *, since: bool, until: bool) -> str:
    """The SQL; parameters :since and :until (timestamptz) when those flags are set.

    Rows come out tagged by `part`: 'e' one row, `n` = the in-range rows (evaluated);
    'o' per latest-case state, `n` = hits decided in SQL with it; 's' the 20 newest of those
    hits (id, reference, created_at); 'p' each row to evaluate in Python, with its state.
    """
    shown = [name for name in (*BASE_COLUMNS, *OPTIONAL_COLUMNS) if name in BASE_COLUMNS or name in plan.fields]
    shown += [f"c{i}" for i in range(len(windows)) if plan.uses_count]
    shown += [f"s{i}" for i in range(len(windows)) if plan.uses_sum]
    # A row ruled out (k = 0) keeps nothing but its code; a hit decided in SQL, what the sample needs.
    # OFFSET 0 keeps w a subquery of its own, so k is computed once per row, not once per use.
    needs = {name: "w.k = 2" if name not in ("id", "reference", "created_at") else "w.k > 0" for name in shown}
    kept = ", ".join(f"CASE WHEN {needs[name]} THEN w.{name} END AS {name}" for name in shown)
    columns = ", ".join(f"f.{name}" for name in shown)
    blanks = ", ".join(f"NULL AS {name}" for name in shown)
    in_range = " WHERE w.created_at >= CAST(:since AS timestamptz)" if since else ""
    return (
        f"WITH f AS MATERIALIZED (SELECT w.k, {kept} FROM (SELECT w.*, {_code(plan, windows)} AS k "
        f"FROM ({_scan(plan, windows, since=since, until=until)}) w{in_range} OFFSET 0) w), "
        "lc AS (SELECT DISTINCT ON (c.transaction_id) c.transaction_id, c.state::text AS state "
        "FROM review_cases c WHERE c.kind = 'risk' ORDER BY c.transaction_id, c.id DESC) "
        # The rows with real column types first: a union types its NULLs from them.
        f"SELECT 'p' AS part, lc.state, NULL AS n, {columns} FROM f LEFT JOIN lc ON lc.transaction_id = f.id "
        "WHERE f.k = 2 "
        f"UNION ALL SELECT 'e', NULL, count(*), {blanks} FROM f "
        f"UNION ALL SELECT 'o', lc.state, count(*), {blanks} FROM f LEFT JOIN lc ON lc.transaction_id = f.id "
        "WHERE f.k = 1 GROUP BY lc.state "
        f"UNION ALL (SELECT 's', NULL, NULL, {columns} FROM f WHERE f.k = 1 "
        f"ORDER BY f.created_at DESC, f.id DESC LIMIT {SAMPLE_SIZE}) "
    )
