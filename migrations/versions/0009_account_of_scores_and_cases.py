"""The account of every risk score and review case, copied from its transaction by the database.

GET /accounts/{id}/context reads an account's open cases, latest decisions and score
statistics. Found through the account's transaction ids, each part probed an index once
per transaction (134 probes for the scores of a 134-transaction account), so the
context's cost grew with the account. With `account_id` on the scores and cases, each
part is one range scan of an index by account:

- `ix_risk_scores_account_id_id` (account_id, id) INCLUDE (score, is_flagged): the score
  statistics, index-only;
- `ix_review_cases_account_undecided` (account_id, risk DESC, id) over undecided cases: the
  account's top open cases, in the queue's order;
- `ix_review_cases_account_decided` (account_id, decided_at DESC, id DESC) over decided
  cases: the latest decisions.

A transaction's account never changes, so the copy cannot go stale. A BEFORE INSERT
trigger fills it from the transaction (and on a change of transaction_id), so every
writer — the API, reconciliation, bulk loads in bench/ and tests — gets it without
knowing; a reconciliation case with no transaction (missing_in_ledger) has none.

The backfill rewrites both tables once, under their locks: run it off-peak on a large
database.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TABLES = ("risk_scores", "review_cases")
UNDECIDED = "state IN ('open', 'in_review', 'escalated')"

COPY_FUNCTION = """
CREATE FUNCTION riskdesk_copy_account_id() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.transaction_id IS NULL THEN
    NEW.account_id := NULL;
  ELSE
    SELECT account_id INTO NEW.account_id FROM transactions WHERE id = NEW.transaction_id;
  END IF;
  RETURN NEW;
END
$$;
"""


def upgrade() -> None:
    op.execute(COPY_FUNCTION)
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ADD COLUMN account_id varchar(64)")
        op.execute(
            f"UPDATE {table} AS x SET account_id = t.account_id FROM transactions AS t WHERE t.id = x.transaction_id"
        )
        op.execute(
            f"CREATE TRIGGER {table}_account_id BEFORE INSERT OR UPDATE OF transaction_id, account_id ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION riskdesk_copy_account_id()"
        )
    op.execute("ALTER TABLE risk_scores ALTER COLUMN account_id SET NOT NULL")
    op.execute("CREATE INDEX ix_risk_scores_account_id_id ON risk_scores (account_id, id) INCLUDE (score, is_flagged)")
    op.execute(f"CREATE INDEX ix_review_cases_account_undecided ON review_cases (account_id, risk DESC, id) "
               f"WHERE {UNDECIDED}")
    op.execute("CREATE INDEX ix_review_cases_account_decided ON review_cases (account_id, decided_at DESC, id DESC) "
               "WHERE decided_at IS NOT NULL")


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP TRIGGER {table}_account_id ON {table}")
        op.execute(f"ALTER TABLE {table} DROP COLUMN account_id")  # drops its indexes too
    op.execute("DROP FUNCTION riskdesk_copy_account_id()")
