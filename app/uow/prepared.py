"""Prepared statements for the hot reads (PREPARE once per connection, then EXECUTE)."""

import re
from typing import Any

from sqlalchemy.dialects.postgresql import psycopg2 as pg_dialect
from sqlalchemy.engine import CursorResult
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from app.uow.unit import AnySession

_PARAMETER = re.compile(r"%\(([A-Za-z0-9_]+)\)s")


class PreparedStatement:
    """A read PostgreSQL plans once per connection (PREPARE, then EXECUTE with a generic plan).

    For hot statements whose planning costs more than their execution (several joins and
    subqueries, small result). Bound values named in `arguments` come with each call as
    EXECUTE parameters. Every other bound value is a constant of the statement and is
    written into the PREPARE as a literal, so the generic plan knows it: `state IN
    ('open', …)` can use a partial index with that predicate, and row estimates use the real
    values. A prepared statement outlives a rolled-back transaction and dies with its
    connection, so the set of prepared names lives in the DBAPI connection's info.
    """

    def __init__(self, name: str, statement: ClauseElement, *arguments: str) -> None:
        dialect = pg_dialect.dialect()
        compiled = statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)  # a query, not DDL
        expanded = compiled.construct_expanded_state(dict.fromkeys(arguments))  # their values come per call
        bind_of = {part: bind for bind, parts in expanded.parameter_expansion.items() for part in parts}
        order: list[str] = []

        def placeholder(match: re.Match[str]) -> str:
            name = match.group(1)
            return f"${self._position(order, name)}" if name in arguments else match.group(0)

        # Constants stay `%(name)s` (and `%` stays `%%`): the driver quotes them in at PREPARE.
        sql = _PARAMETER.sub(placeholder, expanded.statement)
        missing = set(arguments) - set(order)
        if missing:
            raise ValueError(f"{name}: no bound parameter {sorted(missing)}")
        types = [compiled.binds[bind_of.get(n, n)].type.compile(dialect=dialect) for n in order]
        self.constants = {n: v for n, v in expanded.parameters.items() if n not in arguments}
        self.name = name
        self._prepare = f"PREPARE {name} ({', '.join(types)}) AS {sql}"
        self._execute = f"EXECUTE {name} ({', '.join('%(' + n + ')s' for n in order)})"

    @staticmethod
    def _position(order: list[str], name: str) -> int:
        if name not in order:
            order.append(name)
        return order.index(name) + 1

    def execute(self, session: AnySession, **values: Any) -> CursorResult:
        connection = session.connection()
        prepared = connection.connection.info.setdefault("prepared_statements", set())
        if self.name not in prepared:
            connection.exec_driver_sql(self._prepare, self.constants)
            prepared.add(self.name)
        return connection.exec_driver_sql(self._execute, values)
