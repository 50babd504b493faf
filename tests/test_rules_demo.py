"""The demo seed publishes a handful of realistic rules and a blocked-counterparty list before its payments,
so the hot path flags some of them: the demo's cases have rule hits to explain."""

from sqlalchemy import func, select

from app import demo
from app.rules import lists, service
from app.rules.demo import BLOCKED, BLOCKED_COUNTERPARTIES, DEMO_RULES
from app.rules.models import Rule, RuleHit


def test_the_demo_starts_with_running_rules_whose_hits_opened_cases(db):
    assert demo.seed_if_empty(db) is True
    db.commit()
    rules = {rule.name: rule for rule in service.list_all(session=db)}
    assert {name: (rule.mode, rule.running_version) for name, rule in rules.items()} == {
        rule.name: (rule.mode, 1) for rule in DEMO_RULES}
    drafted = [rule for rule in DEMO_RULES if rule.draft is not None]
    assert drafted and all(rules[rule.name].version == 2 for rule in drafted)  # a draft beside what runs
    assert lists.get(session=db, name=BLOCKED_COUNTERPARTIES).items == sorted(BLOCKED)
    hits = dict(db.execute(
        select(Rule.name, func.count(RuleHit.case_id)).join(RuleHit, RuleHit.rule_id == Rule.id).group_by(Rule.name)
    ).tuples().all())
    assert hits["Large first payment"] > 0 and hits["Blocked counterparty"] > 0  # cases opened by rules
    assert hits["Large wire (shadow)"] == 0 and hits["Velocity"] == 0  # shadow: recorded, no case
