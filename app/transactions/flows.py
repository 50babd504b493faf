"""Creating transactions across domains: the insert (service), then the rules that run on it.

Every create goes through here (a single POST, a commit group, a batch), so the rules see each
new transaction once, in the same unit of work: a flagging hit's case, the hits and their audit
events commit with the transaction itself, and the answer shows the transaction flagged.
"""

from collections.abc import Mapping, Sequence
from typing import Any

from app.audit.service import Actor
from app.errors import Conflict
from app.rules import flows as rules
from app.transactions import service
from app.transactions.enums import ReviewStatus
from app.transactions.schemas import TransactionCreate
from app.transactions.service import CreateOutcome, NewTransaction
from app.uow.unit import AnySession


def create_many(*, session: AnySession, items: Sequence[NewTransaction]) -> list[CreateOutcome | Conflict]:
    """service.create_many, then the rules on the transactions it inserted."""
    outcomes = service.create_many(session=session, items=items)
    fresh = [(outcome, item) for outcome, item in zip(outcomes, items)
             if isinstance(outcome, CreateOutcome) and outcome.created]
    if not fresh:
        return outcomes
    rows: list[Mapping[str, Any]] = [
        outcome.transaction._mapping for outcome, _ in fresh  # type: ignore[union-attr,misc]  # fresh rows are Rows
    ]
    opened = rules.after_create(session, rows, {row["id"]: item.actor for row, (_, item) in zip(rows, fresh)})
    if not opened:
        return outcomes
    flagged = []
    for outcome in outcomes:
        if isinstance(outcome, CreateOutcome) and outcome.created:
            columns = outcome.transaction._mapping  # type: ignore[union-attr]  # fresh rows are Rows
            if columns["id"] in opened:
                outcome = CreateOutcome({**columns, "review_status": ReviewStatus.FLAGGED.value}, created=True)
        flagged.append(outcome)
    return flagged


def create(*, session: AnySession, actor: Actor, data: TransactionCreate) -> CreateOutcome:
    """The new transaction, or the original one for an identical replay; Conflict otherwise."""
    (outcome,) = create_many(session=session, items=[NewTransaction(data, actor)])
    if isinstance(outcome, Conflict):
        raise outcome
    return outcome
