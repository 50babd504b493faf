"""Signed checkpoints: every tamper of the security review fails `audit verify --checkpoint`."""

import json
import os
import stat

import pytest
from sqlalchemy import text

from app.audit import chain, checkpoints
from app.config import ConfigError, Settings, check_production_safety
from app.db import database
from tests.audit.test_chain import audit_event_ids, post_transactions


@pytest.fixture
def checkpointed(client, agent_headers, db, run_cli, tmp_path):
    """Six events, a checkpoint of them written by the CLI, then two more events after it."""
    post_transactions(client, agent_headers, 5, prefix="before")
    result = run_cli("audit", "checkpoint", "--out", str(tmp_path / "checkpoints"))
    assert result.returncode == 0, result.stderr
    path = result.stdout.strip()
    post_transactions(client, agent_headers, 2, prefix="after")
    return path


def recompute_hashes_from(owner_engine, first_id: int) -> None:
    """What an attacker with the owner's rights does after an edit: rebuild every later link."""
    with owner_engine.begin() as conn:
        conn.execute(text("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update"))
        rows = list(chain.stored_rows(conn))
        previous = chain.GENESIS_HASH
        for row in rows:
            if row.id >= first_id:
                fixed = chain.event_hash(previous, row)
                conn.execute(text("UPDATE audit_events SET prev_hash = :p, hash = :h WHERE id = :id"),
                             {"p": previous, "h": fixed, "id": row.id})
                previous = fixed
            else:
                previous = row.hash
        conn.execute(text("ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_update"))


def test_a_checkpoint_is_a_signed_file_of_the_chain_head(checkpointed, db):
    document = json.loads(open(checkpointed).read())
    ids = audit_event_ids(db)
    assert document["last_id"] == ids[5] and document["count"] == 6
    assert document["format"] == checkpoints.FORMAT and document["algorithm"] == "Ed25519"
    with database.engine.connect() as conn:
        hash_at = conn.execute(text("SELECT hash FROM audit_events WHERE id = :id"), {"id": ids[5]}).scalar()
    assert document["hash"] == hash_at
    with database.engine.connect() as conn:  # the checkpoint itself is audited, right after its head
        noted = conn.execute(text("SELECT id, actor, entity_id FROM audit_events "
                                  "WHERE action = 'audit.checkpoint_created'")).one()
    assert (noted.id, noted.actor, noted.entity_id) == (ids[6], "cli", str(ids[5]))
    public_key = checkpoints.signing_key(Settings()).public_key()
    assert checkpoints.read(document, public_key).last_id == ids[5]


def test_verify_with_the_checkpoint_passes_on_an_untouched_history(checkpointed, run_cli):
    result = run_cli("audit", "verify", "--checkpoint", checkpointed)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "OK 9 events"  # 6 checkpointed, its audit.checkpoint_created, 2 after


def test_deleting_the_newest_events_passes_a_plain_verify_but_not_the_checkpoint(checkpointed, db, tamper, run_cli):
    ids = audit_event_ids(db)
    tamper("DELETE FROM audit_events WHERE id >= :id", {"id": ids[4]})  # the last two before the checkpoint, and later

    assert run_cli("audit", "verify").stdout.strip() == "OK 4 events"  # what the chain alone cannot see
    result = run_cli("audit", "verify", "--checkpoint", checkpointed)
    assert result.returncode == 1
    assert f"checkpoint event {ids[5]} is missing or altered" in result.stdout


def test_an_edit_with_every_later_hash_recomputed_fails_the_checkpoint(checkpointed, db, tamper, run_cli, owner_engine):
    ids = audit_event_ids(db)
    tamper("UPDATE audit_events SET reason = 'covered up' WHERE id = :id", {"id": ids[2]})
    recompute_hashes_from(owner_engine, ids[2])

    assert run_cli("audit", "verify").returncode == 0  # a consistent, rewritten chain
    result = run_cli("audit", "verify", "--checkpoint", checkpointed)
    assert result.returncode == 1 and "BROKEN" in result.stdout


def test_swapped_rows_fail(checkpointed, db, tamper, run_cli, owner_engine):
    ids = audit_event_ids(db)
    tamper("UPDATE audit_events a SET entity_id = b.entity_id FROM audit_events b "
           "WHERE (a.id, b.id) IN ((:x, :y), (:y, :x))", {"x": ids[1], "y": ids[3]})
    recompute_hashes_from(owner_engine, ids[1])
    result = run_cli("audit", "verify", "--checkpoint", checkpointed)
    assert result.returncode == 1 and "BROKEN" in result.stdout


def test_a_column_rewritten_by_alter_using_fails(checkpointed, db, run_cli, owner_engine):
    ids = audit_event_ids(db)
    with owner_engine.begin() as conn:  # no row trigger fires for ALTER TABLE … USING
        conn.execute(text("ALTER TABLE audit_events ALTER COLUMN entity_id TYPE varchar(128) "
                          "USING replace(entity_id, 'before', 'b4')"))
    recompute_hashes_from(owner_engine, ids[0])
    assert run_cli("audit", "verify").returncode == 0
    result = run_cli("audit", "verify", "--checkpoint", checkpointed)
    assert result.returncode == 1 and "BROKEN" in result.stdout


def test_a_replaced_hash_function_does_not_fool_the_checkpoint(checkpointed, db, tamper, run_cli,
                                                               replace_hash_function):
    ids = audit_event_ids(db)
    tamper("UPDATE audit_events SET reason = 'nothing to see' WHERE id = :id", {"id": ids[1]})
    replace_hash_function()
    result = run_cli("audit", "verify", "--checkpoint", checkpointed)
    assert result.returncode == 1 and f"BROKEN at event {ids[1]}" in result.stdout


@pytest.mark.parametrize("field, value", [("last_id", 1), ("count", 5), ("hash", "0" * 64),
                                          ("created_at", "2020-01-01T00:00:00.000000Z")])
def test_an_edited_checkpoint_file_is_refused(checkpointed, run_cli, field, value):
    document = json.loads(open(checkpointed).read())
    document[field] = value
    with open(checkpointed, "w") as file:
        json.dump(document, file)
    result = run_cli("audit", "verify", "--checkpoint", checkpointed)
    assert result.returncode == 2 and "signature does not verify" in result.stderr


def test_a_checkpoint_signed_by_another_key_is_refused(checkpointed, run_cli):
    other = checkpoints.load_public_key(checkpoints.public_key_text(
        checkpoints.signing_key(Settings(audit_signing_key=checkpoints.generate_seed())).public_key()))
    result = run_cli("audit", "verify", "--checkpoint", checkpointed,
                     "--public-key", checkpoints.public_key_text(other))
    assert result.returncode == 2 and "another key" in result.stderr


def test_outside_production_a_key_is_generated_once_into_a_private_file(tmp_path):
    settings = Settings(app_env="development", audit_signing_key=None, audit_signing_key_file=tmp_path / "k" / "key")
    first = checkpoints.public_key_text(checkpoints.signing_key(settings).public_key())
    assert stat.S_IMODE(os.stat(tmp_path / "k" / "key").st_mode) == 0o600
    assert checkpoints.public_key_text(checkpoints.signing_key(settings).public_key()) == first


@pytest.mark.parametrize("key", [None, "", "not base64!", "c2hvcnQ="])
def test_production_refuses_a_missing_or_malformed_signing_key(key):
    settings = Settings(app_env="production", secret_key="k" * 48, database_url="postgresql://db/x",
                        audit_signing_key=key)
    with pytest.raises(ConfigError, match="AUDIT_SIGNING_KEY"):
        check_production_safety(settings)
    with pytest.raises(checkpoints.CheckpointError):
        checkpoints.signing_key(settings)


def test_an_empty_history_cannot_be_checkpointed(db, run_cli, tmp_path):
    result = run_cli("audit", "checkpoint", "--out", str(tmp_path))
    assert result.returncode == 1 and "non-empty chain" in result.stderr


def test_incremental_checks_the_signed_head_and_recomputes_only_what_came_after(checkpointed, db, tamper, run_cli,
                                                                               owner_engine):
    result = run_cli("audit", "verify", "--checkpoint", checkpointed, "--incremental")
    assert result.returncode == 0 and result.stdout.strip() == "OK 9 events"
    ids = audit_event_ids(db)

    tamper("UPDATE audit_events SET reason = 'after the checkpoint' WHERE id = :id", {"id": ids[7]})
    result = run_cli("audit", "verify", "--checkpoint", checkpointed, "--incremental")
    assert result.returncode == 1 and result.stdout.startswith(f"BROKEN at event {ids[7]} ")


def test_incremental_catches_a_rewrite_before_the_checkpoint_that_recomputes_the_chain(checkpointed, db, tamper,
                                                                                      run_cli, owner_engine):
    ids = audit_event_ids(db)
    tamper("UPDATE audit_events SET reason = 'covered up' WHERE id = :id", {"id": ids[1]})
    recompute_hashes_from(owner_engine, ids[1])
    result = run_cli("audit", "verify", "--checkpoint", checkpointed, "--incremental")
    assert result.returncode == 1 and f"checkpoint event {ids[5]} is missing or altered" in result.stdout


def test_incremental_catches_deleted_newest_events(checkpointed, db, tamper, run_cli):
    ids = audit_event_ids(db)
    tamper("DELETE FROM audit_events WHERE id >= :id", {"id": ids[5]})
    result = run_cli("audit", "verify", "--checkpoint", checkpointed, "--incremental")
    assert result.returncode == 1 and "missing or altered" in result.stdout
