"""A rule's hits (shadow ones included, with transaction references), its stats, and snoozes.

Hits are written here as the hot path writes them (rules-hot's evaluation), so these tests
check only what the rules API reads back.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from tests.cases.conftest import Desk, Reviewer
from tests.rules.test_api_rules import RULES, audit_events, create_rule, rows


def hit(db, rule_id: int, transaction: dict[str, Any], *, mode: str = "active", outcome: str = "hit",
        case_id: int | None = None, at: datetime | None = None, snoozed: bool = False) -> int:
    hit_id = db.execute(text(
        "INSERT INTO rule_hits (rule_id, version, mode, transaction_id, account_id, event, outcome, values, error,"
        " risk, reason, case_id, snoozed, created_at)"
        " VALUES (:rule_id, 1, :mode, :tx, :account, 'transaction.created', :outcome, CAST(:values AS jsonb),"
        " :error, 80, 'Large', :case_id, :snoozed, COALESCE(:at, now())) RETURNING id"
    ), {"rule_id": rule_id, "mode": mode, "tx": transaction["id"], "account": transaction["account_id"],
        "outcome": outcome, "values": '{"tx.amount": "1250.00"}',
        "error": "no such key" if outcome == "error" else None,
        "case_id": case_id, "snoozed": snoozed, "at": at}).scalar_one()
    db.commit()
    return hit_id


@pytest.fixture
def desk(client, agent_headers) -> Desk:
    return Desk(client, agent_headers)


@pytest.fixture
def rule(client, admin_headers) -> dict[str, Any]:
    return create_rule(client, admin_headers, mode="active")


def test_hits_are_listed_newest_first_with_shadow_ones_and_transaction_references(client, analyst_headers, db,
                                                                                  desk, rule):
    first, second = desk.transaction("ref-a"), desk.transaction("ref-b", account_id="acct_2")
    now = datetime.now(UTC)
    older = hit(db, rule["id"], first, mode="shadow", at=now - timedelta(hours=2))
    newer = hit(db, rule["id"], second, at=now - timedelta(hours=1))
    errored = hit(db, rule["id"], first, outcome="error", at=now - timedelta(hours=1))
    response = client.get(f"{RULES}/{rule['id']}/hits", headers=analyst_headers)
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [(h["id"], h["mode"], h["outcome"], h["transaction_reference"]) for h in items] == [
        (errored, "active", "error", "ref-a"), (newer, "active", "hit", "ref-b"), (older, "shadow", "hit", "ref-a")]
    assert items[1]["values"] == {"tx.amount": "1250.00"} and items[1]["account_id"] == "acct_2"
    assert items[0]["error"] == "no such key" and response.json()["next_cursor"] is None
    shadow = client.get(f"{RULES}/{rule['id']}/hits", params={"mode": "shadow"}, headers=analyst_headers).json()
    assert [h["id"] for h in shadow["items"]] == [older]
    errors = client.get(f"{RULES}/{rule['id']}/hits", params={"outcome": "error"}, headers=analyst_headers).json()
    assert [h["id"] for h in errors["items"]] == [errored]


def test_hits_page_by_cursor_without_gaps_or_repeats(client, analyst_headers, db, desk, rule):
    tx = desk.transaction("ref-p")
    at = datetime.now(UTC) - timedelta(minutes=5)
    made = [hit(db, rule["id"], tx, at=at if n % 2 else at - timedelta(seconds=n)) for n in range(7)]
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = client.get(f"{RULES}/{rule['id']}/hits", params=params, headers=analyst_headers).json()
        seen += [h["id"] for h in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(made) and len(seen) == len(set(seen))


@pytest.mark.parametrize("params", [{"cursor": "nonsense"}, {"limit": 0}, {"limit": 201}, {"mode": "draft"},
                                    {"outcome": "maybe"}])
def test_bad_hit_queries_name_the_parameter(client, analyst_headers, rule, params):
    response = client.get(f"{RULES}/{rule['id']}/hits", params=params, headers=analyst_headers)
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == next(iter(params))


def test_stats_count_hits_errors_cases_and_the_decisions_on_hit_transactions(client, admin_headers,
                                                                             analyst_headers, users, db, desk, rule):
    alice = Reviewer("alice", users.headers("analyst", "alice"))
    approved_case = desk.flagged_case("ref-1", 90)
    rejected_case = desk.flagged_case("ref-2", 90)
    open_case = desk.flagged_case("ref-3", 90)
    unreviewed = desk.transaction("ref-4")
    by_ref = {r: desk.get_transaction(r) for r in ("ref-1", "ref-2", "ref-3")}
    assert desk.decide(approved_case, alice, "approve").status_code == 200
    assert desk.decide(rejected_case, alice, "reject", "suspected_fraud", note="card testing").status_code == 200
    hit(db, rule["id"], by_ref["ref-1"], case_id=approved_case)
    hit(db, rule["id"], by_ref["ref-2"], case_id=rejected_case)
    hit(db, rule["id"], by_ref["ref-2"], case_id=rejected_case)  # the same transaction again (a posted score)
    hit(db, rule["id"], by_ref["ref-3"], mode="shadow")
    hit(db, rule["id"], unreviewed, mode="shadow", at=datetime.now(UTC) - timedelta(days=2))
    hit(db, rule["id"], unreviewed, outcome="error")
    stats = client.get(f"{RULES}/{rule['id']}/stats", headers=analyst_headers)
    assert stats.status_code == 200, stats.text
    assert stats.json() == {
        "hits": 3, "shadow_hits": 2, "errors": 1, "hits_24h": 4, "cases_opened": 2,
        "outcomes": {"approved": 1, "rejected": 1, "escalated": 0, "undecided": 1, "not_reviewed": 1},
        "precision": 0.5,
    }
    assert open_case
    # The rules list carries the last 24 hours' hits and the precision, for every rule at once.
    create_rule(client, admin_headers, name="Quiet rule")
    listed = {r["name"]: r for r in client.get(RULES, headers=analyst_headers).json()}
    assert (listed[rule["name"]]["hits_24h"], listed[rule["name"]]["precision"]) == (4, 0.5)
    assert (listed["Quiet rule"]["hits_24h"], listed["Quiet rule"]["precision"]) == (0, None)


def test_stats_of_a_rule_without_hits_have_no_precision(client, analyst_headers, rule):
    stats = client.get(f"{RULES}/{rule['id']}/stats", headers=analyst_headers).json()
    assert stats["hits"] == 0 and stats["precision"] is None
    assert stats["outcomes"] == {"approved": 0, "rejected": 0, "escalated": 0, "undecided": 0, "not_reviewed": 0}


def in_days(days: float) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


def test_an_analyst_snoozes_a_rule_for_an_account_and_it_is_audited(client, analyst_headers, admin_headers, db, rule):
    response = client.post(f"{RULES}/{rule['id']}/snoozes",
                           json={"account_id": "acct_1", "until": in_days(7), "reason": "Payroll run, confirmed"},
                           headers=analyst_headers)
    assert response.status_code == 201, response.text
    snooze = response.json()
    assert (snooze["rule_id"], snooze["account_id"], snooze["is_active"]) == (rule["id"], "acct_1", True)
    stored = rows(db, "SELECT rule_id, account_id, reason, created_by IS NOT NULL FROM rule_snoozes")
    assert [tuple(r) for r in stored] == [(rule["id"], "acct_1", "Payroll run, confirmed", True)]
    [event] = [e for e in audit_events(db) if e.action == "rule.snoozed"]
    assert event.entity_id == str(rule["id"]) and event.after["account_id"] == "acct_1"
    assert event.after["snooze_id"] == snooze["id"]
    admin_snooze = client.post(f"{RULES}/{rule['id']}/snoozes",
                               json={"account_id": "acct_2", "until": in_days(1), "reason": "Checked"},
                               headers=admin_headers)
    assert admin_snooze.status_code == 201
    listed = client.get(f"{RULES}/{rule['id']}/snoozes", headers=analyst_headers).json()
    assert [s["account_id"] for s in listed] == ["acct_1", "acct_2"]  # latest ending first


def test_an_expired_snooze_is_listed_as_no_longer_active(client, analyst_headers, db, rule):
    client.post(f"{RULES}/{rule['id']}/snoozes", json={"account_id": "a", "until": in_days(1), "reason": "r"},
                headers=analyst_headers)
    db.execute(text("UPDATE rule_snoozes SET until = now() - interval '1 minute'"))
    db.commit()
    [snooze] = client.get(f"{RULES}/{rule['id']}/snoozes", headers=analyst_headers).json()
    assert snooze["is_active"] is False


@pytest.mark.parametrize(("body", "field"), [
    ({"account_id": "a", "until": "2020-01-01T00:00:00Z", "reason": "r"}, "until"),
    ({"account_id": "a", "until": "0001-01-01T00:00:00+01:00", "reason": "r"}, "until"),
    ({"account_id": "a", "until": "9999-12-31T23:59:59-12:00", "reason": "r"}, "until"),
    ({"account_id": "a", "until": "in_days(91)", "reason": "r"}, "until"),
    ({"account_id": "a", "until": "2999-01-01T00:00:00", "reason": "r"}, "until"),
    ({"account_id": "a", "until": "tomorrow", "reason": "r"}, "until"),
    ({"account_id": "a", "until": "in_days(1)", "reason": ""}, "reason"),
    ({"account_id": "a", "until": "in_days(1)"}, "reason"),
    ({"account_id": "", "until": "in_days(1)", "reason": "r"}, "account_id"),
    ({"account_id": "x" * 65, "until": "in_days(1)", "reason": "r"}, "account_id"),
    ({"account_id": "a", "reason": "r"}, "until"),
])
def test_bad_snoozes_are_refused_naming_the_field_and_nothing_is_stored(client, analyst_headers, db, rule, body,
                                                                        field):
    body = {k: (in_days(float(v[8:-1])) if isinstance(v, str) and v.startswith("in_days(") else v)
            for k, v in body.items()}
    response = client.post(f"{RULES}/{rule['id']}/snoozes", json=body, headers=analyst_headers)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["field"] == field
    assert rows(db, "SELECT count(*) FROM rule_snoozes")[0][0] == 0
    assert [e.action for e in audit_events(db)] == ["rule.created"]
