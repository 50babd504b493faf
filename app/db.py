"""Engine, session factory and the per-request unit of work.

A request gets one unit of work: an ORM Session, or for the hot Core-only endpoints a
CoreSession (below). Services only flush; the ApiRoute wrapper (app/routing.py) commits
once, before the response is sent, or rolls back on any exception. Audit events queued
with `audit.record` are written as part of the commit (a before_commit hook for Session,
CoreSession.commit itself), so they are in the same transaction as the change they
describe by construction.
"""

import itertools
import re
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from psycopg2 import extensions as pg_extensions
from sqlalchemy import MetaData, create_engine, event
from sqlalchemy.dialects.postgresql import psycopg2 as pg_dialect
from sqlalchemy.dialects import registry
from sqlalchemy.engine import Connection, CursorResult, Engine, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.sql import Executable
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from app.config import Settings, get_settings

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


@dataclass(frozen=True)
class RequestContext:
    """Who/where a unit of work comes from, recorded on every audit event."""

    request_id: str | None = None
    client_addr: str | None = None


def normalize_database_url(url: str) -> str:
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg2")
    return parsed.render_as_string(hide_password=False)


def resolve_database_url(settings: Settings) -> str:
    """DATABASE_URL, or the embedded PostgreSQL when it is unset."""
    if settings.database_url:
        return normalize_database_url(settings.database_url)
    from app import embedded_pg

    return embedded_pg.start(settings.embedded_pg_dir)


class _PgConnection(pg_extensions.connection):
    """psycopg2's connection in autocommit mode; `owed` is SQL the server must get before the next statement."""

    owed: str | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.autocommit = True


_BEGIN = "BEGIN;"
_OPEN = (pg_extensions.TRANSACTION_STATUS_INTRANS, pg_extensions.TRANSACTION_STATUS_INERROR)
_CURSOR_IDS = itertools.count(1)


def _raw(dbapi_connection: Any) -> _PgConnection:
    return getattr(dbapi_connection, "dbapi_connection", dbapi_connection)


def _take_owed(connection: _PgConnection) -> str:
    owed, connection.owed = connection.owed, None
    return owed or ""


def _send_owed_alone(connection: _PgConnection) -> None:
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
    """psycopg2 without the BEGIN round trip, and with deferred statements.

    psycopg2 sends BEGIN as a message of its own before a transaction's first statement.
    Here the connection is in autocommit mode and BEGIN is *owed*: it goes in the same
    message as the transaction's first statement, together with anything `defer` added
    (the caller's token check). COMMIT sends what is still owed, so nothing deferred is
    ever skipped; COMMIT and ROLLBACK cost no message when the server has no transaction
    open (see execute_and_commit). A statement that fails makes the whole message fail.
    """

    execution_ctx_cls = _ExecutionContext
    supports_statement_cache = True

    def do_begin(self, dbapi_connection: Any) -> None:
        _raw(dbapi_connection).owed = _BEGIN

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
        connection = _raw(dbapi_connection)
        owed = _take_owed(connection)
        if owed not in ("", _BEGIN):
            command = owed + "COMMIT"  # the deferred statements still run, and may still fail
        elif not connection.closed and connection.info.transaction_status in _OPEN:
            command = "COMMIT"
        else:
            return
        with connection.cursor() as cursor:
            cursor.execute(command)

    def do_rollback(self, dbapi_connection: Any) -> None:
        connection = _raw(dbapi_connection)
        connection.owed = None
        if not connection.closed and connection.info.transaction_status in _OPEN:
            with connection.cursor() as cursor:
                cursor.execute("ROLLBACK")


registry.register("postgresql.riskdesk", __name__, "PipelinedDialect")


def defer(session: Session, statement: str, parameters: tuple[Any, ...]) -> None:
    """Run `statement` with the transaction's first statement, in the same message.

    For checks that raise on failure and whose result is not needed: the statement is sent
    no later than the next statement or the COMMIT. If the transaction has already begun on
    the server, it runs now.
    """
    connection = _raw(session.connection().connection)
    with connection.cursor() as cursor:
        sql = cursor.mogrify(statement, parameters).decode()
    if connection.owed is None or "%" in sql:  # `%` would be read as a placeholder later
        session.connection().exec_driver_sql(sql.replace("%", "%%"))
    else:
        connection.owed += sql + ";"


def send_deferred(session: Session) -> None:
    """Send what `defer` queued now, on its own (when the unit of work ends without another statement)."""
    if not session.in_transaction():
        return
    connection = _raw(session.connection().connection)
    if connection.owed not in (None, _BEGIN):
        session.connection().exec_driver_sql(_take_owed(connection).replace("%", "%%"))


def execute_and_commit(session: Session, statement: bytes) -> None:
    """Send `statement` and the transaction's COMMIT to the server as one message.

    Raises psycopg2 errors as they come; after it returns the transaction is over, and the
    session's own commit costs no further message.
    """
    connection = _raw(session.connection().connection)
    owed = _take_owed(connection).encode()
    with connection.cursor() as cursor:
        cursor.execute(owed + statement + b";COMMIT")


def _refuse_closed(dbapi_connection: Any, connection_record: Any, connection_proxy: Any) -> None:
    """Pool checkout: a connection psycopg2 already knows is closed is replaced, not handed out.

    A failure seen by a raw cursor (the audit write, a deferred check) closes the psycopg2
    connection without SQLAlchemy noticing; this keeps such a connection from going round
    the pool. No I/O: `closed` is psycopg2's own flag.
    """
    if _raw(dbapi_connection).closed:
        raise DisconnectionError("connection closed")


def build_engine(url: str, settings: Settings) -> Engine:
    url = make_url(url).set(drivername="postgresql+riskdesk").render_as_string(hide_password=False)
    engine = create_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
        pool_recycle=1800,
        connect_args={
            "connection_factory": _PgConnection,
            "connect_timeout": 3,
            "application_name": "riskdesk",
            # Generic plans apply only to PreparedStatement (psycopg2 prepares nothing else).
            "options": f"-c statement_timeout={settings.db_statement_timeout_ms}"
                       f" -c lock_timeout={settings.db_lock_timeout_ms} -c plan_cache_mode=force_generic_plan",
        },
    )
    event.listen(engine, "checkout", _refuse_closed)
    return engine


class Database:
    """The process's engine and session factory, created lazily on first use."""

    def __init__(self) -> None:
        self._url: str | None = None
        self._engine: Engine | None = None
        self._sessionmaker: sessionmaker[Session] | None = None

    def configure(self, url: str | None = None, settings: Settings | None = None) -> None:
        """Bind to url (default: DATABASE_URL or the embedded server); it is kept across dispose()."""
        settings = settings or get_settings()
        if self._engine is not None:
            self._engine.dispose()
        self._url = url or self._url or resolve_database_url(settings)
        self._engine = build_engine(self._url, settings)
        self._sessionmaker = sessionmaker(bind=self._engine, expire_on_commit=False, autoflush=False)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self.configure()
        assert self._engine is not None
        return self._engine

    def session(self, context: RequestContext | None = None) -> Session:
        if self._sessionmaker is None:
            self.configure()
        assert self._sessionmaker is not None
        session = self._sessionmaker()
        session.info["context"] = context or RequestContext()
        return session

    def dispose(self) -> None:
        """Close pooled connections; the next use reconnects to the same URL."""
        if self._engine is not None:
            self._engine.dispose()
        self._engine = None
        self._sessionmaker = None


database = Database()


class CoreSession:
    """A unit of work on one SQLAlchemy Core connection: the Session API the hot endpoints use, without the ORM.

    For endpoints whose statements are all Core (insert, select of columns) the ORM
    Session's transaction bookkeeping costs more CPU than their SQL. This offers the part of
    Session they and their helpers use — `info`, `execute`, `connection()`, `commit`,
    `rollback`, `close` — and, like the Session hooks below, writes the queued audit events
    as part of COMMIT and forgets them on ROLLBACK. No savepoints, no ORM objects.
    """

    def __init__(self, engine: Engine, context: RequestContext) -> None:
        self.info: dict[str, Any] = {"context": context}
        self._engine = engine
        self._connection: Connection | None = None

    def connection(self) -> Connection:
        if self._connection is None:
            self._connection = self._engine.connect()
            self._connection.begin()  # owes BEGIN; it travels with the first statement
        return self._connection

    def execute(self, statement: Executable, parameters: Any = None) -> CursorResult:
        return self.connection().execute(statement, parameters)

    def scalar(self, statement: Executable, parameters: Any = None) -> Any:
        return self.connection().scalar(statement, parameters)

    def flush(self) -> None:
        """Nothing to flush: every statement was sent when it was executed."""

    def in_transaction(self) -> bool:
        return self._connection is not None and self._connection.in_transaction()

    def commit(self) -> None:
        if self._connection is None:
            return
        from app.audit.service import write_pending

        write_pending(self)
        self._connection.commit()

    def rollback(self) -> None:
        from app.audit.service import discard_pending

        discard_pending(self)
        if self._connection is not None:
            self._connection.rollback()

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


async def get_core_session(request: Request) -> CoreSession:
    """Like get_db_session, for endpoints that need no ORM (see CoreSession)."""
    _refuse_outside_unit_of_work(request)
    return CoreSession(database.engine, _request_context(request))


def _refuse_outside_unit_of_work(request: Request) -> None:
    endpoint = getattr(request.scope.get("route"), "endpoint", None)
    if not getattr(endpoint, "verifies_principals", False):
        raise RuntimeError("DbSession and CoreDb are only for routes of class app.routing.ApiRoute")


def _request_context(request: Request) -> RequestContext:
    return RequestContext(
        request_id=request.scope.get("state", {}).get("request_id"),
        client_addr=request.client.host if request.client else None,
    )


async def get_db_session(request: Request) -> Session:
    """The request's unit of work, for ApiRoute endpoints (app/routing.py).

    The endpoint's own thread verifies the caller, runs it, commits (or rolls back) and
    closes the session; no dependency teardown is needed. Creating a Session does no I/O.
    A route of another class would never commit, so it is refused outright.
    """
    _refuse_outside_unit_of_work(request)
    return database.session(_request_context(request))


DbSession = Annotated[Session, Depends(get_db_session)]
CoreDb = Annotated[CoreSession, Depends(get_core_session)]

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

    def __init__(self, name: str, statement: Executable, *arguments: str) -> None:
        dialect = pg_dialect.dialect()
        compiled = statement.compile(dialect=dialect)
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

    def execute(self, session: Session | CoreSession, **values: Any) -> CursorResult:
        connection = session.connection()
        prepared = connection.connection.info.setdefault("prepared_statements", set())
        if self.name not in prepared:
            connection.exec_driver_sql(self._prepare, self.constants)
            prepared.add(self.name)
        return connection.exec_driver_sql(self._execute, values)


@event.listens_for(Session, "before_commit")
def _write_pending_audit_events(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint's release also fires before_commit; only the real COMMIT writes
    from app.audit.service import write_pending

    write_pending(session)


@event.listens_for(Session, "after_transaction_create")
def _mark_savepoint(session: Session, transaction) -> None:
    if transaction.nested:
        from app.audit.service import mark_savepoint

        mark_savepoint(session, transaction)


@event.listens_for(Session, "after_soft_rollback")
def _drop_pending_audit_events(session: Session, previous_transaction) -> None:
    from app.audit.service import discard_pending

    discard_pending(session, previous_transaction)
