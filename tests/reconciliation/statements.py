"""Bank statements for tests: a ledger bulk-loaded with SQL and a CSV that matches it (mostly)."""

from sqlalchemy import text

from app.reconciliation.csv_format import format_rows

BOOKED_AT = "2026-11-24T10:15:00Z"


def load_ledger(db, rows: int, prefix: str = "stmt") -> None:
    """`rows` settled 10.00 USD transactions, references prefix-0 … prefix-(rows-1)."""
    db.execute(text(
        "INSERT INTO transactions (reference, account_id, amount, currency, status, settled_at)"
        " SELECT :prefix || '-' || i, 'acct_stmt', 10.00, 'USD', 'settled', now() FROM generate_series(0, :n - 1) i"
    ), {"prefix": prefix, "n": rows})
    db.commit()


def statement_rows(rows: int, prefix: str = "stmt", *, amount_mismatch_every: int = 0) -> list[dict[str, str]]:
    """One booked bank event per ledger transaction; every n-th with a wrong amount."""
    return [
        {"bank_reference": f"BNK-{prefix}-{i}", "reference": f"{prefix}-{i}",
         "amount": "10.01" if amount_mismatch_every and i % amount_mismatch_every == 0 else "10.00",
         "currency": "USD", "status": "booked", "booked_at": BOOKED_AT}
        for i in range(rows)
    ]


def statement(rows: int, prefix: str = "stmt", **options) -> bytes:
    return format_rows(statement_rows(rows, prefix, **options))
