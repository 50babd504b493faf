"""Review settings: admin-editable values with defaults, read once per unit of work.

Changes are audited with before/after and take effect for the next request (readers ask
the table every time; nothing is cached in a process).
"""

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app import money
from app.audit import service as audit
from app.audit.service import Actor
from app.errors import NotFound
from app.settings.models import AmountRule, Setting
from app.uow.unit import AnySession, OrmSession

DEFAULTS: dict[str, int | str] = {
    "flag_threshold": 70,
    "dual_control_threshold": "10000",
    "claim_lease_minutes": 15,
    # Hours an undecided case of each kind may wait before the dashboard counts it as an SLA breach.
    "sla_hours_risk": 24,
    "sla_hours_reconciliation": 72,
    # On: a new flag on an account with an open risk case joins that case instead of opening
    # a second one (app/cases/grouping.py).
    "group_flags_by_account": False,
}


@dataclass(frozen=True)
class ReviewSettings:
    flag_threshold: int
    dual_control_threshold: Decimal
    claim_lease_minutes: int
    sla_hours_risk: int = int(DEFAULTS["sla_hours_risk"])
    sla_hours_reconciliation: int = int(DEFAULTS["sla_hours_reconciliation"])
    group_flags_by_account: bool = False

    def sla_hours(self, kind: str) -> int:
        return self.sla_hours_reconciliation if kind == "reconciliation" else self.sla_hours_risk


def get_review_settings(*, session: Session | AnySession) -> ReviewSettings:
    """The current review settings, defaults filled in."""
    return review_settings_from(dict(session.execute(select(Setting.key, Setting.value)).tuples().all()))


def review_settings_from(stored: dict[str, Any]) -> ReviewSettings:
    """Settings from the stored key → value rows, defaults filled in."""
    values = {**DEFAULTS, **{k: v for k, v in stored.items() if k in DEFAULTS}}
    return ReviewSettings(
        flag_threshold=int(values["flag_threshold"]),
        dual_control_threshold=Decimal(str(values["dual_control_threshold"])),
        claim_lease_minutes=int(values["claim_lease_minutes"]),
        sla_hours_risk=int(values["sla_hours_risk"]),
        sla_hours_reconciliation=int(values["sla_hours_reconciliation"]),
        group_flags_by_account=values["group_flags_by_account"] is True,
    )


def _stored_form(value: Any) -> Any:
    # Decimals are kept as strings in JSONB: exact, and read back with Decimal(str(...)).
    return str(value) if isinstance(value, Decimal) else value


def _same(old: Any, new: Any) -> bool:
    # Numbers compare by value ("10000" == 10000.00); the one switch compares as itself.
    if isinstance(old, bool) or isinstance(new, bool):
        return old is new
    return Decimal(str(old)) == Decimal(str(new))


def update(*, session: OrmSession, actor: Actor, changes: dict[str, Any], user_id: int | None = None) -> list[str]:
    """Apply validated `changes` (setting key → value); audit each real change; return the changed keys."""
    changed = []
    for key, value in changes.items():
        if key not in DEFAULTS:
            raise KeyError(key)
        new = _stored_form(value)
        # Make sure the row exists, then lock it: concurrent edits of one setting serialize and
        # each audit event's "before" is the value that edit really replaced.
        session.execute(insert(Setting).values(key=key, value=DEFAULTS[key]).on_conflict_do_nothing())
        old = session.execute(select(Setting.value).where(Setting.key == key).with_for_update()).scalar_one()
        if _same(old, new):
            continue
        session.execute(
            Setting.__table__.update().where(Setting.key == key)
            .values(value=new, updated_by=user_id, updated_at=func.now())
        )
        audit.record(session, actor=actor, action="setting.changed", entity_type="setting", entity_id=key,
                     before={key: old}, after={key: new})
        changed.append(key)
    return changed


def amount_rules(*, session: Session) -> list[AmountRule]:
    """Every amount rule, by currency."""
    return list(session.scalars(select(AmountRule).order_by(AmountRule.currency)))


def set_amount_rule(*, session: OrmSession, actor: Actor, currency: str, threshold: Decimal,
                    user_id: int | None = None) -> bool:
    """Add or change the rule for `currency` (already validated); False when nothing changed."""
    old = session.execute(
        select(AmountRule.threshold).where(AmountRule.currency == currency).with_for_update()
    ).scalar_one_or_none()
    if old is not None and old == threshold:
        return False
    session.execute(
        insert(AmountRule).values(currency=currency, threshold=threshold, updated_by=user_id)
        .on_conflict_do_update(index_elements=["currency"],
                               set_={"threshold": threshold, "updated_by": user_id, "updated_at": func.now()})
    )
    audit.record(
        session, actor=actor, action="amount_rule.changed", entity_type="amount_rule", entity_id=currency,
        before=None if old is None else {"threshold": money.format_amount(old, currency)},
        after={"threshold": money.format_amount(threshold, currency)},
    )
    return True


def remove_amount_rule(*, session: OrmSession, actor: Actor, currency: str) -> None:
    """Delete the rule for `currency`; NotFound when there is none."""
    old = session.execute(delete(AmountRule).where(AmountRule.currency == currency).returning(AmountRule.threshold))
    threshold = old.scalar_one_or_none()
    if threshold is None:
        raise NotFound(f"no amount rule for {currency}")
    audit.record(session, actor=actor, action="amount_rule.removed", entity_type="amount_rule", entity_id=currency,
                 before={"threshold": money.format_amount(threshold, currency)}, after=None)
