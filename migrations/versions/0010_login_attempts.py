"""Login attempts: a password check is reserved before it runs; known clients; throttle windows.

- `login_failures.state` ('pending' | 'failed'): the throttle reserves a row before the
  Argon2 check (app/auth/throttle.py), so concurrent attempts can never check more
  passwords than the limit. Existing rows were failures, hence the default.
- `login_failures.known_client`: the allowance the attempt counts against, NULL for a
  stranger's (the per-user and per-address caps).
- `login_known_clients`: devices (signed browser cookie) and client addresses that signed in
  as a user before; each has its own allowance, so strangers cannot lock that user out.
- `login_throttle_windows`: refused logins counted per allowance and audit window; the first
  refusal of a window writes the one audit event.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("login_failures", sa.Column("state", sa.String(16), nullable=False, server_default="failed"))
    op.add_column("login_failures", sa.Column("known_client", sa.String(128), nullable=True))
    op.create_check_constraint("state", "login_failures", "state IN ('pending', 'failed')")
    op.create_table(
        "login_known_clients",
        sa.Column("username", sa.String(64), primary_key=True),
        sa.Column("client_key", sa.String(128), primary_key=True),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "login_throttle_windows",
        sa.Column("scope", sa.String(16), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("window_start", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("refused", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("last_refused_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("scope IN ('user', 'address', 'known_client')", name="scope"),
    )


def downgrade() -> None:
    op.drop_table("login_throttle_windows")
    op.drop_table("login_known_clients")
    op.drop_column("login_failures", "known_client")
    op.drop_column("login_failures", "state")  # its check constraint goes with it
