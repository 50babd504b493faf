"""Jinja2 for the screens: autoescaped always, display filters, and `render`.

Formatting for display lives here (filters), not in routes: money with the currency's
minor units and thousands separators, ages for queues, timestamps in UTC.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import jinja2
from markupsafe import Markup, escape
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from app.config import PROJECT_ROOT
from app.money import display
from app.security.deps import Principal
from app.users.enums import Role
from app.web.csrf import token_for_request
from app.web.session import verified_principal

TEMPLATES_DIR = PROJECT_ROOT / "templates"


def money(amount: Decimal | str | int | None, currency: str | None) -> str:
    """"1,250.50 USD": the currency's minor units, grouped thousands."""
    if amount is None:
        return ""
    try:
        return display(Decimal(amount), currency or "")
    except (KeyError, InvalidOperation, TypeError):
        return f"{amount} {currency or ''}".strip()


def _as_utc(value: datetime) -> datetime:
    # The database returns aware datetimes; a naive one is taken to be UTC already.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def age(value: datetime | None, now: datetime | None = None) -> str:
    """How long ago, in the two largest units: "2d 4h", "3h 12m", "7m", "<1m"."""
    if value is None:
        return ""
    seconds = max(0, int(((now or datetime.now(UTC)) - _as_utc(value)).total_seconds()))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m" if minutes else "<1m"


def dt(value: datetime | None, seconds: bool = False, zone: bool = True) -> str:
    """"2026-11-24 14:03 UTC" ("2026-11-24 14:03:07 UTC" with seconds, as the audit log shows; without
    " UTC" where a column's header says it)."""
    pattern = ("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M") + (" UTC" if zone else "")
    return "" if value is None else _as_utc(value).strftime(pattern)


def _readable_value(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(_readable_value(item) for item in value) or "none"
    return str(value)


def _readable_lines(data: Mapping[str, Any], prefix: str = "") -> list[str]:
    lines = []
    for key, value in data.items():
        name = f"{prefix}{str(key).replace('_', ' ')}"
        if isinstance(value, Mapping) and value:
            lines += _readable_lines(value, f"{name} › ")
        else:
            lines.append(f"{name}: {_readable_value(value)}")
    return lines


def readable_json(data: Any) -> Markup:
    """A JSON object as people read it: "key: value" pairs (nested keys "a › b"), no quotes or braces,
    each pair a `.readable-pair` span that wraps as a whole. Anything else is its plain text. Escaped."""
    if not isinstance(data, Mapping):
        return escape(_readable_value(data))
    return Markup("\n").join(Markup('<span class="readable-pair">{}</span>').format(line)
                              for line in _readable_lines(data))


# Risk badges: high from the default flag threshold, medium from 40.
RISK_HIGH = 70
RISK_MEDIUM = 40


def risk_class(score: int) -> str:
    """The badge class for a 0–100 risk score: risk-high, risk-medium or risk-low."""
    if score >= RISK_HIGH:
        return "risk-high"
    return "risk-medium" if score >= RISK_MEDIUM else "risk-low"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,  # every template, whatever its file name; never switch it off
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(money=money, age=age, dt=dt, risk_class=risk_class, readable_json=readable_json)
    return env


templates = Jinja2Templates(env=_environment())


@dataclass(frozen=True)
class CurrentUser:
    username: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    principal: Principal | None = None,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """A template response with `request`, `csrf_token`, `current_user` and `is_htmx` in context.

    `principal` defaults to the request's verified browser session, so error pages keep
    the signed-in nav; values in `context` win over the defaults.
    """
    principal = principal or verified_principal(request)
    user = CurrentUser(principal.username, principal.role) if principal and principal.username else None
    full_context = {
        "request": request,
        "csrf_token": token_for_request(request, principal),
        "current_user": user,
        "is_htmx": is_htmx(request),
        **(context or {}),
    }
    response = templates.TemplateResponse(
        request, template, full_context, status_code=status_code, headers=dict(headers or {})
    )
    # One URL answers with a page or a fragment depending on HX-Request.
    response.headers["Vary"] = "HX-Request"
    return response
