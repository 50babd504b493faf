"""GET /accounts/{account_id}/context: one bounded call with what an agent needs about an account."""

from sqlalchemy import text

from tests.conftest import tx_payload


def post_tx(client, headers, reference, **fields):
    payload = tx_payload(reference, account_id="acct_ctx", **fields)
    response = client.post("/transactions", json=payload, headers=headers)
    assert response.status_code == 200, response.text


def score(client, headers, reference, value):
    body = {"score": value, "model": "fraud-gbm", "reasons": [{"code": "velocity", "description": "fast"}]}
    response = client.post(f"/transactions/{reference}/risk-scores", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def test_context_summarises_transactions_cases_decisions_scores_and_policy(client, users, db):
    agent = users.headers("agent")
    analyst = users.headers("analyst", "alice")
    post_tx(client, agent, "c-1", amount="100.00")
    post_tx(client, agent, "c-2", amount="250.50")
    post_tx(client, agent, "c-3", amount="1000", currency="JPY")
    client.post("/transactions", json=tx_payload("elsewhere", account_id="acct_other"), headers=agent)
    score(client, agent, "elsewhere", 95)  # another account's score and case stay out of this context
    score(client, agent, "c-1", 20)
    flagged = score(client, agent, "c-2", 90)
    decided = score(client, agent, "c-3", 75)
    response = client.post(f"/api/cases/{decided['case_id']}/decision",
                           json={"decision": "reject", "reason_code": "suspected_fraud", "note": "card testing"},
                           headers=analyst)
    assert response.status_code == 200
    db.execute(text("INSERT INTO amount_rules (currency, threshold) VALUES ('USD', 5000)"))
    db.commit()

    context = client.get("/accounts/acct_ctx/context", headers=agent).json()

    assert context["account_id"] == "acct_ctx"
    assert [t["reference"] for t in context["recent_transactions"]] == ["c-3", "c-2", "c-1"]
    assert {(t["currency"], t["status"], t["count"], t["amount"]) for t in context["totals"]} == {
        ("USD", "pending", 2, "350.50"), ("JPY", "pending", 1, "1000"),
    }
    assert [c["id"] for c in context["open_cases"]] == [flagged["case_id"]]
    assert context["recent_decisions"] == [{
        "case_id": decided["case_id"], "transaction_reference": "c-3", "decision": "reject",
        "reason_code": "suspected_fraud", "note": "card testing", "decided_by": "alice",
        "decided_at": context["recent_decisions"][0]["decided_at"],
    }]
    assert context["risk_scores"] == {"count": 3, "flagged": 2, "mean": "61.7", "min": 20, "max": 90, "latest": 75}
    assert context["policy"] == {"flag_threshold": 70, "dual_control_threshold": "10000",
                                 "amount_rules": {"USD": "5000.00"}, "claim_lease_minutes": 15}
    actions = {(a["action"], a["path"]) for a in context["next_actions"]}
    assert ("settle", "/transactions/c-1/settlement") in actions  # clear and pending
    assert not any(path == "/transactions/c-2/settlement" for _, path in actions)  # flagged: review first
    assert not any(action == "claim_case" for action, _ in actions)  # agents do not review


def test_analysts_see_the_cases_they_may_claim(client, users):
    agent = users.headers("agent")
    post_tx(client, agent, "c-1")
    case_id = score(client, agent, "c-1", 95)["case_id"]

    context = client.get("/accounts/acct_ctx/context", headers=users.headers("analyst")).json()

    assert {"action": "claim_case", "method": "POST", "path": f"/api/cases/{case_id}/claim",
            "why": "open, risk 95, unclaimed"} in context["next_actions"]
    assert not any(a["action"] == "settle" for a in context["next_actions"])


def test_an_account_without_transactions_has_an_empty_context(client, users):
    context = client.get("/accounts/nobody/context", headers=users.headers("agent")).json()
    assert context["recent_transactions"] == [] and context["totals"] == [] and context["open_cases"] == []
    assert context["risk_scores"]["count"] == 0 and context["risk_scores"]["mean"] is None


def test_context_is_bounded(client, users):
    agent = users.headers("agent")
    items = [tx_payload(f"b-{n:03d}", account_id="acct_ctx") for n in range(30)]
    assert client.post("/transactions/batch", json={"items": items}, headers=agent).status_code == 200
    context = client.get("/accounts/acct_ctx/context", headers=agent).json()
    assert len(context["recent_transactions"]) == 20
    assert len(context["next_actions"]) <= 20
    assert context["totals"][0]["count"] == 30


def test_context_needs_a_token_and_a_valid_account_id(client, users):
    assert client.get("/accounts/acct_ctx/context").status_code == 401
    response = client.get("/accounts/" + "x" * 65 + "/context", headers=users.headers("agent"))
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "account_id"


def test_context_items_read_exactly_like_their_own_endpoints(client, users):
    """Amounts, times, metadata numbers and case fields are the same as GET /transactions/{ref} and /api/cases/{id}."""
    agent, admin = users.headers("agent"), users.headers("admin")
    post_tx(client, agent, "same-1", amount="1.250", currency="KWD",
            metadata={"ratio": 0.5, "big": 12345678901234567890, "nested": {"n": [1, 2.25]}})
    case_id = score(client, agent, "same-1", 95)["case_id"]
    context = client.get("/accounts/acct_ctx/context", headers=admin).json()
    assert context["recent_transactions"] == [client.get("/transactions/same-1", headers=agent).json()]
    assert context["open_cases"] == [client.get(f"/api/cases/{case_id}", headers=admin).json()["case"]]
    assert context["totals"] == [{"currency": "KWD", "status": "pending", "count": 1, "amount": "1.250"}]


def test_open_cases_are_the_accounts_riskiest_twenty_in_order(client, users):
    agent = users.headers("agent")
    for n in range(25):
        post_tx(client, agent, f"risky-{n:02d}")
        score(client, agent, f"risky-{n:02d}", 70 + n)
    other = tx_payload("elsewhere", account_id="acct_other")
    assert client.post("/transactions", json=other, headers=agent).status_code == 200
    score(client, agent, "elsewhere", 99)

    cases = client.get("/accounts/acct_ctx/context", headers=agent).json()["open_cases"]
    assert [c["transaction_reference"] for c in cases] == [f"risky-{n:02d}" for n in range(24, 4, -1)]
    assert [c["risk"] for c in cases] == list(range(94, 74, -1))


def test_recent_decisions_are_the_accounts_latest_ten(client, users):
    agent, analyst = users.headers("agent"), users.headers("analyst", "alice")
    decided = []
    for n in range(12):
        post_tx(client, agent, f"d-{n:02d}")
        case_id = score(client, agent, f"d-{n:02d}", 80)["case_id"]
        body = {"decision": "reject", "reason_code": "suspected_fraud", "note": f"note {n}"}
        assert client.post(f"/api/cases/{case_id}/decision", json=body, headers=analyst).status_code == 200
        decided.append(case_id)
    client.post("/transactions", json=tx_payload("x-other", account_id="acct_other"), headers=agent)
    other_case = score(client, agent, "x-other", 80)["case_id"]
    body = {"decision": "reject", "reason_code": "suspected_fraud", "note": "other"}
    assert client.post(f"/api/cases/{other_case}/decision", json=body, headers=analyst).status_code == 200

    decisions = client.get("/accounts/acct_ctx/context", headers=agent).json()["recent_decisions"]
    assert [d["case_id"] for d in decisions] == decided[::-1][:10]
    assert [d["transaction_reference"] for d in decisions] == [f"d-{n:02d}" for n in range(11, 1, -1)]
    assert {d["decided_by"] for d in decisions} == {"alice"}


def test_scores_and_cases_carry_their_transactions_account_whoever_writes_them(client, users, db):
    """The context finds scores and cases by account; the database copies it from the transaction."""
    post_tx(client, users.headers("agent"), "c-raw")
    scored = db.execute(text(
        "INSERT INTO risk_scores (transaction_id, account_id, score, model, reasons, is_flagged)"
        " SELECT id, 'acct_wrong', 40, 'bulk', '[]', false FROM transactions WHERE reference = 'c-raw'"
        " RETURNING account_id")).scalar_one()
    with_tx = db.execute(text(
        "INSERT INTO review_cases (kind, transaction_id, risk, reason)"
        " SELECT 'reconciliation', id, 50, 'amount_mismatch' FROM transactions WHERE reference = 'c-raw'"
        " RETURNING id, account_id")).one()
    without_tx = db.execute(text(
        "INSERT INTO review_cases (kind, risk, reason) VALUES ('reconciliation', 50, 'missing_in_ledger')"
        " RETURNING account_id")).scalar_one()
    moved = db.execute(text("UPDATE review_cases SET account_id = 'acct_other' WHERE id = :id RETURNING account_id"),
                       {"id": with_tx.id}).scalar_one()
    db.commit()

    assert (scored, with_tx.account_id, without_tx, moved) == ("acct_ctx", "acct_ctx", None, "acct_ctx")
    context = client.get("/accounts/acct_ctx/context", headers=users.headers("agent")).json()
    assert context["risk_scores"]["count"] == 1
    assert [case["id"] for case in context["open_cases"]] == [with_tx.id]
