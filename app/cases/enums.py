"""The review case vocabulary: states, kinds, decisions and reason codes."""

from enum import StrEnum


class CaseState(StrEnum):
    """Where a case is: open → in_review (claimed) → approved | rejected, or escalated (an admin decides)."""

    OPEN = "open"
    IN_REVIEW = "in_review"
    APPROVED = "approved"
    REJECTED = "rejected"
    ESCALATED = "escalated"


UNDECIDED_STATES = (CaseState.OPEN, CaseState.IN_REVIEW, CaseState.ESCALATED)
DECIDED_STATES = (CaseState.APPROVED, CaseState.REJECTED)


class CaseKind(StrEnum):
    """Why a case exists: a risk score or rule flagged a transaction, or reconciliation found a mismatch."""

    RISK = "risk"
    RECONCILIATION = "reconciliation"


class Decision(StrEnum):
    """What a reviewer decides."""

    APPROVE = "approve"
    REJECT = "reject"
    ESCALATE = "escalate"


# The state each decision leaves the case in.
STATE_AFTER = {Decision.APPROVE: CaseState.APPROVED, Decision.REJECT: CaseState.REJECTED,
               Decision.ESCALATE: CaseState.ESCALATED}


class ReasonCode(StrEnum):
    """Why a reviewer decided as they did."""

    FALSE_POSITIVE = "false_positive"
    VERIFIED_CUSTOMER = "verified_customer"
    SUSPECTED_FRAUD = "suspected_fraud"
    ACCOUNT_TAKEOVER = "account_takeover"
    SANCTIONS_CONCERN = "sanctions_concern"
    POLICY_VIOLATION = "policy_violation"
    NEEDS_MORE_INFO = "needs_more_info"
    OTHER = "other"


class ReconciliationOutcome(StrEnum):
    """How a reconciliation case was resolved: the reason code of its `approve` (= resolve) decision."""

    MATCHED_MANUALLY = "matched_manually"
    LEDGER_CORRECTED = "ledger_corrected"
    BANK_ERROR = "bank_error"
    WRITTEN_OFF = "written_off"


# Escalating a reconciliation case may also say it needs more information, or something else.
RECONCILIATION_ESCALATION_CODES = (*ReconciliationOutcome, ReasonCode.NEEDS_MORE_INFO, ReasonCode.OTHER)
ALL_REASON_CODES = (*ReasonCode, *ReconciliationOutcome)
