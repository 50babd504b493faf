"""`app/audit/chain.py` recomputes every hash in Python, byte for byte what the database computes."""

from decimal import Decimal

from sqlalchemy import text

from app.audit import chain
from app.audit import service as audit
from app.audit.service import Actor
from app.db import database
from tests.conftest import tx_payload

# Every character class the escaping has to agree on, in text and in JSONB.
AWKWARD = "\"quote\" \\back\\slash\\ \b\f\n\r\t \x01\x1f\x7f é 日本 🙂 \u2028 \ufeff </script>"


def write_awkward_events(db) -> None:
    actors = [Actor(name="importer", id=None, role="agent"), Actor(name=AWKWARD[:60], id=2**62, role="admin")]
    for n in range(40):
        audit.record(
            db, actor=actors[n % 2], action=f"probe.{n}", entity_type="probe", entity_id=AWKWARD[:n + 1],
            before=None if n % 3 == 0 else {"n": n, AWKWARD[:5]: AWKWARD, "z": [], "a": {}, "long_key_": None,
                                            "amount": Decimal("10.50"), "big": 10**20, "neg": -0.0, "t": True},
            after={"nested": {"list": [1, "2", None, False, 1.5e300, Decimal("-0.000001")]}, "": ""},
            reason=None if n % 4 == 0 else AWKWARD,
        )
    db.commit()


def python_and_database_hashes(conn):
    rows = list(chain.stored_rows(conn))
    database_hashes = dict(conn.execute(
        text("SELECT id, audit_event_hash(prev_hash, e) FROM audit_events e ORDER BY id")).all())
    return rows, database_hashes


def test_python_hashes_equal_the_databases_for_every_kind_of_value(db):
    write_awkward_events(db)
    with database.engine.connect() as conn:
        rows, database_hashes = python_and_database_hashes(conn)
    assert len(rows) == 40
    for row in rows:
        assert chain.event_hash(row.prev_hash, row) == database_hashes[row.id] == row.hash, row.id
    status = chain.check(rows)
    assert status.ok and status.events == 40 and status.last_verified_id == rows[-1].id
    assert status.last_hash == rows[-1].hash


def test_python_hashes_equal_the_databases_for_what_the_api_writes(client, agent_headers, db):
    for n in range(5):
        assert client.post("/transactions", json=tx_payload(f"py-{n}"), headers=agent_headers).status_code == 200
    score = {"score": 91, "model": "m", "reasons": [{"code": "c", "description": AWKWARD, "weight": "0.5"}]}
    assert client.post("/transactions/py-1/risk-scores", headers=agent_headers, json=score).status_code == 201
    with database.engine.connect() as conn:
        rows, database_hashes = python_and_database_hashes(conn)
        assert chain.verify(conn).ok
    assert {row.id: chain.event_hash(row.prev_hash, row) for row in rows} == database_hashes


def test_an_edit_is_found_even_when_the_database_hash_function_is_replaced_to_hide_it(db, tamper,
                                                                                      replace_hash_function):
    write_awkward_events(db)
    with database.engine.begin() as conn:
        target = conn.execute(text("SELECT id FROM audit_events ORDER BY id OFFSET 10 LIMIT 1")).scalar_one()
    # The attacker rewrites a row and makes the database's own hash function agree with it.
    tamper("UPDATE audit_events SET reason = 'nothing to see' WHERE id = :id", {"id": target})
    replace_hash_function()
    with database.engine.connect() as conn:
        status = chain.verify(conn)
    assert not status.ok and status.first_broken_id == target
    assert status.last_verified_id == target - 1


def test_incremental_verify_starts_from_the_hash_it_is_given(db):
    write_awkward_events(db)
    with database.engine.connect() as conn:
        rows = list(chain.stored_rows(conn))
        middle = rows[19]
        status = chain.verify(conn, after_id=middle.id, start_hash=middle.hash)
        assert status.ok and status.events == 20
        wrong_start = chain.verify(conn, after_id=middle.id, start_hash="f" * 64)
    assert not wrong_start.ok and wrong_start.first_broken_id == rows[20].id
