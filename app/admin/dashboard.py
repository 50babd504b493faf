"""The admin dashboard's numbers, each one query sized for millions of rows.

Open cases, oldest age and SLA breaches read the partial queue index over undecided
cases (a few thousand rows at most). Per-day decisions and agent-versus-human counts read
audit events of a handful of actions inside the window through
ix_audit_events_action_occurred_at (index-only). The score histogram scans the window's
risk scores once.
"""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

from app.cases.enums import CaseKind
from app.cases.models import UNDECIDED_SQL
from app.settings.service import get_review_settings

DECISION_ACTIONS = ("case.approved", "case.rejected", "case.escalated")
SCORE_ACTION = "risk_score.posted"
WINDOWS = (14, 30)
BUCKET_WIDTH = 10  # scores 0–9, 10–19, …, 90–100


@dataclass
class Dashboard:
    days: int
    open_cases: int
    oldest_opened_at: datetime | None
    sla_breaches: dict[str, int]
    sla_hours: dict[str, int]
    day_labels: list[str] = field(default_factory=list)
    decisions_per_day: dict[str, list[int]] = field(default_factory=dict)
    score_buckets: list[str] = field(default_factory=list)
    score_counts: list[int] = field(default_factory=list)
    actor_types: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def total_breaches(self) -> int:
        return sum(self.sla_breaches.values())


# The kinds and states are written into the statement, not bound: the planner must see the
# queue index's own predicate (UNDECIDED_SQL) to use it.
OPEN_SQL = text(f"""
SELECT count(*) AS open_cases, min(opened_at) AS oldest,
       count(*) FILTER (WHERE kind = '{CaseKind.RISK}'
                        AND opened_at < now() - make_interval(hours => :risk_hours)) AS risk_late,
       count(*) FILTER (WHERE kind = '{CaseKind.RECONCILIATION}'
                        AND opened_at < now() - make_interval(hours => :recon_hours)) AS recon_late
FROM review_cases WHERE {UNDECIDED_SQL}
""")
DECISIONS_SQL = text("""
SELECT (occurred_at AT TIME ZONE 'UTC')::date AS day, action, count(*) AS n
FROM audit_events WHERE action = ANY(:actions) AND occurred_at >= :since
GROUP BY 1, 2
""")
ACTOR_TYPES_SQL = text("""
SELECT CASE WHEN action = :score_action THEN 'scores' ELSE 'decisions' END AS kind, actor_type, count(*) AS n
FROM audit_events WHERE action = ANY(:actions) AND occurred_at >= :since
GROUP BY 1, 2
""")
SCORES_SQL = text("""
SELECT least(score / :width, :last_bucket) AS bucket, count(*) AS n
FROM risk_scores WHERE created_at >= :since GROUP BY 1
""")


def build(*, session: Session, days: int = 14, now: datetime | None = None) -> Dashboard:
    """Every number and series on the dashboard for the last `days` days (UTC)."""
    settings = get_review_settings(session=session)
    now = now or datetime.now(UTC)
    first_day: date = now.date() - timedelta(days=days - 1)
    since = datetime.combine(first_day, datetime.min.time(), tzinfo=UTC)
    open_row = session.execute(OPEN_SQL, {"risk_hours": settings.sla_hours_risk,
                                          "recon_hours": settings.sla_hours_reconciliation}).one()
    board = Dashboard(
        days=days, open_cases=open_row.open_cases, oldest_opened_at=open_row.oldest,
        sla_breaches={CaseKind.RISK: open_row.risk_late, CaseKind.RECONCILIATION: open_row.recon_late},
        sla_hours={CaseKind.RISK: settings.sla_hours_risk, CaseKind.RECONCILIATION: settings.sla_hours_reconciliation},
    )
    all_days = [first_day + timedelta(days=i) for i in range(days)]
    board.day_labels = [d.strftime("%b %d") for d in all_days]
    index = {d: i for i, d in enumerate(all_days)}
    board.decisions_per_day = {a.split(".")[1]: [0] * days for a in DECISION_ACTIONS}
    for row in session.execute(DECISIONS_SQL, {"actions": list(DECISION_ACTIONS), "since": since}):
        if row.day in index:
            board.decisions_per_day[row.action.split(".")[1]][index[row.day]] = row.n
    last_bucket = 100 // BUCKET_WIDTH - 1
    board.score_buckets = [f"{b * BUCKET_WIDTH}–{b * BUCKET_WIDTH + BUCKET_WIDTH - 1 if b < last_bucket else 100}"
                           for b in range(last_bucket + 1)]
    board.score_counts = [0] * (last_bucket + 1)
    for row in session.execute(SCORES_SQL, {"width": BUCKET_WIDTH, "last_bucket": last_bucket, "since": since}):
        board.score_counts[row.bucket] = row.n
    board.actor_types = {"scores": {}, "decisions": {}}
    for row in session.execute(ACTOR_TYPES_SQL, {"actions": [*DECISION_ACTIONS, SCORE_ACTION], "since": since,
                                                 "score_action": SCORE_ACTION}):
        board.actor_types[row.kind][row.actor_type] = row.n
    return board
