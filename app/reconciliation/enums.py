"""The reconciliation vocabulary: what the bank says, what matching found, how a run stands."""

from enum import StrEnum

from app.transactions.enums import TransactionStatus


class BankStatus(StrEnum):
    """A bank event's status."""

    BOOKED = "booked"
    PENDING = "pending"
    RETURNED = "returned"
    REJECTED = "rejected"


# The ledger status each bank status should meet.
LEDGER_STATUS = {
    BankStatus.BOOKED: TransactionStatus.SETTLED, BankStatus.PENDING: TransactionStatus.PENDING,
    BankStatus.RETURNED: TransactionStatus.FAILED, BankStatus.REJECTED: TransactionStatus.FAILED,
}


class MismatchKind(StrEnum):
    """How a bank event disagrees with the ledger; each opens (or joins) a reconciliation case."""

    MISSING_IN_LEDGER = "missing_in_ledger"
    AMOUNT_MISMATCH = "amount_mismatch"
    CURRENCY_MISMATCH = "currency_mismatch"
    STATUS_MISMATCH = "status_mismatch"
    DUPLICATE_BANK_EVENT = "duplicate_bank_event"


# A bank event's outcome: matched, or a MismatchKind.
MATCHED = "matched"
OUTCOMES = (MATCHED, *MismatchKind)


class RunStatus(StrEnum):
    """A reconciliation run: processing until every row is matched (or the run failed)."""

    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
