"""Reconciliation screens: upload a bank statement CSV, watch it being processed, read runs.

The upload stores the file with a new run; the run page then drives processing one chunk
per HTMX request (`/advance`, re-triggered on load until done). Progress is the run row,
so any instance can serve any request, and closing the tab only pauses the run.

Bank events are read-only for analysts (SPEC's role table, and the API): they see runs,
but only an admin uploads a statement or drives its processing. Agents, the other role
that may post bank events, use the API; the screens are not theirs.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, File, Path, Request, UploadFile
from sqlalchemy.orm import Session

from app.config import get_settings
from app.db import DbSession
from app.reconciliation import csv_format
from app.reconciliation import service as reconciliation
from app.reconciliation.enums import RunStatus
from app.security.deps import Principal
from app.uow.routing import AnswerAfterCommit
from app.users.enums import Role
from app.web.deps import BrowserUser, RequireBrowserRole, ScreenRoute
from app.web.errors import redirect
from app.web.templating import render

router = APIRouter(route_class=ScreenRoute)
UPLOAD_PATH = "/reconciliation/upload"
RunId = Annotated[int, Path(ge=1, lt=2**63)]
# The screen users who may write bank events: the API's TransactionWriter minus agents (no screens).
BANK_EVENT_WRITERS = (Role.ADMIN,)
BankEventWriter = Annotated[Principal, Depends(RequireBrowserRole(*BANK_EVENT_WRITERS))]


def may_upload(principal: Principal) -> bool:
    return principal.role in BANK_EVENT_WRITERS


def _index(request: Request, session: Session, principal: Principal, *, status_code: int = 200, error: str = ""):
    return render(request, "reconciliation/index.html", {
        "runs": reconciliation.list_runs(session=session), "columns": csv_format.COLUMNS, "error": error,
        "max_mib": get_settings().max_upload_bytes // (1024 * 1024), "active_nav": "reconciliation",
        "may_upload": may_upload(principal),
    }, principal=principal, status_code=status_code)


@router.get("/reconciliation")
def reconciliation_page(request: Request, session: DbSession, principal: BrowserUser):
    return _index(request, session, principal)


@router.post(UPLOAD_PATH)
def upload_statement(request: Request, session: DbSession, principal: BankEventWriter,
                     file: Annotated[UploadFile | None, File()] = None):
    if file is None or not file.filename:
        return _index(request, session, principal, status_code=422, error="file: choose a CSV bank statement")
    limit = get_settings().max_upload_bytes
    content = file.file.read(limit + 1)  # spooled to a temporary file by the form parser
    if len(content) > limit:
        return _index(request, session, principal, status_code=413, error=f"file: over {limit // 2**20} MiB")
    try:
        run_id = reconciliation.start_upload(session=session, actor=principal.actor, filename=file.filename,
                                             content=content)
    except csv_format.BadFile as exc:
        return _index(request, session, principal, status_code=422, error=f"file: {exc}")
    return redirect(request, f"/reconciliation/runs/{run_id}")


def _run_context(session: Session, run_id: int, principal: Principal) -> dict:
    run = reconciliation.get_run(session=session, run_id=run_id)
    context = {"run": run, "active_nav": "reconciliation", "may_advance": may_upload(principal)}
    if run.status != RunStatus.PROCESSING:
        context.update(
            counts=reconciliation.mismatch_counts(session=session, run_id=run_id),
            mismatches=reconciliation.mismatches(session=session, run_id=run_id),
            row_errors=reconciliation.row_errors(session=session, run_id=run_id),
        )
    return context


@router.get("/reconciliation/runs/{run_id}")
def run_page(run_id: RunId, request: Request, session: DbSession, principal: BrowserUser):
    return render(request, "reconciliation/run.html", _run_context(session, run_id, principal),
                  principal=principal)


@router.post("/reconciliation/runs/{run_id}/advance")
def advance_run(run_id: RunId, request: Request, session: DbSession, principal: BankEventWriter):
    busy = not reconciliation.process_next_chunk(session=session, actor=principal.actor, run_id=run_id)
    # The screen route commits the chunk, then the progress is read and rendered.
    return AnswerAfterCommit(lambda: _progress(request, session, principal, run_id, busy=busy))


def _progress(request: Request, session: Session, principal: Principal, run_id: int, *, busy: bool):
    run = reconciliation.get_run(session=session, run_id=run_id)
    if run.status != RunStatus.PROCESSING:
        return redirect(request, f"/reconciliation/runs/{run_id}")
    return render(request, "reconciliation/_progress.html", {"run": run, "busy": busy, "may_advance": True},
                  principal=principal)
