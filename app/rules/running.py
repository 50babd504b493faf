"""The rules that run, compiled once per published version and cached per process.

Every change to what runs (publish, rollback, disable, a list edit) bumps the rule generation
in its own transaction (app/rules/generation.py). The create statement reads the generation in
its RETURNING clause, so a request learns whether its cache is current without a query of its
own; only when the generation moved does it load the running versions (and the lists they
read) and compile them. A request evaluates the set its generation names: racing a publish,
it runs either the old versions or the new ones, never a mix.
"""

import logging
import threading
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import text

from app.rules.enums import RuleMode
from app.rules.language import ConditionError, Program, compile_condition
from app.uow.unit import AnySession

log = logging.getLogger(__name__)

# One statement, one snapshot: the running versions and the generation they belong to.
_RUNNING = text(
    "SELECT r.id, r.name, r.mode, v.version, v.condition, v.risk, v.reason, "
    "(SELECT generation FROM rule_generation WHERE id = 1) AS generation "
    "FROM rules r JOIN rule_versions v ON v.rule_id = r.id AND v.version = r.running_version "
    "WHERE r.mode IN ('shadow', 'active') ORDER BY r.id"
)
_GENERATION = text("SELECT COALESCE((SELECT generation FROM rule_generation WHERE id = 1), 0)")
_LIST_ITEMS = text("SELECT list_name, value FROM rule_list_items WHERE list_name = ANY(:names)")


@dataclass(frozen=True)
class RunningRule:
    rule_id: int
    name: str
    version: int
    mode: RuleMode
    risk: int
    reason: str
    program: Program
    on_score: bool  # reads `score` or `event`: a posted score can change its answer

    @property
    def active(self) -> bool:
        return self.mode == RuleMode.ACTIVE


@dataclass(frozen=True)
class RuleSet:
    generation: int
    on_create: tuple[RunningRule, ...]
    on_score: tuple[RunningRule, ...]
    lists: dict[str, frozenset[str]]

    def windows(self, rules: tuple[RunningRule, ...]) -> frozenset[timedelta]:
        return frozenset(window for rule in rules for window in rule.program.windows)

    def sum_windows(self, rules: tuple[RunningRule, ...]) -> frozenset[timedelta]:
        return frozenset(window for rule in rules for window in rule.program.sum_windows)


EMPTY = RuleSet(generation=-1, on_create=(), on_score=(), lists={})
_cache: RuleSet = EMPTY
_loading = threading.Lock()


def _load(session: AnySession) -> RuleSet:
    rows = session.execute(_RUNNING).all()
    generation = rows[0].generation if rows else int(session.execute(_GENERATION).scalar_one())
    rules: list[RunningRule] = []
    for row in rows:
        try:
            program = compile_condition(row.condition)
        except ConditionError:  # stored versions compiled when written; a newer language may refuse one
            log.error("rule %s version %s no longer compiles; it is skipped", row.id, row.version)
            continue
        rules.append(RunningRule(rule_id=row.id, name=row.name, version=row.version, mode=RuleMode(row.mode),
                                 risk=row.risk, reason=row.reason, program=program,
                                 on_score=program.uses_score or program.uses_event))
    names = sorted({name for rule in rules for name in rule.program.lists})
    lists: dict[str, set[str]] = {name: set() for name in names}
    if names:
        for list_name, value in session.execute(_LIST_ITEMS, {"names": names}):
            lists[list_name].add(value)
    # A condition that reads neither `score` nor `event` cannot change its answer when a score
    # arrives: it runs once, when the transaction is created.
    return RuleSet(generation=int(generation or 0), on_create=tuple(rules),
                   on_score=tuple(rule for rule in rules if rule.on_score),
                   lists={name: frozenset(values) for name, values in lists.items()})


def for_generation(session: AnySession, generation: int | None) -> RuleSet:
    """The running rules of `generation` (None: read it now), from the cache when it is current."""
    global _cache
    if generation is None:
        generation = int(session.execute(_GENERATION).scalar_one())
    cached = _cache
    if cached.generation == generation:
        return cached
    with _loading:
        if _cache.generation == generation:
            return _cache
        loaded = _load(session)
        if loaded.generation >= _cache.generation:
            _cache = loaded
        return loaded
