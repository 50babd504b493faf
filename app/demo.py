"""Demo users and data for a fresh local database (python -m app run)."""

import random
from decimal import Decimal

from sqlalchemy import func, select

from app import demo_history
from app.audit.service import Actor
from app.cases import claims, decisions
from app.cases.schemas import DecisionRequest
from app.reconciliation.demo import seed_reconciliation
from app.risk import service as risk
from app.risk.schemas import Reason, RiskScoreCreate
from app.rules.demo import seed_rules
from app.transactions import flows
from app.transactions import service as transactions
from app.transactions.models import Transaction
from app.transactions.schemas import SettlementRequest, TransactionCreate
from app.uow.unit import OrmSession
from app.users import service as users
from app.users.models import User

DEMO_USERS = (
    ("admin", "admin", "harbour-lantern-demo"),
    ("alice", "analyst", "analyst-demo-password"),
    ("bob", "analyst", "analyst-demo-password"),
    ("agent", "agent", "tireless-robot-demo"),
)

ACCOUNTS = [f"acct_{n:03d}" for n in range(1, 13)]
MERCHANTS = ["ACME Supplies Ltd", "Blue Harbor Travel", "Crypto Quick Exchange", "Nordwind GmbH",
             "Sakura Electronics", "Gulf Trading Co", "Fjord Outdoor AS", "Corner Coffee"]
REASONS = [
    Reason(code="velocity", description="7 payments from this account in the last 10 minutes", weight=Decimal("0.41")),
    Reason(code="new_device", description="First payment from this device fingerprint", weight=Decimal("0.22")),
    Reason(code="geo_mismatch", description="Card country differs from IP country", weight=Decimal("0.30")),
    Reason(code="amount_spike", description="Amount is 12x the account's 90-day median", weight=Decimal("0.35")),
    Reason(code="high_risk_mcc", description="Merchant category has an elevated chargeback rate",
           weight=Decimal("0.18")),
    Reason(code="card_testing", description="Several small authorisations before this payment",
           weight=Decimal("0.27")),
]
SCORE_BANDS = [(5, 40), (30, 69), (70, 99)]  # low, medium, flagged at the default threshold
CURRENCIES = [("USD", 2), ("EUR", 2), ("GBP", 2), ("JPY", 0), ("KWD", 3)]


def seed_if_empty(session: OrmSession) -> bool:
    """Create demo users and transactions when the database has no users; True if it did."""
    if session.scalar(select(func.count()).select_from(User)):
        return False
    system = Actor(name="demo-seed")
    demo_users = {name: users.create(session=session, actor=system, username=name, role=role, password=password)
               for name, role, password in DEMO_USERS}
    agent = demo_users["agent"]
    actor = Actor(name=agent.username, id=agent.id, role=agent.role)
    seed_rules(session, Actor(name="admin", id=demo_users["admin"].id, role="admin"))  # before the payments
    rng = random.Random(7)
    items = []
    for n in range(1, 241):
        currency, places = rng.choice(CURRENCIES)
        cents = rng.randint(100, 2_500_000) if rng.random() < 0.9 else rng.randint(2_500_000, 90_000_000)
        amount = (Decimal(cents) / 100).quantize(Decimal(1).scaleb(-places))
        if amount <= 0:
            amount = Decimal(1)
        items.append(TransactionCreate(
            account_id=rng.choice(ACCOUNTS), reference=f"demo-{n:05d}", currency=currency, amount=amount,
            counterparty=rng.choice(MERCHANTS), description=f"Demo payment {n}",
            metadata={"channel": rng.choice(["card", "sepa", "wire", "ach"])},
        ))
    flows.create_many(session=session, items=[transactions.NewTransaction(item, actor) for item in items])
    # The demo rules flag some payments as they are created: those wait for review, unsettled.
    flagged = set(session.scalars(select(Transaction.reference).where(Transaction.review_status == "flagged")))
    for item in items:
        score = rng.randint(*rng.choice(SCORE_BANDS))
        created = risk.post_score(session=session, actor=actor, reference=item.reference, data=RiskScoreCreate(
            score=score, model="fraud-gbm", model_version="2026.11",
            reasons=rng.sample(REASONS, k=rng.randint(1, 3)),
        ))
        if created.flagged:
            flagged.add(item.reference)
    for item in items[:150]:
        if item.reference in flagged:
            continue
        outcome = "settled" if rng.random() < 0.9 else "failed"
        transactions.settle(session=session, actor=actor, reference=item.reference,
                            request=SettlementRequest(status=outcome))
    _decide_some_cases(session, demo_users)
    demo_history.spread_over_days(session)
    seed_reconciliation(session, Actor(name="admin", id=demo_users["admin"].id, role="admin"))
    demo_history.date_audit_events(session)
    return True


DEMO_DECISIONS = [
    ("alice", DecisionRequest(decision="approve", reason_code="verified_customer", note="Customer confirmed by phone")),
    ("bob", DecisionRequest(decision="approve", reason_code="false_positive")),
    ("alice", DecisionRequest(decision="reject", reason_code="suspected_fraud", note="Card testing pattern")),
    ("bob", DecisionRequest(decision="escalate", reason_code="sanctions_concern", note="Counterparty name match")),
] * 3


def _decide_some_cases(session: OrmSession, demo_users: dict[str, User]) -> None:
    """Analysts work the top of the queue, so the dashboard and audit history show human decisions."""
    for username, decision in DEMO_DECISIONS:
        analyst = demo_users[username]
        actor = Actor(name=analyst.username, id=analyst.id, role=analyst.role)
        case = claims.claim_next(session=session, actor=actor)
        if case is not None:
            decisions.decide(session=session, actor=actor, case_id=case.id, data=decision)
