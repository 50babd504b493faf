"""The pipelined PostgreSQL dialect: BEGIN, deferred checks and the last statement travel with others.

psycopg2 sends BEGIN as a message of its own before a transaction's first statement.
Here the connection is in autocommit mode and BEGIN is *owed*: it goes in the same message
as the transaction's first statement, together with anything `defer` added (the caller's
token check). COMMIT sends what is still owed, so nothing deferred is ever skipped; COMMIT
and ROLLBACK cost no message when the server has no transaction open (see
`send_with_commit`). A statement that fails makes the whole message fail.

A read-only unit of work begins nothing on the server (`begin_nothing`): its statements run
as they come, and what `defer` added rides with the first of them in one message, which
PostgreSQL runs as one implicit transaction; there is no COMMIT to send.
"""

import itertools
from typing import Any

from psycopg2 import extensions as pg_extensions
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.postgresql import psycopg2 as pg_dialect
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DisconnectionError

_BEGIN = "BEGIN;"
_OPEN = (pg_extensions.TRANSACTION_STATUS_INTRANS, pg_extensions.TRANSACTION_STATUS_INERROR)
_CURSOR_IDS = itertools.count(1)


class PgConnection(pg_extensions.connection):
    """psycopg2's connection in autocommit mode; `owed` is SQL the server must get before the next statement."""

    owed: str | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.autocommit = True


def raw(dbapi_connection: Any) -> PgConnection:
    """The psycopg2 connection under a pooled DBAPI connection (or the connection itself)."""
    return getattr(dbapi_connection, "dbapi_connection", dbapi_connection)


def _take_owed(connection: PgConnection) -> str:
    owed, connection.owed = connection.owed, None
    return owed or ""


def _send_owed_alone(connection: PgConnection) -> None:
    owed = _take_owed(connection)
    if owed:
        with connection.cursor() as cursor:
            cursor.execute(owed)


class _ExecutionContext(pg_dialect.PGExecutionContext_psycopg2):
    def create_server_side_cursor(self) -> Any:
        # psycopg2 allows a named cursor on an autocommit connection only WITH HOLD; inside
        # our transaction block it reads like any other, and it is closed before the COMMIT.
        return self._dbapi_connection.cursor(f"c_{id(self):x}_{next(_CURSOR_IDS):x}", withhold=True)


class PipelinedDialect(pg_dialect.PGDialect_psycopg2):
    """psycopg2 without the BEGIN round trip, and with deferred statements (module docstring)."""

    execution_ctx_cls = _ExecutionContext
    supports_statement_cache = True

    def do_begin(self, dbapi_connection: Any) -> None:
        raw(dbapi_connection).owed = _BEGIN

    def _with_owed(self, cursor: Any, statement: str) -> str:
        connection = cursor.connection
        if connection.owed is None:
            return statement
        if cursor.name is not None:  # DECLARE … CURSOR cannot carry other statements
            _send_owed_alone(connection)
            return statement
        return _take_owed(connection) + statement

    def do_execute(self, cursor: Any, statement: str, parameters: Any, context: Any = None) -> None:
        cursor.execute(self._with_owed(cursor, statement), parameters)

    def do_execute_no_params(self, cursor: Any, statement: str, context: Any = None) -> None:
        cursor.execute(self._with_owed(cursor, statement))

    def do_executemany(self, cursor: Any, statement: str, parameters: Any, context: Any = None) -> None:
        _send_owed_alone(cursor.connection)
        super().do_executemany(cursor, statement, parameters, context)

    def do_commit(self, dbapi_connection: Any) -> None:
        connection = raw(dbapi_connection)
        owed = _take_owed(connection)  # the deferred statements still run, and may still fail
        if owed == _BEGIN:
            owed = ""  # nothing was sent: nothing to begin or commit
        if owed.startswith(_BEGIN) or (not connection.closed and connection.info.transaction_status in _OPEN):
            owed += "COMMIT"
        if owed:  # else no transaction is open on the server (or a read-only one sent nothing)
            with connection.cursor() as cursor:
                cursor.execute(owed)

    def do_rollback(self, dbapi_connection: Any) -> None:
        connection = raw(dbapi_connection)
        connection.owed = None
        if not connection.closed and connection.info.transaction_status in _OPEN:
            with connection.cursor() as cursor:
                cursor.execute("ROLLBACK")


registry.register("postgresql.riskdesk", __name__, "PipelinedDialect")


def defer(connection: Connection, statement: str, parameters: tuple[Any, ...]) -> None:
    """Run `statement` with the transaction's first statement, in the same message.

    For checks that raise on failure and whose result is not needed: the statement is sent
    no later than the next statement or the COMMIT. If the transaction has already begun on
    the server, it runs now.
    """
    pg = raw(connection.connection)
    with pg.cursor() as cursor:
        sql = cursor.mogrify(statement, parameters).decode()
    if pg.owed is None or "%" in sql:  # `%` would be read as a placeholder later
        connection.exec_driver_sql(sql.replace("%", "%%"))
    else:
        pg.owed += sql + ";"


def send_deferred(connection: Connection) -> None:
    """Send what `defer` queued now, on its own (when the transaction ends without another statement)."""
    pg = raw(connection.connection)
    if pg.owed and pg.owed != _BEGIN:
        connection.exec_driver_sql(_take_owed(pg).replace("%", "%%"))


def begin_nothing(connection: Connection) -> None:
    """Make the transaction just begun on `connection` a read-only one: no BEGIN, no COMMIT (module docstring).

    Each statement then runs on its own, as a READ COMMITTED transaction's statements see
    the data anyway; it suits reads only, which take no locks that would have to last.
    """
    raw(connection.connection).owed = ""


def mogrify(connection: Connection, statement: str, parameters: tuple[Any, ...]) -> bytes:
    """`statement` with its parameters quoted in, as the server will read it."""
    with raw(connection.connection).cursor() as cursor:
        return cursor.mogrify(statement, parameters)


def send_with_commit(connection: Connection, statement: bytes) -> None:
    """Send what is owed, `statement` and the transaction's COMMIT to the server as one message.

    Raises psycopg2 errors as they come; after it returns the transaction is over, and
    SQLAlchemy's own commit costs no further message.
    """
    pg = raw(connection.connection)
    owed = _take_owed(pg).encode()
    with pg.cursor() as cursor:
        cursor.execute(owed + statement + b";COMMIT")


def refuse_closed(dbapi_connection: Any, connection_record: Any, connection_proxy: Any) -> None:
    """Pool checkout: a connection psycopg2 already knows is closed is replaced, not handed out.

    A failure seen by a raw cursor (the last statement, a deferred check) closes the psycopg2
    connection without SQLAlchemy noticing; this keeps such a connection from going round
    the pool. No I/O: `closed` is psycopg2's own flag.
    """
    if raw(dbapi_connection).closed:
        raise DisconnectionError("connection closed")
