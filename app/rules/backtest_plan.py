"""What a backtest's scan must read for one condition, learnt from its parse tree.

- `fields`: the `tx` fields the condition can read. When every `tx` in it is the base of a
  literal field (`tx.amount`, `has(tx.metadata)`), only those; otherwise (`tx["amount"]`,
  `tx` passed whole) every field. The scan reads only these columns.
- `bounds`: top-level `&&` conjuncts of the form `tx.amount <op> number`,
  `account_count("w") <op> number` or `account_sum("w") <op> number` (op one of < <= > >=,
  either side), turned into SQL conditions that every matching row satisfies. A row that
  fails one has that conjunct false, and in our CEL a false conjunct makes the whole `&&`
  false even when another conjunct fails at run time (app/rules/cel_compile.py): so such
  rows neither match nor error, and the scan need not evaluate them in Python.
  Counts are compared exactly; amounts and sums are rounded to the currency's minor unit
  before the condition sees them (at most half a unit, and no unit is larger than 1), so
  their SQL bound is widened by 1: a wider bound only sends more rows to Python, which
  decides exactly.
- `covered`: the condition is only such bounds. Then a row whose amount and sums are already
  at their currency's minor unit (rounding changes nothing) is decided in SQL, exactly, and
  only the others are evaluated in Python. Such a condition cannot fail at run time
  (numbers compared with numbers).
"""

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from lark import Token, Tree

from app.rules import cel_values
from app.rules.cel_compile import TX_FIELDS, literal_value, unwrap
from app.rules.language import _PARSER

NUMBER_TOKENS = frozenset({"INT_LIT", "UINT_LIT", "FLOAT_LIT"})
FLIPPED = {"relation_lt": "relation_gt", "relation_le": "relation_ge", "relation_gt": "relation_lt",
           "relation_ge": "relation_le"}
SQL_OPERATORS = {"relation_lt": "<", "relation_le": "<=", "relation_gt": ">", "relation_ge": ">="}


@dataclass(frozen=True)
class Bound:
    """`subject op value` as SQL can check it; subject is "amount", or ("count" | "sum", window)."""

    subject: str
    window: timedelta | None
    operator: str
    value: Decimal

    def sql(self, column: str, *, widened: bool = True) -> str:
        """The SQL condition on `column`: exact for counts; for amounts and sums widened by 1, or
        (widened=False) exact for values already at their currency's minor unit."""
        value = self.value
        if self.subject != "count" and widened:
            value = value - 1 if self.operator in (">", ">=") else value + 1
        return f"{column} {self.operator} {value:f}"


@dataclass(frozen=True)
class ScanPlan:
    fields: frozenset[str]
    bounds: tuple[Bound, ...]
    covered: bool  # the condition is nothing but its bounds: SQL decides rows whose values are exact
    uses_count: bool
    uses_sum: bool


def _walk(tree: Tree) -> list[Tree]:
    found, stack = [], [tree]
    while stack:
        node = stack.pop()
        found.append(node)
        stack.extend(child for child in node.children if isinstance(child, Tree))
    return found


def _tx_field(node: Tree) -> str | None:
    """The field name of `tx.<name>` (else None)."""
    node = unwrap(node)
    if node.data != "member_dot":
        return None
    base = unwrap(node.children[0])
    if base.data == "ident" and str(base.children[0]) == "tx":
        return str(node.children[1])
    return None


def _fields(nodes: list[Tree]) -> frozenset[str]:
    tx_idents = sum(1 for n in nodes if n.data == "ident" and str(n.children[0]) == "tx")
    named = [name for n in nodes if n.data == "member_dot" and (name := _tx_field(n)) is not None]
    if len(named) != tx_idents:  # some `tx` is used whole: read every field
        return TX_FIELDS
    return frozenset(named)


def _conjuncts(node: Tree) -> list[Tree]:
    node = unwrap(node)
    if node.data == "conditionaland" and len(node.children) == 2:
        left, right = node.children
        assert isinstance(left, Tree) and isinstance(right, Tree)
        return _conjuncts(left) + _conjuncts(right)
    return [node]


def _number(node: Tree) -> Decimal | None:
    node = unwrap(node)
    if node.data == "literal" and isinstance(node.children[0], Token) and node.children[0].type in NUMBER_TOKENS:
        value = literal_value(node.children[0])
        return Decimal(value)
    return None


def _subject(node: Tree) -> tuple[str, timedelta | None] | None:
    if _tx_field(node) == "amount":
        return "amount", None
    node = unwrap(node)
    if node.data != "ident_arg" or len(node.children) != 2:
        return None
    name, exprlist = node.children
    if str(name) not in ("account_count", "account_sum") or not isinstance(exprlist, Tree) \
            or len(exprlist.children) != 1 or not isinstance(exprlist.children[0], Tree):
        return None
    argument = unwrap(exprlist.children[0])
    if argument.data != "literal" or not isinstance(argument.children[0], Token) \
            or argument.children[0].type != "STRING_LIT":
        return None
    text = literal_value(argument.children[0])
    assert isinstance(text, str)
    return ("count" if str(name) == "account_count" else "sum"), cel_values.parse_duration(text)


def _bound(node: Tree) -> Bound | None:
    if node.data != "relation" or len(node.children) != 2:
        return None
    operator_node, right = node.children
    if not isinstance(operator_node, Tree) or operator_node.data not in SQL_OPERATORS or not isinstance(right, Tree):
        return None
    left = operator_node.children[0]
    assert isinstance(left, Tree)
    op = operator_node.data
    subject, value = _subject(left), _number(right)
    if subject is None or value is None:
        subject, value, op = _subject(right), _number(left), FLIPPED[op]
    if subject is None or value is None:
        return None
    return Bound(subject[0], subject[1], SQL_OPERATORS[op], value)


def plan(source: str) -> ScanPlan:
    """The plan for a condition that compile_condition accepted."""
    assert _PARSER is not None
    tree = _PARSER.parse(source)
    nodes = _walk(tree)
    conjuncts = _conjuncts(tree)
    bounds = tuple(b for node in conjuncts if (b := _bound(node)) is not None)
    return ScanPlan(fields=_fields(nodes), bounds=bounds, covered=len(bounds) == len(conjuncts),
                    uses_count="account_count" in source,
                    uses_sum="account_sum" in source)
