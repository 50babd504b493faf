"""POST /api/rules/backtest: conditions over stored transactions, each as of its own time."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

from app import money
from app.rules import windows
from app.rules.evaluation import tx_view
from app.rules.language import Env, compile_condition
from tests.conftest import tx_payload
from tests.rules.test_api_rules import RULES, rows
from tests.rules.test_hot_path import publish_rule

BACKTEST = "/api/rules/backtest"
NOW = datetime.now(UTC).replace(microsecond=0)


def create(client, headers, reference: str, **fields: Any) -> None:
    response = client.post("/transactions", json=tx_payload(reference, **fields), headers=headers)
    assert response.status_code == 200, response.text


def backdate(db, **ages: timedelta) -> None:
    """Move transactions (by reference) to NOW minus their age."""
    for reference, age in ages.items():
        db.execute(text("UPDATE transactions SET created_at = :at WHERE reference = :ref"),
                   {"at": NOW - age, "ref": reference})
    db.commit()


def backtest(client, headers, **body: Any) -> dict[str, Any]:
    response = client.post(BACKTEST, json=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def expected(db, condition: str) -> tuple[int, int, list[str]]:
    """(hits, errors, the 20 newest hits' references) by the hot path's own window computation and evaluation."""
    program = compile_condition(condition)
    stored = [dict(r._mapping) for r in rows(db, "SELECT * FROM transactions ORDER BY id")]
    stats = windows.compute(db, [windows.Probe(t["id"], t["account_id"], t["currency"], t["created_at"])
                                 for t in stored], program.windows)
    hits, errors = [], 0
    for t in stored:
        def count(window: timedelta, i: int = t["id"]) -> int:
            return stats[i][window][0]

        def total(window: timedelta, i: int = t["id"], currency: str = t["currency"]) -> Decimal:
            total = stats[i][window][1]
            assert total is not None
            return Decimal(money.format_amount(total, currency))

        env = Env(event="transaction.created", tx=tx_view(t), score={}, account_count=count, account_sum=total,
                  in_list=lambda name, value: False)
        outcome = program.evaluate(env)
        hits += [(t["created_at"], t["id"], t["reference"])] if outcome.matched else []
        errors += bool(outcome.error)
    return len(hits), errors, [reference for _, _, reference in sorted(hits, reverse=True)[:20]]


def test_windows_are_as_of_each_transactions_own_time(client, admin_headers, agent_headers, db):
    for reference in ("a", "b", "c", "d"):
        create(client, agent_headers, reference, amount="100.00")
    backdate(db, a=timedelta(hours=30), b=timedelta(hours=2), c=timedelta(hours=1, minutes=30), d=timedelta(0))
    # Today every one of them has 3 others within 48 h; as of its own time only d has 2 within 24 h.
    result = backtest(client, admin_headers, condition='account_count("24h") >= 2')
    assert (result["evaluated"], result["hits"], result["sample"]) == (4, 1, ["d"])
    # c had b 30 minutes before it; today nothing is within the hour before c or b.
    assert backtest(client, admin_headers, condition='account_count("1h") >= 1')["sample"] == ["c"]
    # The sum is in the transaction's own currency; the count is in any.
    create(client, agent_headers, "e-eur", amount="5000.00", currency="EUR")
    create(client, agent_headers, "f", amount="1.00")
    result = backtest(client, admin_headers, condition='account_count("1h") == 2 && account_sum("1h") == 100')
    assert result["sample"] == ["f"]


def test_results_equal_the_hot_paths_windows_on_ties_currencies_and_boundaries(
        client, admin_headers, agent_headers, db):
    batch = client.post("/transactions/batch", headers=agent_headers, json={"items": [
        tx_payload(f"t{i}", account_id=f"acct_{i % 3}", amount=f"{100 * (i % 7) + 1}.00",
                   currency=("USD", "EUR", "JPY")[i % 3], **({"metadata": {"device": "ios"}} if i % 4 else {}))
        for i in range(24)]})
    assert batch.status_code == 200, batch.text
    ages = {f"t{i}": timedelta(hours=(i // 3) * 5) for i in range(0, 24, 2)}  # odd ones keep the batch's time
    ages["t2"] = ages["t4"] - timedelta(hours=24)  # exactly 24 h apart: outside the window
    backdate(db, **ages)
    # Stored with more decimals than USD has: the condition sees 300.00 (half to even), not more.
    db.execute(text("UPDATE transactions SET amount = 300.005 WHERE reference = 't2'"))
    db.commit()
    for condition in ('tx.amount > 300', 'tx.amount >= 300.01', 'account_sum("24h") > 300 && tx.amount < 302',
                      'account_sum("30h") <= 600.005', 'account_count("24h") > 3',
                      'account_sum("24h") >= 900 && tx.amount > 200',
                      'account_count("10h") > 1 && tx.amount <= 401', 'tx.metadata.device == "ios"',
                      'tx.amount > 300 && tx.metadata.device == "ios"', 'account_sum("168h") > 1500',
                      '500 < tx.amount || account_count("5h") == 0'):
        hits, errors, references = expected(db, condition)
        result = backtest(client, admin_headers, condition=condition)
        assert (result["evaluated"], result["hits"], result["errors"]) == (24, hits, errors), condition
        assert result["sample"] == references, condition


def test_outcomes_and_precision_come_from_the_hit_transactions_latest_cases(
        client, admin_headers, agent_headers, analyst_headers, db):
    create(client, agent_headers, "before-rule", amount="2000.00")  # a hit without a case: not reviewed
    publish_rule(client, admin_headers, "Large", "tx.amount > 1000")
    for reference in ("r1", "r2", "ok1", "esc1", "open1"):
        create(client, agent_headers, reference, amount="1500.00")
    create(client, agent_headers, "small", amount="10.00")
    decisions = {"r1": "reject", "r2": "reject", "ok1": "approve", "esc1": "escalate"}
    for reference, decision in decisions.items():
        [(case_id,)] = rows(db, "SELECT c.id FROM review_cases c JOIN transactions t ON t.id = c.transaction_id "
                                "WHERE t.reference = :r", r=reference)
        body = {"decision": decision, "reason_code": "suspected_fraud" if decision == "reject" else "other",
                "note": "checked"}
        decided = client.post(f"/api/cases/{case_id}/decision", json=body, headers=analyst_headers)
        assert decided.status_code == 200, decided.text
    result = backtest(client, admin_headers, condition="tx.amount > 1000", action={"risk": 50, "reason": "big"})
    assert (result["evaluated"], result["hits"], result["errors"]) == (7, 6, 0)
    assert result["outcomes"] == {"approved": 1, "rejected": 2, "escalated": 1, "undecided": 1, "not_reviewed": 1}
    assert result["precision"] == pytest.approx(2 / 3)
    assert result["hit_rate"] == pytest.approx(6 / 7)
    assert len(result["sample"]) == 6 and "small" not in result["sample"]
    none_decided = backtest(client, admin_headers, condition='tx.reference == "open1"')
    assert (none_decided["precision"], none_decided["outcomes"]["undecided"]) == (None, 1)


def test_since_and_until_bound_the_period_but_earlier_rows_still_count_in_windows(
        client, admin_headers, agent_headers, db):
    for reference in ("old", "mid", "new"):
        create(client, agent_headers, reference)
    backdate(db, old=timedelta(hours=10), mid=timedelta(hours=9), new=timedelta(hours=1))
    since = (NOW - timedelta(hours=9, minutes=30)).isoformat()
    until = (NOW - timedelta(hours=2)).isoformat()
    result = backtest(client, admin_headers, condition='account_count("2h") == 1', since=since, until=until)
    assert (result["evaluated"], result["hits"], result["sample"]) == (1, 1, ["mid"])  # old counts, unevaluated
    assert backtest(client, admin_headers, condition="true", since=until)["sample"] == ["new"]
    assert backtest(client, admin_headers, condition="true", until=until)["evaluated"] == 2


def test_error_rows_are_counted_and_are_not_hits(client, admin_headers, agent_headers):
    create(client, agent_headers, "ios-big", amount="500.00", metadata={"device": "ios"})
    create(client, agent_headers, "none-big", amount="500.00")
    create(client, agent_headers, "none-small", amount="5.00")
    result = backtest(client, admin_headers, condition='tx.amount > 100 && tx.metadata.device == "ios"')
    # none-small: the amount is false, which wins over the missing key (CEL's &&).
    assert (result["evaluated"], result["hits"], result["errors"], result["sample"]) == (3, 1, 1, ["ios-big"])
    scored = backtest(client, admin_headers, condition="score.value > 50")  # replayed with an empty score
    assert (scored["hits"], scored["errors"]) == (0, 3)


def test_a_stored_version_runs_and_nothing_is_written_but_the_audit_event(
        client, admin_headers, agent_headers, db):
    create(client, agent_headers, "x1", amount="50.00")
    create(client, agent_headers, "x2", amount="5000.00")
    rule = publish_rule(client, admin_headers, "Draft", "tx.amount > 1000", mode="draft")
    client.put(f"{RULES}/{rule['id']}", json={"condition": "tx.amount > 10"}, headers=admin_headers)
    tables = ("transactions", "review_cases", "rule_hits", "rules", "rule_versions", "webhook_events")
    before = [rows(db, f"SELECT count(*) FROM {t}")[0][0] for t in tables]
    audit_before = rows(db, "SELECT count(*) FROM audit_events")[0][0]
    assert backtest(client, admin_headers, rule_id=rule["id"], version=1)["sample"] == ["x2"]
    assert backtest(client, admin_headers, rule_id=rule["id"], version=2)["hits"] == 2
    assert [rows(db, f"SELECT count(*) FROM {t}")[0][0] for t in tables] == before
    assert rows(db, "SELECT count(*) FROM audit_events")[0][0] == audit_before + 2
    events = rows(db, "SELECT action, entity_type, entity_id, after FROM audit_events "
                      "WHERE action = 'rule.backtested' ORDER BY id")
    assert [(e.action, e.entity_type, e.entity_id) for e in events] == [
        ("rule.backtested", "rule", str(rule["id"]))] * 2
    assert {k: events[0].after[k] for k in ("rule_id", "version", "evaluated", "hits", "errors")} == {
        "rule_id": rule["id"], "version": 1, "evaluated": 2, "hits": 1, "errors": 0}
    assert events[0].after["outcomes"]["not_reviewed"] == 1
    backtest(client, admin_headers, condition="tx.amount > 1")
    [adhoc] = rows(db, "SELECT entity_id, after FROM audit_events WHERE action = 'rule.backtested' "
                       "ORDER BY id DESC LIMIT 1")
    assert adhoc.entity_id == "condition" and adhoc.after["condition"] == "tx.amount > 1"


def test_admins_only_and_bad_input_names_the_field(client, admin_headers, analyst_headers, agent_headers, db):
    body = {"condition": "true"}
    assert client.post(BACKTEST, json=body, headers=agent_headers).status_code == 403
    assert client.post(BACKTEST, json=body, headers=analyst_headers).status_code == 403
    assert client.post(BACKTEST, json=body).status_code == 401

    def refused(status: int, **payload: Any) -> dict[str, Any]:
        response = client.post(BACKTEST, json=payload, headers=admin_headers)
        assert response.status_code == status, response.text
        return response.json()

    error = refused(422, condition="tx.amount >\n  && true")["detail"][0]
    assert (error["field"], error["line"], error["column"]) == ("condition", 2, 3)
    assert refused(422, condition='in_list("nope", tx.counterparty)')["detail"][0]["field"] == "condition"
    assert refused(422, condition="x > 1")["detail"][0]["field"] == "condition"
    assert refused(422, condition="true", since="2026-02-01T00:00:00Z",
                   until="2026-01-01T00:00:00Z")["detail"][0]["field"] == "until"
    assert refused(422, condition="true", since="2026-02-01T00:00:00")["detail"][0]["field"] == "since"
    assert refused(422)["detail"][0]["field"] == "condition"
    assert refused(422, condition="true", rule_id=1, version=1)["detail"][0]["field"] == "rule_id"
    assert refused(422, rule_id=1)["detail"][0]["field"] == "version"
    assert refused(422, condition="true", surprise=1)["detail"][0]["field"] == "surprise"
    assert refused(404, rule_id=999, version=1)
    rule = publish_rule(client, admin_headers, "Any", "true", mode="draft")
    assert refused(404, rule_id=rule["id"], version=7)
    assert rows(db, "SELECT count(*) FROM audit_events WHERE action = 'rule.backtested'")[0][0] == 0


def test_hits_decided_in_sql_and_in_python_share_the_counts_and_the_newest_first_sample(
        client, admin_headers, agent_headers, db):
    for i in range(25):
        create(client, agent_headers, f"s{i:02}", amount="300.00")
    create(client, agent_headers, "inexact", amount="300.00")
    create(client, agent_headers, "low", amount="299.99")
    backdate(db, **{f"s{i:02}": timedelta(minutes=60 - i) for i in range(25)},
             inexact=timedelta(minutes=45, seconds=30), low=timedelta(0))
    # 300.005 is not at USD's minor unit: SQL leaves it to Python, which sees 300.00 (half to even).
    db.execute(text("UPDATE transactions SET amount = 300.005 WHERE reference = 'inexact'"))
    db.execute(text("UPDATE transactions SET amount = 999999999999999.98 WHERE reference = 's24'"))
    db.commit()
    for condition in ("tx.amount >= 300", "tx.amount > 300", "tx.amount < 999999999999999.98",
                      "tx.amount >= 999999999999999.98 && account_count(\"2h\") >= 24"):
        hits, errors, references = expected(db, condition)
        result = backtest(client, admin_headers, condition=condition)
        assert (result["evaluated"], result["hits"], result["errors"]) == (27, hits, errors), condition
        assert result["sample"] == references, condition
        assert sum(result["outcomes"].values()) == hits, condition
    assert backtest(client, admin_headers, condition="tx.amount >= 300")["hits"] == 26
