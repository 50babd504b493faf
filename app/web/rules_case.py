"""The case page's rules panel: "Why flagged" (each rule hit in words, with the values it read) and snoozes;
and the page a rule hit's (or a backtest sample's) transaction links to.

templates/cases/detail.html includes cases/_why_flagged.html, which loads itself from
GET /cases/{id}/why-flagged; the snooze form posts to /cases/{id}/snoozes and answers the
panel again, with the snooze listed or the refused field named. Explanations are the case's
(app/cases/flows.py: the hits the hot path stored, grouped payments' included); snoozes are
app/rules/snoozes.py's.
"""

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request

from app.cases import flows
from app.cases import queries as cases
from app.db import DbSession
from app.rules import case_hits, service, snoozes
from app.rules.schemas import SnoozeCreate
from app.security.deps import Principal
from app.transactions import service as transactions
from app.uow.unit import OrmSession
from app.web import rules_view
from app.web.admin_forms import attempt
from app.web.deps import BrowserUser, ScreenRoute
from app.web.templating import render

router = APIRouter(route_class=ScreenRoute)

CaseId = Annotated[int, Path(ge=1, lt=2**63)]
Text = Annotated[str, Form(max_length=1000)]
DEFAULT_SNOOZE = timedelta(days=7)
LABELS = {"rule_id": "Rule", "until": "Until (UTC)", "reason": "Reason for the snooze", "account_id": "Account"}


def _conditions(session: OrmSession, rule_ids: set[int]) -> dict[tuple[int, int], str]:
    found: dict[tuple[int, int], str] = {}
    for rule_id in sorted(rule_ids):
        for version in service.get(session=session, rule_id=rule_id).versions:
            found[(rule_id, version.version)] = version.condition
    return found


def why_flagged(session: OrmSession, case_id: int) -> dict[str, Any]:
    """What the panel shows: the hit lines (grouped payments' too), the scores' reason codes, and the
    account's snoozes of those rules."""
    detail = flows.case_detail(session=session, case_id=case_id)
    tx = detail.transaction
    explained = [item.model_dump() for item in detail.explanations]
    rule_ids = {item["rule_id"] for item in explained}
    lines = rules_view.hit_lines(explained, tx.currency if tx else None, _conditions(session, rule_ids))
    names = {line.rule_id: line.name for line in lines if line.rule_id is not None}
    reasons: list[str] = []
    for score in detail.scores:
        for code in (r.get("code") for r in score.reasons):
            if isinstance(code, str) and code not in reasons:
                reasons.append(code)
    account_id = tx.account_id if tx else None
    active: list[dict[str, Any]] = []
    if account_id is not None:
        for rule_id in sorted(names):
            active.extend({"rule_name": names[rule_id], "until": s.until, "reason": s.reason}
                          for s in snoozes.list_for_rule(session=session, rule_id=rule_id)
                          if s.account_id == account_id and s.is_active)
    default_until = (datetime.now(UTC) + DEFAULT_SNOOZE).strftime("%Y-%m-%dT%H:%M")
    return {"case": detail.case, "lines": lines, "score_reasons": reasons, "account_id": account_id,
            "snoozes": active, "snooze_rules": sorted(names.items(), key=lambda item: item[1]),
            "default_until": default_until}


def _panel(request: Request, session: OrmSession, principal: Principal, case_id: int, *, status_code: int = 200,
           **context: Any):
    why = why_flagged(session, case_id)
    return render(request, "cases/_why_flagged.html", {
        "case": why["case"], "why": why, "snooze_form": {}, "snooze_errors": {}, **context,
    }, principal=principal, status_code=status_code)


@router.get("/cases/{case_id}/why-flagged")
def why_flagged_panel(case_id: CaseId, request: Request, session: DbSession, principal: BrowserUser):
    return _panel(request, session, principal, case_id)


def _until(text: str) -> datetime | str:
    """A datetime-local value ("2026-12-14T09:30") as UTC; anything else is left for validation to name."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        return text
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@router.post("/cases/{case_id}/snoozes")
def snooze_rule(case_id: CaseId, request: Request, session: DbSession, principal: BrowserUser,
                rule_id: Text = "", until: Text = "", reason: Text = ""):
    form = {"rule_id": rule_id, "until": until, "reason": reason}
    why = why_flagged(session, case_id)
    allowed = {str(number): name for number, name in why["snooze_rules"]}
    if rule_id not in allowed:
        return _panel(request, session, principal, case_id, status_code=422, snooze_form=form,
                      snooze_errors={"rule_id": "Rule: choose one of the rules that hit this case."},
                      why_error="Not snoozed. Rule: choose one of the rules that hit this case.")
    def change() -> None:
        data = SnoozeCreate.model_validate({"account_id": why["account_id"], "until": _until(until),
                                            "reason": reason})
        snoozes.create(session=session, actor=principal.actor, rule_id=int(rule_id), data=data)
    _, refused = attempt(session, change, labels=LABELS, verb="Not snoozed.")
    if refused is not None:
        if "field_errors" not in refused:
            return _panel(request, session, principal, case_id, status_code=409, snooze_form=form,
                          why_error=f"Not snoozed: {refused['error']}")
        return _panel(request, session, principal, case_id, status_code=422, snooze_form=form,
                      snooze_errors=refused["field_errors"], why_error=refused["error"])
    shown = _until(until)
    when = shown.strftime("%Y-%m-%d %H:%M UTC") if isinstance(shown, datetime) else until
    return _panel(request, session, principal, case_id,
                  why_message=f"Snoozed {allowed[rule_id]} for {why['account_id']} until {when}: "
                              "its hits are recorded but open no case.")


@router.get("/admin/rules/transactions/{reference}")
def transaction_page(reference: Annotated[str, Path(min_length=1, max_length=128)], request: Request,
                     session: DbSession, principal: BrowserUser):
    """A hit's or a backtest sample's transaction: its facts, the rules it hit, and its case."""
    row = transactions.read_by_reference(session=session, reference=reference)
    hits = case_hits.for_transaction(session=session, transaction_id=row.id)
    case_id = cases.undecided_case_id(session=session, transaction_id=row.id) or next(
        (hit["case_id"] for hit in hits if hit["case_id"]), None)
    rule_ids = {hit["rule_id"] for hit in hits}
    return render(request, "admin/rules/transaction.html", {
        "tx": transactions.to_out(row), "case_id": case_id, "active_nav": "rules",
        "lines": rules_view.hit_lines(hits, row.currency, _conditions(session, rule_ids))}, principal=principal)
