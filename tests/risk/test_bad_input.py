"""Bad risk scores get a 422 naming the field and store nothing (SPEC "Bad input")."""

import json

import pytest
from sqlalchemy import func, select

from app.risk.models import RiskScore
from tests.cases.conftest import case_count, event_count, review_status
from tests.transactions.conftest import assert_rejected

VALID = {"score": 80, "model": "fraud-gbm", "reasons": [{"code": "velocity", "description": "fast"}]}


@pytest.fixture
def transaction(desk, db) -> str:
    desk.transaction("ref-1")
    return "ref-1"


@pytest.fixture
def post_body(client, agent_headers, transaction):
    def post(body: dict | str):
        if isinstance(body, str):
            return client.post(f"/transactions/{transaction}/risk-scores", content=body,
                               headers={**agent_headers, "content-type": "application/json"})
        return client.post(f"/transactions/{transaction}/risk-scores", json=body, headers=agent_headers)

    return post


@pytest.fixture
def assert_nothing_stored(db, transaction):
    events_before = event_count(db)

    def check() -> None:
        db.commit()
        assert db.scalar(select(func.count()).select_from(RiskScore)) == 0
        assert case_count(db) == 0
        assert event_count(db) == events_before
        assert review_status(db, transaction) == "clear"

    return check


def with_(**changes) -> dict:
    return {**VALID, **changes}


def without(field: str) -> dict:
    return {k: v for k, v in VALID.items() if k != field}


def test_the_valid_body_is_accepted(post_body):
    # The baseline every case below changes one thing of.
    assert post_body(VALID).status_code == 201


@pytest.mark.parametrize(
    "body,field",
    [
        pytest.param(with_(score=-1), "score", id="score-negative"),
        pytest.param(with_(score=101), "score", id="score-over-100"),
        pytest.param(with_(score="high"), "score", id="score-word"),
        pytest.param(with_(score=True), "score", id="score-boolean"),
        pytest.param(with_(score=None), "score", id="score-null"),
        pytest.param(with_(score=[80]), "score", id="score-list"),
        pytest.param(without("score"), "score", id="score-missing"),
        pytest.param(without("model"), "model", id="model-missing"),
        pytest.param(with_(model=""), "model", id="model-empty"),
        pytest.param(with_(model="   "), "model", id="model-blank"),
        pytest.param(with_(model="fraud\x00gbm"), "model", id="model-nul"),
        pytest.param(with_(model="m" * 101), "model", id="model-too-long"),
        pytest.param(with_(model=42), "model", id="model-number"),
        pytest.param(with_(model_version="v\x001"), "model_version", id="model-version-nul"),
        pytest.param(with_(model_version="v" * 101), "model_version", id="model-version-too-long"),
        pytest.param(with_(extra="x"), "extra", id="extra-field"),
        pytest.param(with_(reasons="velocity"), "reasons", id="reasons-string"),
        pytest.param(with_(reasons={"code": "a", "description": "b"}), "reasons", id="reasons-object"),
        pytest.param(with_(reasons=[{"description": "no code"}]), "reasons.0.code", id="reason-without-code"),
        pytest.param(with_(reasons=[{"code": "a"}]), "reasons.0.description", id="reason-without-description"),
        pytest.param(with_(reasons=[{"code": "", "description": "b"}]), "reasons.0.code", id="reason-empty-code"),
        pytest.param(with_(reasons=[{"code": "a", "description": "b", "x": 1}]), "reasons.0.x", id="reason-extra"),
        pytest.param(with_(reasons=[{"code": "a", "description": "b", "weight": "heavy"}]), "reasons.0.weight",
                     id="reason-weight-word"),
        pytest.param(with_(reasons=["velocity"]), "reasons.0", id="reason-not-an-object"),
        pytest.param(with_(reasons=[{"code": "c", "description": "d"}] * 51), "reasons", id="51-reasons"),
    ],
)
def test_bad_score_body_is_422_naming_the_field_and_stores_nothing(post_body, assert_nothing_stored, body, field):
    response = post_body(body)
    assert_rejected(response, field)
    assert_nothing_stored()


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param('{"score": 87.5, "model": "m"}', id="fraction"),
        pytest.param('{"score": 1e400, "model": "m"}', id="huge-exponent"),
        pytest.param('{"score": NaN, "model": "m"}', id="nan"),
        pytest.param('{"score": Infinity, "model": "m"}', id="infinity"),
        pytest.param('{"score": 100000000000000000000000, "model": "m"}', id="huge-integer"),
        pytest.param('{"score": 80, "model": "m", "reasons": [{"code": "a", "description": "b", "weight": NaN}]}',
                     id="weight-nan"),
    ],
)
def test_score_that_is_not_a_whole_number_in_range_is_422(post_body, assert_nothing_stored, raw):
    response = post_body(raw)
    assert response.status_code == 422, response.text
    fields = [error["field"] for error in response.json()["detail"]]
    assert any(field in ("score", "reasons.0.weight") for field in fields), response.text
    assert_nothing_stored()


def test_fifty_reasons_are_accepted(post_body):
    assert post_body(with_(reasons=[{"code": "c", "description": "d"}] * 50)).status_code == 201


def test_score_written_as_a_whole_decimal_is_accepted_as_that_integer(post_body):
    response = post_body('{"score": 80.0, "model": "m"}')
    assert response.status_code == 201, response.text
    assert response.json()["score"] == 80


@pytest.mark.parametrize("body", ["[]", "null", '"score"', "42", "{"])
def test_body_that_is_not_a_json_object_is_422(post_body, assert_nothing_stored, body):
    assert post_body(body).status_code == 422
    assert_nothing_stored()


def test_error_messages_do_not_echo_the_input(post_body):
    response = post_body(with_(model="secret\x00value"))
    assert response.status_code == 422
    assert "secret" not in response.text


def test_reference_with_a_nul_is_404_not_500(client, agent_headers):
    response = client.post("/transactions/ref%00x/risk-scores", json=VALID, headers=agent_headers)
    assert response.status_code == 404, response.text


def test_oversized_body_is_413(post_body, assert_nothing_stored):
    body = json.dumps(with_(model_version="v" * (1024 * 1024 + 10)))
    assert post_body(body).status_code == 413
    assert_nothing_stored()


@pytest.mark.parametrize("reason,field", [
    ({"code": "   ", "description": "fast"}, "reasons.0.code"),
    ({"code": "velocity", "description": "  "}, "reasons.0.description"),
])
def test_blank_reason_code_or_description_is_422(post_body, assert_nothing_stored, reason, field):
    assert_rejected(post_body(with_(reasons=[reason])), field)
    assert_nothing_stored()
