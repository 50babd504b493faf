"""Comments on a case: append-only notes between reviewers, audited and shown in the timeline.

There is no update or delete path, and the database refuses one anyway (a trigger on
`case_comments`, migrations/versions/0015). Each comment writes its `case.commented` audit
event in the same transaction, with the text, so the timeline and the evidence export
carry it.
"""

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.audit.service import Actor
from app.cases.models import CaseComment, ReviewCase
from app.cases.schemas import CommentOut
from app.errors import NotFound
from app.uow.unit import OrmSession

CC = CaseComment.__table__.c
COMMENT_ROW = (CC.id, CC.case_id, CC.author, CC.body.label("text"), CC.created_at)


def _require_case(session: Session, case_id: int) -> None:
    if session.execute(select(ReviewCase.id).where(ReviewCase.id == case_id)).scalar() is None:
        raise NotFound(f"case {case_id} not found")


def add(*, session: OrmSession, actor: Actor, case_id: int, text: str) -> CommentOut:
    """Append a comment to the case (NotFound for an unknown case); audited as `case.commented`."""
    _require_case(session, case_id)
    row = session.execute(
        insert(CaseComment.__table__).values(case_id=case_id, author_id=actor.id, author=actor.name, body=text)
        .returning(*COMMENT_ROW)
    ).one()
    audit.record(
        session, actor=actor, action="case.commented", entity_type="case", entity_id=case_id,
        after={"comment_id": row.id, "text": text},
    )
    return CommentOut(**row._asdict())


def list_for_case(*, session: Session, case_id: int) -> list[CommentOut]:
    """The case's comments, oldest first (NotFound for an unknown case)."""
    _require_case(session, case_id)
    rows = session.execute(
        select(*COMMENT_ROW).where(CC.case_id == case_id).order_by(CC.id)
    )
    return [CommentOut(**row._asdict()) for row in rows]
