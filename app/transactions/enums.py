"""The transaction vocabulary: settlement status and review status."""

from enum import StrEnum


class TransactionStatus(StrEnum):
    """Settlement: pending until settled or failed, once."""

    PENDING = "pending"
    SETTLED = "settled"
    FAILED = "failed"


class ReviewStatus(StrEnum):
    """What review says of a transaction: flagged while its case is open, then the decision."""

    CLEAR = "clear"
    FLAGGED = "flagged"
    APPROVED = "approved"
    REJECTED = "rejected"
