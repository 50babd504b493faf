"""The demo's fourteen days: business rows spread over them, and audit events at the same times.

The seed writes everything in one transaction. `spread_over_days` moves the rows back over
the last DAYS days, oldest payment first, so the queue has ages and SLA breaches and the
dashboard a history. `date_audit_events` then gives each queued audit event the time of
the business event it describes (a payment's creation, its score, its settlement, a case's
opening, claim and decision, a reconciliation run), and the events are written with those
times (app/audit/service.py `use_given_times`): a case page's timeline agrees with its
opened time, and the chain verifies as any other.
"""

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text

from app.audit import service as audit
from app.uow.unit import OrmSession

DAYS = 14
# The newest payment is this old, so what follows it (its case, a claim) is in the past too.
NEWEST = "interval '3 hours'"
# When analysts worked a risk case (its decision; the claim a little before), never in the future.
WORKED = "least(t.created_at + interval '1 hour' * (1 + c.id % 20), now() - interval '5 minutes')"
_SPREAD = (
    f"UPDATE transactions SET created_at = now() - {NEWEST} - make_interval(days => :days) * (1 - id::float8 / m.top) "
    "- interval '1 minute' * ((id * 37) % 600), updated_at = now() FROM (SELECT max(id) AS top FROM transactions) m",
    "UPDATE transactions SET settled_at = least(created_at + interval '1 hour' * (6 + id % 30), now() - interval "
    "'10 minutes') WHERE settled_at IS NOT NULL",
    "UPDATE risk_scores s SET created_at = t.created_at + interval '90 seconds' FROM transactions t "
    "WHERE t.id = s.transaction_id",
    "UPDATE rule_hits h SET created_at = t.created_at FROM transactions t WHERE t.id = h.transaction_id",
    "UPDATE review_cases c SET opened_at = t.created_at + interval '2 minutes', decided_at = "
    f"CASE WHEN c.decided_at IS NULL THEN NULL ELSE {WORKED} END "
    "FROM transactions t WHERE t.id = c.transaction_id AND c.kind = 'risk'",
)
CLAIM_BEFORE_DECISION = timedelta(minutes=12)
SETUP_BEFORE_FIRST_PAYMENT = timedelta(hours=2)
STEP = timedelta(milliseconds=1)


def spread_over_days(session: OrmSession) -> None:
    for statement in _SPREAD:
        session.execute(text(statement), {"days": DAYS})


def _times(session: OrmSession, sql: str) -> dict[tuple[str, str], datetime]:
    return {(action, str(key)): when for action, key, when in session.execute(text(sql)).tuples()}


# (action, entity id) → when it happened, read back from the spread business rows.
_KNOWN_TIMES = (
    "SELECT 'transaction.created', reference, created_at FROM transactions",
    "SELECT 'risk_score.posted', t.reference, s.created_at FROM risk_scores s JOIN transactions t "
    "ON t.id = s.transaction_id",
    "SELECT 'transaction.' || status, reference, settled_at FROM transactions WHERE settled_at IS NOT NULL",
    "SELECT 'case.opened', id, opened_at FROM review_cases",
    "SELECT 'case.worked', c.id, " + WORKED + " FROM review_cases c JOIN transactions t ON t.id = c.transaction_id "
    "WHERE c.kind = 'risk'",
    "SELECT 'reconciliation.run_started', id, created_at FROM reconciliation_runs",
    "SELECT 'reconciliation.run_completed', id, completed_at FROM reconciliation_runs",
)
_DECISIONS = ("case.approved", "case.rejected", "case.escalated", "case.first_approval")


def date_audit_events(session: OrmSession) -> None:
    """Give every queued event the time of what it describes; the rest follow the event before them."""
    if session.scalar(text("SELECT EXISTS (SELECT 1 FROM audit_events)")):
        return  # not a fresh history: its events keep the server's clock (times never go backwards)
    known: dict[tuple[str, str], datetime] = {}
    for sql in _KNOWN_TIMES:
        known.update(_times(session, sql))
    first_payment = min(when for (action, _), when in known.items() if action == "transaction.created")
    setup = first_payment - SETUP_BEFORE_FIRST_PAYMENT
    last_of: dict[tuple[str, str], datetime] = {}
    previous = [setup]

    def time_of(event: dict[str, Any]) -> datetime:
        entity = (event["entity_type"], event["entity_id"])
        action = event["action"]
        when = known.get((action, event["entity_id"]))
        if when is None and event["entity_type"] == "case":
            worked = known.get(("case.worked", event["entity_id"]))
            if worked is not None and action in _DECISIONS:
                when = worked
            elif worked is not None and action == "case.claimed":
                when = worked - CLAIM_BEFORE_DECISION
        if when is None:  # follows what came before it: on its entity, else in the seed's order
            when = last_of[entity] + STEP if entity in last_of else previous[0] + STEP
        last_of[entity] = previous[0] = when
        return when

    audit.use_given_times(session, time_of)
