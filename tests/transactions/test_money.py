"""Money edge cases, each through POST /transactions (SPEC "Money").

Amounts are sent as raw JSON text where it matters, so the test controls the exact literal
the server parses (a Python float would already have been rounded by the client).
"""

import json
from decimal import Decimal

import pytest
from sqlalchemy import select

from app import money
from app.transactions.models import Transaction
from tests.conftest import tx_payload
from tests.transactions.conftest import assert_rejected, transaction_count


def raw_body(amount_literal: str, currency: str = "USD", reference: str = "ref-money") -> str:
    """A create body with `amount_literal` pasted verbatim as the JSON value."""
    return (
        f'{{"account_id": "acct_1", "reference": "{reference}", "currency": "{currency}", '
        f'"amount": {amount_literal}}}'
    )


def stored_amount(db, reference: str = "ref-money") -> Decimal | None:
    return db.scalar(select(Transaction.amount).where(Transaction.reference == reference))


# --- accepted amounts are returned with exactly the currency's minor units -------------

@pytest.mark.parametrize(
    ("literal", "currency", "returned", "stored"),
    [
        ("0.1", "USD", "0.10", Decimal("0.1")),
        ('"12.30"', "USD", "12.30", Decimal("12.30")),
        ("500", "JPY", "500", Decimal("500")),
        ('"500"', "JPY", "500", Decimal("500")),
        ("1.25", "KWD", "1.250", Decimal("1.25")),
        ("999999999999999.99", "USD", "999999999999999.99", Decimal("999999999999999.99")),
        ('"999999999999999.99"', "USD", "999999999999999.99", Decimal("999999999999999.99")),
        ("0.01", "USD", "0.01", Decimal("0.01")),
        ("1250.5", "USD", "1250.50", Decimal("1250.50")),
    ],
)
def test_exact_amount_is_accepted_and_returned_with_currency_minor_units(
    post_raw, db, literal, currency, returned, stored
):
    response = post_raw(raw_body(literal, currency))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["amount"] == returned
    assert body["currency"] == currency
    assert stored_amount(db) == stored


def test_amount_of_ten_to_the_fifteen_minus_one_cent_survives_a_round_trip_exactly(client, post_raw, agent_headers):
    post_raw(raw_body("999999999999999.99"))
    fetched = client.get("/transactions/ref-money", headers=agent_headers)
    assert fetched.json()["amount"] == "999999999999999.99"


def test_amount_sent_as_json_number_and_as_string_are_the_same_payload_for_replay(post_raw):
    first = post_raw(raw_body("0.1"))
    replay = post_raw(raw_body('"0.10"'))
    assert replay.status_code == 200
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()


# --- rejected amounts: 422 naming `amount`, nothing stored ------------------------------

@pytest.mark.parametrize(
    ("literal", "currency"),
    [
        pytest.param("10.005", "USD", id="usd-three-decimals"),
        pytest.param('"10.005"', "USD", id="usd-three-decimals-string"),
        pytest.param("500.5", "JPY", id="jpy-fraction"),
        pytest.param('"500.5"', "JPY", id="jpy-fraction-string"),
        pytest.param("1.2345", "KWD", id="kwd-four-decimals"),
        pytest.param("-1.00", "USD", id="negative"),
        pytest.param('"-1.00"', "USD", id="negative-string"),
        pytest.param("0", "USD", id="zero"),
        pytest.param("0.00", "USD", id="zero-decimal"),
        pytest.param('"0"', "USD", id="zero-string"),
        pytest.param("-0", "USD", id="negative-zero"),
        pytest.param("1e15", "USD", id="1e15-literal"),
        pytest.param("1000000000000000", "USD", id="10^15-integer"),
        pytest.param("1e20", "USD", id="1e20-literal"),
        pytest.param("1E+400", "USD", id="1e400-literal"),
        pytest.param("1e-400", "USD", id="tiny-literal"),
        pytest.param("NaN", "USD", id="NaN"),
        pytest.param("Infinity", "USD", id="Infinity"),
        pytest.param("-Infinity", "USD", id="-Infinity"),
        pytest.param('"NaN"', "USD", id="NaN-string"),
        pytest.param('"Infinity"', "USD", id="Infinity-string"),
        pytest.param('"abc"', "USD", id="letters"),
        pytest.param('""', "USD", id="empty-string"),
        pytest.param('" 1.00"', "USD", id="leading-space"),
        pytest.param('"1.00 "', "USD", id="trailing-space"),
        pytest.param('"1e400"', "USD", id="1e400-string"),
        pytest.param('"1,000.00"', "USD", id="thousands-comma"),
        pytest.param('"1_000.00"', "USD", id="underscore-separator"),
        pytest.param('"\\u0661\\u0662\\u0663"', "USD", id="non-ascii-digits"),
        pytest.param('"0x10"', "USD", id="hex"),
        pytest.param("true", "USD", id="json-true"),
        pytest.param("false", "USD", id="json-false"),
        pytest.param("null", "USD", id="json-null"),
        pytest.param("[1]", "USD", id="json-array"),
        pytest.param('{"value": 1}', "USD", id="json-object"),
    ],
)
def test_invalid_amount_is_422_naming_amount_and_stores_nothing(post_raw, db, literal, currency):
    response = post_raw(raw_body(literal, currency))
    assert_rejected(response, "amount")
    assert transaction_count(db) == 0


def test_rounding_is_refused_with_a_message_saying_so(post_raw):
    response = post_raw(raw_body("10.005"))
    [error] = response.json()["detail"]
    assert error["field"] == "amount"
    assert "USD allows 2 decimal places" in error["msg"]
    assert "rounded" in error["msg"]


def test_validation_errors_do_not_echo_the_input_back(post_raw):
    response = post_raw(raw_body('"secret-looking-amount"'))
    assert response.status_code == 422
    assert "secret-looking-amount" not in response.text


def test_amount_missing_is_422_naming_amount(client, agent_headers, db):
    payload = tx_payload()
    del payload["amount"]
    assert_rejected(client.post("/transactions", json=payload, headers=agent_headers), "amount")
    assert transaction_count(db) == 0


# --- currencies -------------------------------------------------------------------------

@pytest.mark.parametrize(
    "currency",
    [
        pytest.param("usdollars", id="too-long"),
        pytest.param("XYZ", id="not-iso-4217"),
        pytest.param("usd", id="lower-case"),
        pytest.param("Usd", id="mixed-case"),
        pytest.param("XAU", id="gold-no-minor-unit"),
        pytest.param("XTS", id="test-code-no-minor-unit"),
        pytest.param("US", id="too-short"),
        pytest.param("", id="empty"),
        pytest.param(" USD", id="leading-space"),
        pytest.param("ÜSD", id="non-ascii"),
    ],
)
def test_unknown_currency_is_422_naming_currency_and_stores_nothing(client, agent_headers, db, currency):
    response = client.post("/transactions", json=tx_payload(currency=currency), headers=agent_headers)
    assert_rejected(response, "currency")
    assert transaction_count(db) == 0


@pytest.mark.parametrize("literal", ["840", "null", "true", '["USD"]'])
def test_currency_that_is_not_a_string_is_422_naming_currency(post_raw, db, literal):
    body = f'{{"account_id": "acct_1", "reference": "r", "amount": "1.00", "currency": {literal}}}'
    assert_rejected(post_raw(body), "currency")
    assert transaction_count(db) == 0


def test_unknown_currency_does_not_also_blame_the_amount(client, agent_headers):
    response = client.post("/transactions", json=tx_payload(currency="XYZ", amount="1.005"), headers=agent_headers)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["detail"]] == ["currency"]


# --- app.money units --------------------------------------------------------------------

@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        (Decimal("1250.5"), "USD", "1250.50"),
        (Decimal("500"), "JPY", "500"),
        (Decimal("500.0000"), "JPY", "500"),
        (Decimal("1.25"), "KWD", "1.250"),
        (Decimal("0.1000"), "USD", "0.10"),
        (Decimal("1E+2"), "USD", "100.00"),
        (Decimal("999999999999999.99"), "USD", "999999999999999.99"),
        (Decimal("1.5"), "CLF", "1.5000"),
    ],
)
def test_format_amount_shows_exactly_the_currency_minor_units(amount, currency, text):
    assert money.format_amount(amount, currency) == text


@pytest.mark.parametrize(
    ("amount", "currency", "scaled"),
    [
        (Decimal("10.5"), "USD", Decimal("10.50")),
        (Decimal("500.0"), "JPY", Decimal("500")),
        (Decimal("1.25"), "KWD", Decimal("1.250")),
    ],
)
def test_check_minor_units_returns_the_amount_at_currency_scale(amount, currency, scaled):
    result = money.check_minor_units(amount, currency)
    assert result == scaled
    assert result.as_tuple().exponent == scaled.as_tuple().exponent


@pytest.mark.parametrize(
    ("amount", "currency"),
    [(Decimal("10.005"), "USD"), (Decimal("500.5"), "JPY"), (Decimal("1.2345"), "KWD"), (Decimal("1E-400"), "USD")],
)
def test_check_minor_units_refuses_to_round(amount, currency):
    with pytest.raises(ValueError, match="rounded"):
        money.check_minor_units(amount, currency)


def test_parse_amount_refuses_binary_floats():
    with pytest.raises(ValueError, match="float"):
        money.parse_amount(0.1)


def test_json_loader_never_produces_floats():
    from app.jsonbody import loads

    parsed = loads('{"a": 0.1, "b": 1e20, "c": NaN, "d": 7}')
    assert parsed["a"] == Decimal("0.1")
    assert parsed["b"] == Decimal("1E+20")
    assert parsed["c"].is_nan()
    assert parsed["d"] == 7 and isinstance(parsed["d"], int)
    assert not any(isinstance(value, float) for value in parsed.values())


def test_metadata_numbers_keep_their_exact_value(post_raw):
    body = json.dumps(tx_payload("ref-meta"))[:-1] + ', "metadata": {"fx": 0.1, "big": 12345678901234567890.123}}'
    response = post_raw(body)
    assert response.status_code == 200, response.text
    metadata = response.json()["metadata"]
    assert Decimal(str(metadata["fx"])) == Decimal("0.1")
    assert Decimal(str(metadata["big"])) == Decimal("12345678901234567890.123")
