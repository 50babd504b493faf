"""The account context for agents: one statement, every part bounded.

PostgreSQL assembles each part as JSON (amounts as text, so no float ever holds money) and
the whole context comes back in one round trip; Python only formats amounts and works out
the caller's next actions. Each part reads an index by account (recent transactions, totals,
open cases, decisions, score statistics) or by transaction (the latest score of each recent one).
"""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Text, bindparam, cast, func, literal_column, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import Session

from app import money
from app.accounts.schemas import AccountContext, Decision, NextAction, Policy, ScoreStats, Total
from app.cases import service as cases
from app.cases.schemas import CaseOut
from app.db import PreparedStatement
from app.risk.models import AmountRule, RiskScore
from app.security.deps import Principal
from app.settings.models import Setting
from app.settings.service import review_settings_from
from app.transactions import service as transactions
from app.transactions.schemas import TransactionOut
from app.transactions.models import Transaction
from app.users.models import User

RECENT_TRANSACTIONS = 20
OPEN_CASES = 20
RECENT_DECISIONS = 10
NEXT_ACTIONS = 20

T = Transaction.__table__.c
R = RiskScore.__table__.c
ACCOUNT = bindparam("account_id")
EMPTY = literal_column("'[]'::json")


def _json_list(query, *order_by):
    """The query's rows as a JSON array in `order_by` order, amounts cast to text."""
    inner = query.subquery()
    rows = select(*[cast(c, Text).label(c.key) if c.key == "amount" else c for c in inner.c]).subquery()
    ordering = [getattr(rows.c, key) if isinstance(key, str) else key(rows.c) for key in order_by]
    agg = func.json_agg(aggregate_order_by(rows.table_valued(), *ordering))
    return select(func.coalesce(agg, EMPTY)).scalar_subquery()


# Cases and scores carry their transaction's account (migrations/versions/0009): each part
# below is one range scan of an index by account, not a probe per transaction.
# The top open cases are picked from the cases alone; only those few are then joined to
# their transaction and users.
_top_open_cases = (
    select(cases.C.id).where(cases.C.account_id == ACCOUNT, cases.UNDECIDED)
    .order_by(cases.C.risk.desc(), cases.C.id).limit(OPEN_CASES)
)
# Decisions likewise: the account's latest decided cases, then only those joined to their
# transaction and decider.
_decided = (
    select(cases.C.id, cases.C.transaction_id, cases.C.decision, cases.C.reason_code, cases.C.note,
           cases.C.decided_by, cases.C.decided_at)
    .where(cases.C.account_id == ACCOUNT, cases.C.decided_at.is_not(None))
    .order_by(cases.C.decided_at.desc(), cases.C.id.desc()).limit(RECENT_DECISIONS)
    .subquery("decided")
)
_decider = User.__table__.c
_decisions = (
    select(_decided.c.id.label("case_id"), T.reference.label("transaction_reference"),
           _decided.c.decision, _decided.c.reason_code, _decided.c.note,
           select(_decider.username).where(_decider.id == _decided.c.decided_by).scalar_subquery().label("decided_by"),
           _decided.c.decided_at)
    .select_from(_decided).join(Transaction.__table__, T.id == _decided.c.transaction_id)
)
_scores = select(R.id, R.score, R.is_flagged).where(R.account_id == ACCOUNT).subquery()
CONTEXT = PreparedStatement("account_context", select(
    _json_list(
        select(*transactions.READ_COLUMNS).where(T.account_id == ACCOUNT).order_by(T.id.desc()).limit(RECENT_TRANSACTIONS),
        lambda c: c.id.desc(),
    ).label("recent"),
    _json_list(
        select(T.currency, T.status, func.count().label("count"), func.sum(T.amount).label("amount"))
        .where(T.account_id == ACCOUNT).group_by(T.currency, T.status),
        "currency", "status",
    ).label("totals"),
    _json_list(
        cases.CASE_ROWS.where(cases.C.id.in_(_top_open_cases)),
        lambda c: c.risk.desc(), "id",
    ).label("open_cases"),
    _json_list(_decisions, lambda c: c.decided_at.desc(), lambda c: c.case_id.desc()).label("decisions"),
    select(func.json_build_object(
        "count", func.count(), "flagged", func.count().filter(_scores.c.is_flagged),
        "mean", cast(func.avg(_scores.c.score), Text), "min", func.min(_scores.c.score),
        "max", func.max(_scores.c.score),
        "latest", func.array_agg(aggregate_order_by(_scores.c.score, _scores.c.id.desc()))[1],
    )).scalar_subquery().label("scores"),
    select(func.coalesce(func.json_object_agg(Setting.key, Setting.value), literal_column("'{}'::json")))
    .scalar_subquery().label("settings"),
    _json_list(select(AmountRule.currency, AmountRule.threshold.label("amount")), "currency").label("rules"),
), "account_id")


def _amount(row: dict[str, Any]) -> dict[str, Any]:
    if row.get("amount") is not None:
        row["amount"] = money.format_amount(Decimal(row["amount"]), row["currency"])
    return row


def _transaction(row: dict[str, Any]) -> TransactionOut:
    row["metadata"] = row.pop("metadata_")
    return TransactionOut.model_validate(_amount(row))


def _case(row: dict[str, Any]) -> CaseOut:
    return CaseOut.model_validate(_amount(row))


def _score_stats(values: dict[str, Any]) -> ScoreStats:
    mean = values["mean"]
    return ScoreStats(**{**values, "mean": None if mean is None else str(Decimal(mean).quantize(Decimal("0.1")))})


def _policy(stored: dict[str, Any], rules: list[dict[str, Any]]) -> Policy:
    settings = review_settings_from(stored)
    return Policy(
        flag_threshold=settings.flag_threshold,
        dual_control_threshold=format(settings.dual_control_threshold.normalize(), "f"),
        amount_rules={rule["currency"]: _amount(rule)["amount"] for rule in rules},
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
    parts = CONTEXT.execute(session, account_id=account_id).one()
    recent = [_transaction(row) for row in parts.recent]
    open_cases = [_case(row) for row in parts.open_cases]
    return AccountContext(
        account_id=account_id,
        generated_at=datetime.now(UTC),
        recent_transactions=recent,
        totals=[Total.model_validate(_amount(row)) for row in parts.totals],
        open_cases=open_cases,
        recent_decisions=[Decision.model_validate(row) for row in parts.decisions],
        risk_scores=_score_stats(parts.scores),
        policy=_policy(parts.settings, parts.rules),
        next_actions=_next_actions(principal, account_id, recent, open_cases),
    )
