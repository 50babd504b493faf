"""The risk tests drive the same review desk as the case tests."""

from tests.cases.conftest import alice, bob, desk, root  # noqa: F401  (fixtures)
