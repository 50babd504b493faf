"""Validation errors as sentences a person reads: "Minimum amount must be a number."

The one mapping from pydantic's errors to the screens' words, used by every form (the admin
forms through app/web/admin_forms.py, webhooks, the error page). A field is named by the
label its form shows (LABELS, or the form's own `labels`), never by its code name; pydantic's
own text ("Input should be a valid decimal") is never shown.
"""

from collections.abc import Iterable, Mapping
from typing import Any

# Field name → the label the screens show for it. Forms may pass their own labels too.
LABELS = {
    "username": "Username", "password": "Password", "role": "Role", "url": "URL", "description": "Description",
    "event_types": "Event types", "min_amount": "Minimum amount", "max_amount": "Maximum amount",
    "min_score": "Minimum score", "max_score": "Maximum score", "currency": "Currency", "threshold": "Threshold",
    "flag_threshold": "Flag threshold", "dual_control_threshold": "Dual-control threshold",
    "claim_lease_minutes": "Claim lease (minutes)", "sla_hours_risk": "SLA for risk cases (hours)",
    "sla_hours_reconciliation": "SLA for reconciliation cases (hours)",
    "group_flags_by_account": "New flags on an account with an open case", "since": "From (UTC)",
    "until": "Until (UTC)", "actor": "Actor", "action": "Action", "entity_type": "Entity type",
    "entity_id": "Entity id", "note": "Note", "reason": "Reason", "reason_code": "Reason", "text": "Comment",
    "assignee": "Assignee", "state": "State", "kind": "Kind", "q": "Search", "file": "Bank statement (CSV)",
    "name": "Name", "items": "Items", "value": "Value", "condition": "Condition", "version": "Version",
    "case_id": "Case", "user_id": "User", "endpoint_id": "Endpoint", "delivery_id": "Delivery",
}

_LOCATIONS = ("body", "query", "path", "header", "form", "cookie")
# Fields whose entries are the lines of a textarea: `items.2` is "Items, line 3".
_LINE_FIELDS = {"items"}
# A pattern's rule in words, for the patterns the forms ask for.
_PATTERN_WORDS = {r"^[a-z0-9_-]{1,64}$": 'use 1–64 lowercase letters, digits, "_" or "-"'}


def label_for(field: str | None, labels: Mapping[str, str] | None = None) -> str:
    """The label of `field` (its first part: `event_types.0` is Event types; `items.2` is Items, line 3)."""
    if not field:
        return "This value"
    name, _, rest = field.partition(".")
    label = (labels or {}).get(name) or LABELS.get(name) or name.replace("_", " ").capitalize()
    index = rest.split(".")[0]
    return f"{label}, line {int(index) + 1}" if name in _LINE_FIELDS and index.isdigit() else label


def _count(n: Any, word: str) -> str:
    return f"{n} {word}" + ("" if str(n) == "1" else "s")


def _sentence(kind: str, label: str, ctx: Mapping[str, Any], msg: str) -> str:
    numbers = ("decimal_parsing", "decimal_type", "float_parsing", "float_type", "finite_number",
               "decimal_finite_number")
    text_length = kind.startswith("string_") or ctx.get("field_type") == "Value"  # a text, not a list of items
    if kind == "missing" or (kind.endswith("too_short") and text_length and ctx.get("min_length") == 1):
        return f"{label} is required."
    if kind == "condition_invalid":  # the compiler's own words, with the position: "line 1, column 12: …"
        return f"{label}: {msg.rstrip('.')}."
    if kind in numbers:
        return f"{label} must be a number."
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"{label} must be a whole number."
    bounds = {"greater_than_equal": ("at least", "ge"), "less_than_equal": ("at most", "le"),
              "greater_than": ("more than", "gt"), "less_than": ("less than", "lt")}
    if kind in bounds:
        words, key = bounds[kind]
        return f"{label} must be {words} {ctx[key]}." if key in ctx else f"{label} is out of range."
    if kind in ("string_too_short", "too_short") and text_length:
        return f"{label} must be at least {_count(ctx.get('min_length', 1), 'character')} long."
    if kind in ("string_too_long", "too_long") and text_length:
        return f"{label} must be at most {_count(ctx.get('max_length', ''), 'character')} long."
    if kind == "too_short":
        return f"Choose at least {ctx.get('min_length', 1)} of {label.lower()}."
    if kind == "too_long":
        return f"{label} can have at most {ctx.get('max_length', '')} items."
    if kind in ("decimal_max_places", "decimal_max_digits", "decimal_whole_digits"):
        return f"{label} has too many digits."
    if kind in ("literal_error", "enum"):
        expected = str(ctx.get("expected", "")).replace("'", "")
        return f"{label} must be one of: {expected}." if expected else f"{label} is not one of the choices."
    if kind.startswith("url"):
        return f"{label} must be a web address such as https://hooks.example.com/riskdesk."
    if kind.startswith(("datetime", "date", "time")):
        return f"{label} must be a date and time (YYYY-MM-DD HH:MM, UTC)."
    if kind in ("bool_parsing", "bool_type"):
        return f"{label} must be yes or no."
    if kind == "string_pattern_mismatch":
        rule = _PATTERN_WORDS.get(str(ctx.get("pattern", "")))
        return f"{label}: {rule}." if rule else f"{label} is not in the expected format."
    if kind in ("value_error", "assertion_error") and msg:
        text = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ").strip()
        joined = f"{label} {text}" if text[:1].islower() else f"{label}: {text}"
        return joined.rstrip(".") + "."
    return f"{label} is not valid."


def labelled_errors(errors: Iterable[Mapping[str, Any]], labels: Mapping[str, str] | None = None) -> dict[str, str]:
    """{field: sentence}, the first error of each field (`form` for errors of the whole form)."""
    shaped: dict[str, str] = {}
    for error in errors:
        loc = [str(part) for part in error.get("loc", ()) if part is not None and part not in _LOCATIONS]
        field = ".".join(loc) or None
        sentence = _sentence(str(error.get("type", "")), label_for(field, labels), error.get("ctx") or {},
                             str(error.get("msg", "")))
        shaped.setdefault((field or "form").split(".")[0], sentence)
    return shaped


def refusal(errors: Iterable[Mapping[str, Any]], labels: Mapping[str, str] | None = None, *,
            verb: str = "Not saved.") -> dict[str, Any]:
    """A refused form's context: 422, each field's sentence (field_errors), and the summary above the form."""
    worded = labelled_errors(errors, labels)
    return {"status_code": 422, "field_errors": worded, "error": " ".join([verb, *worded.values()])}


def error_sentences(errors: Iterable[Mapping[str, Any]], labels: Mapping[str, str] | None = None) -> list[str]:
    """The sentences of `errors`, one per field."""
    return list(labelled_errors(errors, labels).values())
