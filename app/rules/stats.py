"""A rule's numbers: hits by mode, errors, the last 24 h, cases, and how its hit transactions were decided.

Outcomes come from the decisions analysts made: for each transaction the rule hit (active
or shadow), the state of its latest risk case; precision is rejected ÷ (approved + rejected).
"""

from collections.abc import Collection

from sqlalchemy import bindparam, select, text

from app.cases.enums import UNDECIDED_STATES, CaseKind, CaseState
from app.errors import NotFound
from app.rules.enums import HitOutcome, RuleMode
from app.rules.models import Rule
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
# Per rule: the distinct transactions it hit, each with the state of its latest risk case.
OUTCOMES = text(f"""
    WITH hit AS (
        SELECT DISTINCT rule_id, transaction_id FROM rule_hits
        WHERE rule_id IN :rule_ids AND outcome = '{HitOutcome.HIT}'
    ), latest AS (
        SELECT DISTINCT ON (c.transaction_id) c.transaction_id, c.state
        FROM review_cases c WHERE c.transaction_id IN (SELECT transaction_id FROM hit) AND c.kind = '{CaseKind.RISK}'
        ORDER BY c.transaction_id, c.id DESC
    )
    SELECT hit.rule_id,
           count(*) FILTER (WHERE latest.state = '{CaseState.APPROVED}') AS approved,
           count(*) FILTER (WHERE latest.state = '{CaseState.REJECTED}') AS rejected,
           count(*) FILTER (WHERE latest.state = '{CaseState.ESCALATED}') AS escalated,
           count(*) FILTER (WHERE latest.state IN ({_UNDECIDED}) AND latest.state <> '{CaseState.ESCALATED}')
               AS undecided,
           count(*) FILTER (WHERE latest.state IS NULL) AS not_reviewed
    FROM hit LEFT JOIN latest USING (transaction_id)
    GROUP BY hit.rule_id
""").bindparams(bindparam("rule_ids", expanding=True))
RECENT_HITS = text(f"""
    SELECT rule_id, count(*) AS hits_24h FROM rule_hits
    WHERE rule_id IN :rule_ids AND outcome = '{HitOutcome.HIT}' AND created_at >= now() - interval '24 hours'
    GROUP BY rule_id
""").bindparams(bindparam("rule_ids", expanding=True))


def precision(outcomes: Outcomes) -> float | None:
    """rejected ÷ (approved + rejected), or None when nothing was decided."""
    decided = outcomes.approved + outcomes.rejected
    return outcomes.rejected / decided if decided else None


def outcomes_by_rule(*, session: AnySession, rule_ids: Collection[int]) -> dict[int, Outcomes]:
    """How the transactions each rule hit were decided (rules without hits are left out)."""
    if not rule_ids:
        return {}
    rows = session.execute(OUTCOMES, {"rule_ids": list(rule_ids)})
    return {row.rule_id: Outcomes(**{k: v for k, v in row._asdict().items() if k != "rule_id"}) for row in rows}


def recent_hits_by_rule(*, session: AnySession, rule_ids: Collection[int]) -> dict[int, int]:
    """Each rule's hits (active and shadow) in the last 24 hours (rules without are left out)."""
    if not rule_ids:
        return {}
    return {row.rule_id: row.hits_24h for row in session.execute(RECENT_HITS, {"rule_ids": list(rule_ids)})}


def for_rule(*, session: AnySession, rule_id: int) -> RuleStats:
    """The rule's stats; NotFound when there is no such rule."""
    if session.execute(select(Rule.__table__.c.id).where(Rule.__table__.c.id == rule_id)).first() is None:
        raise NotFound(f"rule {rule_id} not found")
    counts = session.execute(COUNTS, {"rule_id": rule_id}).one()
    outcomes = outcomes_by_rule(session=session, rule_ids=[rule_id]).get(rule_id, Outcomes())
    return RuleStats(**counts._asdict(), outcomes=outcomes, precision=precision(outcomes))
