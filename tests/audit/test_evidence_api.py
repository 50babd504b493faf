"""GET /api/cases/{id}/evidence (admin, audited) and GET /api/audit/public-key."""

from sqlalchemy import text

from app.audit import checkpoints, evidence
from tests.conftest import tx_payload


def open_case(client, agent_headers) -> int:
    assert client.post("/transactions", json=tx_payload("ev-api"), headers=agent_headers).status_code == 200
    answer = client.post("/transactions/ev-api/risk-scores", headers=agent_headers,
                         json={"score": 90, "model": "m", "reasons": [{"code": "c", "description": "d"}]})
    return answer.json()["case_id"]


def test_an_admin_downloads_a_pack_that_verifies_with_the_published_key(client, agent_headers, admin_headers, db):
    case_id = open_case(client, agent_headers)
    answer = client.get(f"/api/cases/{case_id}/evidence", headers=admin_headers)
    assert answer.status_code == 200
    assert answer.headers["content-disposition"] == f'attachment; filename="case-{case_id}-evidence.json"'
    published = client.get("/api/audit/public-key").json()
    assert published["algorithm"] == "Ed25519"
    problems, pack = evidence.verify_pack(answer.content, checkpoints.load_public_key(published["public_key"]))
    assert pack is not None
    assert problems == [] and pack["manifest"]["case_id"] == case_id
    db.commit()
    exported = db.execute(text(
        "SELECT actor_role, entity_id, after FROM audit_events WHERE action = 'case.evidence_exported'")).all()
    assert [(row.actor_role, row.entity_id) for row in exported] == [("admin", str(case_id))]
    assert exported[0].after == {"checkpoint_last_id": pack["checkpoint"]["last_id"], "events": 4}


def test_only_admins_export_evidence_and_unknown_cases_are_404(client, agent_headers, users, admin_headers):
    case_id = open_case(client, agent_headers)
    assert client.get(f"/api/cases/{case_id}/evidence").status_code == 401
    assert client.get(f"/api/cases/{case_id}/evidence", headers=agent_headers).status_code == 403
    assert client.get(f"/api/cases/{case_id}/evidence", headers=users.headers("analyst")).status_code == 403
    assert client.get("/api/cases/999999/evidence", headers=admin_headers).status_code == 404
    assert client.get("/api/cases/0/evidence", headers=admin_headers).status_code == 422
