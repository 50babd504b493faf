"""The rule hits behind a case: what the hot path stored for the case's transaction, in the explanation shape.

Each item is {"rule_id", "rule_name", "version", "mode", "risk", "reason", "values", "case_id"}
(SPEC's `explanations`, plus the mode and the case the hit opened or joined), active hits first,
then by risk. Only matches are reasons: run-time errors are left to the rule's page.
"""

from typing import Any

from sqlalchemy import case, select

from app.rules.enums import HitOutcome, RuleMode
from app.rules.models import Rule, RuleHit
from app.uow.unit import AnySession

H = RuleHit.__table__.c
R = Rule.__table__.c


def for_transaction(*, session: AnySession, transaction_id: int) -> list[dict[str, Any]]:
    """The matches of every rule (active and shadow) on the transaction, each with the values it read."""
    rows = session.execute(
        select(H.rule_id, R.name.label("rule_name"), H.version, H.mode, H.risk, H.reason, H["values"], H.case_id)
        .join(Rule.__table__, R.id == H.rule_id)
        .where(H.transaction_id == transaction_id, H.outcome == HitOutcome.HIT)
        .order_by(case((H.mode == RuleMode.ACTIVE, 0), else_=1), H.risk.desc(), H.id)
    )
    return [dict(row._mapping) for row in rows]
