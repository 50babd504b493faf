"""A rule's numbers: hits by mode, errors, the last 24 h, cases, and how its hit transactions were decided.

Outcomes come from the decisions analysts made: for each transaction the rule hit (active
or shadow), the state of its latest risk case; precision is rejected ÷ (approved + rejected).
"""

from sqlalchemy import text

from app.cases.enums import UNDECIDED_STATES, CaseKind, CaseState
from app.rules import service as rules
from app.rules.enums import HitOutcome, RuleMode
from app.rules.schemas import Outcomes, RuleStats
from app.uow.unit import AnySession

_UNDECIDED = ", ".join(f"'{s}'" for s in UNDECIDED_STATES)
COUNTS = text(f"""
    SELECT count(*) FILTER (WHERE outcome = '{HitOutcome.HIT}' AND mode = '{RuleMode.ACTIVE}') AS hits,
           count(*) FILTER (WHERE outcome = '{HitOutcome.HIT}' AND mode = '{RuleMode.SHADOW}') AS shadow_hits,
           count(*) FILTER (WHERE outcome = '{HitOutcome.ERROR}') AS errors,
           count(*) FILTER (WHERE outcome = '{HitOutcome.HIT}' AND created_at >= now() - interval '24 hours')
               AS hits_24h,
           count(DISTINCT case_id) AS cases_opened
    FROM rule_hits WHERE rule_id = :rule_id
""")
OUTCOMES = text(f"""
    WITH hit AS (
        SELECT DISTINCT transaction_id FROM rule_hits WHERE rule_id = :rule_id AND outcome = '{HitOutcome.HIT}'
    ), latest AS (
        SELECT DISTINCT ON (c.transaction_id) c.transaction_id, c.state
        FROM review_cases c JOIN hit USING (transaction_id)
        WHERE c.kind = '{CaseKind.RISK}'
        ORDER BY c.transaction_id, c.id DESC
    )
    SELECT count(*) FILTER (WHERE latest.state = '{CaseState.APPROVED}') AS approved,
           count(*) FILTER (WHERE latest.state = '{CaseState.REJECTED}') AS rejected,
           count(*) FILTER (WHERE latest.state = '{CaseState.ESCALATED}') AS escalated,
           count(*) FILTER (WHERE latest.state IN ({_UNDECIDED}) AND latest.state <> '{CaseState.ESCALATED}')
               AS undecided,
           count(*) FILTER (WHERE latest.state IS NULL) AS not_reviewed
    FROM hit LEFT JOIN latest USING (transaction_id)
""")


def precision(outcomes: Outcomes) -> float | None:
    """rejected ÷ (approved + rejected), or None when nothing was decided."""
    decided = outcomes.approved + outcomes.rejected
    return outcomes.rejected / decided if decided else None


def for_rule(*, session: AnySession, rule_id: int) -> RuleStats:
    """The rule's stats; NotFound when there is no such rule."""
    rules.require(session=session, rule_id=rule_id)
    counts = session.execute(COUNTS, {"rule_id": rule_id}).one()
    outcomes = Outcomes(**session.execute(OUTCOMES, {"rule_id": rule_id}).one()._asdict())
    return RuleStats(**counts._asdict(), outcomes=outcomes, precision=precision(outcomes))
