"""The account context for agents: a handful of indexed queries, each bounded."""

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import money
from app.accounts.schemas import AccountContext, Decision, NextAction, Policy, ScoreStats, Total
from app.cases import service as cases
from app.risk.models import AmountRule, RiskScore
from app.security.deps import Principal
from app.settings.service import get_review_settings
from app.transactions import service as transactions
from app.transactions.models import Transaction

RECENT_TRANSACTIONS = 20
OPEN_CASES = 20
RECENT_DECISIONS = 10
NEXT_ACTIONS = 20

T = Transaction.__table__.c


def _totals(session: Session, account_id: str) -> list[Total]:
    rows = session.execute(
        select(T.currency, T.status, func.count(), func.sum(T.amount))
        .where(T.account_id == account_id)
        .group_by(T.currency, T.status)
        .order_by(T.currency, T.status)
    )
    return [Total(currency=c, status=s, count=n, amount=money.format_amount(total, c)) for c, s, n, total in rows]


def _score_stats(session: Session, account_id: str) -> ScoreStats:
    scores = select(RiskScore.id, RiskScore.score, RiskScore.is_flagged).join(
        Transaction, Transaction.id == RiskScore.transaction_id
    ).where(Transaction.account_id == account_id).subquery()
    row = session.execute(
        select(
            func.count(), func.count().filter(scores.c.is_flagged), func.avg(scores.c.score),
            func.min(scores.c.score), func.max(scores.c.score),
            select(scores.c.score).order_by(scores.c.id.desc()).limit(1).scalar_subquery(),
        )
    ).one()
    count, flagged, mean, low, high, latest = row
    return ScoreStats(
        count=count, flagged=flagged, mean=None if mean is None else str(Decimal(mean).quantize(Decimal("0.1"))),
        min=low, max=high, latest=latest,
    )


def _policy(session: Session) -> Policy:
    settings = get_review_settings(session=session)
    rules = session.execute(select(AmountRule.currency, AmountRule.threshold).order_by(AmountRule.currency))
    return Policy(
        flag_threshold=settings.flag_threshold,
        dual_control_threshold=format(settings.dual_control_threshold.normalize(), "f"),
        amount_rules={currency: money.format_amount(threshold, currency) for currency, threshold in rules},
        claim_lease_minutes=settings.claim_lease_minutes,
    )


def _next_actions(principal: Principal, account_id: str, recent, open_cases) -> list[NextAction]:
    actions = []
    if principal.role in ("agent", "admin"):
        actions.append(NextAction(action="create_transaction", method="POST", path="/transactions",
                                  why=f"post a new payment for {account_id}"))
        for tx in recent:
            if tx.risk_score is None:
                actions.append(NextAction(action="post_risk_score", method="POST",
                                          path=f"/transactions/{tx.reference}/risk-scores", why="not scored yet"))
            if tx.status == "pending" and tx.review_status in ("clear", "approved"):
                actions.append(NextAction(action="settle", method="POST",
                                          path=f"/transactions/{tx.reference}/settlement",
                                          why=f"pending and review is {tx.review_status}"))
    if principal.role in ("analyst", "admin"):
        for case in open_cases:
            if case.state == "escalated" and principal.role != "admin":
                continue
            if case.assignee is None:
                actions.append(NextAction(action="claim_case", method="POST", path=f"/api/cases/{case.id}/claim",
                                          why=f"{case.state}, risk {case.risk}, unclaimed"))
            elif case.assignee == principal.username:
                actions.append(NextAction(action="decide_case", method="POST",
                                          path=f"/api/cases/{case.id}/decision", why="you hold this case"))
    return actions[:NEXT_ACTIONS]


def get_context(*, session: Session, account_id: str, principal: Principal) -> AccountContext:
    """Recent transactions, totals, open cases, decisions, score statistics, policy and next actions."""
    recent_rows, _ = transactions.list_page(session=session, limit=RECENT_TRANSACTIONS, account_id=account_id)
    recent = [transactions.to_out(row) for row in recent_rows]
    account_cases = cases.CASE_ROWS.where(cases.T.account_id == account_id)
    open_cases = [
        cases.to_out(row) for row in session.execute(
            account_cases.where(cases.UNDECIDED).order_by(cases.C.risk.desc(), cases.C.id).limit(OPEN_CASES)
        )
    ]
    decided = session.execute(
        account_cases.where(cases.C.decided_at.is_not(None))
        .order_by(cases.C.decided_at.desc(), cases.C.id.desc()).limit(RECENT_DECISIONS)
    )
    return AccountContext(
        account_id=account_id,
        generated_at=datetime.now(UTC),
        recent_transactions=recent,
        totals=_totals(session, account_id),
        open_cases=open_cases,
        recent_decisions=[
            Decision(case_id=row.id, transaction_reference=row.transaction_reference, decision=row.decision,
                     reason_code=row.reason_code, note=row.note, decided_by=row.decided_by, decided_at=row.decided_at)
            for row in decided
        ],
        risk_scores=_score_stats(session, account_id),
        policy=_policy(session),
        next_actions=_next_actions(principal, account_id, recent, open_cases),
    )
