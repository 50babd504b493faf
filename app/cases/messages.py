"""What a decision did, worded for a person: the API's `message` and the screen's notice."""

from app import money
from app.cases.decisions import DecisionOutcome
from app.cases.enums import CaseKind, CaseState


def reason_label(code: str | None) -> str:
    """"Matched manually" for `matched_manually`."""
    return (code or "").replace("_", " ").capitalize()


def decision_message(outcome: DecisionOutcome) -> str:
    """'Case 7 approved.', 'Case 9 resolved: matched manually.', or why a first approval needs a second reviewer."""
    pending = outcome.second_approval
    if pending is None:
        if outcome.case.kind == CaseKind.RECONCILIATION and outcome.state == CaseState.APPROVED:
            return f"Case {outcome.case.id} resolved: {reason_label(outcome.case.reason_code).lower()}."
        return f"Case {outcome.case.id} {outcome.state}."
    return (
        f"First approval recorded. {money.display(pending.amount, pending.currency)} is above the "
        f"dual-control threshold of {money.display(pending.threshold, pending.currency)}; "
        "a second, different reviewer must approve."
    )
