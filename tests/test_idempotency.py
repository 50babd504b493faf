"""Idempotency-Key on writes: a retry replays the stored answer; a reused key with another body is refused."""

from concurrent.futures import ThreadPoolExecutor

import httpx
from sqlalchemy import func, select, text

from app.risk.models import RiskScore
from tests.conftest import tx_payload

SCORE = {"score": 88, "model": "fraud-gbm", "reasons": [{"code": "velocity", "description": "fast"}]}


def scores(db) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(RiskScore))


def with_key(headers: dict, key: str | bytes) -> dict:
    return {**headers, "Idempotency-Key": key}


def test_a_retried_risk_score_is_replayed_not_posted_twice(client, agent_headers, db):
    client.post("/transactions", json=tx_payload("r1"), headers=agent_headers)
    first = client.post("/transactions/r1/risk-scores", json=SCORE, headers=with_key(agent_headers, "k-1"))
    again = client.post("/transactions/r1/risk-scores", json=SCORE, headers=with_key(agent_headers, "k-1"))

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert scores(db) == 1


def test_the_same_key_with_a_different_body_is_refused_and_changes_nothing(client, agent_headers, db):
    client.post("/transactions", json=tx_payload("r1"), headers=agent_headers)
    client.post("/transactions/r1/risk-scores", json=SCORE, headers=with_key(agent_headers, "k-1"))
    response = client.post("/transactions/r1/risk-scores", json={**SCORE, "score": 10},
                           headers=with_key(agent_headers, "k-1"))
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "Idempotency-Key"
    assert scores(db) == 1


def test_a_retried_decision_gets_its_answer_back_instead_of_a_conflict(client, users, agent_headers):
    analyst = users.headers("analyst")
    client.post("/transactions", json=tx_payload("r1"), headers=agent_headers)
    case_id = client.post("/transactions/r1/risk-scores", json=SCORE, headers=agent_headers).json()["case_id"]
    body = {"decision": "reject", "reason_code": "suspected_fraud", "note": "card testing"}
    first = client.post(f"/api/cases/{case_id}/decision", json=body, headers=with_key(analyst, "d-1"))
    again = client.post(f"/api/cases/{case_id}/decision", json=body, headers=with_key(analyst, "d-1"))
    plain = client.post(f"/api/cases/{case_id}/decision", json=body, headers=analyst)

    assert first.status_code == again.status_code == 200 and again.json() == first.json()
    assert plain.status_code == 409  # without the key a second decision is a conflict, as before


def test_a_retried_settlement_is_replayed(client, agent_headers):
    client.post("/transactions", json=tx_payload("r1"), headers=agent_headers)
    body = {"status": "settled"}
    first = client.post("/transactions/r1/settlement", json=body, headers=with_key(agent_headers, "s-1"))
    again = client.post("/transactions/r1/settlement", json=body, headers=with_key(agent_headers, "s-1"))
    assert first.status_code == again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true" and again.json() == first.json()


def test_keys_belong_to_their_caller(client, users, db):
    one, two = users.headers("agent"), users.headers("agent")
    client.post("/transactions", json=tx_payload("r1"), headers=one)
    client.post("/transactions/r1/risk-scores", json=SCORE, headers=with_key(one, "shared"))
    response = client.post("/transactions/r1/risk-scores", json=SCORE, headers=with_key(two, "shared"))
    assert response.status_code == 201 and "Idempotent-Replayed" not in response.headers
    assert scores(db) == 2


def test_a_failed_request_is_not_stored_so_it_can_be_retried(client, agent_headers, db):
    missing = client.post("/transactions/later/risk-scores", json=SCORE, headers=with_key(agent_headers, "k-9"))
    assert missing.status_code == 404
    client.post("/transactions", json=tx_payload("later"), headers=agent_headers)
    retried = client.post("/transactions/later/risk-scores", json=SCORE, headers=with_key(agent_headers, "k-9"))
    assert retried.status_code == 201 and scores(db) == 1


def test_an_expired_key_can_be_used_again(client, agent_headers, db):
    client.post("/transactions", json=tx_payload("r1"), headers=agent_headers)
    client.post("/transactions/r1/risk-scores", json=SCORE, headers=with_key(agent_headers, "old"))
    db.execute(text("UPDATE idempotency_keys SET expires_at = now() - interval '1 second'"))
    db.commit()
    response = client.post("/transactions/r1/risk-scores", json=SCORE, headers=with_key(agent_headers, "old"))
    assert response.status_code == 201 and "Idempotent-Replayed" not in response.headers
    assert scores(db) == 2


def test_keys_are_kept_at_least_24_hours(client, agent_headers, db):
    client.post("/transactions", json=tx_payload("r1"), headers=agent_headers)
    client.post("/transactions/r1/risk-scores", json=SCORE, headers=with_key(agent_headers, "k-1"))
    kept = db.execute(text("SELECT expires_at - created_at >= interval '24 hours' FROM idempotency_keys")).scalar()
    assert kept is True


def test_a_malformed_key_is_422_naming_the_header(client, agent_headers):
    client.post("/transactions", json=tx_payload("r1"), headers=agent_headers)
    for key in ("x" * 256, " padded", "naïve".encode()):
        response = client.post("/transactions/r1/risk-scores", json=SCORE, headers=with_key(agent_headers, key))
        assert response.status_code == 422, key
        assert response.json()["detail"][0]["field"] == "Idempotency-Key"


def test_concurrent_requests_with_one_key_act_once(live_server, users, db):
    agent = users.headers("agent")
    httpx.post(f"{live_server}/transactions", json=tx_payload("r1"), headers=agent)

    def post(_):
        return httpx.post(f"{live_server}/transactions/r1/risk-scores", json=SCORE,
                          headers=with_key(agent, "race"), timeout=30)

    with ThreadPoolExecutor(max_workers=10) as pool:
        responses = list(pool.map(post, range(10)))

    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert scores(db) == 1
