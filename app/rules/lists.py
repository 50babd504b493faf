"""Admin-managed lists for `in_list(name, value)`: replace, add, remove, read.

A change locks the list's row, so concurrent changes of one list serialize and each audit
event's "before" is what it replaced. Every change bumps the rule generation in its
transaction: the running rules' preloaded memberships are reread.
"""

from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert

from app.audit import service as audit
from app.audit.service import Actor
from app.errors import NotFound
from app.rules import generation
from app.rules.models import RuleList, RuleListItem
from app.rules.schemas import ListOut, ListSummary
from app.uow.unit import AnySession

L = RuleList.__table__.c
I = RuleListItem.__table__.c  # noqa: E741 (the items table, as L is the lists')


def _unique(values: list[str]) -> list[str]:
    return sorted(set(values))


def _items(session: AnySession, name: str) -> list[str]:
    return list(session.execute(select(I.value).where(I.list_name == name).order_by(I.value)).scalars())


def _locked(session: AnySession, name: str) -> Any:
    row = session.execute(select(RuleList.__table__).where(L.name == name).with_for_update()).one_or_none()
    if row is None:
        raise NotFound(f"list {name!r} not found")
    return row


def _add(session: AnySession, name: str, values: list[str]) -> list[str]:
    """Insert the values not there yet; returns those added."""
    if not values:
        return []
    return sorted(session.execute(
        insert(RuleListItem.__table__).values([{"list_name": name, "value": v} for v in values])
        .on_conflict_do_nothing().returning(I.value)
    ).scalars())


def _changed(session: AnySession, name: str) -> None:
    session.execute(update(RuleList.__table__).where(L.name == name).values(updated_at=func.now()))
    generation.bump(session)


def replace(*, session: AnySession, actor: Actor, name: str, description: str | None, items: list[str],
            description_given: bool) -> ListOut:
    """Create the list, or replace its items (and its description when given)."""
    created = session.execute(
        insert(RuleList.__table__).values(name=name, description=description)
        .on_conflict_do_nothing(index_elements=["name"]).returning(L.name)
    ).scalar_one_or_none() is not None
    current = _locked(session, name)
    old = [] if created else _items(session, name)
    new = _unique(items)
    new_description = description if description_given or created else current.description
    if created or old != new or new_description != current.description:
        session.execute(delete(RuleListItem.__table__).where(I.list_name == name, I.value.not_in(new)))
        _add(session, name, new)
        if new_description != current.description:
            session.execute(update(RuleList.__table__).where(L.name == name).values(description=new_description))
        _changed(session, name)
        audit.record(session, actor=actor, action="list.replaced", entity_type="rule_list", entity_id=name,
                     before=None if created else {"description": current.description, "items": old},
                     after={"description": new_description, "items": new})
    return get(session=session, name=name)


def add_items(*, session: AnySession, actor: Actor, name: str, items: list[str]) -> ListOut:
    """Add values to an existing list (those already in it are left as they are)."""
    _locked(session, name)
    added = _add(session, name, _unique(items))
    if added:
        _changed(session, name)
        audit.record(session, actor=actor, action="list.items_added", entity_type="rule_list", entity_id=name,
                     after={"items": added})
    return get(session=session, name=name)


def remove_item(*, session: AnySession, actor: Actor, name: str, value: str) -> ListOut:
    """Remove one value; NotFound when the list or the value is not there."""
    _locked(session, name)
    removed = session.execute(delete(RuleListItem.__table__).where(I.list_name == name, I.value == value)
                              .returning(I.value)).scalar_one_or_none()
    if removed is None:
        raise NotFound(f"{value!r} is not in list {name!r}")
    _changed(session, name)
    audit.record(session, actor=actor, action="list.item_removed", entity_type="rule_list", entity_id=name,
                 before={"item": value}, after=None)
    return get(session=session, name=name)


def _summaries(session: AnySession, name: str | None = None) -> list[ListSummary]:
    counts = select(I.list_name, func.count().label("n")).group_by(I.list_name)
    if name is not None:
        counts = counts.where(I.list_name == name)
    counted = counts.subquery()
    statement = (select(L.name, L.description, L.created_at, L.updated_at,
                        func.coalesce(counted.c.n, 0).label("item_count"))
                 .outerjoin(counted, counted.c.list_name == L.name).order_by(L.name))
    if name is not None:
        statement = statement.where(L.name == name)
    return [ListSummary(**row._asdict()) for row in session.execute(statement)]


def list_all(*, session: AnySession) -> list[ListSummary]:
    """Every list by name, with its item count."""
    return _summaries(session)


def get(*, session: AnySession, name: str) -> ListOut:
    """The list with its items, sorted; NotFound when there is none."""
    found = _summaries(session, name)
    if not found:
        raise NotFound(f"list {name!r} not found")
    return ListOut(**found[0].model_dump(), items=_items(session, name))
