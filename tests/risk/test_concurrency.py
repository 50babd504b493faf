"""Concurrent scores against a real uvicorn: one transaction never gets two open cases."""

from app.audit import chain
from tests.cases.conftest import case_count, case_row, events, review_status
from tests.conftest import assert_no_server_errors, run_together, tx_payload

WORKERS = 20


def test_twenty_parallel_flagged_scores_open_exactly_one_case(http, users, db):
    agent = users.headers("agent", "scorer")
    assert http.post("/transactions", json=tx_payload("race-1"), headers=agent).status_code == 200
    scores = [70 + n for n in range(WORKERS)]  # 70…89, all flagging
    calls = [
        (lambda score=score: http.post(
            "/transactions/race-1/risk-scores", json={"score": score, "model": "m"}, headers=agent
        ))
        for score in scores
    ]
    responses = run_together(calls)

    assert_no_server_errors(responses)
    assert [r.status_code for r in responses] == [201] * WORKERS, [r.text for r in responses]
    case_ids = {r.json()["case_id"] for r in responses}
    assert len(case_ids) == 1
    [case_id] = case_ids
    assert case_id is not None
    assert all(r.json()["flagged"] for r in responses)
    assert case_count(db) == 1
    assert case_row(db, case_id)["risk"] == max(scores)
    assert review_status(db, "race-1") == "flagged"
    assert len(events(db, "risk_score.posted", entity_id="race-1")) == WORKERS
    assert len(events(db, "case.opened")) == 1
    assert len(events(db, "transaction.review_status_changed", entity_id="race-1")) == 1
    assert chain.verify(db.connection()).ok


def test_parallel_flagged_scores_on_different_transactions_open_one_case_each(http, users, db):
    agent = users.headers("agent", "scorer")
    references = [f"multi-{n}" for n in range(5)]
    for reference in references:
        assert http.post("/transactions", json=tx_payload(reference), headers=agent).status_code == 200
    calls = [
        (lambda reference=reference: http.post(
            f"/transactions/{reference}/risk-scores", json={"score": 90, "model": "m"}, headers=agent
        ))
        for reference in references
        for _ in range(4)
    ]
    responses = run_together(calls)

    assert_no_server_errors(responses)
    assert {r.status_code for r in responses} == {201}
    assert case_count(db) == len(references)
    by_reference: dict[str, set[int]] = {}
    for call_index, response in enumerate(responses):
        by_reference.setdefault(references[call_index // 4], set()).add(response.json()["case_id"])
    assert all(len(ids) == 1 for ids in by_reference.values())
    assert len({next(iter(ids)) for ids in by_reference.values()}) == len(references)
