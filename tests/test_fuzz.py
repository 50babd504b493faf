"""Schemathesis against the app's own OpenAPI document: no 5xx, no response that breaks the schema.

Every operation gets a bounded number of generated requests (valid and invalid) with an
admin's token, so every route runs past authorization; a few transactions and a case exist
so generated references and ids sometimes hit real rows.
"""

import os

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
# Generated requests per operation; FUZZ_EXAMPLES=500 for a long run. 15 still catches an
# explicit null that is a 500 (the bug this found) at every seed tried, as 10 did.
FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "15"))


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
@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_within_its_documented_contract(case, admin_with_data):
    case.call_and_validate(headers=admin_with_data, checks=CHECKS)


# --- every declared parameter, every route: values the database or the parsers may choke on -------
#
# Generated examples rarely contain NUL or a lone surrogate, and those are what broke (a driver
# error is a 500). So, deterministically: each query and path parameter that /openapi.json
# declares, and each one a screen's endpoint takes (screens are not in the document), gets each
# value below while the others keep an ordinary value; the answer must not be a 5xx.

NASTY = {
    "nul": "%00",
    "nul-inside": "a%00b",
    "controls": "".join(f"%{code:02X}" for code in (*range(1, 32), 127)),
    "tab-cr-lf": "x%09%0D%0Ay",
    "escape": "%1B%5B31m",
    "surrogate": "%ED%A0%80",  # a lone surrogate as UTF-8 bytes (invalid UTF-8)
    "surrogate-pair-halves": "%ED%A0%80%ED%B0%80",
    "overlong-nul": "%C0%80",
    "invalid-utf8": "%FF%FE",
    "json-escape": "%5Cud800",
    "long": "x" * 8_000,
    "long-digits": "9" * 400,
    "negative": "-1",
    "huge-int": str(2**63),
    "float-ish": "1e309",
    "nan": "NaN",
    "bidi": "%E2%80%AE%EF%BB%BF",
    "dots": "..%2F..%2Fetc",
}
# An ordinary value for parameters not under test (path parameters must be present).
ORDINARY = "1"
# Never sent: they end the session the rest of the run relies on.
SKIP = {("POST", "/logout")}


def _api_operations(document: dict) -> list[tuple[str, str, list[dict], dict | None]]:
    operations = []
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            params = [p for p in operation.get("parameters", []) if p["in"] in ("query", "path")]
            operations.append((method.upper(), path, params, _example_body(document, operation)))
    return operations


def _example_body(document: dict, operation: dict) -> dict | None:
    """The first documented JSON example of the request body, so the parameters are what fails."""
    media = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if not media:
        return None
    schema = media.get("schema", {})
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    examples = media.get("examples") or schema.get("examples") or ([media["example"]] if "example" in media else [])
    if isinstance(examples, dict):  # OpenAPI named examples
        examples = [e.get("value") for e in examples.values()]
    return examples[0] if examples else {}


def _url(path: str, path_params: dict[str, str], query: dict[str, str]) -> str:
    for name, value in path_params.items():
        path = path.replace("{" + name + "}", value)
    return path + ("?" + "&".join(f"{name}={value}" for name, value in query.items()) if query else "")


def _requests(path: str, params: list[tuple[str, str]]):
    """(label, url) for each parameter and nasty value; `params` are (location, name)."""
    path_names = [name for where, name in params if where == "path"]
    for where, name in params:
        for label, value in NASTY.items():
            path_params = {n: (value if (where, n) == ("path", name) else ORDINARY) for n in path_names}
            query = {name: value} if where == "query" else {}
            yield f"{name}={label}", _url(path, path_params, query)


def _screen_routes(app) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """(method, path, [(location, name)]) of every route the document leaves out, from their signatures."""
    from fastapi.routing import APIRoute

    found = []

    def walk(routes, prefix: str = "") -> None:
        for route in routes:
            included = getattr(route, "original_router", None)
            if included is not None:  # FastAPI's included router
                walk(included.routes, prefix + route.include_context.prefix)
            elif isinstance(route, APIRoute) and not route.include_in_schema:
                params = [("query", p.alias) for p in route.dependant.query_params]
                params += [("path", p.alias) for p in route.dependant.path_params]
                for method in sorted((route.methods or set()) - {"HEAD"}):
                    found.append((method, prefix + route.path, params))

    walk(app.routes)
    return found


def _send(client, method: str, url: str, **kwargs):
    try:
        return client.request(method, url, **kwargs)
    except Exception as exc:  # noqa: BLE001 (any crash escaping the app, e.g. mid-stream, is a failure too)
        pytest.fail(f"{method} {url[:200]}: {exc!r}")


def _failures(responses) -> list[str]:
    return [f"{method} {label}: {response.status_code} {response.text[:200]}"
            for method, label, response in responses if response.status_code >= 500]


# One test per operation (per screen route below), so the thousands of requests spread over the
# workers instead of holding one for minutes; each test starts from the same seeded rows.
API_OPERATIONS = [operation for operation in _api_operations(asgi_app.openapi()) if operation[2]]


def test_the_api_document_lists_the_parameters_fuzzed_below(client):
    document = client.get("/openapi.json").json()
    operations = [operation for operation in _api_operations(document) if operation[2]]
    assert sum(len(params) for _, _, params, _ in operations) >= 30  # the document lists the parameters
    assert operations == API_OPERATIONS  # what the tests below send is what clients are told


@pytest.mark.parametrize(("method", "path", "params", "body"), API_OPERATIONS,
                         ids=[f"{method} {path}" for method, path, _, _ in API_OPERATIONS])
def test_every_api_parameter_survives_nul_controls_surrogates_and_long_values(
        client, admin_with_data, method, path, params, body):
    responses = []
    for label, url in _requests(path, [(p["in"], p["name"]) for p in params]):
        json_body = {"json": body} if body is not None else {}
        response = _send(client, method, url, headers=admin_with_data, **json_body)
        responses.append((method, f"{path} {label}", response))
    assert _failures(responses) == []


@pytest.fixture
def admin_session(client, users, admin_with_data) -> dict[str, str]:
    """The test client signed in as an admin through the login form; the headers HTMX posts send."""
    from tests.web.conftest import meta_csrf, submit_login

    admin = users.create("admin", username="fuzz-admin")
    assert submit_login(client, admin.username).status_code == 303
    return {"X-CSRF-Token": meta_csrf(client.get("/admin/audit").text), "HX-Request": "true"}


# Screens may read filters from the query string themselves (not in their signature): each GET
# screen also gets every query name the API documents, and these, with the values most likely to break.
EXTRA_QUERY_NAMES = ("q", "search", "next", "empty", "retried", "page", "sort")
BREAKERS = ("nul", "nul-inside", "controls", "surrogate", "json-escape", "long")


API_QUERY_NAMES = sorted({p["name"] for _, _, params, _ in API_OPERATIONS for p in params if p["in"] == "query"})
# Routes with something to vary: a GET's query (declared or not), else a path parameter; form
# fields are each screen's own tests.
SCREEN_ROUTES = [route for route in _screen_routes(asgi_app) if route[:2] not in SKIP
                 and (route[0] == "GET" or any(where == "path" for where, _ in route[2]))]


def test_the_screen_routes_are_found_from_the_app():
    assert any(path == "/admin/audit" for _, path, _ in SCREEN_ROUTES)
    assert any(method == "POST" for method, _, _ in SCREEN_ROUTES)  # actions by id, e.g. a case's
    assert len(API_QUERY_NAMES) >= 10


@pytest.mark.parametrize(("method", "path", "params"), SCREEN_ROUTES,
                         ids=[f"{method} {path}" for method, path, _ in SCREEN_ROUTES])
def test_every_screen_parameter_survives_nul_controls_surrogates_and_long_values(
        client, admin_session, method, path, params):
    headers = admin_session if method != "GET" else {"Accept": "text/html"}
    responses = []
    for label, url in _requests(path, params):
        responses.append((method, f"{path} {label}", _send(client, method, url, headers=headers)))
    if method == "GET":
        declared = {name for _, name in params}
        path_params = {name: ORDINARY for where, name in params if where == "path"}
        for name in sorted((set(API_QUERY_NAMES) | set(EXTRA_QUERY_NAMES)) - declared):
            for label in BREAKERS:
                url = _url(path, path_params, {name: NASTY[label]})
                responses.append((method, f"{path} {name}={label}", _send(client, method, url, headers=headers)))
    assert _failures(responses) == []
    # Still signed in as the admin at the end: the run exercised the screen, not the login page.
    assert client.get("/admin/audit", follow_redirects=False).status_code == 200
