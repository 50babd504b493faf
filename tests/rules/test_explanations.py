"""Explanations: why a rule flagged a payment, with the values its condition read, wherever the case is read."""

import json

from app.audit import checkpoints, evidence
from tests.conftest import tx_payload
from tests.rules.test_hot_path import publish_rule

CONDITION = 'tx.amount > 1000 && account_count("24h") == 0'


def flagged(client, admin_headers, agent_headers) -> dict:
    rule = publish_rule(client, admin_headers, "Large first payment", CONDITION, risk=85,
                        reason="large first payment on the account")
    publish_rule(client, admin_headers, "Shadow EUR check", 'tx.currency == "USD"', mode="shadow", risk=30)
    created = client.post("/transactions", json=tx_payload("why-1", amount="12500.00", counterparty="Acme"),
                          headers=agent_headers)
    assert created.json()["review_status"] == "flagged"
    return rule


def test_the_case_explains_each_rule_hit_with_the_values_it_read(client, admin_headers, agent_headers,
                                                                 analyst_headers):
    rule = flagged(client, admin_headers, agent_headers)
    [case] = client.get("/api/cases", headers=analyst_headers).json()["items"]
    detail = client.get(f"/api/cases/{case['id']}", headers=analyst_headers).json()
    assert detail["explanations"] == [
        {"rule_id": rule["id"], "rule_name": "Large first payment", "version": 1, "mode": "active", "risk": 85,
         "reason": "large first payment on the account",
         "values": {"tx.amount": "12500.00", 'account_count("24h")': "0"}},
        {"rule_id": rule["id"] + 1, "rule_name": "Shadow EUR check", "version": 1, "mode": "shadow", "risk": 30,
         "reason": "Shadow EUR check", "values": {"tx.currency": '"USD"'}},
    ]
    assert detail["case"]["risk"] == 85


def test_the_account_context_carries_the_rule_hits_for_agents(client, admin_headers, agent_headers):
    flagged(client, admin_headers, agent_headers)
    context = client.get("/accounts/acct_1/context", headers=agent_headers).json()
    hits = context["rule_hits"]
    assert [(h["rule_name"], h["transaction_reference"], h["mode"]) for h in hits] == [
        ("Shadow EUR check", "why-1", "shadow"), ("Large first payment", "why-1", "active")]
    assert hits[1]["values"] == {"tx.amount": "12500.00", 'account_count("24h")': "0"}
    assert client.get("/accounts/acct_9/context", headers=agent_headers).json()["rule_hits"] == []


def test_the_evidence_pack_holds_the_explanations_and_still_verifies(client, admin_headers, agent_headers):
    flagged(client, admin_headers, agent_headers)
    [case] = client.get("/api/cases", headers=admin_headers).json()["items"]
    answer = client.get(f"/api/cases/{case['id']}/evidence", headers=admin_headers)
    published = client.get("/api/audit/public-key").json()
    problems, pack = evidence.verify_pack(answer.content, checkpoints.load_public_key(published["public_key"]))
    assert problems == [] and pack is not None
    assert [(h["rule_name"], h["mode"], h["values"]) for h in pack["rule_hits"]] == [
        ("Large first payment", "active", {"tx.amount": "12500.00", 'account_count("24h")': "0"}),
        ("Shadow EUR check", "shadow", {"tx.currency": '"USD"'}),
    ]
    # An edited explanation no longer verifies.
    pack["rule_hits"][0]["values"]["tx.amount"] = "125.00"
    edited = json.dumps(pack).encode()
    assert "section rule_hits differs from the signed manifest" in evidence.verify_pack(
        edited, checkpoints.load_public_key(published["public_key"]))[0]
