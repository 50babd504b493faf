"""The rule hits behind a case: what the hot path stored for the case's transaction, in the explanation shape.

Each item is {"rule_id", "rule_name", "version", "mode", "risk", "reason", "values", "case_id"}
(SPEC's `explanations`, plus the mode and the case the hit opened or joined), active hits first,
then by risk. Only matches are reasons: run-time errors are left to the rule's page.
"""

from typing import Any

from sqlalchemy import Select, case, select

from app.rules.enums import HitOutcome, RuleMode
from app.rules.models import Rule, RuleHit
from app.transactions.models import Transaction
from app.uow.unit import AnySession

H = RuleHit.__table__.c
R = Rule.__table__.c
T = Transaction.__table__.c


def for_transaction(*, session: AnySession, transaction_id: int) -> list[dict[str, Any]]:
    """The matches of every rule (active and shadow) on the transaction, each with the values it read."""
    rows = session.execute(
        select(H.rule_id, R.name.label("rule_name"), H.version, H.mode, H.risk, H.reason, H["values"], H.case_id)
        .join(Rule.__table__, R.id == H.rule_id)
        .where(H.transaction_id == transaction_id, H.outcome == HitOutcome.HIT)
        .order_by(case((H.mode == RuleMode.ACTIVE, 0), else_=1), H.risk.desc(), H.id)
    )
    return [dict(row._mapping) for row in rows]


def recent_of_account(account_id: Any, limit: int) -> Select:
    """The account's `limit` newest rule matches (shadow too), with each transaction's reference (account context)."""
    return (
        select(T.reference.label("transaction_reference"), H.rule_id, R.name.label("rule_name"), H.version, H.mode,
               H.risk, H.reason, H["values"], H.created_at, H.id)
        .join(Rule.__table__, R.id == H.rule_id).join(Transaction.__table__, T.id == H.transaction_id)
        .where(H.account_id == account_id, H.outcome == HitOutcome.HIT)
        .order_by(H.id.desc()).limit(limit)
    )
