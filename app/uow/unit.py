"""The unit of work: one transaction, its session, and what it owes before and after COMMIT.

A request (or a group of `POST /transactions`, or a CLI command) gets one `UnitOfWork`.
It holds:
  * the session the services use, of either kind (`AnySession`): an ORM `OrmSession`, or
    for the hot Core-only endpoints a `CoreSession`, which skips the ORM's bookkeeping;
  * the checks deferred to the transaction's first statement (`defer`: the caller's token);
  * the audit events queued by `audit.record`, and the hooks that run at commit: a
    `before_commit` hook returns the transaction's last statement, which travels with
    COMMIT in one message (audit registers its own there); `after_commit` hooks run once
    the transaction is durable.
Services only execute and flush; the route class (app/uow/routing.py) calls `commit` once,
or `rollback`. A session's own `commit()` and `rollback()` are its unit's, so code that
holds only the session (the CLI, the worker, tests) takes the same path.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import psycopg2
from sqlalchemy import event
from sqlalchemy.engine import Connection, CursorResult, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable

from app.uow import dialect

log = logging.getLogger("riskdesk.uow")


@dataclass(frozen=True)
class RequestContext:
    """Who/where a unit of work comes from, recorded on every audit event."""

    request_id: str | None = None
    client_addr: str | None = None


# A before-commit hook: the statement (SQL and its parameters) to send as the transaction's
# last, together with COMMIT, or None when it has nothing to add.
LastStatement = tuple[str, tuple[Any, ...]]
BeforeCommit = Callable[["UnitOfWork"], LastStatement | None]


class AnySession(Protocol):
    """What services use of a unit's session; `OrmSession` and `CoreSession` both provide it."""

    unit: "UnitOfWork"

    @property
    def info(self) -> dict[str, Any]: ...
    def connection(self) -> Connection: ...
    def execute(self, statement: Any, parameters: Any = None, /) -> Any: ...
    def scalar(self, statement: Any, parameters: Any = None, /) -> Any: ...
    def flush(self) -> None: ...
    def in_transaction(self) -> bool: ...
    def commit(self) -> None:
        """The unit of work's commit (hooks included)."""
    def rollback(self) -> None:
        """The unit of work's rollback (queued events and hooks forgotten)."""
    def close(self) -> None: ...
    def commit_transaction(self) -> None:
        """End the transaction with COMMIT, nothing else; only `UnitOfWork.commit` calls it."""
    def rollback_transaction(self) -> None:
        """End the transaction with ROLLBACK, nothing else; only `UnitOfWork.rollback` calls it."""


class ReadOnlyWork(RuntimeError):
    """A read-only unit of work was asked to write (a programming error, never a caller's)."""


class UnitOfWork:
    """One transaction: its session, deferred checks, queued audit events and commit hooks."""

    __slots__ = ("session", "context", "read_only", "audit_events", "_before_commit", "_after_commit",
                 "_savepoints")

    def __init__(self, session: AnySession, context: RequestContext, *, read_only: bool = False) -> None:
        self.session = session
        self.context = context
        self.read_only = read_only  # a CoreSession that only reads (CoreSession's docstring)
        self.audit_events: list[dict[str, Any]] = []
        self._before_commit: list[BeforeCommit] = []
        self._after_commit: list[Callable[[], None]] = []
        self._savepoints: dict[Any, tuple[int, int]] = {}

    # --- what the transaction owes -------------------------------------------------------
    def defer(self, statement: str, parameters: tuple[Any, ...]) -> None:
        """Send `statement` with the transaction's next statement, in the same message (app/uow/dialect.py)."""
        dialect.defer(self.session.connection(), statement, parameters)

    def send_deferred(self) -> None:
        """Send the deferred statements now, on their own (when nothing else will carry them)."""
        if self.session.in_transaction():
            dialect.send_deferred(self.session.connection())

    def before_commit(self, hook: BeforeCommit) -> None:
        """Have `hook` give the transaction's last statement at commit (once, however often registered)."""
        if self.read_only:
            raise ReadOnlyWork("a read-only unit of work has no last statement to commit (no audit event)")
        if hook not in self._before_commit:
            self._before_commit.append(hook)

    def after_commit(self, hook: Callable[[], None]) -> None:
        """Run `hook` once the transaction has committed, never if it rolls back; its failure is only logged."""
        self._after_commit.append(hook)

    # --- the end of the transaction ------------------------------------------------------
    def commit(self) -> None:
        """Flush, send the hooks' last statements with COMMIT in one message, then run the after-commit hooks."""
        session = self.session
        session.flush()
        last = [statement for hook in self._before_commit if (statement := hook(self)) is not None]
        after = self._after_commit
        self.forget()
        if last:
            connection = session.connection()
            try:
                dialect.send_with_commit(connection, b";".join(dialect.mogrify(connection, *s) for s in last))
            except psycopg2.Error as exc:
                # A raw cursor bypasses SQLAlchemy's wrapping; wrap here so app/errors.py maps a
                # lock or statement timeout to 503 like any other database error.
                raise DBAPIError.instance(last[0][0], None, exc, psycopg2.Error) from exc
        session.commit_transaction()  # after send_with_commit the transaction is over: no message
        for hook in after:
            try:
                hook()
            except Exception:  # the transaction is committed: a failing hook must not report it failed
                log.exception("after-commit hook failed")

    def rollback(self) -> None:
        """Forget everything queued, and roll back."""
        self.forget()
        self.session.rollback_transaction()

    def close(self) -> None:
        self.session.close()

    def forget(self) -> None:
        """Drop the queued events and hooks (the transaction ended, or the session closed)."""
        if self.audit_events:
            self.audit_events = []
        if self._before_commit:
            self._before_commit = []
        if self._after_commit:
            self._after_commit = []
        if self._savepoints:
            self._savepoints = {}

    # --- savepoints (ORM only; see the listeners below) ---------------------------------
    def _savepoint_began(self, savepoint: Any) -> None:
        self._savepoints[savepoint] = (len(self.audit_events), len(self._after_commit))

    def _savepoint_rolled_back(self, savepoint: Any) -> None:
        mark = self._savepoints.pop(savepoint, None)
        if mark is not None:
            del self.audit_events[mark[0]:]
            del self._after_commit[mark[1]:]


class OrmSession(Session):
    """The ORM Session of a unit of work: its `commit` and `rollback` are the unit's."""

    unit: UnitOfWork

    def commit(self) -> None:
        self.unit.commit()

    def rollback(self) -> None:
        self.unit.rollback()

    def close(self) -> None:
        self.unit.forget()
        super().close()

    def commit_transaction(self) -> None:
        super().commit()

    def rollback_transaction(self) -> None:
        super().rollback()


# Savepoints: what a rolled-back savepoint queued is forgotten with it. These keep the unit's
# marks only (on OrmSession, not every Session); the audit write itself is the unit's commit.
@event.listens_for(OrmSession, "after_transaction_create")
def _savepoint_began(session: OrmSession, transaction: Any) -> None:
    if transaction.nested:
        session.unit._savepoint_began(transaction)


@event.listens_for(OrmSession, "after_soft_rollback")
def _savepoint_rolled_back(session: OrmSession, previous_transaction: Any) -> None:
    if previous_transaction.nested:
        session.unit._savepoint_rolled_back(previous_transaction)
    elif previous_transaction.parent is None:  # the whole transaction (e.g. `with session.begin()` failing)
        session.unit.forget()


class CoreSession:
    """A unit of work's session on one SQLAlchemy Core connection, without the ORM.

    For endpoints whose statements are all Core (insert, select of columns) the ORM
    Session's transaction bookkeeping costs more CPU than their SQL. This offers the part of
    Session they and their helpers use (`AnySession`). No savepoints, no ORM objects.

    `read_only=True` is for endpoints that only read: the server gets no BEGIN and no
    COMMIT (app/uow/dialect.py, `begin_nothing`), so a read and the token check deferred to
    it cost one message. Such a session executes SELECTs only and queues no audit event.
    """

    __slots__ = ("info", "unit", "_engine", "_connection")

    def __init__(self, engine: Engine, context: RequestContext, *, read_only: bool = False) -> None:
        self.info: dict[str, Any] = {"context": context}
        self.unit = UnitOfWork(self, context, read_only=read_only)
        self._engine = engine
        self._connection: Connection | None = None

    def connection(self) -> Connection:
        if self._connection is None:
            self._connection = self._engine.connect()
            self._connection.begin()  # owes BEGIN; it travels with the first statement
            if self.unit.read_only:
                dialect.begin_nothing(self._connection)
        return self._connection

    def execute(self, statement: Executable, parameters: Any = None, /) -> CursorResult:
        if self.unit.read_only and not getattr(statement, "is_select", False):
            raise ReadOnlyWork(f"a read-only unit of work executes SELECTs only, not {type(statement).__name__}")
        return self.connection().execute(statement, parameters)

    def scalar(self, statement: Executable, parameters: Any = None, /) -> Any:
        return self.execute(statement, parameters).scalar()

    def flush(self) -> None:
        """Nothing to flush: every statement was sent when it was executed."""

    def in_transaction(self) -> bool:
        return self._connection is not None and self._connection.in_transaction()

    def commit(self) -> None:
        self.unit.commit()

    def rollback(self) -> None:
        self.unit.rollback()

    def commit_transaction(self) -> None:
        if self._connection is not None:
            self._connection.commit()

    def rollback_transaction(self) -> None:
        if self._connection is not None:
            self._connection.rollback()

    def close(self) -> None:
        self.unit.forget()
        if self._connection is not None:
            self._connection.close()
            self._connection = None
