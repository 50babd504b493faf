"""Settings API: validated with the field named, audited with before/after, effective on the next request."""

import pytest
from sqlalchemy import select

from app.audit.models import AuditEvent
from tests.conftest import tx_payload


@pytest.fixture
def admin(users):
    return users.headers("admin", username="root")


def test_a_threshold_of_150_is_refused_naming_the_field_and_nothing_changes(client, admin, db):
    response = client.patch("/api/settings", json={"flag_threshold": 150}, headers=admin)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["field"] == "flag_threshold" and "100" in error["msg"]
    assert client.get("/api/settings", headers=admin).json()["flag_threshold"] == 70
    assert db.scalars(select(AuditEvent).where(AuditEvent.action == "setting.changed")).all() == []


@pytest.mark.parametrize(("body", "field"), [
    ({"flag_threshold": -1}, "flag_threshold"), ({"flag_threshold": 70.5}, "flag_threshold"),
    ({"dual_control_threshold": "0"}, "dual_control_threshold"),
    ({"dual_control_threshold": "abc"}, "dual_control_threshold"),
    ({"claim_lease_minutes": 0}, "claim_lease_minutes"), ({"claim_lease_minutes": 481}, "claim_lease_minutes"),
    ({"sla_hours_risk": 0}, "sla_hours_risk"), ({"sla_hours_reconciliation": 10_000}, "sla_hours_reconciliation"),
    ({"unknown": 1}, "unknown"),
])
def test_out_of_range_settings_are_refused(client, admin, body, field):
    response = client.patch("/api/settings", json=body, headers=admin)
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == field


def test_changes_are_audited_with_before_and_after(client, admin, db):
    response = client.patch("/api/settings", json={"flag_threshold": 55, "dual_control_threshold": "2500.50",
                                                   "claim_lease_minutes": 30, "sla_hours_risk": 8}, headers=admin)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["flag_threshold"], body["dual_control_threshold"], body["claim_lease_minutes"],
            body["sla_hours_risk"], body["sla_hours_reconciliation"]) == (55, "2500.50", 30, 8, 72)
    changes = {e.entity_id: (e.before, e.after) for e in
               db.scalars(select(AuditEvent).where(AuditEvent.action == "setting.changed"))}
    assert changes["flag_threshold"] == ({"flag_threshold": 70}, {"flag_threshold": 55})
    assert changes["dual_control_threshold"] == ({"dual_control_threshold": "10000"},
                                                 {"dual_control_threshold": "2500.50"})
    # Saving the same values again changes nothing and records nothing.
    client.patch("/api/settings", json={"flag_threshold": 55}, headers=admin)
    assert len(db.scalars(select(AuditEvent).where(AuditEvent.action == "setting.changed")).all()) == 4


def test_a_lower_flag_threshold_flags_the_next_score(client, admin, agent_headers):
    client.post("/transactions", json=tx_payload("before"), headers=agent_headers)
    client.post("/transactions", json=tx_payload("after"), headers=agent_headers)
    score = {"score": 60, "model": "m", "reasons": []}
    assert client.post("/transactions/before/risk-scores", json=score, headers=agent_headers).json()["flagged"] is False
    assert client.patch("/api/settings", json={"flag_threshold": 60}, headers=admin).status_code == 200
    assert client.post("/transactions/after/risk-scores", json=score, headers=agent_headers).json()["flagged"] is True


def test_amount_rules_are_added_changed_and_removed(client, admin, agent_headers, db):
    assert client.put("/api/settings/amount-rules/JPY", json={"threshold": "500000"}, headers=admin).status_code == 200
    response = client.put("/api/settings/amount-rules/JPY", json={"threshold": 100000}, headers=admin)
    assert response.json()["amount_rules"] == [{"currency": "JPY", "threshold": "100000"}]
    client.post("/transactions", json=tx_payload("yen", amount="150000", currency="JPY"), headers=agent_headers)
    flagged = client.post("/transactions/yen/risk-scores", json={"score": 1, "model": "m", "reasons": []},
                          headers=agent_headers)
    assert flagged.json()["flagged"] is True
    assert client.delete("/api/settings/amount-rules/JPY", headers=admin).json()["amount_rules"] == []
    assert client.delete("/api/settings/amount-rules/JPY", headers=admin).status_code == 404
    actions = [e.action for e in db.scalars(select(AuditEvent).where(AuditEvent.entity_type == "amount_rule")
                                             .order_by(AuditEvent.id))]
    assert actions == ["amount_rule.changed", "amount_rule.changed", "amount_rule.removed"]


@pytest.mark.parametrize(("currency", "body", "field"), [
    ("JPY", {"threshold": "100.5"}, "threshold"),      # JPY has no minor unit
    ("USD", {"threshold": "0"}, "threshold"),
    ("USD", {"threshold": "-5"}, "threshold"),
    ("USD", {"threshold": "1e20"}, "threshold"),
    ("XXX", {"threshold": "100"}, "currency"),
    ("usd", {"threshold": "100"}, "currency"),
])
def test_invalid_amount_rules_are_refused(client, admin, currency, body, field):
    response = client.put(f"/api/settings/amount-rules/{currency}", json=body, headers=admin)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["field"] == field
