"""The worker signs audit checkpoints periodically and sends them as `audit.checkpoint` webhooks."""

import json

from app.audit import checkpoints
from app.config import Settings, get_settings
from app.webhooks.worker import Worker, WorkerConfig
from tests.webhooks.conftest import register, rows
from tests.webhooks.test_worker import run_until, settle_many


def test_a_running_worker_sends_a_signed_checkpoint_and_writes_its_file(client, admin_headers, desk, receiver, db,
                                                                        tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIT_CHECKPOINT_DIR", str(tmp_path))
    get_settings.cache_clear()
    register(client, admin_headers, receiver.url, event_types=("audit.checkpoint",))
    settle_many(desk, 3)
    worker = Worker(WorkerConfig(poll_interval=0.05, checkpoint_seconds=0.2))

    run_until(worker, lambda: len(receiver.requests) >= 1)
    get_settings.cache_clear()

    assert worker.checkpoints == 1  # nothing new since: no second one
    body = json.loads(receiver.requests[0].body)
    assert body["type"] == "audit.checkpoint"
    document = body["data"]
    public_key = checkpoints.signing_key(Settings()).public_key()
    checkpoint = checkpoints.read(document, public_key)
    head = rows(db, "SELECT max(id) AS id, count(*) AS n FROM audit_events"
                    " WHERE action <> 'audit.checkpoint_created'")[0]
    assert (checkpoint.last_id, checkpoint.count) == (head.id, head.n)
    assert json.loads((tmp_path / f"checkpoint-{checkpoint.last_id}.json").read_text()) == document
    noted = rows(db, "SELECT actor, entity_id FROM audit_events WHERE action = 'audit.checkpoint_created'")
    assert [(row.actor, row.entity_id) for row in noted] == [("system", str(checkpoint.last_id))]


def test_once_and_a_fresh_worker_make_no_checkpoint(desk, db):
    settle_many(desk, 2)
    Worker(WorkerConfig(poll_interval=0.05, checkpoint_seconds=0.0)).run(once=True)
    assert rows(db, "SELECT count(*) AS n FROM audit_checkpoints")[0].n == 0
