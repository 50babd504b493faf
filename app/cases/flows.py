"""Orchestration across domains for the case page (cases, risk scores, transactions)."""


from app.cases import queries
from app.cases.schemas import CaseDetail
from app.risk import service as risk
from app.transactions import service as transactions
from app.uow.unit import OrmSession


def case_detail(*, session: OrmSession, case_id: int) -> CaseDetail:
    """The case with its transaction, every score, the account's recent history and the timeline."""
    case = queries.get(session=session, case_id=case_id)
    tx = None
    scores, history = [], []
    if case.transaction_reference is not None:
        row = transactions.read_by_reference(session=session, reference=case.transaction_reference)
        tx = transactions.to_out(row)
        scores = risk.list_for_transaction(session=session, transaction_id=row.id)
        history_rows, _ = transactions.list_page(session=session, limit=20, account_id=row.account_id)
        history = [transactions.to_out(r) for r in history_rows]
    events = queries.timeline(session=session, case_id=case_id, reference=case.transaction_reference)
    return CaseDetail(
        case=case, transaction=tx, scores=scores, account_history=history,
        timeline=[
            {"id": e.id, "occurred_at": e.occurred_at, "actor": e.actor, "actor_role": e.actor_role,
             "actor_type": e.actor_type,
             "action": e.action, "entity_type": e.entity_type, "entity_id": e.entity_id,
             "before": e.before, "after": e.after, "reason": e.reason}
            for e in events
        ],
    )
