"""The pipelined dialect (app/db.py): BEGIN and deferred checks ride with the first statement,
and none of that changes what a transaction means.

Each test checks what a user of the database would see: rows that exist or not, errors that
are raised, connections that come back clean.
"""

import pytest
from psycopg2 import extensions
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError

from app.audit import service as audit
from app.db import database
from app.security.deps import ASSERT_PRINCIPAL, rejection
from app.uow.unit import CoreSession, ReadOnlyWork, RequestContext
from app.users.models import User


def defer(session, statement, parameters):
    session.unit.defer(statement, parameters)


def send_deferred(session):
    session.unit.send_deferred()


@pytest.fixture(params=["session", "core"])
def unit(request, database_url):
    """A unit of work of either kind the endpoints use: an ORM Session or a CoreSession."""
    work = database.session() if request.param == "session" else CoreSession(database.engine, RequestContext())
    yield work
    work.rollback()
    work.close()


def count_users(name: str) -> int:
    with database.session() as fresh:
        return fresh.execute(select(func.count()).select_from(User).where(User.username == name)).scalar_one()


def disable(db, user) -> None:
    db.execute(update(User).where(User.id == user.id).values(is_active=False))
    db.commit()


def check_of(user, username: str | None = None) -> tuple:
    return user.id, user.role, user.token_version, None, username or user.username


def disabled_with_check(users, db, unit, username: str):
    """A user disabled after sign-in, whose principal check `unit` now owes its next statement."""
    user = users.create("agent", username)
    disable(db, user)
    defer(unit, ASSERT_PRINCIPAL, check_of(user))
    return user


def assert_check_refuses(action) -> None:
    with pytest.raises(DBAPIError) as raised:
        action()
    assert rejection(raised.value) is not None


def test_a_rolled_back_transaction_leaves_nothing(users, unit):
    users.create("analyst", "kept")
    unit.execute(update(User).where(User.username == "kept").values(username="renamed"))
    unit.rollback()
    assert count_users("kept") == 1 and count_users("renamed") == 0


def test_statements_of_one_transaction_see_each_other_and_commit_together(users, unit):
    user = users.create("analyst", "before")
    unit.execute(update(User).where(User.id == user.id).values(username="after"))
    assert unit.scalar(select(User.username).where(User.id == user.id)) == "after"
    assert count_users("after") == 0  # not visible outside before COMMIT
    unit.commit()
    assert count_users("after") == 1


def test_a_deferred_check_that_fails_undoes_the_statement_it_travelled_with(users, unit, db):
    user = disabled_with_check(users, db, unit, "gone")
    assert_check_refuses(lambda: unit.execute(update(User).where(User.id == user.id).values(username="hijacked")))
    unit.rollback()
    assert count_users("hijacked") == 0 and count_users("gone") == 1


def test_a_deferred_check_that_passes_lets_the_statement_through(users, unit):
    user = users.create("agent", "live")
    defer(unit, ASSERT_PRINCIPAL, check_of(user))
    unit.execute(update(User).where(User.id == user.id).values(username="live2"))
    unit.commit()
    assert count_users("live2") == 1


def test_a_deferred_check_naming_another_user_fails(users, unit):
    user = users.create("agent", "real-name")
    defer(unit, ASSERT_PRINCIPAL, check_of(user, username="someone-else"))
    with pytest.raises(DBAPIError) as raised:
        unit.execute(select(User.id))
    refused = rejection(raised.value)
    assert refused is not None and str(refused.detail) == "Token is no longer valid"


def test_commit_sends_a_deferred_check_even_when_nothing_else_was_sent(users, unit, db):
    disabled_with_check(users, db, unit, "idle")
    assert_check_refuses(unit.commit)


def test_send_deferred_runs_the_check_on_its_own(users, unit, db):
    disabled_with_check(users, db, unit, "alone")
    assert_check_refuses(lambda: send_deferred(unit))


def test_a_check_deferred_after_the_transaction_began_runs_at_once(users, unit, db):
    user = users.create("agent", "late")
    disable(db, user)
    unit.execute(select(User.id))  # BEGIN has been sent
    with pytest.raises(DBAPIError) as raised:
        defer(unit, ASSERT_PRINCIPAL, check_of(user))
    assert rejection(raised.value) is not None


def test_other_database_errors_are_not_taken_for_a_refused_token(db):
    with pytest.raises(DBAPIError) as raised:
        db.execute(text("SELECT 1/0"))
    assert rejection(raised.value) is None


def test_a_connection_comes_back_to_the_pool_with_no_transaction_open(users, db):
    users.create("analyst", "pooled")
    with database.session() as failing:
        raw = failing.connection().connection.dbapi_connection
        assert raw is not None
        with pytest.raises(DBAPIError):
            failing.execute(text("SELECT 1/0"))
    # closed without a rollback by us: the pool's reset must end the failed transaction
    assert raw.info.transaction_status == extensions.TRANSACTION_STATUS_IDLE
    with database.session() as next_user:
        assert next_user.scalar(select(User.username)) == "pooled"


def test_a_streamed_result_reads_inside_its_transaction(users, db):
    for n in range(5):
        users.create("analyst", f"streamed{n}")
    result = db.connection().execution_options(stream_results=True, yield_per=2).execute(
        select(User.username).order_by(User.id)
    )
    assert [row.username for row in result] == [f"streamed{n}" for n in range(5)]
    db.commit()


def test_percent_signs_in_statements_survive_the_begin_prefix(users, unit):
    users.create("analyst", "100%")
    assert unit.scalar(select(User.username).where(User.username.like("100%%"))) == "100%"
    assert unit.execute(text("SELECT '50%'")).scalar() == "50%"
    assert unit.execute(text("SELECT '50%' || :unit"), {"unit": " off"}).scalar() == "50% off"
    unit.rollback()


def test_the_driver_is_left_in_autocommit_mode_and_the_server_in_a_real_transaction(unit):
    unit.execute(select(User.id))
    raw = unit.connection().connection.dbapi_connection
    assert raw.autocommit is True
    assert raw.info.transaction_status == extensions.TRANSACTION_STATUS_INTRANS
    unit.commit()
    assert raw.info.transaction_status == extensions.TRANSACTION_STATUS_IDLE


def audit_events_for(entity_id: str) -> list[str]:
    with database.session() as fresh:
        return list(fresh.scalars(text("SELECT action FROM audit_events WHERE entity_id = :id ORDER BY id"),
                                  {"id": entity_id}))


def test_queued_audit_events_are_written_with_the_commit_of_either_kind_of_unit(users, unit):
    user = users.create("analyst", "audited")
    unit.execute(update(User).where(User.id == user.id).values(username="audited2"))
    audit.record(unit, actor=audit.SYSTEM_ACTOR, action="user.renamed", entity_type="user", entity_id="audited2")
    assert audit_events_for("audited2") == []  # queued, not yet sent
    unit.commit()
    assert audit_events_for("audited2") == ["user.renamed"] and count_users("audited2") == 1


def test_a_rolled_back_unit_forgets_its_queued_audit_events(users, unit):
    user = users.create("analyst", "forgotten")
    unit.execute(update(User).where(User.id == user.id).values(username="forgotten2"))
    audit.record(unit, actor=audit.SYSTEM_ACTOR, action="user.renamed", entity_type="user", entity_id="forgotten2")
    unit.rollback()
    unit.commit()  # a later commit of the same unit has nothing left to write
    assert audit_events_for("forgotten2") == [] and count_users("forgotten2") == 0


@pytest.fixture
def reader(database_url):
    """A read-only unit of work (CoreReader): no BEGIN, no COMMIT."""
    work = CoreSession(database.engine, RequestContext(), read_only=True)
    yield work
    work.rollback()
    work.close()


def test_a_read_only_unit_reads_what_is_committed_and_its_check_rides_with_the_read(users, reader):
    user = users.create("agent", "reader")
    defer(reader, ASSERT_PRINCIPAL, check_of(user))
    assert reader.scalar(select(User.username).where(User.id == user.id)) == "reader"
    reader.commit()
    raw = reader.connection().connection.dbapi_connection
    assert raw.info.transaction_status == extensions.TRANSACTION_STATUS_IDLE


def test_a_read_only_units_failing_check_refuses_the_read_it_travelled_with(users, reader, db):
    disabled_with_check(users, db, reader, "gone-reader")
    assert_check_refuses(lambda: reader.execute(select(User.username)))


def test_a_read_only_units_commit_sends_its_check_when_nothing_else_was_sent(users, reader, db):
    disabled_with_check(users, db, reader, "idle-reader")
    assert_check_refuses(reader.commit)


def test_a_read_only_unit_refuses_to_write_or_to_queue_an_audit_event(users, reader):
    user = users.create("agent", "unwritten")
    with pytest.raises(ReadOnlyWork):
        reader.execute(update(User).where(User.id == user.id).values(username="written"))
    with pytest.raises(ReadOnlyWork):
        audit.record(reader, actor=audit.Actor(name="unwritten", id=user.id, role="agent"), action="user.read",
                     entity_type="user", entity_id=user.id)
    reader.commit()
    assert count_users("written") == 0 and count_users("unwritten") == 1
