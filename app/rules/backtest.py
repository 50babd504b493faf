"""Backtest: a condition (or a stored rule version) over stored transactions, each as of its own time.

`run` compiles the condition (a 422 on `condition` with line and column, or an unknown list),
then runs one statement (app/rules/backtest_sql.py): each transaction with its
account_count/account_sum for exactly the windows the condition uses, computed by window
functions with the hot path's meaning, and the state of its latest risk case. Rows the
statement decides itself come back as counts per case state and the 20 newest hits; each
other row is evaluated by the same Program the hot path runs, with event
"transaction.created" and an empty score; lists are read once. Those rows stream through a
server-side cursor in chunks of CHUNK rows, so memory stays flat whatever their number:
counters, and the 20 newest hits for the sample.
The scan is bounded by SCAN_TIMEOUT (a statement_timeout, and a deadline across the
chunks). Nothing is written but the `rule.backtested` audit event.
"""

import heapq
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError

from app import money
from app.audit import service as audit
from app.audit.service import Actor
from app.cases.enums import CaseState
from app.errors import NotFound
from app.rules import backtest_plan, backtest_sql, service, stats
from app.rules.enums import RuleEvent
from app.rules.evaluation import tx_view
from app.rules.language import Env, Program
from app.rules.models import RuleVersion
from app.rules.schemas import Action, Condition, Outcomes
from app.uow.unit import AnySession

CHUNK = 20_000
SAMPLE_SIZE = backtest_sql.SAMPLE_SIZE
SCAN_TIMEOUT = timedelta(seconds=60)
_LIST_ITEMS = text("SELECT list_name, value FROM rule_list_items WHERE list_name = ANY(:names)")
V = RuleVersion.__table__.c
OUTCOME_OF_STATE: dict[str | None, str] = {CaseState.APPROVED: "approved", CaseState.REJECTED: "rejected",
                    CaseState.ESCALATED: "escalated", CaseState.OPEN: "undecided", CaseState.IN_REVIEW: "undecided"}


class BacktestRequest(BaseModel):
    """A condition (and, optionally, its action), or a stored rule's version; and the period."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"condition": 'account_count("24h") > 5 && tx.amount > 1000', "since": "2026-11-01T00:00:00Z"},
        {"rule_id": 1, "version": 2},
    ]})

    condition: Condition | None = None
    action: Action | None = None
    rule_id: Annotated[int, Field(ge=1, lt=2**63, strict=True)] | None = None
    version: Annotated[int, Field(ge=1, lt=2**31, strict=True)] | None = None
    since: AwareDatetime | None = Field(None, description="From this time on (included)")
    until: AwareDatetime | None = Field(None, description="Before this time (excluded)")


class BacktestResult(BaseModel):
    evaluated: int = Field(description="Stored transactions the condition was evaluated on")
    hits: int = Field(description="Transactions it matched")
    errors: int = Field(description="Transactions on which it failed at run time (not hits)")
    hit_rate: float | None = Field(description="hits ÷ evaluated (null when nothing was evaluated)")
    outcomes: Outcomes = Field(description="How the hit transactions' latest risk cases were decided")
    precision: float | None = Field(description="rejected ÷ (approved + rejected) among hits; null when none "
                                                "was decided")
    sample: list[str] = Field(description="References of up to 20 hit transactions, newest first")


class _Tally:
    __slots__ = ("evaluated", "hits", "errors", "outcomes", "newest")

    def __init__(self) -> None:
        self.evaluated = self.hits = self.errors = 0
        self.outcomes = dict.fromkeys(Outcomes.model_fields, 0)
        self.newest: list[tuple[datetime, int, str]] = []  # a min-heap of the SAMPLE_SIZE newest hits

    def hit(self, row: Any) -> None:
        self.decided(row.state, 1)
        self.sample(row)

    def decided(self, state: str | None, hits: int) -> None:
        """`hits` hit transactions whose latest risk case is in `state` (None: no case)."""
        self.hits += hits
        self.outcomes[OUTCOME_OF_STATE.get(state, "not_reviewed")] += hits

    def sample(self, row: Any) -> None:
        entry = (row.created_at, row.id, row.reference)
        if len(self.newest) < SAMPLE_SIZE:
            heapq.heappush(self.newest, entry)
        elif entry > self.newest[0]:
            heapq.heapreplace(self.newest, entry)

    def result(self) -> BacktestResult:
        outcomes = Outcomes(**self.outcomes)
        return BacktestResult(
            evaluated=self.evaluated, hits=self.hits, errors=self.errors,
            hit_rate=self.hits / self.evaluated if self.evaluated else None, outcomes=outcomes,
            precision=stats.precision(outcomes), sample=[ref for _, _, ref in sorted(self.newest, reverse=True)])


class ScanTooLong(service.InvalidField):
    def __init__(self) -> None:
        super().__init__("since", f"the backtest did not finish within {SCAN_TIMEOUT.seconds} s; narrow the period "
                                  "with since and until", "backtest_timeout")


def _program(session: AnySession, data: BacktestRequest) -> tuple[Program, dict[str, Any]]:
    """The compiled condition and what the audit event names it by."""
    if data.condition is not None and data.rule_id is not None:
        raise service.InvalidField("rule_id", "give a condition or a rule_id with its version, not both")
    if data.condition is not None:
        named: dict[str, Any] = {"condition": data.condition}
        if data.action is not None:
            named["action"] = data.action.model_dump()
        return service.compiled(session=session, condition=data.condition), named
    if data.rule_id is None:
        raise service.InvalidField("condition", "give a condition, or a rule_id and a version")
    if data.version is None:
        raise service.InvalidField("version", "give the version of the rule to backtest")
    service.require(session=session, rule_id=data.rule_id)
    condition = session.execute(select(V.condition).where(V.rule_id == data.rule_id, V.version == data.version)
                                ).scalar_one_or_none()
    if condition is None:
        raise NotFound(f"rule {data.rule_id} has no version {data.version}")
    return service.compiled(session=session, condition=condition), {"rule_id": data.rule_id, "version": data.version}


def _lists(session: AnySession, program: Program) -> dict[str, frozenset[str]]:
    if not program.lists:
        return {}
    items: dict[str, set[str]] = {name: set() for name in program.lists}
    for name, value in session.execute(_LIST_ITEMS, {"names": sorted(program.lists)}):
        items[name].add(value)
    return {name: frozenset(values) for name, values in items.items()}


def _scan(session: AnySession, program: Program, data: BacktestRequest, tally: _Tally) -> None:
    plan = backtest_plan.plan(program.source)
    windows = tuple(sorted(program.windows))
    sql = text(backtest_sql.statement(plan, windows, since=data.since is not None, until=data.until is not None))
    lists = _lists(session, program)
    current: dict[str, Any] = {}
    index = {window: i for i, window in enumerate(windows)}
    env = Env(event=RuleEvent.TRANSACTION_CREATED.value, tx={}, score={},
              account_count=lambda window: current[f"c{index[window]}"],
              account_sum=lambda window: Decimal(money.format_amount(current[f"s{index[window]}"],
                                                                     current["currency"])),
              in_list=lambda name, value: value in lists.get(name, ()))
    blank: Mapping[str, Any] = {"counterparty": None, "description": None, "metadata": {}}
    deadline = time.monotonic() + SCAN_TIMEOUT.total_seconds()
    settings = {**backtest_sql.SETTINGS, "statement_timeout": f"{int(SCAN_TIMEOUT.total_seconds() * 1000)}"}
    previous = _set_local(session, settings)
    try:
        # A server-side cursor (DECLARE) never runs a parallel plan; a covered condition sends
        # Python only its inexact rows (besides 1 + states + 20), so it is fetched at once, in parallel.
        options = {} if plan.covered else {"stream_results": True, "max_row_buffer": CHUNK}
        result = session.execute(sql.execution_options(**options), {"since": data.since, "until": data.until})
        try:
            for rows in result.partitions(CHUNK):
                if time.monotonic() > deadline:
                    raise ScanTooLong()
                for row in rows:
                    if row.part == "e":
                        tally.evaluated += row.n
                    elif row.part == "o":  # hits decided in SQL, by their latest case's state
                        tally.decided(row.state, row.n)
                    elif row.part == "s":  # the newest of them
                        tally.sample(row)
                    else:
                        current = row._mapping
                        env.tx = tx_view({**blank, **current})
                        outcome = program.evaluate(env)
                        if outcome.matched:
                            tally.hit(row)
                        elif outcome.error:
                            tally.errors += 1
        finally:
            result.close()
    except OperationalError as error:
        if "statement timeout" in str(error.orig):
            raise ScanTooLong() from None
        raise
    _set_local(session, previous)


def _set_local(session: AnySession, settings: dict[str, str]) -> dict[str, str]:
    """SET LOCAL each setting; the values they had."""
    names = sorted(settings)
    params = {f"n{i}": name for i, name in enumerate(names)}
    read = session.execute(text("SELECT " + ", ".join(f"current_setting(:n{i})" for i in range(len(names)))),
                           params).one()
    session.execute(text("SELECT " + ", ".join(f"set_config(:n{i}, :v{i}, true)" for i in range(len(names)))),
                    {**params, **{f"v{i}": settings[name] for i, name in enumerate(names)}})
    return dict(zip(names, read, strict=True))


def run(*, session: AnySession, actor: Actor, data: BacktestRequest) -> BacktestResult:
    """Evaluate the condition on every stored transaction in [since, until), as of its own time."""
    if data.since is not None and data.until is not None and data.since > data.until:
        raise service.InvalidField("until", "must not be before since")
    program, named = _program(session, data)
    tally = _Tally()
    _scan(session, program, data, tally)
    result = tally.result()
    audit.record(session, actor=actor, action="rule.backtested", entity_type="rule",
                 entity_id=named.get("rule_id", "condition"), after={
                     **named, "since": data.since.isoformat() if data.since else None,
                     "until": data.until.isoformat() if data.until else None,
                     **result.model_dump(exclude={"sample", "hit_rate", "precision"})})
    return result
