"""Engine, session factory and the per-request unit of work.

A request gets one Session; services only flush; the ApiRoute wrapper (app/routing.py)
commits once, before the response is sent, or rolls back on any exception. Audit events queued
with `audit.record` are written by a before_commit hook, so they are in the same
transaction as the change they describe by construction.
"""

import re
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import MetaData, create_engine, event
from sqlalchemy.dialects.postgresql import psycopg2 as pg_dialect
from sqlalchemy.engine import CursorResult, Engine, make_url
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


def build_engine(url: str, settings: Settings) -> Engine:
    return create_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
        pool_recycle=1800,
        connect_args={
            "connect_timeout": 3,
            "application_name": "riskdesk",
            # Generic plans apply only to PreparedStatement (psycopg2 prepares nothing else).
            "options": f"-c statement_timeout={settings.db_statement_timeout_ms} -c lock_timeout=5000"
                       " -c plan_cache_mode=force_generic_plan",
        },
    )


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


async def get_db_session(request: Request) -> Session:
    """The request's unit of work, for ApiRoute endpoints (app/routing.py).

    The endpoint's own thread verifies the caller, runs it, commits (or rolls back) and
    closes the session; no dependency teardown is needed. Creating a Session does no I/O.
    A route of another class would never commit, so it is refused outright.
    """
    endpoint = getattr(request.scope.get("route"), "endpoint", None)
    if not getattr(endpoint, "verifies_principals", False):
        raise RuntimeError("DbSession is only for routes of class app.routing.ApiRoute")
    context = RequestContext(
        request_id=request.scope.get("state", {}).get("request_id"),
        client_addr=request.client.host if request.client else None,
    )
    return database.session(context)


DbSession = Annotated[Session, Depends(get_db_session)]

_PARAMETER = re.compile(r"%\(([A-Za-z0-9_]+)\)s")


class PreparedStatement:
    """A read PostgreSQL plans once per connection (PREPARE, then EXECUTE with a generic plan).

    For hot statements whose planning costs more than their execution (several joins and
    subqueries, small result). Bound values named in `arguments` come with each call; every
    other bound value (constants of the statement) is fixed at PREPARE time. A prepared
    statement outlives a rolled-back transaction and dies with its connection, so the set of
    prepared names lives in the DBAPI connection's info.
    """

    def __init__(self, name: str, statement: Executable, *arguments: str) -> None:
        dialect = pg_dialect.dialect()
        compiled = statement.compile(dialect=dialect)
        expanded = compiled.construct_expanded_state(dict.fromkeys(arguments))  # their values come per call
        bind_of = {part: bind for bind, parts in expanded.parameter_expansion.items() for part in parts}
        order: list[str] = []
        sql = _PARAMETER.sub(lambda m: f"${self._position(order, m.group(1))}", expanded.statement.replace("%%", "%"))
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

    def execute(self, session: Session, **values: Any) -> CursorResult:
        connection = session.connection()
        prepared = connection.connection.info.setdefault("prepared_statements", set())
        if self.name not in prepared:
            connection.exec_driver_sql(self._prepare.replace("%", "%%"))
            prepared.add(self.name)
        return connection.exec_driver_sql(self._execute, {**self.constants, **values})


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
