"""Schemathesis against the app's own OpenAPI document: no 5xx, no response that breaks the schema.

Every operation gets a bounded number of generated requests (valid and invalid) with an
admin's token, so every route runs past authorization; a few transactions and a case exist
so generated references and ids sometimes hit real rows.
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from app.main import app as asgi_app
from tests.conftest import tx_payload

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def admin_with_data(client, users) -> dict[str, str]:
    admin = users.headers("admin")
    for reference in ("txn_abc123", "demo-1", "0"):
        client.post("/transactions", json=tx_payload(reference), headers=admin)
    client.post("/transactions/demo-1/risk-scores", json={"score": 90, "model": "m"}, headers=admin)
    return admin


# Loaded from the app object itself (no server): the document clients see at /openapi.json.
schema = schemathesis.openapi.from_asgi("/openapi.json", asgi_app)


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_within_its_documented_contract(case, admin_with_data):
    case.call_and_validate(headers=admin_with_data, checks=CHECKS)
