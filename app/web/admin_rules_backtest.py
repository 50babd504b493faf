"""The rule page's backtest panel.

POST /admin/rules/{id}/backtest runs a stored version (or, from the editor, the condition
being typed) over stored transactions, each as of its own time (app/rules/backtest.py),
and answers the panel's result: evaluated, hits, hit rate, outcomes, precision and up to
20 sample transactions. HTMX swaps #backtest-result; without JS the rule page comes back
with the result in place.
"""

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request
from fastapi.exceptions import RequestValidationError

from app.db import DbSession
from app.rules import backtest, service
from app.web import rules_view
from app.web.admin_forms import attempt
from app.web.admin_rules import percent, risk_value, rule_page_context
from app.web.deps import BrowserAdmin, ScreenRoute
from app.web.templating import is_htmx, render

router = APIRouter(route_class=ScreenRoute)

RuleId = Annotated[int, Path(ge=1, lt=2**63)]
Text = Annotated[str, Form(max_length=1000)]
LABELS = {"since": "Since (UTC)", "until": "Until (UTC)", "rule_id": "Rule", "action": "Risk"}
OUTCOME_LABELS = (("approved", "Approved"), ("rejected", "Rejected"), ("escalated", "Escalated"),
                  ("undecided", "Undecided"), ("not_reviewed", "Not reviewed (no case)"))


def _day(text: str, field: str, *, end: bool = False) -> datetime | None:
    if not text.strip():
        return None
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise RequestValidationError([{"loc": ("body", field), "msg": "must be a date such as 2026-11-30",
                                       "type": "value_error"}]) from None
    moment = datetime.combine(day, time(0), tzinfo=UTC)
    return moment + timedelta(days=1) if end else moment  # "until 30 Nov" includes that day


def _shaped(result: backtest.BacktestResult, label: str) -> dict[str, Any]:
    outcomes = result.outcomes.model_dump()
    return {"label": label, "evaluated": result.evaluated, "hits": result.hits, "errors": result.errors,
            "hit_rate_text": percent(result.hit_rate, "—"), "precision_text": percent(result.precision, "no decisions"),
            "outcome_rows": [(text, outcomes.get(key, 0)) for key, text in OUTCOME_LABELS],
            "sample": [{"reference": ref, "href": rules_view.transaction_href(ref)} for ref in result.sample]}


@router.post("/admin/rules/{rule_id}/backtest")
def run_backtest(rule_id: RuleId, request: Request, session: DbSession, principal: BrowserAdmin,
                 version: Text = "", since: Text = "", until: Text = "", source: Text = "",
                 condition: Annotated[str, Form(max_length=20_000)] = "", risk: Text = "", reason: Text = ""):
    rule = service.get(session=session, rule_id=rule_id)
    form = {"version": int(version) if version.isdigit() and len(version) < 10 else None, "since": since,
            "until": until}
    context: dict[str, Any] = {"backtest_form": form, "backtest_errors": {}}

    def run() -> tuple[backtest.BacktestResult, str]:
        window = {"since": _day(since, "since"), "until": _day(until, "until", end=True)}
        if source == "editor":
            body: dict[str, Any] = {"condition": condition, "action": {"risk": risk_value(risk), "reason": reason}}
            label = "The condition in the editor (not saved)"
        else:
            body = {"rule_id": rule_id, "version": form["version"] or rule.version}
            label = f"Version {body['version']}"
        request_data = backtest.BacktestRequest.model_validate({**body, **{k: v for k, v in window.items() if v}})
        return backtest.run(session=session, actor=principal.actor, data=request_data), label
    ran, refused = attempt(session, run, labels=LABELS, verb="Not run.")
    if refused is not None:
        code, worded = refused["status_code"], "field_errors" in refused
        context.update(status_code=code if code in (409, 422) else 409,
                       backtest_errors=refused.get("field_errors", {}),
                       backtest_error=refused["error"] if worded else f"Not run: {refused['error']}")
    elif ran is not None:
        result, label = ran
        since_text = f" from {since}" if since else ""
        until_text = f" to {until}" if until else ""
        context["backtest"] = _shaped(result, f"{label}, over stored transactions{since_text}{until_text}.")
    status_code = context.pop("status_code", 200)
    if is_htmx(request):
        return render(request, "admin/rules/_backtest.html", {
            "rule": rule, "versions": rule.versions, **context}, principal=principal, status_code=status_code)
    full = {**rule_page_context(session, principal, rule_id), **context}
    return render(request, "admin/rules/detail.html", full, principal=principal, status_code=status_code)
