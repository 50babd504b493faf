"""The rules screens, `/admin/rules`: every rule, and a rule's page (editor, versions, publish, hits).

Admins write; analysts read (the same pages without the forms); agents get the 403 page.
The editor checks the condition as you type (POST /admin/rules/check answers the check
fragment). Publish, roll back and disable take a confirm step: the first POST answers
the page with a confirmation, the second (confirm=yes) acts, so it works without JS.
Every change goes through the rules services (app/rules/service.py), which validate,
audit and bump the rule generation; the screen route commits after the page rendered.
The backtest panel is app/web/admin_rules_backtest.py.
"""

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from app.db import DbSession
from app.rules import hits, service, stats
from app.rules.schemas import RuleCreate, RuleOut, RuleUpdate
from app.security.deps import Principal
from app.uow.unit import OrmSession
from app.users.enums import Role
from app.web import rules_view
from app.web.admin_forms import apply_change
from app.web.deps import BrowserAdmin, BrowserUser, ScreenRoute
from app.web.templating import render

router = APIRouter(route_class=ScreenRoute)

RuleId = Annotated[int, Path(ge=1, lt=2**63)]
Text = Annotated[str, Form(max_length=1000)]
ConditionText = Annotated[str, Form(max_length=20_000)]  # the compiler names the 4,096 limit with its position
VersionNumber = Annotated[int | None, Query(ge=1, lt=2**31)]
FIELD_NAMES = {"action.risk": "risk", "action.reason": "reason", "action": "risk"}
RECENT_HITS = 10


def can_edit(principal: Principal) -> bool:
    return principal.role == Role.ADMIN


def percent(value: float | None, empty: str = "—") -> str:
    """0.4286 → "42.9 %"; None → `empty`."""
    return empty if value is None else f"{value * 100:.1f} %"


def _renamed(change: Callable[[], str]) -> Callable[[], str]:
    """`change`, its refused fields named as the form names them (the action's risk is the Risk field)."""
    def run() -> str:
        try:
            return change()
        except ValidationError as exc:
            errors: list[Any] = exc.errors(include_input=False)
        except service.InvalidField as exc:
            errors = exc.detail
        raise RequestValidationError([{**e, "loc": ("body", *_field(e["loc"]).split("."))} for e in errors])
    return run


def _field(loc: Any) -> str:
    path = ".".join(str(part) for part in loc if part != "body")
    return FIELD_NAMES.get(path, path)


def _attempt(session: OrmSession, change: Callable[[], str]) -> dict[str, Any]:
    """apply_change, each refused field in the form's words ("Condition: line 1, column 11: …")."""
    return apply_change(session, _renamed(change))


def risk_value(value: str) -> int | str:
    text = value.strip()
    return int(text) if text.isdigit() and len(text) <= 6 else text


def condition_check(session: OrmSession, condition: str) -> dict[str, Any] | None:
    """The editor's check: None for an empty condition, else ok with what it uses, or the error's position."""
    if not condition.strip():
        return None
    try:
        program = service.compiled(session=session, condition=condition)
    except service.ConditionInvalid as exc:
        error = exc.detail[0]
        line, column = int(error["line"]), int(error["column"])
        message = str(error["msg"]).split(": ", 1)[-1]
        lines = condition.splitlines()
        return {"ok": False, "line": line, "column": column, "message": message,
                "source_line": lines[line - 1] if 0 < line <= len(lines) else None}
    return {"ok": True, "uses": rules_view.uses(program.windows, program.lists)}


def _list_page(request: Request, session: OrmSession, principal: Principal, *, status_code: int = 200, **context):
    rows = [{"id": rule.id, "name": rule.name, "description": rule.description, "mode": rule.mode,
             "running_version": rule.running_version, "latest_version": rule.version, "hits_24h": rule.hits_24h,
             "condition": rule.condition, "precision_text": percent(rule.precision)}
            for rule in service.list_all(session=session)]
    return render(request, "admin/rules/index.html", {
        "rows": rows, "can_edit": can_edit(principal), "active_nav": "rules", "form": {}, "field_errors": {},
        **context}, principal=principal, status_code=status_code)


@router.get("/admin/rules")
def rules_page(request: Request, session: DbSession, principal: BrowserUser):
    return _list_page(request, session, principal)


@router.post("/admin/rules")
def create_rule(request: Request, session: DbSession, principal: BrowserAdmin, name: Text = "",
                description: Text = "", condition: ConditionText = "", risk: Text = "", reason: Text = ""):
    form = {"name": name, "description": description, "condition": condition, "risk": risk, "reason": reason}

    def change() -> str:
        data = RuleCreate.model_validate({
            "name": name, "description": description.strip() or None, "condition": condition,
            "action": {"risk": risk_value(risk), "reason": reason}})
        created = service.create(session=session, actor=principal.actor, data=data)
        return f"Created {created.name} (draft version 1)."
    outcome = _attempt(session, change)
    if "error" in outcome:
        return _list_page(request, session, principal, form=form, check=condition_check(session, condition),
                          **outcome)
    return _list_page(request, session, principal, **outcome)


@router.post("/admin/rules/check")
def check_condition(request: Request, session: DbSession, principal: BrowserAdmin, condition: ConditionText = "",
                    editor: Annotated[str, Form(pattern="^(new|edit)$")] = "new"):
    return render(request, "admin/rules/_check.html", {"check": condition_check(session, condition),
                                                       "editor_id": editor}, principal=principal)


def _compare(rule: RuleOut, left: int | None, right: int | None) -> dict[str, Any] | None:
    by_number = {v.version: v for v in rule.versions}
    if left is None and right is None:
        if rule.running_version is None or rule.running_version == rule.version:
            return None
        left, right = rule.running_version, rule.version  # what runs next to the newest draft
    a, b = by_number.get(left or 0), by_number.get(right or 0)
    if a is None or b is None:
        return None
    return {"left": a, "right": b, "rows": rules_view.side_by_side(a.condition, b.condition),
            "action_rows": [("Risk", a.action.risk, b.action.risk), ("Reason", a.action.reason, b.action.reason)]}


def _hit_rows(session: OrmSession, rule: RuleOut) -> list[dict[str, Any]]:
    conditions = {v.version: v.condition for v in rule.versions}
    items, _ = hits.list_page(session=session, rule_id=rule.id, limit=RECENT_HITS, after=None)
    return [{"reference": h.transaction_reference, "mode": h.mode, "outcome": h.outcome, "version": h.version,
             "created_at": h.created_at, "error": h.error,
             "read": rules_view.read_values(h.values, conditions.get(h.version), None),
             "href": f"/cases/{h.case_id}" if h.case_id else rules_view.transaction_href(h.transaction_reference)}
            for h in items]


def rule_page_context(session: OrmSession, principal: Principal, rule_id: int, *, left: int | None = None,
                      right: int | None = None) -> dict[str, Any]:
    """Everything the rule page shows (also the backtest screen's full-page answer)."""
    rule = service.get(session=session, rule_id=rule_id)
    numbers = stats.for_rule(session=session, rule_id=rule_id)
    latest = rule.versions[-1]
    return {
        "rule": rule, "versions": rule.versions, "latest": latest, "can_edit": can_edit(principal),
        "stats": {**numbers.model_dump(), "precision_text": percent(numbers.precision, "no decisions yet")},
        "hits": _hit_rows(session, rule), "compare": _compare(rule, left, right), "active_nav": "rules",
        "form": {"description": rule.description or "", "condition": latest.condition,
                 "risk": str(latest.action.risk), "reason": latest.action.reason},
        "field_errors": {}, "backtest_form": {}, "backtest_errors": {},
        "check": condition_check(session, latest.condition) if can_edit(principal) else None,
    }


def _rule_page(request: Request, session: OrmSession, principal: Principal, rule_id: int, *, status_code: int = 200,
               left: int | None = None, right: int | None = None, **context):
    full = {**rule_page_context(session, principal, rule_id, left=left, right=right), **context}
    return render(request, "admin/rules/detail.html", full, principal=principal, status_code=status_code)


@router.get("/admin/rules/{rule_id}")
def rule_page(rule_id: RuleId, request: Request, session: DbSession, principal: BrowserUser,
              left: VersionNumber = None, right: VersionNumber = None):
    return _rule_page(request, session, principal, rule_id, left=left, right=right)


@router.post("/admin/rules/{rule_id}")
def save_version(rule_id: RuleId, request: Request, session: DbSession, principal: BrowserAdmin,
                 description: Text = "", condition: ConditionText = "", risk: Text = "", reason: Text = ""):
    form = {"description": description, "condition": condition, "risk": risk, "reason": reason}

    def change() -> str:
        current = service.get(session=session, rule_id=rule_id)
        latest = current.versions[-1]
        changes: dict[str, Any] = {}
        if condition != latest.condition:
            changes["condition"] = condition
        if (risk_value(risk), reason) != (latest.action.risk, latest.action.reason):
            changes["action"] = {"risk": risk_value(risk), "reason": reason}
        if (description.strip() or None) != current.description:
            changes["description"] = description.strip() or None
        if not changes:
            return "Nothing changed."
        saved = service.update_rule(session=session, actor=principal.actor, rule_id=rule_id,
                                    data=RuleUpdate.model_validate(changes))
        if saved.version == current.version:
            return "Description saved."
        running = f"v{saved.running_version} keeps running" if saved.running_version else "nothing runs yet"
        return f"Saved version {saved.version} as a draft; {running} until you publish."
    outcome = _attempt(session, change)
    if "error" in outcome:
        return _rule_page(request, session, principal, rule_id, form=form,
                          check=condition_check(session, condition), **outcome)
    return _rule_page(request, session, principal, rule_id, **outcome)


def _publish_confirmation(rule: RuleOut, version: int, mode: str) -> dict[str, Any]:
    chosen = next((v for v in rule.versions if v.version == version), None)
    running = rule.running_version
    if running is not None and version < running:
        title = f"Roll back {rule.name} to version {version}?"
        text = (f"Version {running} ({rule.mode}) stops running; version {version} runs in {mode} mode "
                "from the next transaction.")
        button = f"Roll back to v{version} ({mode})"
    else:
        title = f"Publish version {version} of {rule.name} in {mode} mode?"
        replaced = f" It replaces version {running} ({rule.mode})." if running is not None else ""
        effect = ("Its hits open or join review cases." if mode == "active"
                  else "Its hits are recorded; no case is opened.")
        text = f"{effect}{replaced} It applies from the next transaction."
        button = f"Publish v{version} ({mode})"
    return {"title": title, "text": text, "button": button, "detail": chosen.condition if chosen else None,
            "action": f"/admin/rules/{rule.id}/publish",
            "fields": {"version": version, "mode": mode}, "cancel": f"/admin/rules/{rule.id}"}


@router.post("/admin/rules/{rule_id}/publish")
def publish_rule(rule_id: RuleId, request: Request, session: DbSession, principal: BrowserAdmin,
                 version: Text = "", mode: Text = "", confirm: Text = ""):
    rule = service.get(session=session, rule_id=rule_id)
    number = int(version) if version.isdigit() and len(version) < 10 else None
    if number is None or number > rule.version or mode not in ("shadow", "active"):
        problem = ("Version: choose one of the rule's versions." if number is None or number > rule.version
                   else "Mode: choose shadow or active.")
        return _rule_page(request, session, principal, rule_id, status_code=422, error=problem)
    if confirm != "yes":
        return _rule_page(request, session, principal, rule_id, confirm=_publish_confirmation(rule, number, mode))
    rolls_back = rule.running_version is not None and number < rule.running_version

    def change() -> str:
        service.publish(session=session, actor=principal.actor, rule_id=rule_id, version=number, mode=mode)
        verb = "Rolled back to" if rolls_back else "Published"
        return f"{verb} version {number} in {mode} mode."
    return _rule_page(request, session, principal, rule_id, **_attempt(session, change))


@router.post("/admin/rules/{rule_id}/disable")
def disable_rule(rule_id: RuleId, request: Request, session: DbSession, principal: BrowserAdmin,
                 confirm: Text = ""):
    if confirm != "yes":
        rule = service.get(session=session, rule_id=rule_id)
        return _rule_page(request, session, principal, rule_id, confirm={
            "title": f"Disable {rule.name}?",
            "text": "It stops running from the next transaction; its versions and hits are kept, "
                    "and publishing a version runs it again.",
            "button": "Disable rule", "button_class": "btn-danger", "action": f"/admin/rules/{rule_id}/disable",
            "fields": {}, "cancel": f"/admin/rules/{rule_id}"})

    def change() -> str:
        service.disable(session=session, actor=principal.actor, rule_id=rule_id)
        return "Disabled: the rule no longer runs."
    return _rule_page(request, session, principal, rule_id, **_attempt(session, change))
