"""What the reviewer saw: the case's decision context as a token, and what changed since.

The case page and `GET /api/cases/{id}` carry a token such as
`score:42;tx:pending;grouped:0;bank:0;rules:0` (the newest score over the case's transactions, the
transaction's status, how many flags joined the case, the newest bank event of a
reconciliation case, the newest rule hit). A decision sends it back as `seen`; if anything a reviewer decides on
has moved since, the decision is refused with a 409 that says what ("a new score 91 from
fraud-v3 arrived at 14:02 UTC"), and the screen shows the changed panel in place.

Each part is one `Part` in PARTS: a name, its current value, and a sentence for a change.
A new kind of context is one more Part appended here; tokens a page carried before it
existed then count as having seen nothing of it.
"""

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import BigInteger, func, literal, select, union_all
from sqlalchemy.orm import Session

from app.cases.models import CaseTransaction, ReviewCase
from app.errors import Conflict
from app.reconciliation.models import BankEvent
from app.risk.models import RiskScore
from app.rules.models import Rule, RuleHit
from app.transactions.models import Transaction


@dataclass(frozen=True)
class CaseRef:
    """The case a token describes: its id and its own transaction (None for a loose bank event)."""

    case_id: int
    transaction_id: int | None


@dataclass(frozen=True)
class Part:
    """One thing a reviewer decides on: `read` gives its current value as a short string,
    `explain` says in a sentence what changed from the value the reviewer saw."""

    name: str
    panel: str  # the screen panel that shows it (highlighted when it changed)
    read: Callable[[Session, CaseRef], str]
    explain: Callable[[Session, CaseRef, str, str], str]


class StaleContext(Conflict):
    """A decision made on a view of the case that is no longer current (409)."""

    def __init__(self, detail: str, changed: list[str]) -> None:
        super().__init__(detail)
        self.changed = changed  # the panels whose content changed


def _transaction_ids(case: CaseRef):
    grouped = select(CaseTransaction.transaction_id).where(CaseTransaction.case_id == case.case_id)
    if case.transaction_id is None:
        return grouped
    return union_all(select(literal(case.transaction_id, BigInteger)), grouped)


def _latest_score(session: Session, case: CaseRef) -> str:
    latest = session.execute(
        select(func.max(RiskScore.id)).where(RiskScore.transaction_id.in_(_transaction_ids(case)))
    ).scalar()
    return str(latest or 0)


def _when(value) -> str:
    return value.strftime("%H:%M UTC")


def _explain_scores(session: Session, case: CaseRef, seen: str, now: str) -> str:
    after = int(seen) if seen.isdigit() else 0
    new = session.execute(
        select(RiskScore.score, RiskScore.model, RiskScore.created_at, func.count().over().label("n"))
        .where(RiskScore.transaction_id.in_(_transaction_ids(case)), RiskScore.id > after)
        .order_by(RiskScore.id.desc()).limit(1)
    ).one_or_none()
    if new is None:
        return "the risk scores changed"
    if new.n == 1:
        return f"a new score {new.score} from {new.model} arrived at {_when(new.created_at)}"
    return f"{new.n} new scores arrived, the latest {new.score} from {new.model} at {_when(new.created_at)}"


def _transaction_status(session: Session, case: CaseRef) -> str:
    if case.transaction_id is None:
        return "none"
    return session.execute(select(Transaction.status).where(Transaction.id == case.transaction_id)).scalar_one()


def _explain_status(session: Session, case: CaseRef, seen: str, now: str) -> str:
    return f"the transaction's status changed from {seen or 'unknown'} to {now}"


def _grouped_count(session: Session, case: CaseRef) -> str:
    count = session.execute(
        select(func.count()).select_from(CaseTransaction).where(CaseTransaction.case_id == case.case_id)
    ).scalar_one()
    return str(count)


def _explain_grouped(session: Session, case: CaseRef, seen: str, now: str) -> str:
    added = int(now) - (int(seen) if seen.isdigit() else 0)
    return ("a flag on another payment of the account joined this case" if added == 1
            else f"{added} flags on other payments of the account joined this case")


def _latest_bank_event(session: Session, case: CaseRef) -> str:
    latest = session.execute(select(func.max(BankEvent.id)).where(BankEvent.case_id == case.case_id)).scalar()
    return str(latest or 0)


def _explain_bank_event(session: Session, case: CaseRef, seen: str, now: str) -> str:
    event = session.execute(
        select(BankEvent.bank_reference, BankEvent.outcome, BankEvent.created_at).where(BankEvent.id == int(now))
    ).one_or_none()
    if event is None:
        return "the bank events changed"
    kind = event.outcome.replace("_", " ")
    return f"a new bank event {event.bank_reference} ({kind}) arrived at {_when(event.created_at)}"


def _latest_rule_hit(session: Session, case: CaseRef) -> str:
    latest = session.execute(
        select(func.max(RuleHit.id)).where(RuleHit.transaction_id.in_(_transaction_ids(case)))
    ).scalar()
    return str(latest or 0)


def _explain_rule_hits(session: Session, case: CaseRef, seen: str, now: str) -> str:
    after = int(seen) if seen.isdigit() else 0
    new = session.execute(
        select(Rule.name, RuleHit.version, RuleHit.outcome, RuleHit.created_at, func.count().over().label("n"))
        .join(Rule, Rule.id == RuleHit.rule_id)
        .where(RuleHit.transaction_id.in_(_transaction_ids(case)), RuleHit.id > after)
        .order_by(RuleHit.id.desc()).limit(1)
    ).one_or_none()
    if new is None:
        return "the rule hits changed"
    what = "failed on" if new.outcome == "error" else "matched"
    if new.n == 1:
        return f"rule {new.name} (v{new.version}) {what} the payment at {_when(new.created_at)}"
    return f"{new.n} new rule hits arrived, the latest {new.name} (v{new.version}) at {_when(new.created_at)}"


PARTS: list[Part] = [
    Part("score", "scores", _latest_score, _explain_scores),
    Part("tx", "transaction", _transaction_status, _explain_status),
    Part("grouped", "grouped", _grouped_count, _explain_grouped),
    Part("bank", "bank", _latest_bank_event, _explain_bank_event),
    Part("rules", "scores", _latest_rule_hit, _explain_rule_hits),
]


def _ref(session: Session, case_id: int) -> CaseRef:
    transaction_id = session.execute(select(ReviewCase.transaction_id).where(ReviewCase.id == case_id)).scalar()
    return CaseRef(case_id, transaction_id)


def token(*, session: Session, case_id: int) -> str:
    """The case's context token now, e.g. `score:42;tx:pending;grouped:0;bank:0;rules:0`."""
    case = _ref(session, case_id)
    return ";".join(f"{part.name}:{part.read(session, case)}" for part in PARTS)


def _parse(seen: str) -> dict[str, str]:
    return dict(item.split(":", 1) for item in seen.split(";") if ":" in item)


def check(*, session: Session, case_id: int, seen: str) -> None:
    """Nothing when the case's context is still what the token says; StaleContext saying what changed otherwise."""
    case = _ref(session, case_id)
    seen_parts = _parse(seen)
    changes, panels = [], []
    for part in PARTS:
        now = part.read(session, case)
        before = seen_parts.get(part.name, "")
        if before != now:
            changes.append(part.explain(session, case, before, now))
            panels.append(part.panel)
    if changes:
        raise StaleContext(
            f"Not recorded: since you opened case {case_id}, {'; '.join(changes)}. Review the change and decide again.",
            panels,
        )
