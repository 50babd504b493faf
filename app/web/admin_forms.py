"""One admin form action on a screen: run the change, then commit or explain the refusal.

Shared by the users and settings screens, whose forms answer with their whole panel: a
confirmation after commit (so the panel and the audit log already show the change), or
the refusal where the admin acted (422 naming the fields, 409/404 with the domain's words).
"""

from collections.abc import Callable
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.errors import DomainError, field_errors


def apply_change(session: Session, change: Callable[[], str]) -> dict[str, Any]:
    """Run `change` (returns a confirmation); the panel's context: status_code, message or error, field_errors."""
    try:
        message = change()
    except (ValidationError, RequestValidationError) as exc:
        session.rollback()  # nothing of a refused change is kept
        errors = {e["field"] or "form": e["msg"] for e in field_errors(list(exc.errors()))}
        return {"status_code": 422, "field_errors": errors,
                "error": "Not saved: " + "; ".join(f"{k}: {v}" for k, v in errors.items())}
    except DomainError as exc:
        session.rollback()
        return {"status_code": exc.status_code, "error": str(exc.detail)}
    session.commit()  # the audit event is written at this commit, before the panel renders
    return {"message": message}
