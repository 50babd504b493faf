"""The rule generation never restarts (tests/conftest.py bumps it between tests): tests read it
relative to where their test began."""

from collections.abc import Iterator

import pytest
from sqlalchemy import text

GENERATION_AT_START = {"value": 0}


@pytest.fixture(autouse=True)
def generation_at_start(request) -> Iterator[None]:
    if "database_url" in request.fixturenames:
        with request.getfixturevalue("owner_engine").connect() as connection:
            GENERATION_AT_START["value"] = connection.execute(
                text("SELECT COALESCE((SELECT generation FROM rule_generation WHERE id = 1), 0)")).scalar_one()
    yield
