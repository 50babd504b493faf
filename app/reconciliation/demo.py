"""Demo reconciliation runs (python -m app run): app/demo.py calls seed_reconciliation after the spread.

Two bank statements go through the real service, as an admin would send them: the sample
CSV in samples/ (matched lines, an amount and a currency that differ, a returned payment,
a line booked twice, a reference the ledger does not know, a malformed line), whose
mismatches open reconciliation cases; and a clean statement from the API a day ago. Their
rows are then dated: the CSV eleven days ago, the API run yesterday.
"""

from sqlalchemy import select, text

from app.audit.service import Actor
from app.config import PROJECT_ROOT
from app.reconciliation import service
from app.reconciliation.enums import BankStatus
from app.reconciliation.schemas import BankEventIn
from app.transactions.enums import TransactionStatus
from app.transactions.models import Transaction
from app.uow.unit import OrmSession

SAMPLE = PROJECT_ROOT / "samples" / "bank_statement_sample.csv"
CSV_DAYS_AGO, API_DAYS_AGO = 11, 1
CLEAN_LINES = 6
_DATE_RUN = (
    "UPDATE reconciliation_runs SET created_at = :at, updated_at = :at + interval '40 seconds', "
    "completed_at = :at + interval '40 seconds' WHERE id = :run_id",
    "UPDATE bank_events SET created_at = :at + interval '20 seconds' WHERE run_id = :run_id",
    "UPDATE review_cases SET opened_at = :at + interval '30 seconds' WHERE id IN "
    "(SELECT case_id FROM bank_events WHERE run_id = :run_id AND case_id IS NOT NULL)",
)


def _date_run(session: OrmSession, run_id: int, days_ago: int) -> None:
    at = session.scalar(text("SELECT now() - make_interval(days => :days)"), {"days": days_ago})
    for statement in _DATE_RUN:
        session.execute(text(statement), {"at": at, "run_id": run_id})


def seed_reconciliation(session: OrmSession, actor: Actor) -> None:
    run_id = service.start_upload(session=session, actor=actor, filename=SAMPLE.name, content=SAMPLE.read_bytes())
    while service.process_next_chunk(session=session, actor=actor, run_id=run_id):
        pass
    _date_run(session, run_id, CSV_DAYS_AGO)
    # Yesterday's statement: payments settled in the days before, each as the ledger has it.
    settled = session.scalars(
        select(Transaction).where(
            Transaction.status == TransactionStatus.SETTLED,
            Transaction.settled_at < text(f"now() - interval '{API_DAYS_AGO} days 1 hour'"),
        ).order_by(Transaction.settled_at.desc()).limit(CLEAN_LINES)
        .execution_options(populate_existing=True)  # the spread moved settled_at in SQL
    ).all()
    events = [BankEventIn(
        bank_reference=f"BNK-API-{n:06d}", reference=tx.reference, currency=tx.currency, amount=tx.amount,
        status=BankStatus.BOOKED, booked_at=tx.settled_at,
    ) for n, tx in enumerate(settled, start=1)]
    result = service.reconcile_events(session=session, actor=actor, events=events)
    _date_run(session, result.run_id, API_DAYS_AGO)
