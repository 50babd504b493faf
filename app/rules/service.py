"""Rules and their versions: create, edit (a new draft version), publish, roll back, disable.

A rule's row is locked (FOR UPDATE) by every change, so concurrent edits and publishes of
one rule serialize: each sees the state the previous one committed, its audit event's
"before" is what it really replaced, and version numbers never collide. A change to what
runs (publish, rollback, disable) bumps the rule generation in the same transaction
(app/rules/generation.py); a publish also writes the `rule.published` webhook event.
"""

from typing import Any

from sqlalchemy import Row, and_, func, select, update
from sqlalchemy.dialects.postgresql import insert

from app.audit import service as audit
from app.audit.service import Actor
from app.errors import Conflict, DomainError, NotFound
from app.rules import generation, language, stats
from app.rules.enums import RuleMode
from app.rules.models import Rule, RuleList, RuleVersion
from app.rules.schemas import Action, Outcomes, RuleCreate, RuleOut, RuleSummary, RuleUpdate, VersionOut
from app.uow.unit import AnySession, OrmSession
from app.webhooks import outbox
from app.webhooks.enums import EventType

R = Rule.__table__.c
V = RuleVersion.__table__.c
L = RuleList.__table__.c


class InvalidField(DomainError):
    """A 422 in the validation error shape, for checks only the service can make (with the database)."""

    status_code = 422

    def __init__(self, field: str, message: str, kind: str = "value_error", **extra: Any) -> None:
        super().__init__([{"loc": ["body", *field.split(".")], "field": field, "msg": message, "type": kind,
                           **extra}])


class ConditionInvalid(InvalidField):
    """A condition that does not compile (or names an unknown list): the message and the field say where."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__("condition", f"line {line}, column {column}: {message}", "condition_invalid",
                         line=line, column=column)


def _position(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of a character offset."""
    before = text[:max(offset, 0)]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1


def compiled(*, session: AnySession, condition: str) -> language.Program:
    """The compiled condition, or ConditionInvalid: it does not compile, or names a list that does not exist."""
    try:
        program = language.compile_condition(condition)
    except language.ConditionError as error:
        raise ConditionInvalid(error.message, error.line, error.column) from None
    if program.lists:
        known = set(session.execute(select(L.name).where(L.name.in_(sorted(program.lists)))).scalars())
        missing = sorted(program.lists - known)
        if missing:
            name = missing[0]
            offsets = [o for o in (condition.find(f'"{name}"'), condition.find(f"'{name}'")) if o >= 0]
            line, column = _position(condition, min(offsets) if offsets else 0)
            raise ConditionInvalid(f"unknown list {name!r} (create it with PUT /api/lists/{name})", line, column)
    return program


def _locked(session: AnySession, rule_id: int) -> Row[Any]:
    row = session.execute(select(Rule.__table__).where(R.id == rule_id).with_for_update()).one_or_none()
    if row is None:
        raise NotFound(f"rule {rule_id} not found")
    return row


def require(*, session: AnySession, rule_id: int) -> Row[Any]:
    """The rule's row (unlocked); NotFound when there is none."""
    row = session.execute(select(Rule.__table__).where(R.id == rule_id)).one_or_none()
    if row is None:
        raise NotFound(f"rule {rule_id} not found")
    return row


def _version(session: AnySession, rule_id: int, version: int) -> Row[Any] | None:
    return session.execute(select(RuleVersion.__table__).where(V.rule_id == rule_id, V.version == version)
                           ).one_or_none()


def _version_view(row: Row[Any]) -> dict[str, Any]:
    return {"version": row.version, "condition": row.condition, "action": {"risk": row.risk, "reason": row.reason}}


def _running_view(row: Row[Any]) -> dict[str, Any]:
    return {"mode": row.mode, "running_version": row.running_version}


def _touch(session: AnySession, rule_id: int, **values: Any) -> Row[Any]:
    return session.execute(update(Rule.__table__).where(R.id == rule_id).values(**values, updated_at=func.now())
                           .returning(*Rule.__table__.c)).one()


def create(*, session: OrmSession, actor: Actor, data: RuleCreate) -> RuleOut:
    """A new rule with version 1, running at once when its mode is shadow or active; Conflict on a taken name."""
    compiled(session=session, condition=data.condition)
    runs = data.mode != "draft"
    rule = session.execute(
        insert(Rule.__table__).values(name=data.name, description=data.description, mode=data.mode,
                                      running_version=1 if runs else None, latest_version=1)
        .on_conflict_do_nothing(index_elements=["name"]).returning(*Rule.__table__.c)
    ).one_or_none()
    if rule is None:  # the unique name: a concurrent create of the same name waits, then lands here
        raise Conflict(f"a rule named {data.name!r} exists already")
    version = session.execute(
        insert(RuleVersion.__table__).values(rule_id=rule.id, version=1, condition=data.condition,
                                             risk=data.action.risk, reason=data.action.reason, created_by=actor.id)
        .returning(*RuleVersion.__table__.c)
    ).one()
    audit.record(session, actor=actor, action="rule.created", entity_type="rule", entity_id=rule.id,
                 after={"name": rule.name, "description": rule.description, **_running_view(rule),
                        **_version_view(version)})
    if runs:
        _announce(session, rule, version, previous=None)
    return get(session=session, rule_id=rule.id)


def update_rule(*, session: AnySession, actor: Actor, rule_id: int, data: RuleUpdate) -> RuleOut:
    """A new draft version from the fields given (the rest from the newest version), and/or a new description.

    What runs keeps running until a version is published.
    """
    given = data.model_fields_set
    if not given & {"condition", "action", "description"}:
        raise InvalidField("body", "give a condition, an action or a description to change")
    if data.condition is not None:
        compiled(session=session, condition=data.condition)
    rule = _locked(session, rule_id)
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    values: dict[str, Any] = {}
    if "description" in given and data.description != rule.description:
        before["description"], after["description"] = rule.description, data.description
        values["description"] = data.description
    if data.condition is not None or data.action is not None:
        base = _version(session, rule_id, rule.latest_version)
        assert base is not None  # latest_version always names a stored version
        action = data.action or Action(risk=base.risk, reason=base.reason)
        new = session.execute(
            insert(RuleVersion.__table__).values(
                rule_id=rule_id, version=rule.latest_version + 1, condition=data.condition or base.condition,
                risk=action.risk, reason=action.reason, created_by=actor.id,
            ).returning(*RuleVersion.__table__.c)
        ).one()
        before.update(_version_view(base))
        after.update(_version_view(new))
        values["latest_version"] = new.version
    if values:
        _touch(session, rule_id, **values)
        audit.record(session, actor=actor, action="rule.updated", entity_type="rule", entity_id=rule_id,
                     before=before, after=after)
    return get(session=session, rule_id=rule_id)


def publish(*, session: OrmSession, actor: Actor, rule_id: int, version: int, mode: str) -> RuleOut:
    """Run `version` in `mode` (shadow or active); an older version than the running one is a rollback."""
    rule = _locked(session, rule_id)
    chosen = _version(session, rule_id, version)
    if chosen is None:
        raise InvalidField("version", f"rule {rule_id} has versions 1 to {rule.latest_version}")
    if rule.running_version == version and rule.mode == mode:
        return get(session=session, rule_id=rule_id)  # already so: nothing changes, nothing is recorded
    is_rollback = rule.running_version is not None and version < rule.running_version
    published = _touch(session, rule_id, mode=mode, running_version=version)
    audit.record(session, actor=actor, action="rule.rolled_back" if is_rollback else "rule.published",
                 entity_type="rule", entity_id=rule_id, before=_running_view(rule), after=_running_view(published))
    _announce(session, published, chosen, previous=rule)
    return get(session=session, rule_id=rule_id)


def _announce(session: OrmSession, rule: Row[Any], version: Row[Any], *, previous: Row[Any] | None) -> None:
    """What runs changed: move the rule generation on, and send `rule.published`."""
    generation.bump(session)
    previous_version = previous.running_version if previous is not None else None
    outbox.enqueue(session, EventType.RULE_PUBLISHED, {
        "rule_id": rule.id, "name": rule.name, "mode": rule.mode, **_version_view(version),
        "previous_version": previous_version, "previous_mode": previous.mode if previous is not None else None,
        "rolled_back": previous_version is not None and version.version < previous_version,
    })


def disable(*, session: AnySession, actor: Actor, rule_id: int) -> RuleOut:
    """Stop running the rule (its versions and hits are kept; publishing runs it again)."""
    rule = _locked(session, rule_id)
    if rule.mode != RuleMode.DISABLED:
        disabled = _touch(session, rule_id, mode=RuleMode.DISABLED, running_version=None)
        generation.bump(session)
        audit.record(session, actor=actor, action="rule.disabled", entity_type="rule", entity_id=rule_id,
                     before=_running_view(rule), after=_running_view(disabled))
    return get(session=session, rule_id=rule_id)


def get(*, session: AnySession, rule_id: int) -> RuleOut:
    """The rule with every version, oldest first; NotFound when there is none."""
    rule = require(session=session, rule_id=rule_id)
    versions = session.execute(select(RuleVersion.__table__).where(V.rule_id == rule_id).order_by(V.version))
    return RuleOut(
        id=rule.id, name=rule.name, description=rule.description, mode=rule.mode, version=rule.latest_version,
        running_version=rule.running_version, created_at=rule.created_at, updated_at=rule.updated_at,
        versions=[VersionOut(version=v.version, condition=v.condition, action=Action(risk=v.risk, reason=v.reason),
                             created_by=v.created_by, created_at=v.created_at,
                             is_running=v.version == rule.running_version) for v in versions],
    )


def list_all(*, session: AnySession) -> list[RuleSummary]:
    """Every rule by name, with what runs (else the newest version), its hits in the last 24 h and its precision."""
    shown = func.coalesce(R.running_version, R.latest_version)
    rows = session.execute(
        select(R.id, R.name, R.description, R.mode, R.latest_version, R.running_version, R.updated_at,
               V.condition, V.risk, V.reason)
        .join(RuleVersion.__table__, and_(V.rule_id == R.id, V.version == shown))
        .order_by(R.name)
    ).all()
    ids = [r.id for r in rows]
    recent = stats.recent_hits_by_rule(session=session, rule_ids=ids)
    outcomes = stats.outcomes_by_rule(session=session, rule_ids=ids)
    return [RuleSummary(id=r.id, name=r.name, description=r.description, mode=r.mode, version=r.latest_version,
                        running_version=r.running_version, condition=r.condition,
                        action=Action(risk=r.risk, reason=r.reason), updated_at=r.updated_at,
                        hits_24h=recent.get(r.id, 0), precision=stats.precision(outcomes.get(r.id, Outcomes())))
            for r in rows]
