"""Bad input never reaches a 500 (SPEC "Bad input"): a 4xx naming the field, nothing stored."""

import json

import pytest

from tests.conftest import tx_payload
from tests.transactions.conftest import assert_rejected, audit_count, error_fields, transaction_count

ONE_MIB = 1024 * 1024


def nested(depth: int) -> dict:
    """{"a": {"a": … {"a": 1}}} with `depth` objects."""
    value: object = 1
    for _ in range(depth):
        value = {"a": value}
    return value  # type: ignore[return-value]


@pytest.fixture
def assert_nothing_stored(db):
    def check() -> None:
        assert transaction_count(db) == 0
        assert audit_count(db, action="transaction.created") == 0

    return check


# --- the body as a whole ----------------------------------------------------------------

@pytest.mark.parametrize(
    "body",
    [
        pytest.param('{"account_id": "acct_1", ', id="truncated"),
        pytest.param("{'account_id': 'acct_1'}", id="single-quotes"),
        pytest.param('{"account_id": "acct_1",}', id="trailing-comma"),
        pytest.param("not json at all", id="plain-text"),
        pytest.param('{"a": 1} {"b": 2}', id="two-documents"),
    ],
)
def test_malformed_json_is_422_and_stores_nothing(post_raw, assert_nothing_stored, body):
    response = post_raw(body)
    assert response.status_code == 422, response.text
    error = response.json()["detail"][0]
    assert error["type"] == "json_invalid" and error["field"] == "body"
    assert_nothing_stored()


def test_body_that_is_not_utf8_is_422_naming_the_body(post_raw, assert_nothing_stored):
    response = post_raw(b'{"account_id": "\xff\xfe"}')
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["field"] == "body"
    assert_nothing_stored()


@pytest.mark.parametrize("body", ["[]", json.dumps([tx_payload()]), '"a string"', "42", "null"])
def test_body_that_is_not_an_object_is_422(post_raw, assert_nothing_stored, body):
    response = post_raw(body)
    assert response.status_code == 422, response.text
    assert_nothing_stored()


def test_empty_body_is_422(post_raw, assert_nothing_stored):
    response = post_raw(b"")
    assert response.status_code == 422, response.text
    assert_nothing_stored()


def test_body_over_one_mib_is_413_and_stores_nothing(client, agent_headers, assert_nothing_stored):
    payload = tx_payload(description="x" * 10, metadata={"blob": "y" * (ONE_MIB + 1)})
    response = client.post("/transactions", json=payload, headers=agent_headers)
    assert response.status_code == 413, response.text
    assert_nothing_stored()


def test_batch_body_over_one_mib_is_413(client, agent_headers, assert_nothing_stored):
    items = [tx_payload(f"ref-{i}", description="d" * 1000) for i in range(1100)]
    response = client.post("/transactions/batch", json={"items": items}, headers=agent_headers)
    assert response.status_code == 413, response.text
    assert_nothing_stored()


# --- fields -----------------------------------------------------------------------------

@pytest.mark.parametrize("field", ["account_id", "reference", "amount"])
def test_missing_required_field_is_422_naming_it(client, agent_headers, assert_nothing_stored, field):
    payload = tx_payload()
    del payload[field]
    response = client.post("/transactions", json=payload, headers=agent_headers)
    assert_rejected(response, field)
    assert response.json()["detail"][0]["type"] == "missing"
    assert_nothing_stored()


def test_every_missing_field_is_named_at_once(post_raw, assert_nothing_stored):
    response = post_raw("{}")
    assert response.status_code == 422
    assert set(error_fields(response)) == {"account_id", "reference", "amount"}
    assert_nothing_stored()


def test_extra_unknown_field_is_422_naming_it(client, agent_headers, assert_nothing_stored):
    response = client.post("/transactions", json=tx_payload(amount_cents=12550), headers=agent_headers)
    assert_rejected(response, "amount_cents")
    assert_nothing_stored()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("account_id", "a" * 65),
        ("reference", "r" * 129),
        ("account_id", ""),
        ("reference", ""),
        ("account_id", " acct_1"),
        ("reference", "ref-1 "),
        ("reference", "ref\n1"),
        ("account_id", "acct\t1"),
        ("counterparty", "c" * 256),
        ("description", "d" * 1001),
    ],
)
def test_out_of_range_text_is_422_naming_the_field(client, agent_headers, assert_nothing_stored, field, value):
    response = client.post("/transactions", json=tx_payload(**{field: value}), headers=agent_headers)
    assert_rejected(response, field)
    assert_nothing_stored()


def test_longest_allowed_account_id_and_reference_are_accepted(client, agent_headers, db):
    payload = tx_payload("r" * 128, account_id="a" * 64)
    response = client.post("/transactions", json=payload, headers=agent_headers)
    assert response.status_code == 200, response.text
    assert transaction_count(db) == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("account_id", 12345),
        ("reference", 12345),
        ("reference", ["ref-1"]),
        ("description", 12),
        ("counterparty", {"name": "ACME"}),
        ("metadata", ["not", "an", "object"]),
        ("metadata", "a string"),
    ],
)
def test_wrong_json_type_is_422_naming_the_field(client, agent_headers, assert_nothing_stored, field, value):
    response = client.post("/transactions", json=tx_payload(**{field: value}), headers=agent_headers)
    assert_rejected(response, field)
    assert_nothing_stored()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("reference", "ref\x00one"),
        ("account_id", "acct\x00"),
        ("description", "invoice \x00 2291"),
        ("counterparty", "\x00ACME"),
        ("metadata", {"note": "a\x00b"}),
        ("metadata", {"key\x00": "value"}),
        ("metadata", {"deep": [{"deeper": "x\x00"}]}),
    ],
)
def test_nul_characters_are_422_naming_the_field(client, agent_headers, assert_nothing_stored, field, value):
    response = client.post("/transactions", json=tx_payload(**{field: value}), headers=agent_headers)
    assert_rejected(response, field)
    assert_nothing_stored()


@pytest.mark.parametrize(
    ("field", "literal"),
    [
        ("description", '"broken \\ud800 surrogate"'),
        ("counterparty", '"\\udfff"'),
        ("metadata", '{"note": "\\ud83d"}'),
        ("metadata", '{"\\ud83d": "value"}'),
        ("reference", '"ref-\\ud800"'),
    ],
)
def test_lone_surrogates_are_422_naming_the_field(post_raw, assert_nothing_stored, field, literal):
    payload = tx_payload()
    payload.pop(field, None)
    body = json.dumps(payload)[:-1] + f', "{field}": {literal}}}'
    response = post_raw(body)
    assert_rejected(response, field)
    assert_nothing_stored()


def test_paired_surrogates_in_json_are_ordinary_characters(post_raw, db):
    body = json.dumps(tx_payload())[:-1] + ', "description": "coffee \\ud83d\\ude00"}'
    response = post_raw(body)
    assert response.status_code == 200, response.text
    assert response.json()["description"] == "coffee \U0001f600"


# --- metadata ---------------------------------------------------------------------------

def test_metadata_over_16_kib_is_422_naming_metadata(client, agent_headers, assert_nothing_stored):
    response = client.post(
        "/transactions", json=tx_payload(metadata={"blob": "x" * (16 * 1024)}), headers=agent_headers
    )
    assert_rejected(response, "metadata")
    assert_nothing_stored()


def test_metadata_just_under_16_kib_is_accepted(client, agent_headers, db):
    response = client.post(
        "/transactions", json=tx_payload(metadata={"blob": "x" * (16 * 1024 - 20)}), headers=agent_headers
    )
    assert response.status_code == 200, response.text


def body_with_nested_metadata(depth: int, opener: str = '{"a": ', closer: str = "}") -> str:
    """Raw JSON text: the client's own encoder cannot write a thousand levels either."""
    return json.dumps(tx_payload())[:-1] + ', "metadata": {"a": ' + opener * depth + "1" + closer * depth + "}}"


@pytest.mark.parametrize("depth", [40, 500, 900, 990, 1100, 5000, 100_000])
@pytest.mark.parametrize(("opener", "closer"), [('{"a": ', "}"), ("[", "]")], ids=["objects", "arrays"])
def test_deeply_nested_metadata_is_a_client_error_never_a_500(post_raw, assert_nothing_stored, depth, opener, closer):
    response = post_raw(body_with_nested_metadata(depth, opener, closer))
    assert 400 <= response.status_code < 500, response.text
    assert_nothing_stored()


@pytest.mark.parametrize("depth", [32, 100, 900])
def test_metadata_nested_past_32_levels_is_422_naming_metadata(post_raw, assert_nothing_stored, depth):
    response = post_raw(body_with_nested_metadata(depth))
    assert_rejected(response, "metadata")
    assert_nothing_stored()


def test_metadata_nested_32_levels_is_accepted(client, agent_headers):
    response = client.post("/transactions", json=tx_payload(metadata=nested(32)), headers=agent_headers)
    assert response.status_code == 200, response.text
    assert response.json()["metadata"] == nested(32)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_metadata_number_is_422_naming_metadata(post_raw, assert_nothing_stored, literal):
    body = json.dumps(tx_payload())[:-1] + f', "metadata": {{"score": {literal}}}}}'
    assert_rejected(post_raw(body), "metadata")
    assert_nothing_stored()


def test_huge_integer_is_a_client_error_never_a_500(post_raw, assert_nothing_stored):
    body = json.dumps(tx_payload())[:-1] + ', "metadata": {"n": %s}}' % ("9" * 5000)
    response = post_raw(body)
    assert 400 <= response.status_code < 500, response.text
    assert_nothing_stored()


# --- query strings and paths ------------------------------------------------------------

@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"account_id": "acct\x00"}, "account_id"),
        ({"account_id": "a" * 65}, "account_id"),
        ({"account_id": ""}, "account_id"),
        ({"status": "lost"}, "status"),
        ({"review_status": "maybe"}, "review_status"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "0"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"cursor": "x" * 65}, "cursor"),
        ({"cursor": "\x00"}, "cursor"),
    ],
)
def test_bad_listing_parameter_is_422_naming_it(client, agent_headers, params, field):
    assert_rejected(client.get("/transactions", params=params, headers=agent_headers), field)


@pytest.mark.parametrize("reference", ["ref%00one", "%00", "r" * 129, "%F0%9F%98%80", "%ED%A0%80"])
def test_strange_reference_in_path_is_404_not_500(client, agent_headers, reference):
    assert client.get(f"/transactions/{reference}", headers=agent_headers).status_code == 404
    response = client.post(
        f"/transactions/{reference}/settlement", json={"status": "settled"}, headers=agent_headers
    )
    assert response.status_code == 404, response.text


# --- auth comes before anything is stored -----------------------------------------------

def test_without_token_is_401_and_stores_nothing(client, assert_nothing_stored):
    assert client.post("/transactions", json=tx_payload()).status_code == 401
    assert_nothing_stored()


def test_analyst_cannot_create_transactions(client, analyst_headers, assert_nothing_stored):
    assert client.post("/transactions", json=tx_payload(), headers=analyst_headers).status_code == 403
    assert_nothing_stored()
