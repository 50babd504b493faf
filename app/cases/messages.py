"""What a decision did, worded for a person: the API's `message` and the screen's notice."""

from app import money
from app.cases.decisions import DecisionOutcome


def decision_message(outcome: DecisionOutcome) -> str:
    """'Case 7 approved.', or why a first approval needs a second reviewer."""
    pending = outcome.second_approval
    if pending is None:
        return f"Case {outcome.case.id} {outcome.state}."
    amount = money.format_amount(pending.amount, pending.currency)
    threshold = money.format_amount(pending.threshold, pending.currency)
    return (
        f"First approval recorded. {amount} {pending.currency} is above the "
        f"dual-control threshold of {threshold} {pending.currency}; a second, different reviewer must approve."
    )
