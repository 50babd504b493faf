"""Every condition docs/rules_examples.md shows compiles, and the demo rules are among them word for word."""

import re

import pytest

from app.config import PROJECT_ROOT
from app.rules.demo import DEMO_RULES
from app.rules.language import compile_condition

EXAMPLES = re.findall(r"```cel\n(.*?)\n```", (PROJECT_ROOT / "docs" / "rules_examples.md").read_text(), re.S)


def test_the_page_has_its_examples():
    assert len(EXAMPLES) >= 8


@pytest.mark.parametrize("condition", EXAMPLES)
def test_each_example_compiles(condition):
    assert compile_condition(condition).source == condition


def test_the_demo_rules_are_documented_as_they_run():
    assert [rule.condition for rule in DEMO_RULES] == EXAMPLES[:len(DEMO_RULES)]
