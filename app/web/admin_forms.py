"""One admin form action on a screen: run the change, or explain the refusal.

Shared by the users and settings screens, whose forms answer with their whole panel: a
confirmation (the panel reads the change in the same transaction, which the screen route
commits after the panel rendered, so a page that fails to render saves nothing), or the
refusal where the admin acted (422 naming the fields, 409/404 with the domain's words).
"""

from collections.abc import Callable
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.errors import DomainError, field_errors
from app.web.messages import labelled_errors


def apply_change(session: Session, change: Callable[[], str], *, worded: bool = False) -> dict[str, Any]:
    """Run `change` (returns a confirmation); the panel's context: status_code, message or error, field_errors.

    `worded`: field_errors are sentences with the field's label (app/web/messages.py), the way
    the users and settings screens show them; without it the validator's own message, for
    forms that label it themselves (the rules screens).
    """
    savepoint = session.begin_nested()  # a refused change is undone, the request's unit of work goes on
    try:
        message = change()
    except (ValidationError, RequestValidationError) as exc:
        savepoint.rollback()
        if not worded:
            errors = {e["field"] or "form": e["msg"] for e in field_errors(list(exc.errors()))}
            return {"status_code": 422, "field_errors": errors,
                    "error": "Not saved: " + "; ".join(f"{k}: {v}" for k, v in errors.items())}
        errors = labelled_errors(list(exc.errors()))
        return {"status_code": 422, "field_errors": errors, "error": "Not saved. " + " ".join(errors.values())}
    except DomainError as exc:
        savepoint.rollback()
        return {"status_code": exc.status_code, "error": str(exc.detail)}
    savepoint.commit()
    return {"message": message}
