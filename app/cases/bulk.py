"""Bulk actions on selected queue rows: assign, release or escalate many cases in one request.

Each case gets its own result (a status code and a sentence, like the transactions batch),
and each change its own audit event, all in the request's one unit of work: the request
commits every change it reports, or none. The cases are judged one by one after their
rows are locked, so a case another request changed meanwhile is reported, not overwritten:
`versions` (the version each row showed) turns "changed since you looked" into a 409 for
that case. Assign and release lock every selected row first, in id order; escalate is a
decision and keeps the decisions' lock order (transaction row, then case row), one case at
a time in id order.
"""

from enum import StrEnum
from typing import Annotated, Any

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator

from app.audit.service import Actor
from app.cases import assignment, decisions
from app.cases.enums import Decision, ReasonCode
from app.cases.schemas import CaseOut, DecisionRequest
from app.errors import DomainError
from app.fields import Identifier64, clean_text
from app.uow.unit import OrmSession

BULK_MAX_CASES = 100
CaseIdValue = Annotated[int, Field(ge=1, lt=2**63)]


class BulkAction(StrEnum):
    ASSIGN = "assign"
    RELEASE = "release"
    ESCALATE = "escalate"


class BulkRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [
            {"action": "assign", "case_ids": [12, 15], "assignee": "alice", "versions": {"12": 3, "15": 1}},
            {"action": "escalate", "case_ids": [7], "note": "Sanctions list near-match", "reason_code": "other"},
        ]},
    )

    action: BulkAction
    case_ids: list[CaseIdValue] = Field(min_length=1, max_length=BULK_MAX_CASES)
    assignee: Identifier64 | None = Field(default=None, validate_default=True, description="Required to assign")
    note: Annotated[Annotated[str, Field(max_length=2000)] | None, BeforeValidator(clean_text)] = Field(
        default=None, validate_default=True, description="Required to escalate")
    reason_code: ReasonCode = ReasonCode.NEEDS_MORE_INFO
    versions: dict[CaseIdValue, Annotated[int, Field(ge=1)]] | None = Field(
        default=None, description="The version of each case as the caller saw it; a case changed since is a 409")

    @field_validator("assignee")
    @classmethod
    def _assignee_required_to_assign(cls, assignee: str | None, info: ValidationInfo) -> str | None:
        if assignee is None and info.data.get("action") == BulkAction.ASSIGN:
            raise ValueError("an assignee is required to assign")
        return assignee

    @field_validator("note")
    @classmethod
    def _note_required_to_escalate(cls, note: str | None, info: ValidationInfo) -> str | None:
        note = (note or "").strip() or None
        if note is None and info.data.get("action") == BulkAction.ESCALATE:
            raise ValueError("a note is required to escalate")
        return note

    def unique_ids(self) -> list[int]:
        return list(dict.fromkeys(self.case_ids))


class BulkItem(BaseModel):
    case_id: int
    status_code: int
    message: str
    case: CaseOut | None = None


class BulkResponse(BaseModel):
    action: BulkAction
    items: list[BulkItem]
    succeeded: int
    failed: int


def run(*, session: OrmSession, actor: Actor, request: BulkRequest) -> BulkResponse:
    """Apply the action to each case; a result per case, in the order asked."""
    ids = request.unique_ids()
    versions = request.versions or {}
    results: dict[int, BulkItem] = {}
    if request.action == BulkAction.ESCALATE:
        for case_id in sorted(ids):
            data = DecisionRequest(decision=Decision.ESCALATE, reason_code=request.reason_code, note=request.note,
                                   version=versions.get(case_id))
            results[case_id] = _attempt(case_id, lambda case_id=case_id, data=data: decisions.decide(
                session=session, actor=actor, case_id=case_id, data=data).case, "Escalated.")
    else:
        assignee = None
        if request.action == BulkAction.ASSIGN:
            assert request.assignee is not None  # the model requires it to assign
            assignee = assignment.find_assignee(session=session, actor=actor, username=request.assignee)
        rows = assignment.lock_cases(session=session, case_ids=ids)
        for case_id in ids:
            row = rows.get(case_id)
            if row is None:
                results[case_id] = BulkItem(case_id=case_id, status_code=404, message=f"case {case_id} not found")
            elif assignee is not None:
                results[case_id] = _attempt(case_id, lambda row=row: assignment.assign_locked(
                    session=session, actor=actor, row=row, assignee=assignee, version=versions.get(row.id)),
                    f"Assigned to {assignee.username}.")
            else:
                results[case_id] = _attempt(case_id, lambda row=row: assignment.release_locked(
                    session=session, actor=actor, row=row, version=versions.get(row.id)), "Released to the queue.")
    items = [results[case_id] for case_id in ids]
    succeeded = sum(1 for item in items if item.status_code == 200)
    return BulkResponse(action=request.action, items=items, succeeded=succeeded, failed=len(items) - succeeded)


def _attempt(case_id: int, change: Any, done: str) -> BulkItem:
    # Every check comes before the case's first write, so a refused case has changed nothing.
    try:
        case: CaseOut = change()
    except DomainError as exc:
        return BulkItem(case_id=case_id, status_code=exc.status_code, message=str(exc.detail))
    except RequestValidationError as exc:  # a decision that does not fit this case (its kind, say)
        messages = "; ".join(str(error.get("msg", "invalid")) for error in exc.errors())
        return BulkItem(case_id=case_id, status_code=422, message=f"case {case_id}: {messages}")
    return BulkItem(case_id=case_id, status_code=200, message=done, case=case)
