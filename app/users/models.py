from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Index,
    Integer,
    String,
    Text,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.users.enums import Role

ROLES = tuple(r.value for r in Role)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    password_hash: Mapped[str] = mapped_column(Text, nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="true")
    # Bumped on disable, role change and password reset: every older token stops working.
    token_version: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    __table_args__ = (CheckConstraint(f"role IN {ROLES!r}".replace('"', "'"), name="role"),)


class LoginFailure(Base):
    """A password check in the throttling window, shared by every app instance.

    The row is reserved (`pending`) before the password is verified and becomes `failed`
    with the outcome's audit event; a successful login deletes it. Both states count
    against the allowance named by `known_client` (NULL: a stranger's). See app/auth/throttle.py.
    """

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), nullable=False)
    client_addr: Mapped[str] = mapped_column(String(64), nullable=False)
    failed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    state: Mapped[str] = mapped_column(String(16), nullable=False, server_default="failed")
    known_client: Mapped[str | None] = mapped_column(String(128))

    __table_args__ = (
        CheckConstraint("state IN ('pending', 'failed')", name="state"),
        Index("ix_login_failures_username_failed_at", "username", "failed_at"),
        Index("ix_login_failures_client_addr_failed_at", "client_addr", "failed_at"),
    )


class LoginKnownClient(Base):
    """A device or client address that signed in as a user: it gets its own login allowance."""

    __tablename__ = "login_known_clients"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    # "device:<id>" or "address:<client address>" (app/auth/enums.py KnownClientKind).
    client_key: Mapped[str] = mapped_column(String(128), primary_key=True)
    last_login_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


class LoginThrottleWindow(Base):
    """Refused logins per allowance and audit window: one audit event per row, however many refusals."""

    __tablename__ = "login_throttle_windows"

    scope: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    refused: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    last_refused_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )

    __table_args__ = (CheckConstraint("scope IN ('user', 'address', 'known_client')", name="scope"),)
