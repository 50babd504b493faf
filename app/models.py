"""Every mapped model, imported so Base.metadata is complete (Alembic, schema checks)."""

from app.audit.models import AuditCheckpoint, AuditEvent, AuditVerification
from app.cases.models import CaseComment, CaseTransaction, ReviewCase, ReviewCaseSearch
from app.db import Base
from app.idempotency.models import IdempotencyKey
from app.reconciliation.models import BankEvent, ReconciliationRowError, ReconciliationRun, ReconciliationUpload
from app.risk.models import RiskScore
from app.rules.models import Rule, RuleGeneration, RuleHit, RuleList, RuleListItem, RuleSnooze, RuleVersion
from app.security.models import RevokedToken
from app.settings.models import AmountRule, Setting
from app.transactions.models import Transaction
from app.users.models import LoginFailure, User
from app.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent, WebhookWorker

__all__ = [
    "IdempotencyKey",
    "AmountRule", "AuditCheckpoint", "CaseComment", "CaseTransaction",
    "AuditEvent", "AuditVerification", "Base", "LoginFailure", "ReviewCase", "ReviewCaseSearch",
    "RevokedToken", "RiskScore", "Setting",
    "Rule", "RuleGeneration", "RuleHit", "RuleList", "RuleListItem", "RuleSnooze", "RuleVersion",
    "Transaction", "User",
    "BankEvent", "ReconciliationRowError", "ReconciliationRun", "ReconciliationUpload",
    "WebhookAttempt", "WebhookDelivery", "WebhookEndpoint", "WebhookEvent", "WebhookWorker",
]
