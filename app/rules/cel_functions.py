"""The functions and methods a rule condition may call, checked and bound at compile time.

Functions: has(a.b), size(x), string(x), int(x), decimal(x), duration("1h"), timestamp("…Z"),
account_count("24h"), account_sum("24h"), in_list("name", value).
Methods: s.startsWith(p), s.endsWith(p), s.contains(p), s.matches(re), s.lowerAscii(),
s.upperAscii(), x.size().
"""

from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from lark import Token, Tree

from app.rules import cel_values as v
from app.rules.cel_compile import MAX_WINDOW, CompileError, Compiler, Fn, literal_string, regex, unwrap
from app.rules.cel_values import EvalError

FUNCTIONS = ("has", "size", "string", "int", "decimal", "duration", "timestamp", "account_count", "account_sum",
             "in_list")
METHODS = ("startsWith", "endsWith", "contains", "matches", "lowerAscii", "upperAscii", "size")


def _call_parts(node: Tree) -> tuple[Token, list[Tree]]:
    name = node.children[0]
    assert isinstance(name, Token)
    exprlist = node.children[1] if len(node.children) > 1 else None
    args = [child for child in exprlist.children if isinstance(child, Tree)] if isinstance(exprlist, Tree) else []
    return name, args


def _arity(name: Token, args: list[Tree], count: int) -> None:
    if len(args) != count:
        raise CompileError(f"{name}() takes {count} argument{'s' if count != 1 else ''}, got {len(args)}", name)


def window_of(compiler: Compiler, node: Tree, function: str) -> Any:
    text = literal_string(compiler, node, f"the window of {function}()")
    try:
        window = v.parse_duration(text)
    except ValueError as error:
        raise CompileError(str(error), node) from None
    if window <= timedelta(0) or window > MAX_WINDOW:
        raise CompileError(f"the window of {function}() must be more than 0 and at most 90 days (2160h)", node)
    return window


def compile_function(compiler: Compiler, node: Tree) -> Fn:
    name, args = _call_parts(node)
    function = str(name)
    if function not in FUNCTIONS:
        raise CompileError(f"unknown function '{function}' (functions: {', '.join(FUNCTIONS)})", name)
    if function == "has":
        _arity(name, args, 1)
        target = unwrap(args[0])
        if target.data != "member_dot":
            raise CompileError("has() takes a field, e.g. has(tx.metadata.channel)", args[0])
        base = compiler.compile(target.children[0])
        key = str(target.children[1])
        label = f"has({compiler.text(target)})"
        return lambda run: run.record(label, v.is_present(base(run), key))
    if function in ("account_count", "account_sum"):
        _arity(name, args, 1)
        window = window_of(compiler, args[0], function)
        compiler.windows.add(window)
        if function == "account_sum":
            compiler.sum_windows.add(window)
        label = f'{function}("{v.format_duration(window)}")'
        if function == "account_count":
            return lambda run: run.record(label, run.env.account_count(window))
        return lambda run: run.record(label, run.env.account_sum(window))
    if function == "in_list":
        _arity(name, args, 2)
        list_name = literal_string(compiler, args[0], "the list name of in_list()")
        compiler.lists.add(list_name)
        item = compiler.compile(args[1])
        label = f'in_list("{list_name}", {compiler.text(args[1])})'

        def in_list(run: Any) -> bool:
            value = item(run)
            if value is None:
                return run.record(label, False)
            return run.record(label, bool(run.env.in_list(list_name, v.string_of(value))))
        return in_list
    if function in ("duration", "timestamp"):
        _arity(name, args, 1)
        text = literal_string(compiler, args[0], f"the argument of {function}()")
        try:
            constant: Any = v.parse_duration(text) if function == "duration" else v.parse_timestamp(text)
        except ValueError as error:
            raise CompileError(str(error), args[0]) from None
        return lambda run: constant
    _arity(name, args, 1)
    argument = compiler.compile(args[0])
    conversion = {"size": v.size, "string": v.string_of, "int": _to_int, "decimal": _to_decimal}[function]
    return lambda run: conversion(argument(run))


def _to_int(value: Any) -> int:
    if v.is_number(value):
        if value != int(value):
            raise EvalError(f"int() of {value} would lose its fraction")
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            raise EvalError(f"int() cannot read {v.format_value(value)}") from None
    raise EvalError(f"int() of {v.type_name(value)}")


def _to_decimal(value: Any) -> Decimal:
    if v.is_number(value):
        return Decimal(value)
    if isinstance(value, str):
        try:
            result = Decimal(value)
        except InvalidOperation:
            raise EvalError(f"decimal() cannot read {v.format_value(value)}") from None
        if not result.is_finite():
            raise EvalError(f"decimal() cannot read {v.format_value(value)}")
        return result
    raise EvalError(f"decimal() of {v.type_name(value)}")


def _string_method(method: str, target: Any, argument: Any) -> bool:
    if not isinstance(target, str) or not isinstance(argument, str):
        raise EvalError(f"{method}() needs strings, got {v.type_name(target)} and {v.type_name(argument)}")
    if method == "startsWith":
        return target.startswith(argument)
    if method == "endsWith":
        return target.endswith(argument)
    return argument in target


def compile_method(compiler: Compiler, node: Tree) -> Fn:
    target_node, name = node.children[0], node.children[1]
    assert isinstance(target_node, Tree) and isinstance(name, Token)
    exprlist = node.children[2] if len(node.children) > 2 else None
    args = [child for child in exprlist.children if isinstance(child, Tree)] if isinstance(exprlist, Tree) else []
    method = str(name)
    if method not in METHODS:
        raise CompileError(f"unknown method '{method}' (methods: {', '.join(METHODS)})", name)
    target = compiler.compile(target_node)
    if method in ("lowerAscii", "upperAscii", "size"):
        _arity(name, args, 0)
        if method == "size":
            return lambda run: v.size(target(run))
        upper = method == "upperAscii"

        def case(run: Any) -> str:
            value = target(run)
            if not isinstance(value, str):
                raise EvalError(f"{method}() needs a string, got {v.type_name(value)}")
            return value.upper() if upper else value.lower()
        return case
    _arity(name, args, 1)
    if method == "matches":
        return _compile_matches(compiler, target, args[0])
    argument = compiler.compile(args[0])
    return lambda run: _string_method(method, target(run), argument(run))


def _compile_matches(compiler: Compiler, target: Fn, pattern_node: Tree) -> Fn:
    inner = unwrap(pattern_node)
    if inner.data == "literal":
        pattern = literal_string(compiler, pattern_node, "the pattern of matches()")
        try:
            program = regex(pattern)
        except Exception as error:  # re2.error: the pattern does not compile
            raise CompileError(f"invalid regular expression: {_reason(error)}", pattern_node) from None

        def matches_literal(run: Any) -> bool:
            value = target(run)
            if not isinstance(value, str):
                raise EvalError(f"matches() needs a string, got {v.type_name(value)}")
            return program.search(value) is not None
        return matches_literal
    pattern_fn = compiler.compile(pattern_node)

    def matches(run: Any) -> bool:
        value, pattern = target(run), pattern_fn(run)
        if not isinstance(value, str) or not isinstance(pattern, str):
            raise EvalError("matches() needs a string and a pattern string")
        try:
            program = regex(pattern)
        except Exception as error:
            raise EvalError(f"invalid regular expression: {_reason(error)}") from None
        return program.search(value) is not None
    return matches


def _reason(error: Exception) -> str:
    reason = error.args[0] if error.args else error
    return reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
