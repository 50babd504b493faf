"""PreparedStatement: planned once per connection, correct across calls, rollbacks and connections."""

import pytest
from sqlalchemy import bindparam, select

from app.db import database
from app.uow.prepared import PreparedStatement
from app.users.models import User

BY_ROLE = PreparedStatement(
    "test_users_by_role",
    select(User.username).where(User.role.in_(["analyst", "agent"]), User.username.like(bindparam("pattern")))
    .order_by(User.username),
    "pattern",
)


def test_constants_are_fixed_and_arguments_come_per_call(users, db):
    for name, role in (("ann", "analyst"), ("abe", "agent"), ("ada", "admin"), ("bob", "analyst")):
        users.create(role, name)
    assert BY_ROLE.execute(db, pattern="a%").scalars().all() == ["abe", "ann"]
    assert BY_ROLE.execute(db, pattern="b%").scalars().all() == ["bob"]


def test_a_rollback_keeps_the_prepared_statement(users, db):
    users.create("analyst", "ann")
    assert BY_ROLE.execute(db, pattern="%").scalars().all() == ["ann"]
    db.rollback()
    assert BY_ROLE.execute(db, pattern="%").scalars().all() == ["ann"]


def test_each_connection_prepares_its_own(users, db):
    users.create("analyst", "ann")
    with database.session() as other:
        db.connection()  # hold one pooled connection so the other session gets a different one
        assert BY_ROLE.execute(other, pattern="%").scalars().all() == ["ann"]
        assert BY_ROLE.execute(db, pattern="%").scalars().all() == ["ann"]


def test_an_argument_the_statement_does_not_bind_is_refused():
    with pytest.raises(ValueError, match="no bound parameter"):
        PreparedStatement("test_bad", select(User.id), "missing")


def test_constants_with_quotes_and_percent_signs_are_written_in_exactly(users, db):
    tricky = PreparedStatement(
        "test_users_tricky",
        select(User.username).where(User.username.in_(["o'brien 100%", "ünï"]), User.role == bindparam("role"))
        .order_by(User.username),
        "role",
    )
    for name in ("o'brien 100%", "ünï", "o'brien 100"):
        users.create("analyst", name)
    assert tricky.execute(db, role="analyst").scalars().all() == ["o'brien 100%", "ünï"]
    assert tricky.execute(db, role="agent").scalars().all() == []
