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
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert

from app import money
from app.audit.service import Actor
from app.cases import opening
from app.reconciliation.enums import LEDGER_STATUS, MATCHED, MismatchKind
from app.reconciliation.models import BankEvent
from app.reconciliation.schemas import BankEventIn, Mismatch
from app.transactions.models import Transaction
from app.uow.unit import OrmSession

# Queue order for reconciliation cases (risk 0–100): money missing or wrong first.
RISK = {MismatchKind.MISSING_IN_LEDGER: 80, MismatchKind.AMOUNT_MISMATCH: 70, MismatchKind.CURRENCY_MISMATCH: 70,
        MismatchKind.DUPLICATE_BANK_EVENT: 60, MismatchKind.STATUS_MISMATCH: 50}
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
        return MismatchKind.MISSING_IN_LEDGER
    if event.currency != tx.currency:
        return MismatchKind.CURRENCY_MISMATCH
    if event.amount != tx.amount:
        return MismatchKind.AMOUNT_MISMATCH
    if LEDGER_STATUS[event.status] != tx.status:
        return MismatchKind.STATUS_MISMATCH
    return MATCHED


_DIFFERS: dict[str, str] = {MismatchKind.AMOUNT_MISMATCH: "Amounts differ",
                            MismatchKind.CURRENCY_MISMATCH: "Currencies differ",
                            MismatchKind.STATUS_MISMATCH: "Statuses differ"}


def _explain(kind: str, event: BankEventIn, tx) -> str:
    """The case's reason in words an analyst reads: what the bank says, what the ledger says."""
    bank = money.display(event.amount, event.currency)
    ref = f"bank reference {event.bank_reference}"
    if kind == MismatchKind.DUPLICATE_BANK_EVENT:
        text = f"The bank sent the same payment twice: {bank} {event.status}, {ref}."
    elif tx is None:
        text = (f"The bank has {bank} {event.status} for {event.reference}, but the ledger has no such payment"
                f" ({ref}).")
    else:
        ledger = money.display(tx.amount, tx.currency)
        what = _DIFFERS.get(kind, "Bank and ledger differ")
        text = f"{what}: the bank has {bank} {event.status}, the ledger {ledger} {tx.status} ({ref})."
    return text[:500]


def reconcile_chunk(*, session: OrmSession, actor: Actor, run_id: int, items: list[Numbered]) -> ChunkResult:
    """Match a chunk of valid bank events, store them and open cases for mismatches (flush only)."""
    result = ChunkResult()
    digests = [digest(item.event) for item in items]
    bank_refs = sorted({item.event.bank_reference for item in items})
    known: dict[str, dict[str, bool]] = {}  # bank_reference → {digest: is_primary}
    stored_rows = select(B.bank_reference, B.digest, B.is_primary).where(B.bank_reference.in_(bank_refs))
    for stored in session.execute(stored_rows):
        known.setdefault(stored.bank_reference, {})[stored.digest] = stored.is_primary
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

    rows: list[dict[str, Any]] = []  # bank_events rows to insert
    kept = []
    for item, item_digest in zip(items, digests):
        event = item.event
        versions = known.setdefault(event.bank_reference, {})
        if item_digest in versions:
            result.replayed += 1
            continue
        tx = ledger.get(event.reference)
        is_primary = not versions
        kind: str
        if not is_primary or (tx is not None and tx.id in matched_txs):
            kind = MismatchKind.DUPLICATE_BANK_EVENT
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
    for row, _pair in retry:
        row.update(is_primary=False, outcome=MismatchKind.DUPLICATE_BANK_EVENT)
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
        if row["outcome"] == MATCHED:
            result.matched += 1
        else:
            mismatched.append((event_id, row["outcome"], item, tx))
    opened = opening.open_for_mismatches(session=session, actor=actor, mismatches=[
        opening.MismatchCase(
            transaction_id=tx.id if tx else None, risk=RISK[kind], amount=tx.amount if tx else item.event.amount,
            currency=tx.currency if tx else item.event.currency, reason=_explain(kind, item.event, tx),
            bank_reference=item.event.bank_reference, reference=item.event.reference,
        )
        for _event_id, kind, item, tx in mismatched
    ])
    case_ids = {event_id: case_id for (event_id, *_), case_id in zip(mismatched, opened, strict=True)}
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
