"""The demo seed publishes a handful of realistic rules and a blocked-counterparty list before its payments."""

from app import demo
from app.rules import lists, service
from app.rules.demo import BLOCKED, BLOCKED_COUNTERPARTIES, DEMO_RULES
from app.rules.enums import RuleMode


def test_the_demo_starts_with_running_rules_and_the_list_they_read(db):
    assert demo.seed_if_empty(db) is True
    db.commit()
    rules = {rule.name: rule for rule in service.list_all(session=db)}
    assert set(rules) == {rule.name for rule in DEMO_RULES}
    assert {name: (rule.mode, rule.running_version) for name, rule in rules.items()} == {
        rule.name: (rule.mode, 1) for rule in DEMO_RULES}
    assert sorted(lists.get(session=db, name=BLOCKED_COUNTERPARTIES).items) == sorted(BLOCKED)
    assert [rule.mode for rule in DEMO_RULES].count(RuleMode.SHADOW) == 1
