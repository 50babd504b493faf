"""GET /api/cases and /api/cases/counts: the review queue, its filters, pages and counts."""

import base64

import pytest

from tests.cases.conftest import case_row, event_count, expire_lease, reconciliation_case
from tests.transactions.conftest import assert_rejected


@pytest.fixture
def mixed_queue(desk, db, alice, bob) -> dict[str, int]:
    """Cases differing in every filterable way; alice holds one, one is approved, one escalated."""
    ids = {
        "usd_small_80": desk.flagged_case("r-1", 80, amount="50.00"),
        "eur_big_95": desk.flagged_case("r-2", 95, amount="9000.00", currency="EUR"),
        "usd_mid_80": desk.flagged_case("r-3", 80, amount="700.00"),
        "gbp_mid_70": desk.flagged_case("r-4", 70, amount="300.00", currency="GBP"),
        "held_by_alice_75": desk.flagged_case("r-5", 75, amount="120.00"),
        "approved_90": desk.flagged_case("r-6", 90, amount="60.00"),
        "escalated_85": desk.flagged_case("r-7", 85, amount="80.00"),
        "reconciliation_72": reconciliation_case(db, 72, amount="15.00"),
    }
    assert desk.claim(ids["held_by_alice_75"], alice).status_code == 200
    assert desk.decide(ids["approved_90"], bob, "approve").status_code == 200
    escalated = desk.decide(ids["escalated_85"], bob, "escalate", "needs_more_info", note="ask compliance")
    assert escalated.status_code == 200
    return ids


def test_queue_orders_by_risk_descending_then_oldest_first(desk, alice):
    a80 = desk.flagged_case("r-1", 80)
    b95 = desk.flagged_case("r-2", 95)
    c80 = desk.flagged_case("r-3", 80)
    d70 = desk.flagged_case("r-4", 70)
    e95 = desk.flagged_case("r-5", 95)

    assert desk.queue_ids(alice) == [b95, e95, a80, c80, d70]


def test_queue_order_follows_a_cases_raised_risk(desk, alice):
    first = desk.flagged_case("r-1", 90)
    second = desk.flagged_case("r-2", 75)
    desk.score("r-2", 99)

    assert desk.queue_ids(alice) == [second, first]


def test_queue_items_describe_the_case_and_its_transaction(desk, alice):
    case_id = desk.flagged_case("r-1", 88, amount="1234.50", currency="EUR", account_id="acct_9")
    [item] = desk.queue(alice).json()["items"]

    assert item["id"] == case_id
    assert item["kind"] == "risk"
    assert item["state"] == "open"
    assert item["risk"] == 88
    assert item["amount"] == "1234.50"
    assert item["currency"] == "EUR"
    assert item["transaction_reference"] == "r-1"
    assert item["account_id"] == "acct_9"
    assert item["assignee"] is None
    assert item["needs_second_approval"] is False
    assert item["version"] == 1


def test_queue_without_a_state_lists_every_undecided_case(mixed_queue, desk, alice):
    ids = mixed_queue
    assert desk.queue_ids(alice) == [
        ids["eur_big_95"], ids["escalated_85"], ids["usd_small_80"], ids["usd_mid_80"],
        ids["held_by_alice_75"], ids["reconciliation_72"], ids["gbp_mid_70"],
    ]


@pytest.mark.parametrize(
    "params,expected",
    [
        pytest.param({"state": "open"},
                     ["eur_big_95", "usd_small_80", "usd_mid_80", "reconciliation_72", "gbp_mid_70"], id="open"),
        pytest.param({"state": "in_review"}, ["held_by_alice_75"], id="in-review"),
        pytest.param({"state": "approved"}, ["approved_90"], id="approved"),
        pytest.param({"state": "rejected"}, [], id="rejected"),
        pytest.param({"state": "escalated"}, ["escalated_85"], id="escalated"),
        pytest.param({"kind": "reconciliation"}, ["reconciliation_72"], id="kind-reconciliation"),
        pytest.param({"kind": "risk", "state": "open"},
                     ["eur_big_95", "usd_small_80", "usd_mid_80", "gbp_mid_70"], id="kind-risk"),
        pytest.param({"currency": "EUR"}, ["eur_big_95"], id="currency"),
        pytest.param({"currency": "GBP"}, ["gbp_mid_70"], id="currency-gbp"),
        pytest.param({"min_amount": "300"}, ["eur_big_95", "usd_mid_80", "gbp_mid_70"], id="min-amount-inclusive"),
        pytest.param({"max_amount": "80"},
                     ["escalated_85", "usd_small_80", "reconciliation_72"], id="max-amount-inclusive"),
        pytest.param({"min_amount": "100", "max_amount": "700"},
                     ["usd_mid_80", "held_by_alice_75", "gbp_mid_70"], id="amount-range"),
        pytest.param({"min_score": 85}, ["eur_big_95", "escalated_85"], id="min-score-inclusive"),
        pytest.param({"max_score": 72}, ["reconciliation_72", "gbp_mid_70"], id="max-score-inclusive"),
        pytest.param({"min_score": 75, "max_score": 80},
                     ["usd_small_80", "usd_mid_80", "held_by_alice_75"], id="score-range"),
        pytest.param({"assignee": "alice"}, ["held_by_alice_75"], id="assignee"),
        pytest.param({"assignee": "bob"}, [], id="assignee-holding-nothing"),
        pytest.param({"assignee": "nobody"}, [], id="assignee-unknown"),
        pytest.param({"currency": "USD", "state": "open", "max_score": 80},
                     ["usd_small_80", "usd_mid_80", "reconciliation_72"], id="combined"),
    ],
)
def test_each_queue_filter_narrows_the_list(mixed_queue, desk, alice, params, expected):
    assert desk.queue_ids(alice, **params) == [mixed_queue[name] for name in expected]


def test_keyset_pagination_with_limit_2_walks_every_case_exactly_once_in_order(desk, alice):
    for n, score in enumerate([80, 95, 80, 70, 95, 80, 99]):
        desk.flagged_case(f"r-{n}", score)
    everything = desk.queue_ids(alice)

    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = desk.queue(alice, **params).json()
        pages += 1
        assert len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert seen == everything
    assert len(seen) == len(set(seen)) == 7
    assert pages == 4


def test_last_full_page_has_no_next_cursor(desk, alice):
    desk.flagged_case("r-1", 80)
    desk.flagged_case("r-2", 80)

    page = desk.queue(alice, limit=2).json()
    assert len(page["items"]) == 2
    assert page["next_cursor"] is None


def test_pagination_keeps_the_filter(desk, alice):
    for n in range(5):
        desk.flagged_case(f"usd-{n}", 80 + n)
        desk.flagged_case(f"eur-{n}", 80 + n, currency="EUR")

    first = desk.queue(alice, currency="EUR", limit=3).json()
    second = desk.queue(alice, currency="EUR", limit=3, cursor=first["next_cursor"]).json()

    items = first["items"] + second["items"]
    assert [item["currency"] for item in items] == ["EUR"] * 5
    assert second["next_cursor"] is None


def b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        pytest.param("not-a-cursor", id="garbage"),
        pytest.param("%%%", id="not-base64"),
        pytest.param(b64("q:x:1"), id="risk-not-a-number"),
        pytest.param(b64("q:80"), id="missing-id"),
        pytest.param(b64("q:80:-1"), id="negative-id"),
        pytest.param(b64("id:5"), id="a-transactions-cursor"),
        pytest.param(b64("q:80:" + "9" * 20), id="id-too-long"),
        pytest.param(b64("q:²:1"), id="superscript-digit"),
        pytest.param("A" * 65, id="too-long"),
        pytest.param("", id="empty"),
    ],
)
def test_invalid_cursor_is_422_naming_cursor(desk, alice, cursor):
    desk.flagged_case("r-1", 80)
    assert_rejected(desk.queue(alice, cursor=cursor), "cursor")


@pytest.mark.parametrize(
    "params,field",
    [
        ({"state": "closed"}, "state"),
        ({"kind": "fraud"}, "kind"),
        ({"currency": "usd"}, "currency"),
        ({"currency": "XXX"}, "currency"),
        ({"min_amount": "-1"}, "min_amount"),
        ({"max_amount": "lots"}, "max_amount"),
        ({"min_amount": "NaN"}, "min_amount"),
        ({"min_score": "101"}, "min_score"),
        ({"max_score": "-1"}, "max_score"),
        ({"min_score": "1.5"}, "min_score"),
        ({"assignee": " alice"}, "assignee"),
        ({"limit": "0"}, "limit"),
        ({"limit": "201"}, "limit"),
    ],
)
def test_invalid_queue_filter_is_422_naming_the_filter(desk, alice, params, field):
    assert_rejected(desk.queue(alice, **params), field)


def test_counts_report_open_in_review_escalated_awaiting_second_approval_and_mine(mixed_queue, desk, alice, bob):
    big = desk.flagged_case("big-1", 80, amount="20000.00")
    assert desk.decide(big, bob, "approve").json()["needs_second_approval"] is True

    # "open" counts what the open filter lists, including the case awaiting its second approval.
    assert desk.counts(alice) == {
        "open": 6, "in_review": 1, "escalated": 1, "awaiting_second_approval": 1, "mine": 1,
    }
    assert desk.counts(bob)["mine"] == 0


def test_counts_of_an_empty_queue_are_zero(desk, alice):
    assert desk.counts(alice) == {"open": 0, "in_review": 0, "escalated": 0, "awaiting_second_approval": 0, "mine": 0}


def test_case_with_an_expired_lease_shows_as_open_with_no_assignee(desk, db, alice, bob):
    case_id = desk.flagged_case("r-1", 80)
    assert desk.claim(case_id, alice).status_code == 200
    expire_lease(db, case_id)

    case = desk.case(case_id, bob)
    assert case["state"] == "open"
    assert case["assignee"] is None
    assert case["lease_expires_at"] is None
    assert desk.queue_ids(bob, state="open") == [case_id]
    assert desk.queue_ids(bob, state="in_review") == []
    assert desk.queue_ids(bob, assignee="alice") == []
    assert desk.counts(alice)["mine"] == 0
    assert desk.counts(alice)["open"] == 1


def test_another_analyst_can_claim_a_case_whose_lease_expired(desk, db, alice, bob):
    case_id = desk.flagged_case("r-1", 80)
    assert desk.claim(case_id, alice).status_code == 200
    expire_lease(db, case_id)

    response = desk.claim(case_id, bob)
    assert response.status_code == 200, response.text
    assert response.json()["assignee"] == "bob"
    assert response.json()["state"] == "in_review"


def test_next_hands_out_a_case_whose_lease_expired(desk, db, alice, bob):
    case_id = desk.flagged_case("r-1", 80)
    assert desk.next(alice).json()["id"] == case_id
    assert desk.next(bob).status_code == 204
    expire_lease(db, case_id)

    response = desk.next(bob)
    assert response.status_code == 200, response.text
    assert response.json()["id"] == case_id
    assert response.json()["assignee"] == "bob"


def test_holder_whose_lease_expired_cannot_release_it(desk, db, alice):
    case_id = desk.flagged_case("r-1", 80)
    assert desk.claim(case_id, alice).status_code == 200
    expire_lease(db, case_id)

    assert desk.release(case_id, alice).status_code == 409


AGENT_FORBIDDEN = [
    ("GET", "/api/cases"),
    ("GET", "/api/cases/counts"),
    ("POST", "/api/cases/next"),
    ("GET", "/api/cases/{id}"),
    ("POST", "/api/cases/{id}/claim"),
    ("POST", "/api/cases/{id}/release"),
    ("POST", "/api/cases/{id}/decision"),
]


@pytest.mark.parametrize("method,path", AGENT_FORBIDDEN, ids=[f"{m} {p}" for m, p in AGENT_FORBIDDEN])
def test_agent_gets_403_on_every_case_route_and_changes_nothing(desk, db, client, agent_headers, method, path):
    case_id = desk.flagged_case("r-1", 80)
    before_row, before_events = case_row(db, case_id), event_count(db)
    body = {"decision": "approve", "reason_code": "false_positive"} if path.endswith("decision") else None
    response = client.request(method, path.format(id=case_id), json=body, headers=agent_headers)

    assert response.status_code == 403, response.text
    assert case_row(db, case_id) == before_row
    assert event_count(db) == before_events


@pytest.mark.parametrize("method,path", AGENT_FORBIDDEN, ids=[f"{m} {p}" for m, p in AGENT_FORBIDDEN])
def test_every_case_route_without_a_token_is_401(desk, client, method, path):
    case_id = desk.flagged_case("r-1", 80)
    response = client.request(method, path.format(id=case_id))

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_admin_can_read_the_queue(desk, root):
    case_id = desk.flagged_case("r-1", 80)
    assert desk.queue_ids(root) == [case_id]
