"""Evidence packs verify offline with the public key alone, and fail after any edit."""

import json

import pytest

from app.audit import checkpoints, evidence
from app.config import Settings
from app.db import database
from tests.conftest import tx_payload


@pytest.fixture
def case_id(client, agent_headers):
    for n in range(3):  # history before the case, so proofs are real paths
        assert client.post("/transactions", json=tx_payload(f"other-{n}"), headers=agent_headers).status_code == 200
    assert client.post("/transactions", json=tx_payload("evidence-1"), headers=agent_headers).status_code == 200
    score = {"score": 93, "model": "fraud-v3",
             "reasons": [{"code": "velocity", "description": "9 in 1 h", "weight": "0.75"}]}
    answer = client.post("/transactions/evidence-1/risk-scores", json=score, headers=agent_headers)
    assert answer.status_code == 201
    for n in range(4):  # and after it
        assert client.post("/transactions", json=tx_payload(f"later-{n}"), headers=agent_headers).status_code == 200
    return answer.json()["case_id"]


def key():
    return checkpoints.signing_key(Settings())


def build_pack(case_id: int) -> dict:
    with database.engine.connect() as conn:
        pack = evidence.build(conn, case_id=case_id, exported_by="admin", key=key())
        conn.commit()
    return pack


def test_a_pack_holds_the_case_its_transaction_scores_and_proven_events(case_id, db):
    pack = build_pack(case_id)
    assert pack["case"]["id"] == case_id and pack["transaction"]["reference"] == "evidence-1"
    assert pack["transaction"]["amount"] == "125.5000"  # the NUMERIC as stored, never a float
    assert [s["score"] for s in pack["risk_scores"]] == [93]
    actions = [e["action"] for e in pack["audit_events"]]
    assert actions == ["transaction.created", "risk_score.posted", "case.opened", "transaction.review_status_changed"]
    assert all(len(e["proof"]["path"]) >= 1 for e in pack["audit_events"])
    problems, _ = evidence.verify_pack(evidence.dumps(pack), key().public_key())
    assert problems == []


def test_the_cli_verifies_a_pack_offline(case_id, tmp_path, run_cli):
    path = tmp_path / "case.json"
    path.write_bytes(evidence.dumps(build_pack(case_id)))
    # No database at all: DATABASE_URL points nowhere.
    result = run_cli("audit", "verify-pack", str(path), "--public-key",
                     checkpoints.public_key_text(key().public_key()), env={"DATABASE_URL": "postgresql://nowhere:1/x"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(f"OK evidence for case {case_id}: 4 events proven against checkpoint ")


EDITS = [
    ("case", lambda p: p["case"].update(reason="nothing unusual")),
    ("transaction", lambda p: p["transaction"].update(amount="1.0000")),
    ("risk_scores", lambda p: p["risk_scores"][0].update(score=12)),
    ("event reason", lambda p: p["audit_events"][0].update(reason="edited")),
    ("event after", lambda p: p["audit_events"][1].update(after=p["audit_events"][1]["after"].replace("93", "39"))),
    ("event proof", lambda p: p["audit_events"][2]["proof"].update(leaf_index=0)),
    ("checkpoint", lambda p: p["checkpoint"].update(count=p["checkpoint"]["count"] + 1)),
    ("manifest", lambda p: p["manifest"].update(case_id=999)),
]


@pytest.mark.parametrize("name, edit", EDITS, ids=[name for name, _ in EDITS])
def test_any_edit_of_the_content_makes_the_pack_fail(case_id, name, edit):
    pack = json.loads(evidence.dumps(build_pack(case_id)), parse_float=str)
    edit(pack)
    problems, _ = evidence.verify_pack(evidence.dumps(pack), key().public_key())
    assert problems, name


def test_editing_any_single_byte_of_a_value_fails(case_id):
    data = evidence.dumps(build_pack(case_id))
    text = data.decode()
    marker = text.index('"risk_score.posted"') + 1
    edited = (text[:marker] + "R" + text[marker + 1:]).encode()
    assert evidence.verify_pack(edited, key().public_key())[0]


def test_another_key_does_not_verify_a_pack(case_id):
    other = checkpoints.signing_key(Settings(audit_signing_key=checkpoints.generate_seed())).public_key()
    problems, _ = evidence.verify_pack(evidence.dumps(build_pack(case_id)), other)
    assert any("signature" in problem for problem in problems)


def test_a_pack_reuses_a_checkpoint_that_covers_the_case(case_id, run_cli, tmp_path):
    assert run_cli("audit", "checkpoint", "--out", str(tmp_path)).returncode == 0
    first, second = build_pack(case_id), build_pack(case_id)
    assert first["checkpoint"] == second["checkpoint"]


@pytest.mark.parametrize("garbage", [b"", b"not json", b"[]", b'{"format": "riskdesk-evidence-pack/1"}',
                                     b'{"format": "riskdesk-evidence-pack/1", "manifest": {}, "audit_events": [1]}'])
def test_garbage_is_invalid_not_a_crash(garbage):
    problems, _ = evidence.verify_pack(garbage, key().public_key())
    assert problems
