"""The OpenAPI document is complete enough for an agent to call every operation without guessing."""

from typing import Any

import pytest

from app.main import app

DOCUMENT = app.openapi()
SCHEMAS = DOCUMENT["components"]["schemas"]
OPERATIONS = [
    (method.upper(), path, operation)
    for path, operations in DOCUMENT["paths"].items()
    for method, operation in operations.items()
]


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = SCHEMAS[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def has_example(media: dict[str, Any]) -> bool:
    schema = resolve(media.get("schema", {}))
    if {"example", "examples"} & (media.keys() | schema.keys()):
        return True
    properties = schema.get("properties", {})
    return bool(properties) and all({"example", "examples"} & resolve(p).keys() for p in properties.values())


@pytest.mark.parametrize(("method", "path", "operation"), [op for op in OPERATIONS if "requestBody" in op[2]],
                         ids=lambda value: value if isinstance(value, str) else "")
def test_every_request_body_has_an_example(method, path, operation):
    for media_type, media in operation["requestBody"]["content"].items():
        assert has_example(media), f"{method} {path} ({media_type}) has no example"


@pytest.mark.parametrize(("method", "path", "operation"), OPERATIONS,
                         ids=lambda value: value if isinstance(value, str) else "")
def test_every_error_status_has_a_documented_body(method, path, operation):
    for status, response in operation["responses"].items():
        if status[0] in "45":
            assert response.get("content", {}).get("application/json", {}).get("schema"), f"{method} {path} {status}"


@pytest.mark.parametrize(("method", "path", "operation"), OPERATIONS,
                         ids=lambda value: value if isinstance(value, str) else "")
def test_operations_on_the_database_document_503(method, path, operation):
    if path in {"/healthz", "/metrics"}:
        return
    assert "503" in operation["responses"], f"{method} {path}"


def test_validation_errors_are_documented_with_the_field_they_name():
    error = resolve(SCHEMAS["HTTPValidationError"]["properties"]["detail"]["items"])
    assert set(error["required"]) == {"loc", "field", "msg", "type"}
    assert "input" not in error["properties"], "the input is never echoed"
    for method, path, operation in OPERATIONS:
        if "422" in operation["responses"]:
            schema = operation["responses"]["422"]["content"]["application/json"]["schema"]
            assert resolve(schema) is SCHEMAS["HTTPValidationError"], f"{method} {path}"


def test_a_real_422_matches_the_documented_shape(client, agent_headers):
    response = client.post("/transactions", json={"reference": "x", "amount": "1.005", "currency": "USD",
                                                   "account_id": "a"}, headers=agent_headers)
    assert response.status_code == 422
    errors = response.json()["detail"]
    assert errors and all(set(error) == {"loc", "field", "msg", "type"} for error in errors)
    assert "amount" in {error["field"] for error in errors}
