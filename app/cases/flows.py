"""Orchestration across domains for the case page (cases, risk scores, transactions)."""

from sqlalchemy import select

from app.cases import context, queries
from app.cases import timeline as sentences
from app.cases.models import CaseTransaction
from app.cases.schemas import CaseDetail
from app.risk import service as risk
from app.rules import case_hits
from app.rules.schemas import Explanation
from app.transactions import service as transactions
from app.transactions.models import Transaction
from app.transactions.schemas import TransactionOut
from app.uow.unit import OrmSession


def _grouped(session: OrmSession, case_id: int) -> list[TransactionOut]:
    references = session.scalars(
        select(Transaction.reference).join(CaseTransaction, CaseTransaction.transaction_id == Transaction.id)
        .where(CaseTransaction.case_id == case_id).order_by(Transaction.id)
    ).all()
    return [transactions.to_out(transactions.read_by_reference(session=session, reference=r)) for r in references]


def case_detail(*, session: OrmSession, case_id: int) -> CaseDetail:
    """The case with its transaction, every score, the account's recent history and the timeline."""
    case = queries.get(session=session, case_id=case_id)
    # Read first: whatever arrives while the page is assembled makes the token stale, never
    # the other way round (a page showing less than its token claims).
    seen = context.token(session=session, case_id=case_id)
    tx = None
    scores, history = [], []
    grouped = _grouped(session, case_id)
    if case.transaction_reference is not None:
        row = transactions.read_by_reference(session=session, reference=case.transaction_reference)
        tx = transactions.to_out(row)
        scores = risk.list_for_transaction(session=session, transaction_id=row.id)
        history_rows, _ = transactions.list_page(session=session, limit=20, account_id=row.account_id)
        history = [transactions.to_out(r) for r in history_rows]
    explanations = case_hits.for_transaction(session=session, transaction_id=tx.id) if tx is not None else []
    for member in grouped:
        scores += risk.list_for_transaction(session=session, transaction_id=member.id)
        explanations += case_hits.for_transaction(session=session, transaction_id=member.id)
    scores.sort(key=lambda s: s.id, reverse=True)
    events = queries.timeline(session=session, case_id=case_id, reference=case.transaction_reference)
    reasons = sentences.score_reasons(scores)
    timeline = []
    for e in events:
        event = {"id": e.id, "occurred_at": e.occurred_at, "actor": e.actor, "actor_role": e.actor_role,
                 "actor_type": e.actor_type, "action": e.action, "entity_type": e.entity_type,
                 "entity_id": e.entity_id, "before": e.before, "after": e.after, "reason": e.reason}
        timeline.append({**event, "summary": sentences.summary(event, reasons)})
    return CaseDetail(case=case, transaction=tx, scores=scores, account_history=history, timeline=timeline,
                      grouped_transactions=grouped, seen=seen,
                      explanations=[Explanation.model_validate(item) for item in explanations])
