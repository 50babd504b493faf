"""The token check as one SQL call, so it can travel with a request's first statement.

`riskdesk_assert_principal` returns the username of an active user whose role, token
version and (when the token names one) username match the token, and raises SQLSTATE
RD401 otherwise (RD402: a browser session
that was logged out). app/security/deps.py sends it in the same message as the BEGIN and
the request's first statement (app/db.py), instead of a round trip of its own.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION riskdesk_assert_principal(p_user_id bigint, p_role text, p_token_version integer,
                                                  p_jti text, p_username text) RETURNS text
        LANGUAGE plpgsql STABLE AS $$
        DECLARE
          found_username text;
        BEGIN
          SELECT username INTO found_username FROM users
          WHERE id = p_user_id AND is_active AND role = p_role AND token_version = p_token_version
            AND (p_username IS NULL OR username = p_username);
          IF found_username IS NULL THEN
            RAISE EXCEPTION 'token is no longer valid' USING ERRCODE = 'RD401';
          END IF;
          IF p_jti IS NOT NULL AND EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = p_jti) THEN
            RAISE EXCEPTION 'session has ended' USING ERRCODE = 'RD402';
          END IF;
          RETURN found_username;
        END
        $$
        """
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION riskdesk_assert_principal(bigint, text, integer, text, text)")
