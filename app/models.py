"""Every mapped model, imported so Base.metadata is complete (Alembic, schema checks)."""

from app.audit.models import AuditEvent
from app.db import Base
from app.transactions.models import Transaction
from app.users.models import LoginFailure, User

__all__ = ["AuditEvent", "Base", "LoginFailure", "Transaction", "User"]
