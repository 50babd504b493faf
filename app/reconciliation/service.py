"""Reconciliation runs: the JSON request in one transaction, a CSV upload in chunks.

An upload stores the file with the run and is then processed one chunk per request
(`process_next_chunk`): the chunk's events, the run's counters and the upload's offset
commit together, and the upload row is claimed with FOR UPDATE SKIP LOCKED, so any app
instance can continue a run, no line is processed twice, and progress is in the database.
"""

from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.audit.service import Actor
from app.errors import NotFound
from app.reconciliation import csv_format
from app.reconciliation.enums import MATCHED, RunStatus
from app.reconciliation.matching import ChunkResult, Numbered, reconcile_chunk
from app.reconciliation.models import BankEvent, ReconciliationRowError, ReconciliationRun, ReconciliationUpload
from app.reconciliation.schemas import BankEventIn, Mismatch, ReconciliationResult, RunOut
from app.uow.unit import OrmSession
from app.users.models import User

R = ReconciliationRun.__table__.c
B = BankEvent.__table__.c
CHUNK_BYTES = 256 * 1024
MAX_LINE_BYTES_IN_FILE = 64 * 1024


def _create_run(session: OrmSession, actor: Actor, *, source: str, total: int, filename: str | None = None) -> int:
    run_id = session.execute(
        insert(ReconciliationRun.__table__).values(
            source=source, filename=filename, total_rows=total, created_by=actor.id
        ).returning(R.id)
    ).scalar_one()
    audit.record(session, actor=actor, action="reconciliation.run_started", entity_type="reconciliation_run",
                 entity_id=run_id, after={"source": source, "filename": filename, "total_rows": total})
    return run_id


def _add_progress(session: Session, run_id: int, rows: int, result: ChunkResult, malformed: int = 0) -> None:
    session.execute(
        update(ReconciliationRun.__table__).where(R.id == run_id).values(
            rows_processed=R.rows_processed + rows, matched=R.matched + result.matched,
            mismatched=R.mismatched + len(result.mismatches), replayed=R.replayed + result.replayed,
            malformed=R.malformed + malformed, updated_at=func.now(),
        )
    )


def _complete(session: OrmSession, actor: Actor, run_id: int) -> None:
    row = session.execute(
        update(ReconciliationRun.__table__).where(R.id == run_id)
        .values(status=RunStatus.COMPLETED, completed_at=func.now(), updated_at=func.now())
        .returning(R.total_rows, R.matched, R.mismatched, R.replayed, R.malformed)
    ).one()
    audit.record(session, actor=actor, action="reconciliation.run_completed", entity_type="reconciliation_run",
                 entity_id=run_id, after=row._asdict())


def reconcile_events(*, session: OrmSession, actor: Actor, events: list[BankEventIn]) -> ReconciliationResult:
    """Reconcile a JSON request's events as one run, in the caller's transaction."""
    run_id = _create_run(session, actor, source="api", total=len(events))
    result = reconcile_chunk(
        session=session, actor=actor, run_id=run_id, items=[Numbered(i, e) for i, e in enumerate(events)]
    )
    _add_progress(session, run_id, len(events), result)
    _complete(session, actor, run_id)
    return ReconciliationResult(run_id=run_id, matched=result.matched, mismatches=result.mismatches,
                                replayed=result.replayed)


# --- CSV uploads -----------------------------------------------------------------------

def start_upload(*, session: OrmSession, actor: Actor, filename: str | None, content: bytes) -> int:
    """Check the header, count the rows, store the file (LF line endings) with a new run; BadFile if unreadable."""
    content = csv_format.normalize_line_endings(content)
    _, offset = csv_format.read_header(content)
    if any(len(line) > MAX_LINE_BYTES_IN_FILE for line in content.split(b"\n")):
        raise csv_format.BadFile(f"a line is longer than {MAX_LINE_BYTES_IN_FILE} bytes: not a bank statement")
    total = csv_format.count_rows(content, offset)
    if total == 0:
        raise csv_format.BadFile("the file has a header but no rows")
    run_id = _create_run(session, actor, source="csv", total=total, filename=csv_format.display_filename(filename))
    session.execute(insert(ReconciliationUpload.__table__).values(
        run_id=run_id, content=content, next_offset=offset, next_line=2,
    ))
    return run_id


NEXT_SLICE = text(
    """
    SELECT substring(content FROM next_offset + 1 FOR :size) AS slice, next_offset, next_line,
           octet_length(content) AS length
    FROM reconciliation_uploads WHERE run_id = :run_id
    FOR UPDATE SKIP LOCKED
    """
)
UPLOAD_HEADER = text("SELECT substring(content FROM 1 FOR 65536) FROM reconciliation_uploads WHERE run_id = :run_id")


def process_next_chunk(*, session: OrmSession, actor: Actor, run_id: int) -> bool:
    """Process the run's next chunk of lines; False if another request is processing it right now."""
    upload = session.execute(NEXT_SLICE, {"run_id": run_id, "size": CHUNK_BYTES}).one_or_none()
    if upload is None:
        return False
    columns, _ = csv_format.read_header(bytes(session.execute(UPLOAD_HEADER, {"run_id": run_id}).scalar_one()))
    data = bytes(upload.slice)
    at_end = upload.next_offset + len(data) >= upload.length
    cut = len(data) if at_end else data.rfind(b"\n") + 1
    lines, line_no = [], upload.next_line
    for raw in data[:cut].split(b"\n")[: None if at_end else -1]:
        if raw.strip():
            lines.append((line_no, raw))
        line_no += 1
    events, errors = csv_format.parse_lines(columns, lines)
    result = reconcile_chunk(session=session, actor=actor, run_id=run_id, items=events) if events else ChunkResult()
    if errors:
        session.execute(insert(ReconciliationRowError.__table__), [
            {"run_id": run_id, "line_no": e.line, "field": e.field, "message": e.message} for e in errors
        ])
    _add_progress(session, run_id, len(lines), result, malformed=len(errors))
    if at_end:
        session.execute(delete(ReconciliationUpload.__table__).where(ReconciliationUpload.run_id == run_id))
        _complete(session, actor, run_id)
    else:
        session.execute(update(ReconciliationUpload.__table__).where(ReconciliationUpload.run_id == run_id).values(
            next_offset=upload.next_offset + cut, next_line=line_no,
        ))
    return True


# --- reading ---------------------------------------------------------------------------

RUN_ROWS = select(*[c for c in R if c.key != "created_by"], User.username.label("created_by")).outerjoin(
    User, User.id == R.created_by
)


def get_run(*, session: Session, run_id: int) -> RunOut:
    """The run with its counters, or NotFound."""
    row = session.execute(RUN_ROWS.where(R.id == run_id)).one_or_none()
    if row is None:
        raise NotFound(f"reconciliation run {run_id} not found")
    return RunOut(**row._asdict())


def list_runs(*, session: Session, limit: int = 50) -> list[RunOut]:
    """Newest runs first."""
    return [RunOut(**row._asdict()) for row in session.execute(RUN_ROWS.order_by(R.id.desc()).limit(limit))]


def mismatches(*, session: Session, run_id: int, limit: int = 500) -> list[Mismatch]:
    """The run's mismatches in file order, each with its case."""
    rows = session.execute(
        select(B.bank_reference, B.reference, B.outcome.label("kind"), B.case_id, B.line_no.label("line"))
        .where(B.run_id == run_id, B.outcome != MATCHED).order_by(B.id).limit(limit)
    )
    return [Mismatch(**row._asdict()) for row in rows]


def mismatch_counts(*, session: Session, run_id: int) -> dict[str, int]:
    """Mismatches per kind in the run."""
    rows = session.execute(
        select(B.outcome, func.count()).where(B.run_id == run_id, B.outcome != MATCHED).group_by(B.outcome)
    )
    return dict(rows.tuples().all())


def row_errors(*, session: Session, run_id: int, limit: int = 500) -> list[ReconciliationRowError]:
    """Malformed lines of the run, by line number."""
    return list(session.scalars(
        select(ReconciliationRowError).where(ReconciliationRowError.run_id == run_id)
        .order_by(ReconciliationRowError.line_no).limit(limit)
    ))


def events_for_case(*, session: Session, case_id: int) -> list[BankEvent]:
    """The bank events whose mismatch this case reviews."""
    return list(session.scalars(select(BankEvent).where(BankEvent.case_id == case_id).order_by(BankEvent.id)))
