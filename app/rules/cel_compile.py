"""CEL parse trees (cel-python's grammar) compiled into Python closures over our own values.

Each tree node becomes one closure `fn(run) -> value`; `run` carries the Env and the values the
condition read. Only the variables `event`, `tx` and `score` and the functions below exist: a
name outside them is a compile error with its position, and a condition never reaches a Python
attribute, module or builtin (field access is key lookup on a map, nothing else).
Names and calls that can be checked before running are checked here: tx's and score's fields,
arities, literal windows (≤ 90 days) and list names, literal regular expressions (RE2).
"""

import ast
import operator
from collections.abc import Callable, Mapping
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

import re2
from lark import Token, Tree

from app.rules import cel_values as v
from app.rules.cel_values import EvalError

Fn = Callable[[Any], Any]

TX_FIELDS = frozenset({"reference", "account_id", "amount", "currency", "counterparty", "description",
                       "metadata", "created_at"})
SCORE_FIELDS = frozenset({"value", "model", "reasons"})
VARIABLES = ("event", "tx", "score")
MAX_WINDOW = timedelta(days=90)
# Nodes that only pass their single child through (precedence levels of the grammar).
PASSTHROUGH = frozenset({"expr", "conditionalor", "conditionaland", "relation", "addition", "multiplication",
                         "unary", "member", "primary", "paren_expr"})


SIMPLE = frozenset({str, int, Decimal, bool, type(None)})
NUMBERS = frozenset({int, Decimal})
ORDERINGS = {"relation_lt": operator.lt, "relation_le": operator.le, "relation_gt": operator.gt,
             "relation_ge": operator.ge}


class CompileError(Exception):
    def __init__(self, message: str, node: Tree | Token | None) -> None:
        super().__init__(message)
        self.message = message
        self.line, self.column = _position(node)


def _position(node: Tree | Token | None) -> tuple[int, int]:
    if isinstance(node, Token):
        return node.line or 1, node.column or 1
    if isinstance(node, Tree):
        meta = node.meta
        if not getattr(meta, "empty", True):
            return meta.line, meta.column
        for child in node.children:
            if isinstance(child, Tree | Token):
                return _position(child)
    return 1, 1


def unwrap(node: Tree) -> Tree:
    while node.data in PASSTHROUGH and len(node.children) == 1 and isinstance(node.children[0], Tree):
        node = node.children[0]
    return node


class Compiler:
    """One condition's compilation: the closures plus what the Program must know before running."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.windows: set[timedelta] = set()
        self.sum_windows: set[timedelta] = set()  # the windows account_sum reads
        self.lists: set[str] = set()
        self.uses_score = False
        self.uses_event = False

    def text(self, node: Tree) -> str:
        meta = node.meta
        if getattr(meta, "empty", True):
            return "…"
        return " ".join(self.source[meta.start_pos:meta.end_pos].split())

    def compile(self, node: Tree) -> Fn:
        node = unwrap(node)
        handler = getattr(self, "c_" + node.data, None)
        if handler is None:
            raise CompileError(f"unsupported syntax ({node.data})", node)
        return handler(node)

    # ---------------------------------------------------------------- logic

    def c_expr(self, node: Tree) -> Fn:
        test, then, otherwise = (self.compile(child) for child in node.children)

        def conditional(run: Any) -> Any:
            return then(run) if v.truth(test(run), "?:") else otherwise(run)
        return conditional

    def c_conditionalor(self, node: Tree) -> Fn:
        left, right = (self.compile(child) for child in node.children)

        def either(run: Any) -> bool:
            # CEL: true wins even over an error on the other side. (`is` tests first: the common case.)
            try:
                value = left(run)
                if value is True or (value is not False and v.truth(value, "||")):
                    return True
            except EvalError:
                if v.truth(right(run), "||"):
                    return True
                raise
            value = right(run)
            return value if value is True or value is False else v.truth(value, "||")
        return either

    def c_conditionaland(self, node: Tree) -> Fn:
        left, right = (self.compile(child) for child in node.children)

        def both(run: Any) -> bool:
            # CEL: false wins even over an error on the other side. (`is` tests first: the common case.)
            try:
                value = left(run)
                if value is False or (value is not True and not v.truth(value, "&&")):
                    return False
            except EvalError:
                if not v.truth(right(run), "&&"):
                    return False
                raise
            value = right(run)
            return value if value is True or value is False else v.truth(value, "&&")
        return both

    def c_relation(self, node: Tree) -> Fn:
        operator_node, right_node = node.children
        assert isinstance(operator_node, Tree) and isinstance(right_node, Tree)
        left, right = self.compile(operator_node.children[0]), self.compile(right_node)
        op = operator_node.data
        constant = unwrap(right_node)
        if constant.data == "literal" and isinstance(constant.children[0], Token):
            return self._relation_to_constant(op, left, literal_value(constant.children[0]))
        if op in ("relation_eq", "relation_ne"):
            negated = op == "relation_ne"

            def equality(run: Any) -> bool:
                a, b = left(run), right(run)
                kind = type(a)
                if kind is type(b) and kind in SIMPLE:  # the common case, without the general rules
                    return (a == b) is not negated
                return v.equal(a, b) is not negated
            return equality
        if op == "relation_in":
            return lambda run: v.contains(right(run), left(run))
        ordered = ORDERINGS[op]

        def ordering(run: Any) -> bool:
            a, b = left(run), right(run)
            if type(a) in NUMBERS and type(b) in NUMBERS:  # int and Decimal compare exactly (bool is not here)
                return bool(ordered(a, b))
            return bool(ordered(v.compare(a, b), 0))
        return ordering

    @staticmethod
    def _relation_to_constant(op: str, left: Fn, b: Any) -> Fn:
        """`x < 5000`, `x == "USD"`: the relations of a literal, without a closure for its side."""
        if op in ("relation_eq", "relation_ne"):
            negated = op == "relation_ne"
            kind = type(b)
            simple = kind in SIMPLE

            def equality(run: Any) -> bool:
                a = left(run)
                if simple and type(a) is kind:
                    return (a == b) is not negated
                return v.equal(a, b) is not negated
            return equality
        if op == "relation_in":
            return lambda run: v.contains(b, left(run))
        ordered = ORDERINGS[op]
        number = type(b) in NUMBERS

        def ordering(run: Any) -> bool:
            a = left(run)
            if number and type(a) in NUMBERS:
                return bool(ordered(a, b))
            return bool(ordered(v.compare(a, b), 0))
        return ordering

    def _binary(self, node: Tree, operations: dict[str, Callable[[Any, Any], Any]]) -> Fn:
        operator_node, right_node = node.children
        assert isinstance(operator_node, Tree) and isinstance(right_node, Tree)
        left, right = self.compile(operator_node.children[0]), self.compile(right_node)
        operation = operations[operator_node.data]
        return lambda run: operation(left(run), right(run))

    def c_addition(self, node: Tree) -> Fn:
        return self._binary(node, {"addition_add": v.add, "addition_sub": v.subtract})

    def c_multiplication(self, node: Tree) -> Fn:
        return self._binary(node, {"multiplication_mul": v.multiply, "multiplication_div": v.divide,
                                   "multiplication_mod": v.modulo})

    def c_unary(self, node: Tree) -> Fn:
        operator_node, operand_node = node.children
        assert isinstance(operator_node, Tree) and isinstance(operand_node, Tree)
        operand = self.compile(operand_node)
        if operator_node.data == "unary_not":
            return lambda run: not v.truth(operand(run), "!")
        return lambda run: v.negate(operand(run))

    # ---------------------------------------------------------------- names and fields

    def path(self, node: Tree) -> str | None:
        """`tx`, `tx.metadata.channel`, `score.value`: the dotted name of a plain field chain, else None."""
        node = unwrap(node)
        if node.data == "ident":
            return str(node.children[0])
        if node.data == "member_dot":
            base = self.path(node.children[0])
            return f"{base}.{node.children[1]}" if base else None
        return None

    def c_ident(self, node: Tree) -> Fn:
        name = str(node.children[0])
        if name == "event":
            self.uses_event = True
            return lambda run: run.env.event
        if name == "tx":
            return lambda run: run.tx
        if name == "score":
            self.uses_score = True
            return lambda run: run.env.score
        raise CompileError(f"unknown variable '{name}' (a condition can read event, tx and score)", node)

    def c_member_dot(self, node: Tree) -> Fn:
        base_node, name_token = node.children
        assert isinstance(base_node, Tree)
        name = str(name_token)
        base_path = self.path(base_node)
        if base_path == "tx":
            if name not in TX_FIELDS:
                raise CompileError(f"tx has no field '{name}' (fields: {', '.join(sorted(TX_FIELDS))})", name_token)
            key = f"tx.{name}"
            if name == "metadata":
                return lambda run: run.tx.get("metadata") or {}

            def tx_field(run: Any) -> Any:
                value = run.read[key] = run.tx.get(name)
                return value
            return tx_field
        if base_path == "score":
            self.uses_score = True
            if name not in SCORE_FIELDS:
                raise CompileError(f"score has no field '{name}' (fields: {', '.join(sorted(SCORE_FIELDS))})",
                                   name_token)
        if base_path in ("event",):
            raise CompileError("event is a string and has no fields", name_token)
        base = self.compile(base_node)
        if not base_path:
            return lambda run: v.field(base(run), name)
        key = f"{base_path}.{name}"

        def recorded_field(run: Any) -> Any:
            value = run.read[key] = v.field(base(run), name)
            return value
        return recorded_field

    def c_member_index(self, node: Tree) -> Fn:
        base_node, key_node = node.children
        assert isinstance(base_node, Tree) and isinstance(key_node, Tree)
        base, key = self.compile(base_node), self.compile(key_node)
        label = self.text(node)
        return lambda run: run.record(label, v.index(base(run), key(run)))

    def c_member_object(self, node: Tree) -> Fn:
        raise CompileError("message construction is not supported in rule conditions", node)

    # ---------------------------------------------------------------- literals

    def c_literal(self, node: Tree) -> Fn:
        token = node.children[0]
        assert isinstance(token, Token)
        value = literal_value(token)
        return lambda run: value

    def c_list_lit(self, node: Tree) -> Fn:
        exprlist = node.children[0] if node.children else None
        items = self.arguments(exprlist)
        if isinstance(exprlist, Tree) and all(unwrap(child).data == "literal" for child in exprlist.children):
            constant = [item(None) for item in items]  # built once: literals read nothing
            return lambda run: constant
        return lambda run: [item(run) for item in items]

    def c_map_lit(self, node: Tree) -> Fn:
        if not node.children:
            return lambda run: {}
        parts = [self.compile(child) for child in node.children[0].children]
        pairs = list(zip(parts[::2], parts[1::2]))
        return lambda run: {key(run): value(run) for key, value in pairs}

    def arguments(self, exprlist: Any) -> list[Fn]:
        return [self.compile(child) for child in exprlist.children] if isinstance(exprlist, Tree) else []

    # ---------------------------------------------------------------- calls

    def c_ident_arg(self, node: Tree) -> Fn:
        from app.rules.cel_functions import compile_function

        return compile_function(self, node)

    def c_member_dot_arg(self, node: Tree) -> Fn:
        from app.rules.cel_functions import compile_method

        return compile_method(self, node)

    def c_dot_ident(self, node: Tree) -> Fn:
        raise CompileError("a leading '.' is not supported", node)

    def c_dot_ident_arg(self, node: Tree) -> Fn:
        raise CompileError("a leading '.' is not supported", node)


def literal_value(token: Token) -> Any:
    text, kind = str(token), token.type
    try:
        if kind == "INT_LIT":
            return int(text, 16) if "x" in text.lower() else int(text)
        if kind == "UINT_LIT":
            body = text[:-1]
            return int(body, 16) if "x" in body.lower() else int(body)
        if kind == "FLOAT_LIT":
            return Decimal(text)
        if kind == "BOOL_LIT":
            return text == "true"
        if kind == "NULL_LIT":
            return None
        if kind in ("STRING_LIT", "MLSTRING_LIT"):
            if text[0] in "rR":
                quote = 3 if text[1:4] in ('"""', "'''") else 1
                return text[1 + quote:-quote]
            return ast.literal_eval(text)
    except (ValueError, SyntaxError, InvalidOperation) as error:
        raise CompileError(f"invalid literal {text[:40]}: {error}", token) from None
    raise CompileError("bytes literals are not supported in rule conditions", token)


@lru_cache(maxsize=256)
def regex(pattern: str) -> Any:
    """An RE2 program (linear time: no pattern can make a match backtrack for ever)."""
    options = re2.Options()
    options.max_mem = 8 << 20
    options.log_errors = False
    return re2.compile(pattern, options)


def literal_string(compiler: Compiler, node: Tree, what: str) -> str:
    """The value of a string-literal argument; a CompileError naming `what` otherwise."""
    inner = unwrap(node)
    if inner.data == "literal" and isinstance(inner.children[0], Token) and \
            inner.children[0].type in ("STRING_LIT", "MLSTRING_LIT"):
        value = literal_value(inner.children[0])
        assert isinstance(value, str)
        return value
    raise CompileError(f"{what} must be a string literal", node)


def is_map(value: Any) -> bool:
    return isinstance(value, Mapping)
