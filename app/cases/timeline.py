"""The case timeline in sentences: each audit event of the case and its transaction, said
the way an analyst would say it ("alice claimed the case, lease until 21:29 UTC",
"Score 91 from fraud-v3: new device"), money as every screen shows it.

The raw event (before, after, reason) stays in the API beside the sentence; an action
this module does not know yet reads as its name and the values it changed.
"""

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from app import money
from app.cases.messages import reason_label

Event = Mapping[str, Any]


def _time(value: Any) -> str:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    return (moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)).strftime("%H:%M UTC")


def _amount(after: Mapping[str, Any]) -> str:
    try:
        return money.display(Decimal(str(after.get("amount"))), str(after.get("currency")))
    except (InvalidOperation, KeyError, ValueError):
        return f"{after.get('amount')} {after.get('currency')}"


def _opened(event: Event, after: Mapping[str, Any]) -> str:
    if after.get("kind") == "reconciliation":
        return f"Reconciliation case opened for bank event {after.get('bank_reference')}: {event.get('reason')}"
    return f"Case opened at risk {after.get('risk')}: {event.get('reason')}"


def _decided(verb: str) -> Callable[[Event, Mapping[str, Any]], str]:
    def say(event: Event, after: Mapping[str, Any]) -> str:
        return f"{event['actor']} {verb} the case: {reason_label(after.get('reason_code')).lower()}"
    return say


def _approved(event: Event, after: Mapping[str, Any]) -> str:
    code = after.get("reason_code")
    if code in ("matched_manually", "ledger_corrected", "bank_error", "written_off"):
        return f"{event['actor']} resolved the case: {reason_label(code).lower()}"
    return _decided("approved")(event, after)


def _score(event: Event, after: Mapping[str, Any], score_reasons: Mapping[int, str]) -> str:
    text = f"Score {after.get('score')} from {after.get('model')}"
    reasons = score_reasons.get(after.get("score_id") or 0)
    flagged = " (flagged)" if after.get("flagged") else ""
    return f"{text}{flagged}: {reasons}" if reasons else f"{text}{flagged}"


def _review_status(event: Event, after: Mapping[str, Any]) -> str:
    before = (event.get("before") or {}).get("review_status")
    return f"Review status of {event['entity_id']}: {before} → {after.get('review_status')}"


SENTENCES: dict[str, Callable[[Event, Mapping[str, Any]], str]] = {
    "case.opened": _opened,
    "case.claimed": lambda e, a: f"{e['actor']} claimed the case, lease until {_time(a.get('lease_expires_at'))}",
    "case.claim_renewed": lambda e, a: f"{e['actor']} kept the claim, lease until {_time(a.get('lease_expires_at'))}",
    "case.released": lambda e, a: f"{e['actor']} released the case back to the queue",
    "case.first_approval": lambda e, a: f"{e['actor']} gave the first approval; a second reviewer must approve",
    "case.approved": _approved,
    "case.rejected": _decided("rejected"),
    "case.escalated": _decided("escalated"),
    "case.commented": lambda e, a: f"{e['actor']} commented",
    "case.risk_raised": lambda e, a: f"Risk raised from {(e.get('before') or {}).get('risk')} to {a.get('risk')}",
    "case.flag_grouped": lambda e, a: f"A flag on payment {a.get('transaction')} joined the case "
                                      f"(score {a.get('risk')})",
    "transaction.created": lambda e, a: f"Payment {e['entity_id']} of {_amount(a)} created by {e['actor']}",
    "transaction.settled": lambda e, a: f"Payment {e['entity_id']} settled",
    "transaction.failed": lambda e, a: f"Payment {e['entity_id']} failed",
    "transaction.review_status_changed": _review_status,
}


def summary(event: Event, score_reasons: Mapping[int, str]) -> str:
    """One sentence for the event; `score_reasons` gives each score id's reasons in words."""
    after = event.get("after") or {}
    if event["action"] == "risk_score.posted":
        return _score(event, after, score_reasons)
    say = SENTENCES.get(event["action"])
    if say is not None:
        return say(event, after)
    changed = ", ".join(f"{key.replace('_', ' ')} {value}" for key, value in after.items() if value is not None)
    name = event["action"].replace(".", " ").replace("_", " ")
    return f"{event['actor']}: {name}" + (f" ({changed})" if changed else "")


def score_reasons(scores: list[Any]) -> dict[int, str]:
    """Each score's reasons as one phrase: "new device, 9 payments in 10 minutes"."""
    return {s.id: ", ".join(r.get("description") or r.get("code", "") for r in s.reasons) for s in scores}
