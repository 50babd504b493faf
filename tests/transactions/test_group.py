"""Group commit (app/transactions/group.py): creates that arrive while a group's transaction
runs commit together in the next one, each with its own row, audit event and answer.

To make the arrival order certain, a test first holds the unique-index slot of the first
request's reference in another open transaction: the first request's insert waits on it,
so its group is still running while the others arrive. Nothing here measures time.
"""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select, text, update

from app.audit import chain
from app.audit.models import AuditEvent
from app.db import database
from app.errors import Conflict, Unauthorized
from app.security.deps import PrincipalClaims, rejection
from app.transactions.group import CreateGroups
from app.transactions.models import Transaction
from app.transactions.schemas import TransactionCreate
from app.uow.unit import RequestContext
from app.users.models import User
from tests.conftest import tx_payload

pytestmark = pytest.mark.usefixtures("database_url")


def principal_of(user) -> PrincipalClaims:
    return PrincipalClaims(user_id=user.id, role=user.role, token_version=user.token_version,
                     claimed_username=user.username)


def data(reference: str, **overrides) -> TransactionCreate:
    return TransactionCreate.model_validate(tx_payload(reference, **overrides))


class HeldReference:
    """Another transaction holding `reference` in the unique index, uncommitted."""

    def __init__(self, reference: str) -> None:
        self.connection = database.engine.connect()
        self.transaction = self.connection.begin()
        self.connection.execute(
            text("INSERT INTO transactions (reference, account_id, amount, currency) VALUES (:r, 'acct_1', 1, 'USD')"),
            {"r": reference},
        )

    def release(self) -> None:
        self.transaction.rollback()
        self.connection.close()


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.01)


def run_grouped(groups: CreateGroups, held: HeldReference, first, later) -> list:
    """Submit `first`, and `later` once first's group is running; each a (data, principal, request id).

    Returns each call's outcome or the exception it raised, in order.
    """
    def call(item):
        data_, principal, request_id = item
        try:
            return groups.create(data_, principal, RequestContext(request_id=request_id, client_addr="127.0.0.1"))
        except Exception as error:  # noqa: BLE001 - the test looks at what each caller got
            return error

    with ThreadPoolExecutor(max_workers=1 + len(later)) as pool:
        futures = [pool.submit(call, first)]
        wait_for(lambda: groups._running and not groups._waiting, "the first group runs")
        futures += [pool.submit(call, item) for item in later]
        wait_for(lambda: len(groups._waiting) == len(later), "the later requests wait")
        held.release()
        return [future.result(timeout=60) for future in futures]


@pytest.fixture
def hold():
    """hold(reference) → a HeldReference, released at the latest when the test ends."""
    held: list[HeldReference] = []

    def start(reference: str) -> HeldReference:
        held.append(HeldReference(reference))
        return held[-1]

    yield start
    for item in held:
        if not item.connection.closed:
            item.release()


def writer_xid(db, reference: str) -> str:
    return db.scalar(text("SELECT xmin::text FROM transactions WHERE reference = :r"), {"r": reference})


def created_event(db, reference: str) -> AuditEvent:
    (event,) = db.scalars(select(AuditEvent).where(
        AuditEvent.action == "transaction.created", AuditEvent.entity_id == reference)).all()
    return event


def test_requests_that_arrive_while_a_group_runs_commit_together_each_with_its_own_event(db, users, hold):
    agent, other_agent = users.create("agent"), users.create("agent")
    groups = CreateGroups()
    outcomes = run_grouped(groups, hold("g-first"), (data("g-first"), principal_of(agent), "req-first"), [
        (data("g-b", amount="10.00"), principal_of(agent), "req-b"),
        (data("g-c", amount="20.00"), principal_of(other_agent), "req-c"),
        (data("g-d", amount="30.00"), principal_of(agent), "req-d"),
    ])

    assert [o.created for o in outcomes] == [True, True, True, True]
    assert [o.transaction.reference for o in outcomes] == ["g-first", "g-b", "g-c", "g-d"]
    db.expire_all()
    # One database transaction wrote the three later rows; the first had its own.
    assert {writer_xid(db, r) for r in ("g-b", "g-c", "g-d")} == {writer_xid(db, "g-b")}
    assert writer_xid(db, "g-first") != writer_xid(db, "g-b")
    # Each row has its own event, naming its own caller and request.
    for reference, user, request_id in [("g-first", agent, "req-first"), ("g-b", agent, "req-b"),
                                        ("g-c", other_agent, "req-c"), ("g-d", agent, "req-d")]:
        event = created_event(db, reference)
        assert (event.actor, event.actor_id, event.request_id) == (user.username, user.id, request_id)
    created_by = dict(db.execute(select(Transaction.reference, Transaction.created_by)).all())
    assert created_by == {"g-first": agent.id, "g-b": agent.id, "g-c": other_agent.id, "g-d": agent.id}
    assert chain.verify(db.connection()).ok


def test_a_group_answers_replays_and_conflicts_as_if_its_requests_came_one_after_another(db, users, hold):
    agent = users.create("agent")
    groups = CreateGroups()
    outcomes = run_grouped(groups, hold("g-first"), (data("g-first"), principal_of(agent), "r0"), [
        (data("g-same", amount="5.00"), principal_of(agent), "r1"),
        (data("g-same", amount="6.00"), principal_of(agent), "r2"),
        (data("g-same", amount="5.00"), principal_of(agent), "r3"),
    ])

    first, replay = outcomes[1], outcomes[3]
    assert first.created and not replay.created
    assert replay.transaction.id == first.transaction.id
    assert isinstance(outcomes[2], Conflict)
    assert outcomes[2].detail["differing_fields"] == ["amount"]
    assert db.scalar(select(Transaction.amount).where(Transaction.reference == "g-same")) == 5
    assert created_event(db, "g-same").request_id == "r1"


def test_a_refused_token_in_a_group_fails_only_its_own_request(db, users, hold):
    agent, disabled = users.create("agent"), users.create("agent")
    groups = CreateGroups()
    held = hold("g-first")
    first = (data("g-first"), principal_of(agent), "r0")
    later = [(data("g-ok-1"), principal_of(agent), "r1"),
             (data("g-refused"), principal_of(disabled), "r2"),
             (data("g-ok-2"), principal_of(agent), "r3")]
    db.execute(update(User).where(User.id == disabled.id).values(is_active=False))
    db.commit()
    outcomes = run_grouped(groups, held, first, later)

    assert outcomes[0].created and outcomes[1].created and outcomes[3].created
    assert isinstance(rejection(outcomes[2]), Unauthorized)
    db.expire_all()
    references = set(db.scalars(select(Transaction.reference)))
    assert references == {"g-first", "g-ok-1", "g-ok-2"}
    assert db.scalars(select(AuditEvent.entity_id).where(AuditEvent.action == "transaction.created")).all() \
        == ["g-first", "g-ok-1", "g-ok-2"]
    # After the group failed, each member ran alone: no write shares the refused one's fate.
    assert writer_xid(db, "g-ok-1") != writer_xid(db, "g-ok-2")


def test_a_group_is_at_most_max_group_and_the_rest_follow_in_the_next(db, users, hold):
    agent = users.create("agent")
    groups = CreateGroups(max_group=2)
    outcomes = run_grouped(groups, hold("g-first"), (data("g-first"), principal_of(agent), "r0"),
                           [(data(f"g-{n}"), principal_of(agent), f"r{n}") for n in range(1, 6)])

    assert all(o.created for o in outcomes)
    db.expire_all()
    writers = [writer_xid(db, f"g-{n}") for n in range(1, 6)]
    # Arrival order is kept: 1 and 2 together, then 3 and 4, then 5.
    assert writers[0] == writers[1] != writers[2] == writers[3] != writers[4]


def test_one_caller_alone_is_not_kept_waiting(db, users):
    agent = users.create("agent")
    groups = CreateGroups()
    done = threading.Event()

    def call():
        groups.create(data("alone"), principal_of(agent), RequestContext(request_id="r"))
        done.set()

    thread = threading.Thread(target=call)
    thread.start()
    thread.join(timeout=30)
    assert done.is_set()
    assert not groups._running and not groups._waiting
