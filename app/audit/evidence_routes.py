"""The audit's proofs over HTTP: the checkpoint public key, and a case's evidence pack."""

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import Response
from pydantic import BaseModel

from app.audit import checkpoints, evidence
from app.audit import service as audit
from app.config import get_settings
from app.db import DbSession
from app.errors import NotFound
from app.openapi import AUTH_ERRORS
from app.security.deps import Admin, Principal
from app.uow.routing import ApiRoute
from app.uow.unit import OrmSession

router = APIRouter(tags=["audit"], route_class=ApiRoute)
CaseId = Annotated[int, Path(ge=1, lt=2**63)]


class PublicKeyOut(BaseModel):
    algorithm: str = checkpoints.ALGORITHM
    public_key: str  # standard base64 of the raw 32-byte Ed25519 key
    key_id: str


@router.get("/api/audit/public-key", response_model=PublicKeyOut,
            summary="The Ed25519 key that verifies checkpoints and evidence packs (public: no sign-in)")
def public_key():
    key = checkpoints.signing_key(get_settings()).public_key()
    return PublicKeyOut(public_key=checkpoints.public_key_text(key), key_id=checkpoints.key_id(key))


def evidence_download(session: OrmSession, principal: Principal, case_id: int) -> Response:
    """Build, audit and answer one case's pack (the API's route and the case page's link)."""
    key = checkpoints.signing_key(get_settings())
    try:
        pack = evidence.build(session.connection(), case_id=case_id, exported_by=principal.actor.name, key=key)
    except evidence.CaseNotFound:
        raise NotFound("case not found") from None
    audit.record(session, actor=principal.actor, action="case.evidence_exported", entity_type="case",
                 entity_id=case_id, after={"checkpoint_last_id": pack["checkpoint"]["last_id"],
                                           "events": len(pack["audit_events"])})
    return Response(evidence.dumps(pack), media_type="application/json", headers={
        "Content-Disposition": f'attachment; filename="case-{case_id}-evidence.json"', "Cache-Control": "no-store"})


@router.get("/api/cases/{case_id}/evidence", response_class=Response,
            summary="One case's evidence pack: records, audit events and their proofs to a signed checkpoint",
            responses={**AUTH_ERRORS, 404: {"description": "No such case"},
                       200: {"content": {"application/json": {}},
                             "description": "The pack; `python -m app audit verify-pack FILE` checks it offline"}})
def case_evidence(case_id: CaseId, principal: Admin, session: DbSession):
    return evidence_download(session, principal, case_id)
