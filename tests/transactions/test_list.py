"""GET /transactions: filters, limit, keyset pagination newest first."""

import pytest
from sqlalchemy import update

from app.transactions import service
from app.transactions.models import Transaction
from tests.conftest import tx_payload
from tests.transactions.conftest import assert_rejected


@pytest.fixture
def create(client, agent_headers):
    def create_transaction(reference: str, **overrides) -> dict:
        response = client.post("/transactions", json=tx_payload(reference, **overrides), headers=agent_headers)
        assert response.status_code == 200, response.text
        return response.json()

    return create_transaction


@pytest.fixture
def listing(client, analyst_headers):
    def get(**params) -> dict:
        response = client.get("/transactions", params=params, headers=analyst_headers)
        assert response.status_code == 200, response.text
        return response.json()

    return get


def references(page: dict) -> list[str]:
    return [item["reference"] for item in page["items"]]


def walk_all_pages(listing, **params) -> tuple[list[str], int]:
    """Every reference reached by following next_cursor, and the number of pages."""
    seen: list[str] = []
    pages = 0
    cursor = None
    while True:
        page = listing(**params, **({"cursor": cursor} if cursor else {}))
        pages += 1
        seen.extend(references(page))
        cursor = page["next_cursor"]
        if cursor is None:
            return seen, pages
        assert pages <= 100, "pagination does not terminate"


def set_columns(db, reference: str, **values) -> None:
    db.execute(update(Transaction).where(Transaction.reference == reference).values(**values))
    db.commit()


def test_empty_listing_has_no_items_and_no_cursor(listing):
    assert listing() == {"items": [], "next_cursor": None}


def test_listing_is_newest_first_with_full_transactions(create, listing):
    for n in range(3):
        create(f"ref-{n}", amount="1.5")
    page = listing()
    assert references(page) == ["ref-2", "ref-1", "ref-0"]
    assert page["next_cursor"] is None
    first = page["items"][0]
    assert first["amount"] == "1.50"
    expected = {"id", "account_id", "reference", "amount", "currency", "status", "review_status", "created_at"}
    assert expected <= set(first)


@pytest.mark.parametrize("limit", [1, 2, 3, 7, 25, 26])
def test_walking_every_page_returns_each_row_exactly_once_newest_first(create, listing, limit):
    created = [create(f"ref-{n:02d}")["reference"] for n in range(25)]
    seen, pages = walk_all_pages(listing, limit=limit)
    assert seen == list(reversed(created))
    assert pages == max(1, -(-25 // limit))


def test_pages_hold_exactly_limit_items_until_the_last(create, listing):
    for n in range(5):
        create(f"ref-{n}")
    first = listing(limit=2)
    second = listing(limit=2, cursor=first["next_cursor"])
    third = listing(limit=2, cursor=second["next_cursor"])
    assert [len(p["items"]) for p in (first, second, third)] == [2, 2, 1]
    assert third["next_cursor"] is None


def test_rows_created_while_paging_do_not_shift_later_pages(create, listing):
    for n in range(6):
        create(f"old-{n}")
    first = listing(limit=3)
    create("new-while-paging")
    second = listing(limit=3, cursor=first["next_cursor"])
    assert references(first) == ["old-5", "old-4", "old-3"]
    assert references(second) == ["old-2", "old-1", "old-0"]
    assert second["next_cursor"] is None


def test_filter_by_account_id(create, listing):
    create("a-1", account_id="acct_A")
    create("b-1", account_id="acct_B")
    create("a-2", account_id="acct_A")
    assert references(listing(account_id="acct_A")) == ["a-2", "a-1"]
    assert references(listing(account_id="acct_B")) == ["b-1"]
    assert references(listing(account_id="acct_none")) == []


def test_filter_by_status(create, listing, client, agent_headers):
    for n in range(4):
        create(f"ref-{n}")
    client.post("/transactions/ref-1/settlement", json={"status": "settled"}, headers=agent_headers)
    client.post("/transactions/ref-2/settlement", json={"status": "failed"}, headers=agent_headers)
    assert references(listing(status="pending")) == ["ref-3", "ref-0"]
    assert references(listing(status="settled")) == ["ref-1"]
    assert references(listing(status="failed")) == ["ref-2"]


def test_filter_by_review_status(create, listing, db):
    for n in range(4):
        create(f"ref-{n}")
    set_columns(db, "ref-0", review_status="flagged")
    set_columns(db, "ref-2", review_status="flagged")
    set_columns(db, "ref-3", review_status="rejected")
    assert references(listing(review_status="flagged")) == ["ref-2", "ref-0"]
    assert references(listing(review_status="rejected")) == ["ref-3"]
    assert references(listing(review_status="clear")) == ["ref-1"]
    assert references(listing(review_status="approved")) == []


def test_filters_combine_and_paginate_together(create, listing, db):
    for n in range(12):
        create(f"ref-{n:02d}", account_id="acct_A" if n % 2 == 0 else "acct_B")
    for n in (0, 4, 6, 10):
        set_columns(db, f"ref-{n:02d}", review_status="flagged")
    seen, pages = walk_all_pages(listing, account_id="acct_A", review_status="flagged", limit=3)
    assert seen == ["ref-10", "ref-06", "ref-04", "ref-00"]
    assert pages == 2


def test_default_limit_is_50(create, listing, client, agent_headers):
    items = [tx_payload(f"ref-{n:03d}") for n in range(60)]
    assert client.post("/transactions/batch", json={"items": items}, headers=agent_headers).status_code == 200
    page = listing()
    assert len(page["items"]) == 50
    assert page["next_cursor"] is not None


def test_limit_200_is_allowed(listing):
    assert listing(limit=200)["items"] == []


@pytest.mark.parametrize("limit", ["201", "1000", "0", "-5", "1.5", "many"])
def test_limit_outside_1_to_200_is_422_naming_limit(client, analyst_headers, limit):
    assert_rejected(client.get("/transactions", params={"limit": limit}, headers=analyst_headers), "limit")


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "!!!!",
        "",
        "aWQ6",  # "id:"
        "aWQ6LTE",  # "id:-1"
        "aWQ6YWJj",  # "id:abc"
        "eDox",  # "x:1"
        service.encode_cursor(1).upper(),
        "aWQ6OTk5OTk5OTk5OTk5OTk5OTk5OTk5",  # "id:" + 21 digits
        "x" * 65,
    ],
)
def test_garbage_cursor_is_422_naming_cursor(client, analyst_headers, create, cursor):
    create("ref-1")
    response = client.get("/transactions", params={"cursor": cursor}, headers=analyst_headers)
    assert_rejected(response, "cursor")


def test_cursor_round_trips_through_encode_and_decode():
    assert service.decode_cursor(service.encode_cursor(9_223_372_036_854_775_807)) == 9_223_372_036_854_775_807


@pytest.mark.parametrize(
    ("after_id", "expected"),
    [(1, []), (2, ["ref-1"]), (9_223_372_036_854_775_807, ["ref-1"]), (9_999_999_999_999_999_999, ["ref-1"])],
)
def test_cursor_is_a_position_so_any_id_up_to_19_digits_is_valid(listing, create, after_id, expected):
    create("ref-1")
    assert references(listing(cursor=service.encode_cursor(after_id))) == expected


@pytest.mark.parametrize("status", ["lost", "PENDING", ""])
def test_unknown_status_filter_is_422_naming_status(client, analyst_headers, status):
    assert_rejected(client.get("/transactions", params={"status": status}, headers=analyst_headers), "status")


def test_unknown_review_status_filter_is_422_naming_it(client, analyst_headers):
    response = client.get("/transactions", params={"review_status": "maybe"}, headers=analyst_headers)
    assert_rejected(response, "review_status")


@pytest.mark.parametrize("account_id", ["a" * 65, "", "acct\x00", " acct"])
def test_account_id_filter_follows_the_account_id_rules(client, analyst_headers, account_id):
    response = client.get("/transactions", params={"account_id": account_id}, headers=analyst_headers)
    assert_rejected(response, "account_id")


def test_listing_needs_a_token(client):
    assert client.get("/transactions").status_code == 401


def test_every_role_may_list(client, users):
    for role in ("agent", "analyst", "admin"):
        assert client.get("/transactions", headers=users.headers(role)).status_code == 200
