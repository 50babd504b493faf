"""The webhook vocabulary: which events are sent, and how a delivery stands."""

from enum import StrEnum


class EventType(StrEnum):
    """An outbound event; endpoints subscribe to some of them."""

    TRANSACTION_SETTLED = "transaction.settled"
    TRANSACTION_FAILED = "transaction.failed"
    CASE_OPENED = "case.opened"
    CASE_DECIDED = "case.decided"
    AUDIT_CHECKPOINT = "audit.checkpoint"  # a signed checkpoint of the audit chain (app/audit/flows.py)
    RULE_PUBLISHED = "rule.published"  # a rule version now runs, or a rollback (app/rules/service.py)


class DeliveryStatus(StrEnum):
    """One event to one endpoint: pending (retried with backoff) until delivered or failed for good."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
