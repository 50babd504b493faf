"""The pipelined dialect (app/db.py): BEGIN and deferred checks ride with the first statement,
and none of that changes what a transaction means.

Each test checks what a user of the database would see: rows that exist or not, errors that
are raised, connections that come back clean.
"""

import pytest
from psycopg2 import extensions
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError

from app.db import database, defer, send_deferred
from app.security.deps import ASSERT_PRINCIPAL, rejection
from app.users.models import User


def count_users(name: str) -> int:
    with database.session() as fresh:
        return fresh.scalar(select(func.count()).select_from(User).where(User.username == name))


def disable(db, user) -> None:
    db.execute(update(User).where(User.id == user.id).values(is_active=False))
    db.commit()


def check_of(user, username: str | None = None) -> tuple:
    return user.id, user.role, user.token_version, None, username or user.username


def test_a_rolled_back_transaction_leaves_nothing(users, db):
    users.create("analyst", "kept")
    db.execute(update(User).where(User.username == "kept").values(username="renamed"))
    db.rollback()
    assert count_users("kept") == 1 and count_users("renamed") == 0


def test_statements_of_one_transaction_see_each_other_and_commit_together(users, db):
    user = users.create("analyst", "before")
    db.execute(update(User).where(User.id == user.id).values(username="after"))
    assert db.scalar(select(User.username).where(User.id == user.id)) == "after"
    assert count_users("after") == 0  # not visible outside before COMMIT
    db.commit()
    assert count_users("after") == 1


def test_a_deferred_check_that_fails_undoes_the_statement_it_travelled_with(users, db):
    user = users.create("agent", "gone")
    disable(db, user)
    defer(db, ASSERT_PRINCIPAL, check_of(user))
    with pytest.raises(DBAPIError) as raised:
        db.execute(update(User).where(User.id == user.id).values(username="hijacked"))
    assert rejection(raised.value) is not None
    db.rollback()
    assert count_users("hijacked") == 0 and count_users("gone") == 1


def test_a_deferred_check_that_passes_lets_the_statement_through(users, db):
    user = users.create("agent", "live")
    defer(db, ASSERT_PRINCIPAL, check_of(user))
    db.execute(update(User).where(User.id == user.id).values(username="live2"))
    db.commit()
    assert count_users("live2") == 1


def test_a_deferred_check_naming_another_user_fails(users, db):
    user = users.create("agent", "real-name")
    defer(db, ASSERT_PRINCIPAL, check_of(user, username="someone-else"))
    with pytest.raises(DBAPIError) as raised:
        db.execute(select(User.id))
    assert str(rejection(raised.value).detail) == "Token is no longer valid"


def test_commit_sends_a_deferred_check_even_when_nothing_else_was_sent(users, db):
    user = users.create("agent", "idle")
    disable(db, user)
    defer(db, ASSERT_PRINCIPAL, check_of(user))
    with pytest.raises(DBAPIError) as raised:
        db.commit()
    assert rejection(raised.value) is not None


def test_send_deferred_runs_the_check_on_its_own(users, db):
    user = users.create("agent", "alone")
    disable(db, user)
    defer(db, ASSERT_PRINCIPAL, check_of(user))
    with pytest.raises(DBAPIError) as raised:
        send_deferred(db)
    assert rejection(raised.value) is not None


def test_a_check_deferred_after_the_transaction_began_runs_at_once(users, db):
    user = users.create("agent", "late")
    disable(db, user)
    db.execute(select(User.id))  # BEGIN has been sent
    with pytest.raises(DBAPIError) as raised:
        defer(db, ASSERT_PRINCIPAL, check_of(user))
    assert rejection(raised.value) is not None


def test_other_database_errors_are_not_taken_for_a_refused_token(db):
    with pytest.raises(DBAPIError) as raised:
        db.execute(text("SELECT 1/0"))
    assert rejection(raised.value) is None


def test_a_connection_comes_back_to_the_pool_with_no_transaction_open(users, db):
    users.create("analyst", "pooled")
    with database.session() as failing:
        raw = failing.connection().connection.dbapi_connection
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


def test_percent_signs_in_statements_survive_the_begin_prefix(users, db):
    users.create("analyst", "100%")
    assert db.scalar(select(User.username).where(User.username.like("100%%"))) == "100%"
    assert db.execute(text("SELECT '50%'")).scalar() == "50%"
    assert db.execute(text("SELECT '50%' || :unit"), {"unit": " off"}).scalar() == "50% off"
    db.rollback()


def test_the_driver_is_left_in_autocommit_mode_and_the_server_in_a_real_transaction(db):
    db.execute(select(User.id))
    raw = db.connection().connection.dbapi_connection
    assert raw.autocommit is True
    assert raw.info.transaction_status == extensions.TRANSACTION_STATUS_INTRANS
    db.commit()
    assert raw.info.transaction_status == extensions.TRANSACTION_STATUS_IDLE
