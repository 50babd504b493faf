"""The audit history is append-only and hash-chained, and `audit verify` catches any edit."""

import hashlib
import re
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg2
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from app.audit import service as audit
from app.audit.models import AuditEvent
from app.audit.service import SYSTEM_ACTOR, Actor, ChainStatus
from app.errors import Conflict
from tests.conftest import tx_payload

GENESIS = "0" * 64

# The chain recomputed by the database's own audit_event_hash in one ordered scan: a second
# verifier, beside the Python one `audit verify` runs, to cross-check what the trigger wrote.
SQL_VERIFY = text("""
    WITH checked AS (
      SELECT id, hash,
             hash = audit_event_hash(prev_hash, e) AS hash_ok,
             prev_hash = coalesce(lag(hash) OVER (ORDER BY id), :genesis) AS link_ok
      FROM audit_events e
    )
    SELECT count(*) AS events,
           min(id) FILTER (WHERE NOT (hash_ok AND link_ok)) AS first_broken_id,
           max(id) AS last_id
    FROM checked
""")


def verify_chain(db) -> ChainStatus:
    """The SQL verifier's verdict: `events` counts every event, broken or not."""
    row = db.execute(SQL_VERIFY, {"genesis": GENESIS}).one()
    if row.first_broken_id is not None:
        last_good = db.scalar(text("SELECT max(id) FROM audit_events WHERE id < :id"), {"id": row.first_broken_id})
        return ChainStatus(False, row.events, row.first_broken_id, last_good)
    return ChainStatus(True, row.events, None, row.last_id)


def chain_rows(db):
    """Every event with the canonical text its hash covers, in chain order."""
    db.rollback()  # a fresh snapshot: other connections wrote the events
    rows = db.execute(
        text("SELECT id, action, entity_id, prev_hash, hash, audit_event_canonical(e) AS canonical "
             "FROM audit_events e ORDER BY id")
    ).all()
    db.rollback()  # hold no lock on audit_events while the test goes on
    return rows


def post_transactions(client, headers, count: int, prefix: str = "ref") -> list[str]:
    references = [f"{prefix}-{n}" for n in range(count)]
    for reference in references:
        assert client.post("/transactions", json=tx_payload(reference), headers=headers).status_code == 200
    return references


def audit_event_ids(db) -> list[int]:
    db.rollback()
    ids = list(db.scalars(select(AuditEvent.id).order_by(AuditEvent.id)))
    db.rollback()
    return ids


def test_events_written_by_api_actions_form_an_unbroken_chain(client, agent_headers, db):
    post_transactions(client, agent_headers, 3)
    settled = client.post(
        "/transactions/ref-1/settlement", json={"status": "failed", "reason": "card declined"}, headers=agent_headers
    )
    assert settled.status_code == 200

    rows = chain_rows(db)
    assert [row.action for row in rows] == [
        "user.created", "transaction.created", "transaction.created", "transaction.created", "transaction.failed",
    ]
    assert rows[0].prev_hash == GENESIS
    for previous, current in zip(rows, rows[1:]):
        assert current.prev_hash == previous.hash
    for row in rows:
        # The stored hash is SHA-256 over the previous hash followed by the event's canonical content.
        assert row.hash == hashlib.sha256((row.prev_hash + row.canonical).encode()).hexdigest()
    assert len({row.hash for row in rows}) == len(rows)


def test_event_content_is_what_the_action_did(client, agent_headers, db):
    post_transactions(client, agent_headers, 1)
    client.post("/transactions/ref-0/settlement", json={"status": "failed", "reason": "card declined"},
                headers=agent_headers)

    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "transaction.failed")).one()
    assert (event.entity_type, event.entity_id) == ("transaction", "ref-0")
    assert (event.actor_type, event.actor_role) == ("agent", "agent")
    assert event.before == {"status": "pending"}
    assert event.after == {"status": "failed"}
    assert event.reason == "card declined"


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET reason = 'rewritten'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
    ],
    ids=["update", "delete", "truncate"],
)
def test_database_rejects_changes_to_audit_events_even_for_the_table_owner(client, agent_headers, db, statement,
                                                                           owner_engine):
    post_transactions(client, agent_headers, 2)
    before = chain_rows(db)

    with owner_engine.connect() as conn:
        owner, current_user = conn.execute(
            text("SELECT tableowner, current_user FROM pg_tables WHERE tablename = 'audit_events'")
        ).one()
        assert owner == current_user  # the strongest ordinary privilege there is on this table
        with pytest.raises(DBAPIError) as raised:
            conn.execute(text(statement))
        conn.rollback()

    orig = raised.value.orig
    assert isinstance(orig, psycopg2.Error) and orig.pgcode == "42501"  # insufficient_privilege, raised by the trigger
    assert "append-only" in str(raised.value.orig)
    assert chain_rows(db) == before


def test_verify_reports_ok_with_the_event_count(client, agent_headers, db, run_cli):
    post_transactions(client, agent_headers, 4)

    status = verify_chain(db)
    assert status.ok
    assert status.events == 5  # the agent's user.created and four transactions
    assert status.first_broken_id is None
    assert status.last_verified_id == audit_event_ids(db)[-1]

    result = run_cli("audit", "verify")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "OK 5 events"


def test_verify_reports_ok_on_an_empty_history(db, run_cli):
    status = verify_chain(db)
    assert (status.ok, status.events) == (True, 0)
    result = run_cli("audit", "verify")
    assert (result.returncode, result.stdout.strip()) == (0, "OK 0 events")


def broken_event_id_from_cli(result) -> int:
    assert result.returncode == 1, result.stdout + result.stderr
    match = re.search(r"BROKEN at event (\d+)", result.stdout)
    assert match, result.stdout
    return int(match.group(1))


@pytest.mark.parametrize(
    "edit",
    [
        "UPDATE audit_events SET reason = 'nothing to see here' WHERE id = :id",
        """UPDATE audit_events SET after = jsonb_set(after, '{amount}', '"1.00"') WHERE id = :id""",
        "UPDATE audit_events SET actor = 'someone-else' WHERE id = :id",
    ],
    ids=["reason", "after", "actor"],
)
def test_an_edited_event_is_reported_by_its_id(client, agent_headers, db, tamper, edit):
    post_transactions(client, agent_headers, 5)
    ids = audit_event_ids(db)
    target = ids[3]

    tamper(edit, {"id": target})

    db.rollback()
    status = verify_chain(db)
    assert not status.ok
    assert status.first_broken_id == target
    assert status.last_verified_id == ids[2]
    assert status.events == len(ids)


def test_audit_verify_command_names_the_edited_event_and_exits_1(client, agent_headers, db, tamper, run_cli):
    post_transactions(client, agent_headers, 5)
    target = audit_event_ids(db)[3]

    tamper("UPDATE audit_events SET reason = 'nothing to see here' WHERE id = :id", {"id": target})

    result = run_cli("audit", "verify")
    assert broken_event_id_from_cli(result) == target
    assert result.stdout.startswith(f"BROKEN at event {target} ")


def test_an_edit_that_recomputes_the_events_own_hash_breaks_the_next_link(client, agent_headers, db, tamper, run_cli):
    post_transactions(client, agent_headers, 5)
    ids = audit_event_ids(db)
    target = ids[2]

    tamper(
        "UPDATE audit_events e SET reason = 'covered up' WHERE id = :id; "
        "UPDATE audit_events e SET hash = audit_event_hash(e.prev_hash, e) WHERE id = :id",
        {"id": target},
    )

    db.rollback()
    assert verify_chain(db).first_broken_id == ids[3]
    assert broken_event_id_from_cli(run_cli("audit", "verify")) == ids[3]


def test_a_deleted_middle_event_is_detected_at_the_following_event(client, agent_headers, db, tamper, run_cli):
    post_transactions(client, agent_headers, 5)
    ids = audit_event_ids(db)

    tamper("DELETE FROM audit_events WHERE id = :id", {"id": ids[3]})

    db.rollback()
    status = verify_chain(db)
    assert not status.ok
    assert status.first_broken_id == ids[4]
    assert status.last_verified_id == ids[2]
    assert status.events == len(ids) - 1
    assert broken_event_id_from_cli(run_cli("audit", "verify")) == ids[4]


def test_a_conflicting_create_leaves_no_audit_event(client, agent_headers, db):
    post_transactions(client, agent_headers, 1)
    before = audit_event_ids(db)

    response = client.post("/transactions", json=tx_payload("ref-0", amount="999.00"), headers=agent_headers)

    assert response.status_code == 409
    assert audit_event_ids(db) == before
    assert verify_chain(db).ok


def test_a_refused_settlement_leaves_no_audit_event(client, agent_headers, db):
    post_transactions(client, agent_headers, 1)
    assert client.post("/transactions/ref-0/settlement", json={"status": "failed"}, headers=agent_headers).is_success
    before = audit_event_ids(db)

    response = client.post("/transactions/ref-0/settlement", json={"status": "settled"}, headers=agent_headers)

    assert response.status_code == 409
    assert audit_event_ids(db) == before


def test_an_identical_replay_writes_no_second_event(client, agent_headers, db):
    post_transactions(client, agent_headers, 1)
    before = audit_event_ids(db)

    replay = client.post("/transactions", json=tx_payload("ref-0"), headers=agent_headers)

    assert replay.headers["Idempotent-Replayed"] == "true"
    assert audit_event_ids(db) == before


def test_a_rolled_back_savepoint_keeps_the_events_queued_before_it(db):
    from app.users import service as users

    actor = Actor(name="bulk-import")
    users.create(session=db, actor=actor, username="first", role="analyst", password="correct-horse-battery")
    with pytest.raises(Conflict):
        users.create(session=db, actor=actor, username="first", role="agent", password="correct-horse-battery")
    db.commit()

    assert db.scalars(select(AuditEvent.entity_type)).all() == ["user"]


def test_events_queued_inside_a_rolled_back_savepoint_are_not_written(db):
    with pytest.raises(RuntimeError), db.begin_nested():
        audit.record(db, actor=SYSTEM_ACTOR, action="probe.undone", entity_type="probe", entity_id="1")
        raise RuntimeError("the savepoint's work is undone")
    audit.record(db, actor=SYSTEM_ACTOR, action="probe.kept", entity_type="probe", entity_id="2")
    db.commit()

    assert db.scalars(select(AuditEvent.action)).all() == ["probe.kept"]


def test_events_of_one_unit_are_written_in_queue_order_with_every_value_intact(db):
    """One unit's events reach the server together; order and content must survive the trip."""
    tricky = "quote ' backslash \\ percent %s 100% ünïcode 日本 emoji 🙂"
    actor = Actor(name="importer", id=None, role="agent")
    for n in range(50):
        audit.record(db, actor=actor, action=f"probe.{n}", entity_type="probe", entity_id=n,
                     before={"n": n, "text": tricky} if n % 2 else None,
                     after={"nested": {"list": [1, "2", None, True]}, "amount": "10.50"}, reason=tricky)
    db.commit()

    rows = db.execute(select(AuditEvent).order_by(AuditEvent.id)).scalars().all()
    assert [row.action for row in rows] == [f"probe.{n}" for n in range(50)]
    assert [row.entity_id for row in rows] == [str(n) for n in range(50)]
    assert rows[1].before == {"n": 1, "text": tricky} and rows[0].before is None
    assert rows[7].after == {"nested": {"list": [1, "2", None, True]}, "amount": "10.50"}
    assert {row.reason for row in rows} == {tricky}
    actors = {(row.actor, row.actor_id, row.actor_role, row.actor_type) for row in rows}
    assert actors == {("importer", None, "agent", "agent")}
    assert verify_chain(db).ok


def test_concurrent_writers_produce_an_unbroken_chain_with_one_event_each(live_server, agent_headers, db):
    writers = 40
    references = [f"concurrent-{n}" for n in range(writers)]
    start_together = threading.Barrier(writers, timeout=30)

    def create(http: httpx.Client, reference: str) -> httpx.Response:
        start_together.wait()
        return http.post("/transactions", json=tx_payload(reference), headers=agent_headers)

    with httpx.Client(base_url=live_server, timeout=30) as http, ThreadPoolExecutor(writers) as pool:
        responses = list(pool.map(lambda reference: create(http, reference), references))

    assert [r.status_code for r in responses] == [200] * writers
    rows = chain_rows(db)
    created = [row for row in rows if row.action == "transaction.created"]
    assert Counter(row.entity_id for row in created) == Counter(references)
    assert rows[0].prev_hash == GENESIS
    for previous, current in zip(rows, rows[1:]):
        assert current.prev_hash == previous.hash
    request_ids = db.scalars(
        select(AuditEvent.request_id).where(AuditEvent.action == "transaction.created")
    ).all()
    assert sorted(request_ids) == sorted(r.headers["X-Request-ID"] for r in responses)
    status = verify_chain(db)
    assert (status.ok, status.events) == (True, writers + 1)
    assert db.scalar(select(func.count()).select_from(AuditEvent)) == writers + 1
