"""One form action on a screen: run the change, or explain the refusal in the form's words.

Shared by the users, settings, rules, lists, snooze and backtest forms. The change runs in a
savepoint, so a refused change is undone and the request's unit of work goes on; the screen
route commits after the panel rendered, so a page that fails to render saves nothing. A
refusal is a 422 with each field's sentence (app/web/messages.py: "Risk must be at most
100."), or the domain's own words for a 409 or 404.
"""

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.errors import DomainError
from app.web.messages import refusal

T = TypeVar("T")


def attempt(session: Session, change: Callable[[], T], *, labels: Mapping[str, str] | None = None,
            verb: str = "Not saved.") -> tuple[T, None] | tuple[None, dict[str, Any]]:
    """(what `change` returned, None), or (None, the refusal's context: status_code, error, field_errors).

    A service's own 422 (a list of field errors, e.g. a condition that does not compile) is
    worded as pydantic's are; any other domain error keeps its words, unprefixed.
    """
    savepoint = session.begin_nested()
    try:
        value = change()
    except (ValidationError, RequestValidationError) as exc:
        savepoint.rollback()
        return None, refusal(exc.errors(), labels, verb=verb)
    except DomainError as exc:
        savepoint.rollback()
        if exc.status_code == 422 and isinstance(exc.detail, list):
            return None, refusal(exc.detail, labels, verb=verb)
        return None, {"status_code": exc.status_code, "error": str(exc.detail)}
    savepoint.commit()
    return value, None


def apply_change(session: Session, change: Callable[[], str], *,
                 labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Run `change` (returns a confirmation); the panel's context: message, or status_code, error, field_errors."""
    message, refused = attempt(session, change, labels=labels)
    return refused if refused is not None else {"message": message}
