"""The engine, the session factory and the declarative base.

Each transaction is a unit of work (app/uow/unit.py): `database.unit(context)` opens one on
an ORM session, `database.core_unit(context)` on a Core connection, and `database.session()`
is an ORM unit's session for code that only needs a session (the CLI, the worker, tests).
A route gets its request's unit from `DbSession` or `CoreDb`, opened by the route class.
"""

from typing import Annotated, ClassVar

from fastapi import Depends, Request
from sqlalchemy import MetaData, Table, create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase, sessionmaker

from app.config import Settings, get_settings
from app.uow import dialect
from app.uow.request import current_work
from app.uow.unit import CoreSession, OrmSession, RequestContext, UnitOfWork

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    # Every model maps one Table (SQLAlchemy types it as any FromClause); Core statements use it.
    __table__: ClassVar[Table]


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
    url = make_url(url).set(drivername="postgresql+riskdesk").render_as_string(hide_password=False)
    engine = create_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
        pool_recycle=1800,
        connect_args={
            "connection_factory": dialect.PgConnection,
            "connect_timeout": 3,
            "application_name": "riskdesk",
            # Generic plans apply only to PreparedStatement (psycopg2 prepares nothing else).
            "options": f"-c statement_timeout={settings.db_statement_timeout_ms}"
                       f" -c lock_timeout={settings.db_lock_timeout_ms} -c plan_cache_mode=force_generic_plan",
        },
    )
    event.listen(engine, "checkout", dialect.refuse_closed)
    return engine


class Database:
    """The process's engine and session factory, created lazily on first use."""

    def __init__(self) -> None:
        self._url: str | None = None
        self._engine: Engine | None = None
        self._sessionmaker: sessionmaker[OrmSession] | None = None

    def configure(self, url: str | None = None, settings: Settings | None = None) -> None:
        """Bind to url (default: DATABASE_URL or the embedded server); it is kept across dispose()."""
        settings = settings or get_settings()
        if self._engine is not None:
            self._engine.dispose()
        self._url = url or self._url or resolve_database_url(settings)
        self._engine = build_engine(self._url, settings)
        self._sessionmaker = sessionmaker(
            bind=self._engine, class_=OrmSession, expire_on_commit=False, autoflush=False,
        )

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self.configure()
        assert self._engine is not None
        return self._engine

    def unit(self, context: RequestContext | None = None) -> UnitOfWork:
        """A unit of work on a new ORM session (no I/O until its first statement)."""
        return self.session(context).unit

    def core_unit(self, context: RequestContext | None = None) -> UnitOfWork:
        """A unit of work on a Core connection, for code that needs no ORM (see CoreSession)."""
        return CoreSession(self.engine, context or RequestContext()).unit

    def session(self, context: RequestContext | None = None) -> OrmSession:
        """The session of a new ORM unit of work; its commit() is the unit's."""
        if self._sessionmaker is None:
            self.configure()
        assert self._sessionmaker is not None
        session = self._sessionmaker()
        context = context or RequestContext()
        session.unit = UnitOfWork(session, context)
        session.info["context"] = context
        return session

    def dispose(self) -> None:
        """Close pooled connections; the next use reconnects to the same URL."""
        if self._engine is not None:
            self._engine.dispose()
        self._engine = None
        self._sessionmaker = None


database = Database()


def _request_context(request: Request) -> RequestContext:
    return RequestContext(
        request_id=request.scope.get("state", {}).get("request_id"),
        client_addr=request.client.host if request.client else None,
    )


async def get_db_session(request: Request) -> OrmSession:
    """The request's unit of work on an ORM session, opened for the route class that runs it.

    The route class (app/uow/routing.py) commits or rolls it back and closes it in the
    endpoint's own thread; no dependency teardown is needed. Creating it does no I/O. A
    route of another class would never commit, so it is refused outright.
    """
    work = current_work("DbSession and CoreDb")
    session = database.session(_request_context(request))
    work.unit = session.unit
    return session


async def get_core_session(request: Request) -> CoreSession:
    """Like get_db_session, for endpoints that need no ORM (see CoreSession); read-only on a ReadOnlyRoute."""
    work = current_work("DbSession and CoreDb")
    session = CoreSession(database.engine, _request_context(request), read_only=work.read_only)
    work.unit = session.unit
    return session


DbSession = Annotated[OrmSession, Depends(get_db_session)]
CoreDb = Annotated[CoreSession, Depends(get_core_session)]
