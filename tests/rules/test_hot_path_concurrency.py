"""Creates and scores racing a publish, against a real uvicorn with real threads.

Each request runs the rule set of the generation it read: the old version or the new one,
never a mix, and never a 5xx. Nothing here measures time.
"""

from functools import partial

from tests.conftest import assert_no_server_errors, run_together, tx_payload
from tests.rules.test_api_rules import RULES, rows

CONDITION = 'tx.amount > 100 || (event == "risk_score.posted" && score.value > 10)'


def test_creates_and_scores_racing_a_publish_each_run_one_whole_version(http, admin_headers, agent_headers, db):
    made = http.post(RULES, headers=admin_headers, json={
        "name": "Racing", "condition": CONDITION, "mode": "active", "action": {"risk": 50, "reason": "v1"}})
    assert made.status_code == 201, made.text
    rule_id = made.json()["id"]
    edited = http.put(f"{RULES}/{rule_id}", headers=admin_headers, json={"action": {"risk": 90, "reason": "v2"}})
    assert edited.status_code == 200, edited.text
    for i in range(8):  # small payments: only their scores can make the rule match
        assert http.post("/transactions", json=tx_payload(f"pre-{i}", amount="5.00"),
                         headers=agent_headers).status_code == 200

    for round_no in range(3):
        version = 2 if round_no % 2 == 0 else 1
        score = {"score": 20 + round_no, "model": "m", "reasons": [{"code": "c", "description": "d"}]}
        calls = [partial(http.post, f"{RULES}/{rule_id}/publish", json={"version": version, "mode": "active"},
                         headers=admin_headers)]
        calls += [partial(http.post, "/transactions", json=tx_payload(f"r{round_no}-{n}", amount="500.00"),
                          headers=agent_headers) for n in range(10)]
        calls += [partial(http.post, f"/transactions/pre-{n}/risk-scores", json=score, headers=agent_headers)
                  for n in range(8)]
        responses = run_together(calls)
        assert_no_server_errors(responses)
        assert [r.status_code for r in responses] == [200] + [200] * 10 + [201] * 8

    hits = rows(db, "SELECT h.version, h.risk, h.reason, h.case_id, c.risk AS case_risk FROM rule_hits h "
                    "LEFT JOIN review_cases c ON c.id = h.case_id")
    assert len(hits) == 3 * (10 + 8)
    for hit in hits:
        # A hit carries the action of the version that ran, whole: (1, 50, "v1") or (2, 90, "v2").
        assert (hit.version, hit.risk, hit.reason) in {(1, 50, "v1"), (2, 90, "v2")}
        assert hit.case_id is not None and hit.case_risk >= hit.risk
    # Every created payment was flagged by the version that ran for it: its case has that risk.
    created = rows(db, "SELECT h.risk, c.risk AS case_risk FROM rule_hits h JOIN review_cases c ON c.id = h.case_id "
                       "WHERE h.event = 'transaction.created'")
    assert all(row.risk == row.case_risk for row in created)
    # After the race, the rule runs its last published version (round 2 published v2).
    after = http.post("/transactions", json=tx_payload("after", amount="500.00"), headers=agent_headers)
    assert after.json()["review_status"] == "flagged"
    assert rows(db, "SELECT h.version FROM rule_hits h JOIN transactions t ON t.id = h.transaction_id "
                    "WHERE t.reference = 'after'")[0].version == 2
