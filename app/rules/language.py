"""Rule conditions: CEL (cel.dev) compiled once, evaluated per transaction with exact decimals.

    program = compile_condition('tx.amount > 5000 && account_count("24h") > 3')
    outcome = program.evaluate(Env(event=..., tx=..., score={}, account_count=..., account_sum=..., in_list=...))

cel-python (`celpy`) gives the grammar and parser (a Lark tree with line and column); the tree is
compiled by app/rules/cel_compile.py into closures of our own, because CEL's double would decide
money comparisons in binary floating point: here every number literal and `tx.amount` is a
Decimal (see cel_values.py). `matches` runs on RE2, linear in its input.

Bounds: a condition is at most MAX_LENGTH characters, MAX_NODES parse-tree nodes and MAX_DEPTH
levels deep (checked without recursion, before compiling). The language has no loops and no
user-defined functions, so an evaluation runs each node at most once: its cost is bounded by
the node count, strings it builds by MAX_STRING, and regular expressions by RE2.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from celpy.celparser import CELParser
from lark import Tree
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedToken

from app.rules.cel_compile import CompileError, Compiler, Fn
from app.rules.cel_values import EvalError, format_value

MAX_LENGTH = 4096
MAX_NODES = 20_000
MAX_DEPTH = 300

CELParser()  # builds the shared LALR parser once, at import
_PARSER = CELParser.CEL_PARSER


class ConditionError(ValueError):
    """A condition that cannot run: the message, and the 1-based line and column it points at."""

    def __init__(self, message: str, line: int = 1, column: int = 1) -> None:
        super().__init__(f"line {line}, column {column}: {message}")
        self.message = message
        self.line = line
        self.column = column


@dataclass
class Env:
    """All a condition can read; nothing else is reachable from it."""

    event: str
    tx: Mapping[str, Any]
    score: Mapping[str, Any]
    account_count: Callable[[timedelta], int]
    account_sum: Callable[[timedelta], Decimal]
    in_list: Callable[[str, str], bool]


@dataclass(frozen=True)
class Outcome:
    """matched; or error (the run-time failure, an `error` hit); values: what the condition read,
    formatted for people, for a hit or an error (empty when the condition did not match)."""

    matched: bool
    error: str | None = None
    values: dict[str, str] = field(default_factory=dict)


NO_MATCH = Outcome(False)


class Run:
    """What conditions evaluate against: the Env and what the running one read. The rules run on
    one transaction share one (each evaluation starts from an empty `read`, and its Outcome keeps
    a formatted copy): an object and a dict per transaction, not per rule."""

    __slots__ = ("env", "tx", "read")

    def __init__(self, env: Env) -> None:
        self.env = env
        self.tx = env.tx  # read by most nodes: one attribute away
        self.read: dict[str, Any] = {}

    def record(self, key: str, value: Any) -> Any:
        self.read[key] = value
        return value


@dataclass(frozen=True)
class Program:
    """A compiled condition. `windows` and `lists` are the literal windows and list names it uses,
    so callers compute each window once and check that the lists exist; `sum_windows` are the
    windows whose account_sum it reads."""

    source: str
    windows: frozenset[timedelta]
    sum_windows: frozenset[timedelta]
    lists: frozenset[str]
    uses_score: bool
    uses_event: bool
    _fn: Fn = field(repr=False, compare=False)

    def evaluate(self, env: Env) -> Outcome:
        return self.evaluate_in(Run(env))

    def evaluate_in(self, run: Run) -> Outcome:
        run.read.clear()
        try:
            result = self._fn(run)
        except EvalError as error:
            return Outcome(False, str(error), _formatted(run.read))
        except RecursionError:
            return Outcome(False, "condition too deeply nested to evaluate", _formatted(run.read))
        except Exception as error:  # a rule never fails the request that runs it
            return Outcome(False, f"{type(error).__name__} while evaluating", _formatted(run.read))
        if result is True:
            return Outcome(True, None, _formatted(run.read))
        if result is False:
            return NO_MATCH
        return Outcome(False, f"the condition gave {format_value(result)}, not true or false", _formatted(run.read))


def _formatted(read: dict[str, Any]) -> dict[str, str]:
    return {key: format_value(value) for key, value in read.items()}


def _check_size(tree: Tree) -> None:
    """Node count and depth, without recursion (a deep tree must not exhaust the stack here)."""
    count, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise ConditionError(f"condition too large (more than {MAX_NODES} parse nodes)")
        if depth > MAX_DEPTH:
            line, column = (node.meta.line, node.meta.column) if not node.meta.empty else (1, 1)
            raise ConditionError(f"condition nested too deeply (more than {MAX_DEPTH} levels)", line, column)
        stack.extend((child, depth + 1) for child in node.children if isinstance(child, Tree))


def _syntax_error(error: LarkError, text: str) -> ConditionError:
    if isinstance(error, UnexpectedCharacters):
        return ConditionError(f"unexpected character {text[error.pos_in_stream or 0]!r}", error.line, error.column)
    if isinstance(error, UnexpectedEOF):
        lines = text.splitlines() or [""]
        return ConditionError("the condition ends too early", len(lines), len(lines[-1]) + 1)
    if isinstance(error, UnexpectedToken):
        token = error.token
        if token.type == "$END":
            lines = text.splitlines() or [""]
            return ConditionError("the condition ends too early", len(lines), len(lines[-1]) + 1)
        return ConditionError(f"unexpected {str(token)!r}", error.line, error.column)
    return ConditionError("syntax error")


def compile_condition(text: str) -> Program:
    """The Program for a condition; ConditionError (with line and column) if it cannot run."""
    if not isinstance(text, str) or not text.strip():
        raise ConditionError("the condition is empty")
    if len(text) > MAX_LENGTH:
        raise ConditionError(f"the condition is longer than {MAX_LENGTH} characters")
    assert _PARSER is not None
    try:
        tree = _PARSER.parse(text)
    except LarkError as error:
        raise _syntax_error(error, text) from None
    _check_size(tree)
    compiler = Compiler(text)
    try:
        fn = compiler.compile(tree)
    except CompileError as error:
        raise ConditionError(error.message, error.line, error.column) from None
    except RecursionError:
        raise ConditionError(f"condition nested too deeply (more than {MAX_DEPTH} levels)") from None
    return Program(source=text, windows=frozenset(compiler.windows),
                   sum_windows=frozenset(compiler.sum_windows), lists=frozenset(compiler.lists),
                   uses_score=compiler.uses_score, uses_event=compiler.uses_event, _fn=fn)
