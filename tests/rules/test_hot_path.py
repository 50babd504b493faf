"""Rules on live traffic: every create and posted score runs the running rules in its own transaction."""

from typing import Any

from sqlalchemy import event

from app.db import database
from tests.conftest import tx_payload
from tests.rules.test_api_rules import RULES, rows


def publish_rule(client, headers, name: str, condition: str, *, mode: str = "active", risk: int = 80,
                 reason: str | None = None) -> dict[str, Any]:
    response = client.post(RULES, json={"name": name, "condition": condition, "mode": mode,
                                        "action": {"risk": risk, "reason": reason or name}}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def hits(db, reference: str | None = None) -> list[Any]:
    sql = ("SELECT r.name, h.version, h.mode, h.outcome, h.values, h.error, h.case_id, h.snoozed, h.event, "
           "t.reference FROM rule_hits h JOIN rules r ON r.id = h.rule_id "
           "JOIN transactions t ON t.id = h.transaction_id")
    if reference:
        return rows(db, sql + " WHERE t.reference = :ref ORDER BY h.id", ref=reference)
    return rows(db, sql + " ORDER BY h.id")


def case_of(db, reference: str) -> Any:
    found = rows(db, "SELECT c.id, c.risk, c.reason, c.state FROM review_cases c JOIN transactions t "
                     "ON t.id = c.transaction_id WHERE t.reference = :ref", ref=reference)
    return found[0] if found else None


def test_an_active_rule_flags_the_transaction_it_matches_as_it_is_created(client, admin_headers, agent_headers, db):
    publish_rule(client, admin_headers, "Large payment", "tx.amount > 999999999999999.98", risk=85)
    created = client.post("/transactions", json=tx_payload("big-1", amount="999999999999999.99"), headers=agent_headers)
    assert created.status_code == 200, created.text
    assert created.json()["review_status"] == "flagged"
    small = client.post("/transactions", json=tx_payload("small-1", amount="999999999999999.98"), headers=agent_headers)
    assert small.json()["review_status"] == "clear"

    case = case_of(db, "big-1")
    assert (case.risk, case.state) == (85, "open")
    assert case.reason == "rule Large payment (v1): Large payment"
    [hit] = hits(db)
    assert (hit.name, hit.version, hit.mode, hit.outcome, hit.case_id, hit.event) == (
        "Large payment", 1, "active", "hit", case.id, "transaction.created")
    assert hit.values == {"tx.amount": "999999999999999.99"}
    audited = rows(db, "SELECT action, entity_id FROM audit_events WHERE action IN "
                       "('case.opened', 'transaction.review_status_changed') ORDER BY id")
    assert [tuple(a) for a in audited] == [("case.opened", str(case.id)),
                                           ("transaction.review_status_changed", "big-1")]
    assert client.get("/transactions/big-1", headers=agent_headers).json()["review_status"] == "flagged"
    assert [r[0] for r in rows(db, "SELECT event_type FROM webhook_events")] == ["rule.published", "case.opened"]


def test_shadow_hits_are_recorded_and_open_no_case_drafts_do_not_run(client, admin_headers, agent_headers, db):
    publish_rule(client, admin_headers, "Shadow EUR", 'tx.currency == "EUR"', mode="shadow")
    publish_rule(client, admin_headers, "Draft EUR", 'tx.currency == "EUR"', mode="draft")
    created = client.post("/transactions", json=tx_payload("eur-1", currency="EUR"), headers=agent_headers)
    assert created.json()["review_status"] == "clear"
    assert case_of(db, "eur-1") is None
    assert [(h.name, h.mode, h.outcome, h.case_id) for h in hits(db)] == [("Shadow EUR", "shadow", "hit", None)]


def test_a_rule_that_fails_at_run_time_is_an_error_hit_and_the_others_still_run(
        client, admin_headers, agent_headers, db):
    publish_rule(client, admin_headers, "Needs device", 'tx.metadata.device == "ios"')
    publish_rule(client, admin_headers, "Any USD", 'tx.currency == "USD"', risk=40)
    created = client.post("/transactions", json=tx_payload("no-device"), headers=agent_headers)
    assert created.status_code == 200
    assert created.json()["review_status"] == "flagged"
    found = {h.name: h for h in hits(db)}
    assert (found["Needs device"].outcome, found["Needs device"].error) == ("error", "no such key: 'device'")
    assert found["Needs device"].case_id is None
    assert (found["Any USD"].outcome, case_of(db, "no-device").risk) == ("hit", 40)


def test_windows_count_the_accounts_earlier_transactions_also_within_one_batch(
        client, admin_headers, agent_headers, db):
    publish_rule(client, admin_headers, "Velocity", 'account_count("1h") >= 2 && account_sum("1h") > 200')
    client.post("/transactions", json=tx_payload("v-1", amount="150.00"), headers=agent_headers)
    client.post("/transactions", json=tx_payload("v-other-currency", amount="999.00", currency="EUR"),
                headers=agent_headers)
    batch = client.post("/transactions/batch", headers=agent_headers, json={"items": [
        tx_payload("v-2", amount="10.00"), tx_payload("v-3", amount="60.00"), tx_payload("v-4", amount="1.00"),
        tx_payload("elsewhere", account_id="acct_2", amount="5000.00"),
    ]})
    assert batch.status_code == 200, batch.text
    statuses = {item["reference"]: item["transaction"]["review_status"] for item in batch.json()["items"]}
    # v-2: 2 earlier (v-1 and the EUR one), USD sum 150 → no; v-3: 3 earlier, USD 160 → no; v-4: USD 220 → yes.
    assert statuses == {"v-2": "clear", "v-3": "clear", "v-4": "flagged", "elsewhere": "clear"}
    [hit] = hits(db)
    assert hit.reference == "v-4"
    assert hit.values == {'account_count("1h")': "4", 'account_sum("1h")': "220.00"}


def test_a_batch_computes_its_windows_in_one_statement_whatever_its_size(client, admin_headers, agent_headers):
    publish_rule(client, admin_headers, "Velocity", 'account_count("24h") > 100')
    publish_rule(client, admin_headers, "Weekly sum", 'account_sum("168h") > 1000000')
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(database.engine, "before_cursor_execute", count)
    try:
        for size in (1, 200):
            statements.clear()
            items = [tx_payload(f"b{size}-{i}", account_id=f"acct_{i % 7}") for i in range(size)]
            assert client.post("/transactions/batch", json={"items": items}, headers=agent_headers).status_code == 200
            assert sum("FROM transactions t" in s for s in statements) == 1
    finally:
        event.remove(database.engine, "before_cursor_execute", count)


def test_in_list_reads_the_list_as_it_is_now(client, admin_headers, agent_headers, db):
    client.put("/api/lists/blocked", json={"items": ["Evil Corp"]}, headers=admin_headers)
    publish_rule(client, admin_headers, "Blocked counterparty", 'in_list("blocked", tx.counterparty)', risk=99)
    first = client.post("/transactions", json=tx_payload("l-1", counterparty="Evil Corp"), headers=agent_headers)
    assert first.json()["review_status"] == "flagged"
    client.delete("/api/lists/blocked/items/Evil Corp", headers=admin_headers)
    second = client.post("/transactions", json=tx_payload("l-2", counterparty="Evil Corp"), headers=agent_headers)
    assert second.json()["review_status"] == "clear"
    assert hits(db)[0].values == {"tx.counterparty": '"Evil Corp"',
                                  'in_list("blocked", tx.counterparty)': "true"}


def test_a_snoozed_rule_records_its_hit_for_that_account_but_opens_no_case(
        client, admin_headers, analyst_headers, agent_headers, db):
    rule = publish_rule(client, admin_headers, "Any USD", 'tx.currency == "USD"')
    snoozed = client.post(f"{RULES}/{rule['id']}/snoozes", headers=analyst_headers, json={
        "account_id": "acct_1", "until": "2099-01-01T00:00:00Z", "reason": "known payroll account"})
    if snoozed.status_code == 422:  # snoozes are bounded (90 days): ask for tomorrow
        until = rows(db, "SELECT to_char(now() + interval '1 day', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')")[0][0]
        snoozed = client.post(f"{RULES}/{rule['id']}/snoozes", headers=analyst_headers, json={
            "account_id": "acct_1", "until": until, "reason": "known payroll account"})
    assert snoozed.status_code == 201, snoozed.text
    quiet = client.post("/transactions", json=tx_payload("s-1"), headers=agent_headers)
    loud = client.post("/transactions", json=tx_payload("s-2", account_id="acct_2"), headers=agent_headers)
    assert (quiet.json()["review_status"], loud.json()["review_status"]) == ("clear", "flagged")
    assert [(h.reference, h.snoozed, h.case_id is None) for h in hits(db)] == [("s-1", True, True),
                                                                              ("s-2", False, False)]


def test_a_rule_on_the_score_joins_the_open_case_and_raises_its_risk(client, admin_headers, agent_headers, db):
    publish_rule(client, admin_headers, "Device and score",
                 'event == "risk_score.posted" && score.value >= 50 && "new_device" in score.reasons', risk=95)
    publish_rule(client, admin_headers, "Large", "tx.amount > 100", risk=60)
    client.post("/transactions", json=tx_payload("sc-1"), headers=agent_headers)
    assert case_of(db, "sc-1").risk == 60
    posted = client.post("/transactions/sc-1/risk-scores", headers=agent_headers, json={
        "score": 55, "model": "fraud-v3", "reasons": [{"code": "new_device", "description": "first seen today"}]})
    assert posted.status_code == 201, posted.text
    assert posted.json()["flagged"] is True
    case = case_of(db, "sc-1")
    assert posted.json()["case_id"] == case.id and case.risk == 95
    on_score = [h for h in hits(db) if h.event == "risk_score.posted"]
    # The amount rule reads neither score nor event: a score cannot change its answer, so it ran once.
    assert [(h.name, h.case_id) for h in on_score] == [("Device and score", case.id)]
    assert on_score[0].values == {"score.value": "55", "score.reasons": '["new_device"]'}


def test_a_new_published_version_runs_from_the_next_request(client, admin_headers, agent_headers, db):
    rule = publish_rule(client, admin_headers, "Threshold", "tx.amount > 1000")
    client.post("/transactions", json=tx_payload("p-1", amount="500.00"), headers=agent_headers)
    client.put(f"{RULES}/{rule['id']}", json={"condition": "tx.amount > 100"}, headers=admin_headers)
    client.post("/transactions", json=tx_payload("p-2", amount="500.00"), headers=agent_headers)  # v1 still runs
    client.post(f"{RULES}/{rule['id']}/publish", json={"version": 2, "mode": "active"}, headers=admin_headers)
    client.post("/transactions", json=tx_payload("p-3", amount="500.00"), headers=agent_headers)
    client.post(f"{RULES}/{rule['id']}/disable", headers=admin_headers)
    client.post("/transactions", json=tx_payload("p-4", amount="500.00"), headers=agent_headers)
    assert [(h.reference, h.version) for h in hits(db)] == [("p-3", 2)]


def test_no_running_rule_means_no_rule_statement(client, agent_headers):
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    client.post("/transactions", json=tx_payload("warm"), headers=agent_headers)  # the cache learns "no rules"
    event.listen(database.engine, "before_cursor_execute", count)
    try:
        assert client.post("/transactions", json=tx_payload("quiet"), headers=agent_headers).status_code == 200
    finally:
        event.remove(database.engine, "before_cursor_execute", count)
    assert not [s for s in statements if "rule_" in s.replace("rules_generation", "").replace(
        "FROM rule_generation", "")]


def test_hits_commit_or_roll_back_with_their_transaction(client, admin_headers, agent_headers, db):
    publish_rule(client, admin_headers, "Any", "true")
    ok = client.post("/transactions", json=tx_payload("t-1"), headers=agent_headers)
    clash = client.post("/transactions", json=tx_payload("t-1", amount="1.00"), headers=agent_headers)
    assert (ok.status_code, clash.status_code) == (200, 409)
    assert len(hits(db)) == 1
    assert rows(db, "SELECT count(*) FROM review_cases")[0][0] == 1
