"""GET /api/cases?q=: finding cases by transaction reference, account or counterparty."""

import pytest
from sqlalchemy import text

from tests.cases.conftest import reconciliation_case
from tests.conftest import tx_payload
from tests.transactions.conftest import assert_rejected


@pytest.fixture
def searchable(desk, client, agent_headers) -> dict[str, int]:
    """Three flagged transactions with distinct references, accounts and counterparties."""
    ids = {}
    for reference, account, counterparty, score in (
        ("INV-2026-0042", "acct_nordwind", "Sakura Electronics", 90),
        ("inv-2026-0043", "acct_lumen", "Café Ølberg", 80),
        ("PO_77%off", "acct_nordwind_2", None, 70),
    ):
        payload = tx_payload(reference, account_id=account)
        if counterparty:
            payload["counterparty"] = counterparty
        assert client.post("/transactions", json=payload, headers=agent_headers).status_code == 200
        ids[reference] = desk.score(reference, score)["case_id"]
    return ids


def found(desk, who, q: str, **params) -> list[int]:
    return desk.queue_ids(who, q=q, **params)


def test_search_finds_a_case_by_part_of_its_reference_in_any_case(desk, alice, searchable):
    assert found(desk, alice, "2026-004") == [searchable["INV-2026-0042"], searchable["inv-2026-0043"]]
    assert found(desk, alice, "inv-2026-0042") == [searchable["INV-2026-0042"]]
    assert found(desk, alice, "0043") == [searchable["inv-2026-0043"]]


def test_search_finds_cases_by_account_and_by_counterparty(desk, alice, searchable):
    assert found(desk, alice, "NORDWIND") == [searchable["INV-2026-0042"], searchable["PO_77%off"]]
    assert found(desk, alice, "sakura elec") == [searchable["INV-2026-0042"]]
    assert found(desk, alice, "ØLB") == [searchable["inv-2026-0043"]]


def test_short_search_text_matches_too(desk, alice, searchable):
    assert found(desk, alice, "po") == [searchable["PO_77%off"]]
    assert found(desk, alice, "é") == [searchable["inv-2026-0043"]]


def test_like_wildcards_in_the_search_are_plain_characters(desk, alice, searchable):
    assert found(desk, alice, "77%off") == [searchable["PO_77%off"]]
    assert found(desk, alice, "%") == [searchable["PO_77%off"]]
    assert found(desk, alice, "o_7") == [searchable["PO_77%off"]]
    assert found(desk, alice, "inv_2026") == []


def test_search_needs_the_whole_text_not_just_its_trigrams(desk, alice, searchable):
    # Every trigram of "acctronics" is in the text of INV-2026-0042 (acct_nordwind, Sakura
    # Electronics), but the text itself is not; nor "ik", whose letters are there apart.
    assert found(desk, alice, "acctronics") == []
    assert found(desk, alice, "ik") == []
    # Nor does a search join two values: a line break is a space.
    assert found(desk, alice, "nordwind\nsakura") == []


def test_search_combines_with_the_other_filters_and_pages(desk, alice, searchable):
    assert found(desk, alice, "2026", min_score=85) == [searchable["INV-2026-0042"]]
    first = desk.queue(alice, q="nordwind", limit=1).json()
    assert [item["id"] for item in first["items"]] == [searchable["INV-2026-0042"]]
    second = desk.queue(alice, q="nordwind", limit=1, cursor=first["next_cursor"]).json()
    assert [item["id"] for item in second["items"]] == [searchable["PO_77%off"]]
    assert second["next_cursor"] is None


def test_search_finds_decided_cases_in_their_state(desk, alice, bob, searchable):
    case_id = searchable["inv-2026-0043"]
    assert desk.decide(case_id, bob, "approve").status_code == 200

    assert found(desk, alice, "0043") == []
    assert found(desk, alice, "0043", state="approved") == [case_id]


def test_blank_search_is_no_search(desk, alice, searchable):
    assert len(found(desk, alice, "   ")) == 3


def test_a_case_without_a_transaction_is_not_found_by_text(desk, alice, db, searchable):
    reconciliation_case(db)
    assert found(desk, alice, "acct") == [searchable["INV-2026-0042"], searchable["inv-2026-0043"],
                                          searchable["PO_77%off"]]


def test_every_case_opened_from_a_transaction_is_searchable_however_it_was_written(desk, alice, db):
    # Written the way bulk loads and other writers do, with no application code involved.
    desk.transaction("raw-1", account_id="acct_raw")
    case_id = db.execute(text(
        "INSERT INTO review_cases (kind, risk, reason, transaction_id)"
        " SELECT 'risk', 90, 'loaded', id FROM transactions WHERE reference = 'raw-1' RETURNING id")).scalar_one()
    db.commit()

    assert found(desk, alice, "acct_raw") == [case_id]


@pytest.mark.parametrize("q", ["x" * 129, "nul\x00byte"])
def test_bad_search_text_is_refused_naming_the_field(desk, alice, q):
    assert_rejected(desk.queue(alice, q=q), "q")


@pytest.mark.parametrize("q", ["sakura", "ak"])
def test_the_search_uses_the_n_gram_index(desk, alice, db, searchable, q):
    from sqlalchemy import and_
    from sqlalchemy.dialects import postgresql

    from app.cases.queue import search_matches

    condition = and_(*search_matches(q))
    sql = str(condition.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
    # Tiny tables: take the planner's cheaper choices away, so only an index that answers @> can be used.
    db.execute(text("SET LOCAL enable_seqscan = off; SET LOCAL enable_indexscan = off"))
    plan = "\n".join(row[0] for row in db.execute(text(f"EXPLAIN SELECT case_id FROM review_case_search WHERE {sql}")))
    db.rollback()
    assert "ix_review_case_search_grams" in plan


def test_the_queue_screen_counts_what_the_search_finds_up_to_a_cap(client, users, searchable, monkeypatch):
    from app.cases import queue
    from tests.web.conftest import submit_login

    users.create("analyst", "carol")
    assert submit_login(client, "carol").status_code == 303
    rows = {"HX-Request": "true", "HX-Target": "queue-rows"}

    assert "2 cases matching “2026”" in client.get("/?q=2026", headers=rows).text
    assert "1 case matching “sakura”" in client.get("/?q=sakura", headers=rows).text
    monkeypatch.setattr(queue, "RESULT_COUNT_CAP", 2)
    assert ">3 cases<" not in client.get("/").text
    assert "2+ cases" in client.get("/").text


@pytest.fixture
def fresh_common_grams(monkeypatch):
    """The process's cached common grams forgotten before and after the test."""
    from app.cases import queue

    monkeypatch.setattr(queue, "_common_grams", (float("-inf"), []))
    yield queue
    queue._common_grams = (float("-inf"), [])


def test_grams_most_cases_hold_come_from_the_statistics(desk, db, owner_engine, searchable, fresh_common_grams):
    with owner_engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE review_case_search")

    common = fresh_common_grams.common_grams(session=db)

    assert {"acc", "cct", "ct_", "inv", "nv-"} <= set(common)  # in all three / two of three rows
    assert "sak" not in common


@pytest.mark.parametrize("common", [["acc", "cct", "ct_", "nor"], ["sak", "aku", "kur", "ura"]])
def test_leaving_common_grams_out_of_the_lookup_finds_the_same_cases(desk, alice, searchable, fresh_common_grams,
                                                                      common):
    import time

    fresh_common_grams._common_grams = (time.monotonic(), common)  # as if the statistics said so

    assert found(desk, alice, "acct_nordwind") == [searchable["INV-2026-0042"], searchable["PO_77%off"]]
    assert found(desk, alice, "sakura") == [searchable["INV-2026-0042"]]  # every trigram common: all are used
    assert found(desk, alice, "acctronics") == []
