"""The settings screen, `/admin/settings`: review thresholds, claim lease, SLA hours, amount rules.

Each form answers with the settings panel (`#settings-panel`), swapped in place: saved
values and a confirmation, or the refused field named next to its input (422). The
rules and the audit live in app/settings/service.py; the next request already uses them.
"""

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Form, Path, Request
from sqlalchemy.orm import Session

from app.db import DbSession
from app.fields import QueryText
from app.security.deps import Principal
from app.settings import service
from app.settings.routes import current, validated_rule
from app.settings.schemas import SettingsUpdate
from app.web.admin_forms import apply_change
from app.web.deps import BrowserAdmin, ScreenRoute
from app.web.templating import render

router = APIRouter(route_class=ScreenRoute)

Text = Annotated[str, Form(max_length=64)]
FIELDS = ("flag_threshold", "dual_control_threshold", "claim_lease_minutes", "sla_hours_risk",
          "sla_hours_reconciliation")


def _panel(request: Request, session: Session, principal: Principal, *, status_code: int = 200, **context):
    template = ("admin/settings/_panel.html" if request.headers.get("hx-target") == "settings-panel"
                else "admin/settings/index.html")
    return render(request, template, {"settings": current(session), "active_nav": "settings", "form": {},
                                      "field_errors": {}, **context}, principal=principal, status_code=status_code)


def _act(request: Request, session: Session, principal: Principal, change: Callable[[], str], form: dict):
    outcome = apply_change(session, change)
    if "error" in outcome:
        outcome["form"] = form
    return _panel(request, session, principal, **outcome)


@router.get("/admin/settings")
def settings_page(request: Request, session: DbSession, principal: BrowserAdmin):
    return _panel(request, session, principal)


@router.post("/admin/settings")
def save_settings(request: Request, session: DbSession, principal: BrowserAdmin,
                  flag_threshold: Text = "", dual_control_threshold: Text = "", claim_lease_minutes: Text = "",
                  sla_hours_risk: Text = "", sla_hours_reconciliation: Text = "", group_flags_by_account: Text = ""):
    form = dict(zip(FIELDS, (flag_threshold, dual_control_threshold, claim_lease_minutes, sla_hours_risk,
                             sla_hours_reconciliation), strict=True))
    switches = {"on": True, "off": False}

    def change() -> str:
        values: dict = {k: v.strip() for k, v in form.items() if v.strip()}
        if group_flags_by_account in switches:
            values["group_flags_by_account"] = switches[group_flags_by_account]
        data = SettingsUpdate.model_validate(values)
        changed = service.update(session=session, actor=principal.actor, changes=data.changes(),
                                 user_id=principal.user_id)
        return f"Saved: {', '.join(changed)}." if changed else "Nothing changed."
    return _act(request, session, principal, change, form)


@router.post("/admin/settings/amount-rules")
def save_amount_rule(request: Request, session: DbSession, principal: BrowserAdmin,
                     currency: Text = "", threshold: Text = ""):
    def change() -> str:
        rule = validated_rule({"currency": currency.strip().upper(), "threshold": threshold.strip()})
        service.set_amount_rule(session=session, actor=principal.actor, currency=rule.currency,
                                threshold=rule.threshold, user_id=principal.user_id)
        return f"Amount rule for {rule.currency} saved."
    return _act(request, session, principal, change, {"currency": currency, "threshold": threshold})


@router.post("/admin/settings/amount-rules/{currency}/delete")
def remove_amount_rule(currency: Annotated[QueryText, Path(min_length=3, max_length=3)], request: Request,
                       session: DbSession, principal: BrowserAdmin):
    def change() -> str:
        service.remove_amount_rule(session=session, actor=principal.actor, currency=currency)
        return f"Amount rule for {currency} removed."
    return _act(request, session, principal, change, {})
