"""Reconciliation cases are resolved with their own outcomes, not fraud reasons."""

import pytest

from tests.cases.conftest import case_row, event_count, reconciliation_case
from tests.transactions.conftest import assert_rejected


@pytest.mark.parametrize("outcome", ["matched_manually", "ledger_corrected", "bank_error", "written_off"])
def test_each_outcome_resolves_the_case(desk, db, alice, outcome):
    case_id = reconciliation_case(db)

    response = desk.decide(case_id, alice, "approve", outcome)

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["state"], body["reason_code"]) == ("approved", outcome)
    assert body["message"] == f"Case {case_id} resolved: {outcome.replace('_', ' ')}."
    summaries = [e["summary"] for e in desk.detail(case_id, alice)["timeline"]]
    assert f"alice resolved the case: {outcome.replace('_', ' ')}" in summaries


def test_escalating_takes_an_outcome_or_needs_more_info(desk, db, alice):
    case_id = reconciliation_case(db)
    assert desk.decide(case_id, alice, "escalate", "needs_more_info", note="ask the bank").status_code == 200


@pytest.mark.parametrize(("decision", "code", "field"), [
    ("approve", "false_positive", "reason_code"),
    ("approve", "needs_more_info", "reason_code"),
    ("escalate", "suspected_fraud", "reason_code"),
    ("reject", "bank_error", "decision"),
])
def test_fraud_reasons_and_reject_are_refused_on_a_reconciliation_case(desk, db, alice, decision, code, field):
    case_id = reconciliation_case(db)
    before = case_row(db, case_id), event_count(db)

    assert_rejected(desk.decide(case_id, alice, decision, code, note="n"), field)
    assert (case_row(db, case_id), event_count(db)) == before


def test_a_transactions_case_refuses_reconciliation_outcomes(desk, db, alice):
    case_id = desk.flagged_case("ref-1", 80)
    response = desk.decide(case_id, alice, "approve", "written_off")
    assert_rejected(response, "reason_code")
    assert "outcome for reconciliation cases" in response.text
