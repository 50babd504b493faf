"""A flag meeting an open case: a higher score raises the case's risk and reason, and, with
the `group_flags_by_account` setting on, a flag on another payment of the account joins
the account's open risk case instead of opening a second one (Marble's "add to case if
possible").

Callers hold the flagged transaction's row lock; the case row is locked after it, the
order decisions use too. Joining takes a per-account advisory lock first, so two flags on
one account at once cannot both open a case while grouping is on.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import func, insert, select, text, update

from app.audit import service as audit
from app.audit.service import Actor
from app.cases.enums import CaseKind
from app.cases.models import CaseTransaction, ReviewCase
from app.cases.queries import UNDECIDED, C
from app.settings.service import get_review_settings
from app.transactions import service as transactions
from app.transactions.enums import ReviewStatus
from app.transactions.models import Transaction
from app.uow.unit import AnySession, OrmSession

CT = CaseTransaction.__table__.c


def raise_risk(*, session: AnySession, actor: Actor, case_id: int, risk: int, reason: str) -> int:
    """A flag on a case already waiting: a higher risk replaces its risk and reason (the queue
    reorders with it), audited as `case.risk_raised`; a lower one changes nothing. Returns case_id."""
    current = session.execute(select(C.risk, C.reason).where(C.id == case_id).with_for_update()).one()
    if risk <= current.risk:
        return case_id
    session.execute(update(ReviewCase).where(C.id == case_id).values(risk=risk, reason=reason, updated_at=func.now()))
    audit.record(
        session, actor=actor, action="case.risk_raised", entity_type="case", entity_id=case_id,
        before={"risk": current.risk, "reason": current.reason}, after={"risk": risk, "reason": reason},
        reason=reason,
    )
    return case_id


def join_open_case(*, session: OrmSession, actor: Actor, tx: Transaction, risk: int, reason: str) -> int | None:
    """The case the flag joined (raising its risk when higher), or None when the caller opens
    (or reuses) the transaction's own case."""
    own = session.execute(
        select(C.id).where(C.transaction_id == tx.id, C.kind == CaseKind.RISK, UNDECIDED)
    ).scalar()
    if own is not None:
        return None
    joined = session.execute(
        select(CT.case_id).join(ReviewCase.__table__, C.id == CT.case_id)
        .where(CT.transaction_id == tx.id, C.kind == CaseKind.RISK, UNDECIDED)
    ).scalar()
    if joined is not None:  # flagged again while its group's case waits
        return raise_risk(session=session, actor=actor, case_id=joined, risk=risk, reason=reason)
    if not get_review_settings(session=session).group_flags_by_account:
        return None
    account_lock = func.hashtextextended(f"riskdesk.account_case:{tx.account_id}", 0)
    session.execute(select(func.pg_advisory_xact_lock(account_lock)))
    target = session.execute(
        select(C.id).where(C.account_id == tx.account_id, C.kind == CaseKind.RISK, UNDECIDED)
        .order_by(C.id).limit(1).with_for_update()
    ).scalar()
    if target is None:
        return None
    session.execute(insert(CaseTransaction.__table__).values(case_id=target, transaction_id=tx.id))
    audit.record(
        session, actor=actor, action="case.flag_grouped", entity_type="case", entity_id=target,
        after={"transaction": tx.reference, "risk": risk}, reason=reason,
    )
    transactions.set_review_status(session=session, actor=actor, tx=tx, status=ReviewStatus.FLAGGED,
                                   reason=f"joined case {target}")
    return raise_risk(session=session, actor=actor, case_id=target, risk=risk, reason=reason)


def open_cases_of_accounts(session: AnySession, account_ids: Iterable[str]) -> dict[str, int] | None:
    """With grouping on: each account's oldest undecided risk case (locked), account id → case id,
    after taking the accounts' advisory locks in one order. None when grouping is off."""
    if not get_review_settings(session=session).group_flags_by_account:
        return None
    accounts = sorted(set(account_ids))
    session.execute(text(
        "SELECT pg_advisory_xact_lock(k) FROM (SELECT hashtextextended('riskdesk.account_case:' || a, 0) AS k "
        "FROM unnest(CAST(:accounts AS text[])) AS a ORDER BY a) AS locks"
    ), {"accounts": accounts})
    oldest = (select(C.account_id, func.min(C.id).label("id"))
              .where(C.account_id.in_(accounts), C.kind == CaseKind.RISK, UNDECIDED).group_by(C.account_id))
    targets = {row.account_id: row.id for row in session.execute(oldest)}
    if targets:
        session.execute(select(C.id).where(C.id.in_(sorted(targets.values()))).order_by(C.id).with_for_update())
    return targets


@dataclass(frozen=True)
class JoiningFlag:
    """A flag on a transaction new in this unit of work that joins its account's open case."""

    transaction_id: int
    reference: str
    case_id: int
    actor: Actor
    risk: int
    reason: str


def join_new_flags(session: AnySession, flags: Sequence[JoiningFlag]) -> None:
    """Add new (still clear) transactions to their account's open case, set-wise: link, flag the
    transaction, audit both, and raise each case's risk to its highest joining flag."""
    if not flags:
        return
    session.execute(insert(CaseTransaction.__table__),
                    [{"case_id": f.case_id, "transaction_id": f.transaction_id} for f in flags])
    for f in flags:
        audit.record(
            session, actor=f.actor, action="case.flag_grouped", entity_type="case", entity_id=f.case_id,
            after={"transaction": f.reference, "risk": f.risk}, reason=f.reason,
        )
    transactions.flag_new(session=session, flags=[
        transactions.NewFlag(f.transaction_id, f.reference, f.actor, f"joined case {f.case_id}") for f in flags])
    highest: dict[int, JoiningFlag] = {}
    for f in flags:
        if f.case_id not in highest or f.risk > highest[f.case_id].risk:
            highest[f.case_id] = f
    for case_id, f in sorted(highest.items()):
        raise_risk(session=session, actor=f.actor, case_id=case_id, risk=f.risk, reason=f.reason)
