"""The account context for agents: one statement, every part bounded.

PostgreSQL assembles each part as JSON (amounts as text, so no float ever holds money) and
the whole context comes back in one round trip; Python only formats amounts and works out
the caller's next actions. Each part reads an index by account (recent transactions, totals,
open cases, decisions, score statistics, rule hits) or by transaction (the latest score of each recent one).
"""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Text, bindparam, cast, func, literal_column, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.sql.elements import BindParameter, ColumnClause

from app import money
from app.accounts.schemas import AccountContext, Decision, NextAction, Policy, ScoreStats, Total
from app.cases import queries as cases
from app.cases.enums import CaseState
from app.cases.schemas import CaseOut
from app.risk.models import RiskScore
from app.rules import case_hits
from app.rules.schemas import AccountRuleHit
from app.security.deps import Principal
from app.settings.models import AmountRule, Setting
from app.settings.service import review_settings_from
from app.transactions import service as transactions
from app.transactions.enums import ReviewStatus, TransactionStatus
from app.transactions.schemas import TransactionOut
from app.uow.prepared import PreparedStatement
from app.uow.unit import AnySession
from app.users.enums import Role

RECENT_TRANSACTIONS = 20
OPEN_CASES = 20
RECENT_DECISIONS = 10
RECENT_RULE_HITS = 20
NEXT_ACTIONS = 20

R = RiskScore.__table__.c
ACCOUNT: BindParameter[str] = bindparam("account_id")
EMPTY: ColumnClause[Any] = literal_column("'[]'::json")


def _json_list(query, *order_by):
    """The query's rows as a JSON array in `order_by` order, amounts cast to text."""
    inner = query.subquery()
    rows = select(*[cast(c, Text).label(c.key) if c.key == "amount" else c for c in inner.c]).subquery()
    ordering = [getattr(rows.c, key) if isinstance(key, str) else key(rows.c) for key in order_by]
    agg = func.json_agg(aggregate_order_by(rows.table_valued(), *ordering))
    return select(func.coalesce(agg, EMPTY)).scalar_subquery()


# Cases and scores carry their transaction's account (migrations/versions/0009): each part
# below is one range scan of an index by account, not a probe per transaction.
_scores = select(R.id, R.score, R.is_flagged).where(R.account_id == ACCOUNT).subquery()
CONTEXT = PreparedStatement("account_context", select(
    _json_list(transactions.recent_of_account(ACCOUNT, RECENT_TRANSACTIONS), lambda c: c.id.desc()).label("recent"),
    _json_list(transactions.totals_of_account(ACCOUNT), "currency", "status").label("totals"),
    _json_list(cases.top_undecided_of_account(ACCOUNT, OPEN_CASES), lambda c: c.risk.desc(), "id").label("open_cases"),
    _json_list(
        cases.recent_decisions_of_account(ACCOUNT, RECENT_DECISIONS), lambda c: c.decided_at.desc(),
        lambda c: c.case_id.desc(),
    ).label("decisions"),
    select(func.json_build_object(
        "count", func.count(), "flagged", func.count().filter(_scores.c.is_flagged),
        "mean", cast(func.avg(_scores.c.score), Text), "min", func.min(_scores.c.score),
        "max", func.max(_scores.c.score),
        "latest", func.array_agg(aggregate_order_by(_scores.c.score, _scores.c.id.desc()))[1],
    )).scalar_subquery().label("scores"),
    select(func.coalesce(func.json_object_agg(Setting.key, Setting.value), literal_column("'{}'::json")))
    .scalar_subquery().label("settings"),
    _json_list(select(AmountRule.currency, AmountRule.threshold.label("amount")), "currency").label("rules"),
    _json_list(case_hits.recent_of_account(ACCOUNT, RECENT_RULE_HITS), lambda c: c.id.desc()).label("rule_hits"),
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
    if principal.role in (Role.AGENT, Role.ADMIN):
        actions.append(NextAction(action="create_transaction", method="POST", path="/transactions",
                                  why=f"post a new payment for {account_id}"))
        for tx in recent:
            if tx.risk_score is None:
                actions.append(NextAction(action="post_risk_score", method="POST",
                                          path=f"/transactions/{tx.reference}/risk-scores", why="not scored yet"))
            if (tx.status == TransactionStatus.PENDING
                    and tx.review_status in (ReviewStatus.CLEAR, ReviewStatus.APPROVED)):
                actions.append(NextAction(action="settle", method="POST",
                                          path=f"/transactions/{tx.reference}/settlement",
                                          why=f"pending and review is {tx.review_status}"))
    if principal.role in (Role.ANALYST, Role.ADMIN):
        for case in open_cases:
            if case.state == CaseState.ESCALATED and principal.role != Role.ADMIN:
                continue
            if case.assignee is None:
                actions.append(NextAction(action="claim_case", method="POST", path=f"/api/cases/{case.id}/claim",
                                          why=f"{case.state}, risk {case.risk}, unclaimed"))
            elif case.assignee == principal.username:
                actions.append(NextAction(action="decide_case", method="POST",
                                          path=f"/api/cases/{case.id}/decision", why="you hold this case"))
    return actions[:NEXT_ACTIONS]


def get_context(*, session: AnySession, account_id: str, principal: Principal) -> AccountContext:
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
        rule_hits=[AccountRuleHit.model_validate(row) for row in parts.rule_hits],
    )
