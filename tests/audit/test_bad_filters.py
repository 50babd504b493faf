"""Audit filters PostgreSQL cannot take (NUL) are bad input naming the field, on every surface; never a 500."""

import csv
import io

import pytest
from sqlalchemy import func, select

from app.audit import explorer
from app.audit import service as audit
from app.audit.models import AuditEvent
from app.audit.service import Actor
from app.web.messages import label_for
from tests.web.conftest import sign_in  # noqa: F401  (fixture)

TEXT_FILTERS = ("actor", "action", "entity_type", "entity_id")
UNSTORABLE = ("a\x00b", "\x00", "x\ud800")


def exports(db) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "audit.exported"))


@pytest.mark.parametrize("field", TEXT_FILTERS)
@pytest.mark.parametrize("path", ["/api/audit/events", "/api/audit/export.csv"])
def test_a_nul_in_an_api_filter_is_a_422_naming_the_field_and_exports_nothing(client, admin_headers, db, field, path):
    response = client.get(path, params={field: "a\x00b"}, headers=admin_headers)
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["detail"]] == [field]
    assert "NUL" in response.json()["detail"][0]["msg"]
    assert exports(db) == 0


@pytest.mark.parametrize("value", UNSTORABLE)
def test_every_text_filter_refuses_text_postgresql_cannot_store(value):
    _, errors = explorer.parse_query({field: value for field in TEXT_FILTERS})
    assert set(errors) == set(TEXT_FILTERS)


@pytest.mark.parametrize("field", TEXT_FILTERS)
def test_the_screen_says_which_filter_was_refused(client, sign_in, field):
    sign_in("admin")
    response = client.get("/admin/audit", params={field: "a\x00b"})
    assert response.status_code == 200
    assert "must not contain NUL characters" in response.text
    fragment = client.get("/admin/audit", params={field: "\x00"},
                          headers={"HX-Request": "true", "HX-Target": "audit-results"})
    assert fragment.status_code == 200 and "must not contain NUL characters" in fragment.text


@pytest.mark.parametrize("field", TEXT_FILTERS)
def test_the_screen_export_refuses_a_nul_with_a_page_not_a_500(client, sign_in, db, field):
    sign_in("admin")
    response = client.get("/admin/audit/export.csv", params={field: "a\x00b"})
    assert response.status_code == 422
    # The page names the filter by its label, in a sentence (app/web/messages.py).
    assert "text/html" in response.headers["content-type"] and label_for(field) in response.text
    assert exports(db) == 0


@pytest.mark.parametrize("value", [
    "=1+1", "+1", "-1", "@SUM(A1)", " =1+1", "\t=1+1", "  @x", "\u3000=1", "\uff1d1+1", "\uff0b1", "\uff0d1",
    "\uff20x", " \uff1d1", "\tplain", "\rplain", "\nplain",
])
def test_export_defuses_every_cell_a_spreadsheet_would_run(value):
    assert explorer.is_formula_like(value)
    assert explorer._cell(value) == "'" + value


@pytest.mark.parametrize("value", ["plain", "a=b", "x-1", "mail@example.com", "", " plain", "1-2"])
def test_export_leaves_ordinary_cells_alone(value):
    assert not explorer.is_formula_like(value)
    assert explorer._cell(value) == value


def test_exported_file_defuses_whitespace_and_full_width_formulas(client, admin_headers, db):
    reasons = [" =HYPERLINK(\"http://x\")", "\uff1dcmd", "\t@SUM(1)", "\nline"]
    for i, reason in enumerate(reasons):
        audit.record(db, actor=Actor(name="alice", id=1, role="analyst"), action="case.claimed",
                     entity_type="case", entity_id=str(i), reason=reason)
    db.commit()
    response = client.get("/api/audit/export.csv", params={"actor": "alice"}, headers=admin_headers)
    exported = list(csv.DictReader(io.StringIO(response.text, newline="")))
    assert [row["reason"] for row in exported] == ["'" + reason for reason in reasons]


@pytest.mark.parametrize("path", ["/api/audit/events", "/api/audit/export.csv"])
def test_a_time_offset_postgresql_refuses_is_applied_not_a_500(client, admin_headers, path):
    # Python takes offsets up to ±23:59, PostgreSQL only up to ±15:59: the filter is converted to UTC first.
    response = client.get(path, params={"since": "2000-01-01T00:00:00+16:00", "until": "2000-01-02T00:00-23:30"},
                          headers=admin_headers)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+16:00", "9999-12-31T23:59:59-23:00"])
def test_a_time_outside_utc_years_1_to_9999_is_a_422_naming_the_field(client, admin_headers, value):
    response = client.get("/api/audit/events", params={"since": value}, headers=admin_headers)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["detail"]] == ["since"]
