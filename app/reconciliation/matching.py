"""Matching bank events to the ledger, one chunk per database transaction.

For each event: replay (identical payload under a known bank_reference: nothing stored),
duplicate_bank_event (a different payload under a known bank_reference, or a second bank
event for a transaction another bank event already matched), missing_in_ledger (no
transaction with that reference), then currency, amount and status in that order (a
currency mismatch makes the amount comparison meaningless). Bank status → ledger status:
booked → settled, pending → pending, returned and rejected → failed.

Concurrency: the chunk's transactions are row-locked (id order, as settlement and scoring
lock them, before any case row), so two runs cannot both match one transaction; the unique
indexes on bank_events decide any race on a bank_reference.
"""

import hashlib
from dataclasses import dataclass, field

from sqlalchemy import insert, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from app import money
from app.audit import service as audit
from app.audit.service import Actor
from app.cases.models import UNDECIDED_STATES, ReviewCase
from app.reconciliation.models import BankEvent
from app.reconciliation.schemas import BankEventIn, Mismatch
from app.transactions.models import Transaction
from app.webhooks import outbox

LEDGER_STATUS = {"booked": "settled", "pending": "pending", "returned": "failed", "rejected": "failed"}
# Queue order for reconciliation cases (risk 0–100): money missing or wrong first.
RISK = {"missing_in_ledger": 80, "amount_mismatch": 70, "currency_mismatch": 70, "duplicate_bank_event": 60,
        "status_mismatch": 50}
C = ReviewCase.__table__.c
# Literal, not an expanding IN: the partial index predicate of uq_review_cases_one_undecided, in an executemany.
UNDECIDED_SQL = text("state IN (" + ", ".join(f"'{s}'" for s in UNDECIDED_STATES) + ")")
T = Transaction.__table__.c
B = BankEvent.__table__.c


@dataclass
class Numbered:
    line: int | None
    event: BankEventIn


@dataclass
class ChunkResult:
    matched: int = 0
    replayed: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)


def digest(event: BankEventIn) -> str:
    """The payload's identity: what makes a resend identical."""
    canonical = "\x1f".join([
        event.bank_reference, event.reference, money.format_amount(event.amount, event.currency), event.currency,
        event.status, event.booked_at.isoformat(),
    ])
    return hashlib.sha256(canonical.encode()).hexdigest()


def _compare(event: BankEventIn, tx) -> str:
    if tx is None:
        return "missing_in_ledger"
    if event.currency != tx.currency:
        return "currency_mismatch"
    if event.amount != tx.amount:
        return "amount_mismatch"
    if LEDGER_STATUS[event.status] != tx.status:
        return "status_mismatch"
    return "matched"


def _explain(kind: str, event: BankEventIn, tx) -> str:
    bank = f"bank {money.format_amount(event.amount, event.currency)} {event.currency} {event.status}"
    ledger = f"ledger {money.format_amount(tx.amount, tx.currency)} {tx.currency} {tx.status}" if tx else "no ledger entry"
    return f"{kind}: {bank} vs {ledger} (bank ref {event.bank_reference})"[:500]


def reconcile_chunk(*, session: Session, actor: Actor, run_id: int, items: list[Numbered]) -> ChunkResult:
    """Match a chunk of valid bank events, store them and open cases for mismatches (flush only)."""
    result = ChunkResult()
    digests = [digest(item.event) for item in items]
    bank_refs = sorted({item.event.bank_reference for item in items})
    known: dict[str, dict[str, bool]] = {}  # bank_reference → {digest: is_primary}
    for row in session.execute(select(B.bank_reference, B.digest, B.is_primary).where(B.bank_reference.in_(bank_refs))):
        known.setdefault(row.bank_reference, {})[row.digest] = row.is_primary
    refs = sorted({item.event.reference for item in items})
    ledger = {
        tx.reference: tx for tx in session.execute(
            select(T.id, T.reference, T.amount, T.currency, T.status).where(T.reference.in_(refs))
            .order_by(T.id).with_for_update()
        )
    }
    matched_txs = set(session.execute(
        select(B.transaction_id).where(B.is_primary, B.transaction_id.in_([tx.id for tx in ledger.values()]))
    ).scalars()) if ledger else set()

    rows, kept = [], []
    for item, item_digest in zip(items, digests):
        event = item.event
        versions = known.setdefault(event.bank_reference, {})
        if item_digest in versions:
            result.replayed += 1
            continue
        tx = ledger.get(event.reference)
        is_primary = not versions
        if not is_primary or (tx is not None and tx.id in matched_txs):
            kind = "duplicate_bank_event"
        else:
            kind = _compare(event, tx)
        versions[item_digest] = is_primary
        if is_primary and tx is not None:
            matched_txs.add(tx.id)
        rows.append({
            "run_id": run_id, "line_no": item.line, "bank_reference": event.bank_reference,
            "reference": event.reference, "amount": event.amount, "currency": event.currency,
            "status": event.status, "booked_at": event.booked_at, "digest": item_digest,
            "is_primary": is_primary, "outcome": kind, "transaction_id": tx.id if tx else None,
        })
        kept.append((item, tx))
    if not rows:
        return result
    inserted = {
        (row.bank_reference, row.digest): row.id
        for row in session.execute(
            pg_insert(BankEvent.__table__).on_conflict_do_nothing().returning(B.id, B.bank_reference, B.digest), rows
        )
    }
    # A row not inserted lost a race with a concurrent run for its bank_reference: stored again
    # as a non-primary duplicate, unless the winner had this very payload (then it is a replay).
    retry = [(row, pair) for row, pair in zip(rows, kept) if (row["bank_reference"], row["digest"]) not in inserted]
    for row, pair in retry:
        row.update(is_primary=False, outcome="duplicate_bank_event")
        new_id = session.execute(
            pg_insert(BankEvent.__table__).values(row).on_conflict_do_nothing().returning(B.id)
        ).scalar()
        if new_id is None:
            result.replayed += 1
        else:
            inserted[(row["bank_reference"], row["digest"])] = new_id

    mismatched = []
    for row, (item, tx) in zip(rows, kept):
        event_id = inserted.get((row["bank_reference"], row["digest"]))
        if event_id is None:
            continue
        if row["outcome"] == "matched":
            result.matched += 1
        else:
            mismatched.append((event_id, row["outcome"], item, tx))
    case_ids = _open_cases(session, actor, mismatched)
    if case_ids:
        session.execute(
            text("UPDATE bank_events SET case_id = v.case_id FROM unnest(:ids, :cases) AS v(id, case_id)"
                 " WHERE bank_events.id = v.id"),
            {"ids": list(case_ids), "cases": list(case_ids.values())},
        )
    for event_id, kind, item, _tx in mismatched:
        result.mismatches.append(Mismatch(
            bank_reference=item.event.bank_reference, reference=item.event.reference, kind=kind,
            case_id=case_ids[event_id], line=item.line,
        ))
    return result


def _case_values(kind: str, event: BankEventIn, tx) -> dict:
    return {
        "kind": "reconciliation", "transaction_id": tx.id if tx else None, "risk": RISK[kind],
        "amount": tx.amount if tx else event.amount, "currency": tx.currency if tx else event.currency,
        "reason": _explain(kind, event, tx),
    }


def _open_cases(session: Session, actor: Actor, mismatched: list) -> dict[int, int]:
    """Case id per bank event id: one undecided reconciliation case per transaction (reused), one per
    missing_in_ledger event."""
    case_of: dict[int, int] = {}
    opened: list[tuple[int, dict, BankEventIn]] = []
    with_tx = {}
    for event_id, kind, item, tx in mismatched:
        if tx is not None:
            with_tx.setdefault(tx.id, (kind, item.event, tx))
    if with_tx:
        statement = (
            pg_insert(ReviewCase.__table__).on_conflict_do_nothing(
                index_elements=["transaction_id", "kind"], index_where=UNDECIDED_SQL
            ).returning(C.id, C.transaction_id)
        )
        values = {tx_id: _case_values(*spec) for tx_id, spec in with_tx.items()}
        new = {row.transaction_id: row.id for row in session.execute(statement, list(values.values()))}
        for tx_id, case_id in new.items():
            opened.append((case_id, values[tx_id], with_tx[tx_id][1]))
        missing = [tx_id for tx_id in with_tx if tx_id not in new]
        existing = dict(session.execute(
            select(C.transaction_id, C.id).where(
                C.transaction_id.in_(missing), C.kind == "reconciliation", C.state.in_(UNDECIDED_STATES))
        ).tuples().all()) if missing else {}
        by_tx = {**existing, **new}
        for event_id, _kind, _item, tx in mismatched:
            if tx is not None:
                case_of[event_id] = by_tx[tx.id]
    loose = [(event_id, kind, item) for event_id, kind, item, tx in mismatched if tx is None]
    if loose:
        values = [_case_values(kind, item.event, None) for _, kind, item in loose]
        ids = session.execute(
            insert(ReviewCase.__table__).returning(C.id, sort_by_parameter_order=True), values
        ).scalars().all()
        for (event_id, _kind, item), case_id, value in zip(loose, ids, values):
            case_of[event_id] = case_id
            opened.append((case_id, value, item.event))
    _announce(session, actor, opened)
    return case_of


def _announce(session: Session, actor: Actor, opened: list[tuple[int, dict, BankEventIn]]) -> None:
    for case_id, values, event in opened:
        audit.record(
            session, actor=actor, action="case.opened", entity_type="case", entity_id=case_id,
            after={"state": "open", "kind": "reconciliation", "risk": values["risk"],
                   "bank_reference": event.bank_reference, "reference": event.reference},
            reason=values["reason"],
        )
    outbox.enqueue_many(session, [
        ("case.opened", {"case_id": case_id, "kind": "reconciliation", "reason": values["reason"],
                         "bank_reference": event.bank_reference, "reference": event.reference})
        for case_id, values, event in opened
    ])
