"""Every mapped model, imported so Base.metadata is complete (Alembic, schema checks)."""

from app.audit.models import AuditEvent
from app.cases.models import ReviewCase
from app.db import Base
from app.risk.models import AmountRule, RiskScore
from app.security.models import RevokedToken
from app.settings.models import Setting
from app.transactions.models import Transaction
from app.users.models import LoginFailure, User

__all__ = [
    "AmountRule", "AuditEvent", "Base", "LoginFailure", "ReviewCase", "RevokedToken", "RiskScore", "Setting",
    "Transaction", "User",
]
