"""Risk scores: record a model's score and open a review case when it, an amount rule or a detection rule says so."""

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import money
from app.audit import service as audit
from app.audit.service import Actor
from app.cases import opening
from app.cases import queries as cases
from app.risk.models import RiskScore
from app.risk.schemas import RiskScoreCreate, RiskScoreCreated, RiskScoreOut
from app.rules import flows as rules
from app.settings.models import AmountRule
from app.settings.service import get_review_settings
from app.transactions import service as transactions
from app.transactions.models import Transaction
from app.uow.unit import OrmSession


def _flag_reasons(session: Session, tx: Transaction, score: int) -> list[str]:
    settings = get_review_settings(session=session)
    reasons = []
    if score >= settings.flag_threshold:
        reasons.append(f"score {score} is at or above the flag threshold {settings.flag_threshold}")
    threshold = session.execute(select(AmountRule.threshold).where(AmountRule.currency == tx.currency)).scalar()
    if threshold is not None and tx.amount >= threshold:
        reasons.append(f"amount is at or above the {money.format_amount(threshold, tx.currency)} {tx.currency} rule")
    return reasons


def _rule_view(tx: Transaction) -> dict[str, Any]:
    return {"id": tx.id, "reference": tx.reference, "account_id": tx.account_id, "amount": tx.amount,
            "currency": tx.currency, "counterparty": tx.counterparty, "description": tx.description,
            "metadata": tx.metadata_, "created_at": tx.created_at}


def post_score(*, session: OrmSession, actor: Actor, reference: str, data: RiskScoreCreate) -> RiskScoreCreated:
    """Store the score; open (or raise the risk of) the transaction's review case when it, an amount
    rule or a detection rule that reads the score flags it."""
    # The row lock serializes scores for one transaction: concurrent flags see each other's case.
    tx = transactions.get_for_update(session=session, reference=reference)
    reasons = _flag_reasons(session, tx, data.score)
    score_flags = bool(reasons)
    rule_flag, hits = rules.on_score(session, _rule_view(tx), {
        "value": data.score, "model": data.model, "reasons": [reason.code for reason in data.reasons],
    })
    flagged = bool(reasons) or rule_flag is not None
    score = RiskScore(
        transaction_id=tx.id, score=data.score, model=data.model, model_version=data.model_version,
        reasons=[reason.model_dump(mode="json", exclude_none=True) for reason in data.reasons],
        is_flagged=flagged, created_by=actor.id,
    )
    session.add(score)
    session.flush()
    if rule_flag is not None:
        reasons.append(rule_flag.reason)
    audit.record(
        session, actor=actor, action="risk_score.posted", entity_type="transaction", entity_id=tx.reference,
        after={"score_id": score.id, "score": data.score, "model": data.model,
               "model_version": data.model_version, "flagged": flagged},
        reason="; ".join(reasons) or None,
    )
    case_id: int | None
    if flagged:
        risk = max(data.score if score_flags else 0, rule_flag.risk if rule_flag else 0)
        case_id = opening.open_for_transaction(
            session=session, actor=actor, tx=tx, risk=risk, reason="; ".join(reasons)[:500]
        )
    else:
        case_id = cases.undecided_case_id(session=session, transaction_id=tx.id)
    rules.store(session, hits, case_id if rule_flag is not None else None)
    return RiskScoreCreated(id=score.id, score=data.score, flagged=flagged, case_id=case_id)


def list_for_transaction(*, session: Session, transaction_id: int) -> list[RiskScoreOut]:
    """Every score of a transaction, newest first."""
    scores = session.scalars(
        select(RiskScore).where(RiskScore.transaction_id == transaction_id).order_by(RiskScore.id.desc())
    )
    return [
        RiskScoreOut(id=s.id, score=s.score, model=s.model, model_version=s.model_version, reasons=s.reasons,
                     flagged=s.is_flagged, created_at=s.created_at)
        for s in scores
    ]
