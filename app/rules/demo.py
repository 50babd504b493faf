"""Demo rules and lists for a fresh local database (python -m app run): app/demo.py calls seed_rules first.

They are published before the demo's transactions are created, so the hot path evaluates
them and the demo's cases carry "Why flagged" explanations. Everything goes through the
rules services (validated, audited) as an admin would do it through the API.
"""

from dataclasses import dataclass

from app.audit.service import Actor
from app.rules import lists, service
from app.rules.enums import RuleMode
from app.rules.schemas import Action, RuleCreate, RuleUpdate
from app.uow.unit import OrmSession

BLOCKED_COUNTERPARTIES = "blocked_counterparties"
BLOCKED = ("Crypto Quick Exchange",)


@dataclass(frozen=True, slots=True)
class DemoRule:
    name: str
    description: str
    condition: str
    risk: int
    reason: str
    mode: RuleMode
    draft: str | None = None  # a version 2 condition awaiting review, beside the running version 1


DEMO_RULES = (
    DemoRule(
        name="Large first payment",
        description="Over 10,000 USD or EUR from an account with no other payment in the last 24 hours.",
        condition='tx.currency in ["USD", "EUR"] && tx.amount > 10000 && account_count("24h") == 0',
        risk=80, reason="Large payment from an account with no recent history", mode=RuleMode.ACTIVE,
    ),
    DemoRule(
        name="Velocity",
        description="More than five payments from one account within an hour.",
        condition='account_count("1h") > 5',
        risk=75, reason="More than 5 payments from this account in the last hour", mode=RuleMode.SHADOW,
    ),
    DemoRule(
        name="Just under the reporting threshold",
        description="Amounts just below 10,000 in USD or EUR, a common way to stay under reporting limits.",
        condition='tx.currency in ["USD", "EUR"]\n  && tx.amount >= 9000 && tx.amount < 10000',
        risk=70, reason="Amount just under the 10,000 reporting threshold", mode=RuleMode.ACTIVE,
        draft='tx.currency in ["USD", "EUR"]\n  && tx.amount >= 8500 && tx.amount < 10000',
    ),
    DemoRule(
        name="Blocked counterparty",
        description=f"The counterparty is on the {BLOCKED_COUNTERPARTIES} list.",
        condition=f'in_list("{BLOCKED_COUNTERPARTIES}", tx.counterparty)',
        risk=95, reason="Counterparty is on the blocked list", mode=RuleMode.ACTIVE,
    ),
    DemoRule(
        name="Large wire (shadow)",
        description="Trying out: wires above 5,000, recorded without opening cases.",
        condition='tx.metadata.channel == "wire" && tx.amount > 5000',
        risk=60, reason="Large wire transfer", mode=RuleMode.SHADOW,
    ),
)


def seed_rules(session: OrmSession, actor: Actor) -> None:
    """Create the demo list, then the demo rules, each running version 1 in its mode (and a draft version 2
    where the rule has one, so the rule page shows two versions side by side)."""
    lists.replace(session=session, actor=actor, name=BLOCKED_COUNTERPARTIES,
                  description="Counterparties we do not pay", items=list(BLOCKED), description_given=True)
    for rule in DEMO_RULES:
        created = service.create(session=session, actor=actor, data=RuleCreate(
            name=rule.name, description=rule.description, condition=rule.condition,
            action=Action(risk=rule.risk, reason=rule.reason), mode=rule.mode.value))
        if rule.draft is not None:
            service.update_rule(session=session, actor=actor, rule_id=created.id,
                                data=RuleUpdate(condition=rule.draft))
