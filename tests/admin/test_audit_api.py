"""Audit API: filtered pages, the CSV export matches its filter, verify answers like the CLI."""

import csv
import io

from sqlalchemy import select

from app.audit import service as audit
from app.audit.models import AuditEvent
from app.audit.service import Actor
from tests.audit.conftest import run_cli, tamper  # noqa: F401  (fixtures)


def seed(db, n: int = 30) -> None:
    for i in range(n):
        who = Actor(name="alice", id=1, role="analyst") if i % 3 == 0 else Actor(name="bot", id=2, role="agent")
        audit.record(db, actor=who, action="case.claimed" if i % 2 else "risk_score.posted",
                     entity_type="case", entity_id=str(i % 5), after={"i": i},
                     reason="=cmd|' /C calc'!A0" if i == 0 else None)
    db.commit()


def rows(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(response.text)))


def test_pages_are_filtered_newest_first_and_keyset_paginated(client, admin_headers, db):
    seed(db)
    first = client.get("/api/audit/events", params={"actor": "bot", "limit": 7}, headers=admin_headers).json()
    assert len(first["items"]) == 7 and all(e["actor"] == "bot" for e in first["items"])
    ids = [e["id"] for e in first["items"]]
    assert ids == sorted(ids, reverse=True)
    seen = list(ids)
    cursor = first["next_cursor"]
    while cursor:
        page = client.get("/api/audit/events", params={"actor": "bot", "limit": 7, "cursor": cursor},
                          headers=admin_headers).json()
        seen += [e["id"] for e in page["items"]]
        cursor = page["next_cursor"]
    expected = db.scalars(select(AuditEvent.id).where(AuditEvent.actor == "bot").order_by(AuditEvent.id.desc())).all()
    assert seen == expected


def test_bad_filters_are_refused_naming_the_field(client, admin_headers, database_url):
    response = client.get("/api/audit/events", params={"role": "boss", "since": "yesterday"}, headers=admin_headers)
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["detail"]} == {"role", "since"}
    inverted = client.get("/api/audit/events", params={"since": "2026-01-02T00:00", "until": "2026-01-01T00:00"},
                          headers=admin_headers)
    assert inverted.status_code == 422


def test_export_contains_exactly_the_filtered_events(client, admin_headers, db):
    seed(db)
    params = {"role": "agent", "action": "case.claimed", "entity_type": "case", "entity_id": "3"}
    response = client.get("/api/audit/export.csv", params=params, headers=admin_headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    exported = rows(response)
    expected = db.scalars(select(AuditEvent).where(
        AuditEvent.actor_role == "agent", AuditEvent.action == "case.claimed", AuditEvent.entity_id == "3",
    ).order_by(AuditEvent.id)).all()
    assert [int(r["id"]) for r in exported] == [e.id for e in expected] and expected
    assert all(r["hash"] == e.hash for r, e in zip(exported, expected))


def test_export_defuses_spreadsheet_formulas_and_records_who_exported(client, admin_headers, db):
    seed(db, 3)
    exported = rows(client.get("/api/audit/export.csv", params={"actor": "alice"}, headers=admin_headers))
    assert exported[0]["reason"].startswith("'=")
    db.expire_all()
    [event] = db.scalars(select(AuditEvent).where(AuditEvent.action == "audit.exported")).all()
    assert event.after == {"actor": "alice"}


def test_time_range_filters(client, admin_headers, db):
    seed(db, 4)
    middle = db.scalars(select(AuditEvent).order_by(AuditEvent.id).offset(2)).first()
    since = middle.occurred_at.strftime("%Y-%m-%dT%H:%M:%S.%f")
    page = client.get("/api/audit/events", params={"since": since}, headers=admin_headers).json()
    assert [e["id"] for e in page["items"]][-1] == middle.id


def test_verify_endpoint_gives_the_cli_answer(client, admin_headers, db, tamper, run_cli):
    seed(db, 5)
    api = client.get("/api/audit/verify", headers=admin_headers).json()
    cli = run_cli("audit", "verify")
    assert cli.returncode == 0 and cli.stdout.strip() == f"OK {api['events']} events"
    assert api["ok"] is True and api["first_broken_id"] is None
    assert api["last_verified_id"] == db.scalar(select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(1))

    # An edit behind the trigger's back (a superuser could): both report the same break.
    broken = api["last_verified_id"] - 2
    tamper("UPDATE audit_events SET reason = 'edited' WHERE id = :id", {"id": broken})
    api = client.get("/api/audit/verify", headers=admin_headers).json()
    cli = run_cli("audit", "verify")
    assert api["ok"] is False and api["first_broken_id"] == broken and api["last_verified_id"] == broken - 1
    assert cli.returncode == 1 and f"BROKEN at event {broken} (verified through event {broken - 1})" in cli.stdout


def test_incremental_verification_covers_only_new_events(db):
    from app.audit import verification

    seed(db, 5)
    status, first = verification.run(session=db, verified_by="t", full=True)
    db.commit()
    seed(db, 3)
    status, second = verification.run(session=db, verified_by="t", full=False)
    db.commit()
    assert status.ok and not second.is_full and second.events == first.events + 3
    assert second.last_verified_id == db.scalar(select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(1))
