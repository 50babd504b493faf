"""Group commit for `POST /transactions`: concurrent creates share one database transaction.

Every audited write appends to the one audit hash chain, under a lock held until its COMMIT
has reached disk, so commits of the chain go one at a time. Rather than queue there, the
requests a worker has in flight at the same moment commit together: the first to arrive
leads, and while its transaction runs, later requests wait for the next one; when it ends,
the first waiter leads a transaction for everything that arrived meanwhile. A request that
finds no transaction running goes at once, alone, so nothing waits on a timer.

A group's transaction is a batch insert (`flows.create_many`, rules included): each request gets its own
row, its own audit event (its own actor, request id and client address) and its own answer
(created, replayed or 409), as if the requests had come one after another. The caller's
token check (`verify_principal`) for each member rides in the same transaction, so a write
is only committed together with the proof that its caller may make it.

If the group's transaction fails, no member's write is kept. When the database was out of
reach or too slow (no connection, a statement or lock timeout: the errors answered 503 with
Retry-After, nothing written), every member gets that answer, as it would have alone.
After any other failure (a refused token, a deadlock, a fault) each member runs again in a
transaction of its own, in its own thread, where only its own failure can reach it; they
retry in arrival order, each once the one before it is done.
"""

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from prometheus_client import Histogram

from app.db import database
from app.errors import Conflict, is_unavailable
from app.observability import registry
from app.security.deps import PrincipalClaims, verify_principal
from app.transactions import flows, service
from app.transactions.schemas import TransactionCreate
from app.uow.unit import RequestContext

MAX_GROUP = 100

GROUP_SIZE = Histogram(
    "riskdesk_transaction_group_size", "Transactions created per database transaction by POST /transactions",
    buckets=(1, 2, 4, 8, 16, 32, 64, 100), registry=registry,
)


@dataclass(eq=False)
class _Member:
    data: TransactionCreate
    claims: PrincipalClaims
    context: RequestContext
    done: threading.Event = field(default_factory=threading.Event)
    lead: bool = False
    alone: bool = False
    # Retrying alone: the member that arrived before this one retries first (arrival order kept).
    retried: threading.Event | None = None
    after: "_Member | None" = None
    outcome: service.CreateOutcome | Conflict | None = None
    error: BaseException | None = None


class CreateGroups:
    """Forms the groups of one worker process (threads of its threadpool call `create`)."""

    def __init__(self, max_group: int = MAX_GROUP) -> None:
        self.max_group = max_group
        self._mutex = threading.Lock()
        self._waiting: list[_Member] = []
        self._running = False

    def create(
        self, data: TransactionCreate, claims: PrincipalClaims, context: RequestContext,
    ) -> service.CreateOutcome:
        """Create `data` for the caller `claims` names, verified in the group's transaction.

        Conflict, or the group's error, is raised.
        """
        member = _Member(data, claims, context)
        with self._mutex:
            self._waiting.append(member)
            lead = not self._running
            self._running = True
        if not lead:
            member.done.wait()
            lead = member.lead
        if lead:
            self._lead()
        if member.alone:
            assert member.retried is not None
            if member.after is not None and member.after.retried is not None:
                member.after.retried.wait()
            try:
                _run([member])
            finally:
                member.retried.set()
        if member.error is not None:
            raise member.error
        if isinstance(member.outcome, Conflict):
            raise member.outcome
        assert member.outcome is not None
        return member.outcome

    def _lead(self) -> None:
        """Run one transaction for the waiting members (this thread's own among them), then hand over."""
        with self._mutex:
            group, self._waiting = self._waiting[: self.max_group], self._waiting[self.max_group:]
        try:
            if not _run(group) and len(group) > 1 and not is_unavailable(group[0].error):
                # Each tries again alone, in its own thread, after the hand-over, in arrival order.
                for previous, member in zip((None, *group), group):
                    member.error = None
                    member.alone = True
                    member.after, member.retried = previous, threading.Event()
        except BaseException as error:  # pragma: no cover - never leave a member waiting
            for member in group:
                if member.outcome is None and member.error is None:
                    member.error = error
            raise
        finally:
            with self._mutex:
                if self._waiting:
                    successor = self._waiting[0]
                    successor.lead = True
                    successor.done.set()
                else:
                    self._running = False
            for member in group:
                member.done.set()


def _run(group: Sequence[_Member]) -> bool:
    """One transaction creating the group's transactions; False (each member's `error` set) if it failed."""
    GROUP_SIZE.observe(len(group))
    unit = database.core_unit(group[0].context)  # the same kind of unit of work as a request's own
    try:
        # Each member's token is checked in this transaction (again on a second try).
        principals = [verify_principal(unit.session, member.claims) for member in group]
        outcomes = flows.create_many(session=unit.session, items=[
            service.NewTransaction(member.data, principal.actor, member.context)
            for member, principal in zip(group, principals, strict=True)
        ])
        unit.commit()
    except Exception as error:
        unit.rollback()
        for member in group:
            member.error = error
        return False
    finally:
        unit.close()
    for member, outcome in zip(group, outcomes, strict=True):
        member.outcome = outcome
    return True


groups = CreateGroups()
