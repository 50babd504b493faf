"""Snoozes: until a time, one rule's hits for one account are recorded but open no case.

The bounds (in the future, at most 90 days ahead) are checked against the database clock,
the one the hot path compares `until` with.
"""

from datetime import UTC, timedelta

from sqlalchemy import func, insert, select

from app.audit import service as audit
from app.audit.service import Actor
from app.rules import service as rules
from app.rules.models import RuleSnooze
from app.rules.schemas import SnoozeCreate, SnoozeOut
from app.uow.unit import AnySession

S = RuleSnooze.__table__.c
MAX_AHEAD = timedelta(days=90)


def create(*, session: AnySession, actor: Actor, rule_id: int, data: SnoozeCreate) -> SnoozeOut:
    """Snooze the rule for the account until `data.until`; the rule must exist."""
    if data.until.tzinfo is None:
        raise rules.InvalidField("until", "must include a time zone, e.g. 2026-12-31T00:00:00Z")
    rules.require(session=session, rule_id=rule_id)
    now = session.execute(select(func.now())).scalar_one()
    try:
        until = data.until.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 (or 9999-12-31T23:59-12:00) has no UTC time
        raise rules.InvalidField("until", f"must be in the future, at most {MAX_AHEAD.days} days ahead") from None
    if until <= now:
        raise rules.InvalidField("until", "must be in the future")
    if until > now + MAX_AHEAD:
        raise rules.InvalidField("until", f"must be at most {MAX_AHEAD.days} days ahead")
    row = session.execute(
        insert(RuleSnooze.__table__).values(rule_id=rule_id, account_id=data.account_id, until=until,
                                            reason=data.reason, created_by=actor.id)
        .returning(*RuleSnooze.__table__.c)
    ).one()
    audit.record(session, actor=actor, action="rule.snoozed", entity_type="rule", entity_id=rule_id,
                 reason=data.reason,
                 after={"snooze_id": row.id, "account_id": row.account_id, "until": row.until.isoformat()})
    return SnoozeOut(**row._asdict(), is_active=True)


def list_for_rule(*, session: AnySession, rule_id: int) -> list[SnoozeOut]:
    """The rule's snoozes, latest ending first, each saying whether it is still in force."""
    rules.require(session=session, rule_id=rule_id)
    rows = session.execute(
        select(*RuleSnooze.__table__.c, (S.until > func.now()).label("is_active"))
        .where(S.rule_id == rule_id).order_by(S.until.desc(), S.id.desc()).limit(500)
    )
    return [SnoozeOut(**row._asdict()) for row in rows]
