"""Savepoints inside one unit of work must not commit it early or lose audit events."""

from sqlalchemy import func, select

from app.audit.models import AuditEvent
from app.audit.service import Actor
from app.users import service as users
from app.users.models import User


def test_two_users_created_in_one_unit_of_work_commit_together_with_both_events(db):
    actor = Actor(name="test")
    users.create(session=db, actor=actor, username="first", role="analyst", password="long-enough-password")
    users.create(session=db, actor=actor, username="second", role="analyst", password="long-enough-password")
    db.rollback()  # nothing was committed by the savepoints' release
    assert db.scalar(select(func.count()).select_from(User)) == 0
    assert db.scalar(select(func.count()).select_from(AuditEvent)) == 0

    users.create(session=db, actor=actor, username="first", role="analyst", password="long-enough-password")
    users.create(session=db, actor=actor, username="second", role="analyst", password="long-enough-password")
    db.commit()
    assert db.scalar(select(func.count()).where(AuditEvent.action == "user.created")) == 2
