"""JSON for detection rules: admins write, analysts read (and snooze), agents are refused."""

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from app import cursors
from app.db import DbSession
from app.openapi import AUTH_ERRORS, BAD_INPUT, Responses
from app.rules import hits, service, snoozes, stats
from app.rules.schemas import (
    HitPage,
    PublishRequest,
    RuleCreate,
    RuleOut,
    RuleStats,
    RuleSummary,
    RuleUpdate,
    SnoozeCreate,
    SnoozeOut,
)
from app.security.deps import Admin, Reviewer
from app.uow.routing import ApiRoute

router = APIRouter(prefix="/api/rules", tags=["rules"], route_class=ApiRoute)
RuleId = Annotated[int, Path(ge=1, lt=2**63)]
NOT_FOUND: Responses = {404: {"description": "Unknown rule"}}
CONDITION_ERRORS: Responses = {422: {"description": "Invalid input; each error names its field. A condition that "
                                                    "does not compile names `condition`, with `line` and `column`"},
                               413: BAD_INPUT[413]}


@router.post("", response_model=RuleOut, status_code=201, summary="Write a rule (version 1)",
             responses={**AUTH_ERRORS, **CONDITION_ERRORS, 409: {"description": "A rule of that name exists"}})
def create_rule(data: RuleCreate, principal: Admin, session: DbSession):
    return service.create(session=session, actor=principal.actor, data=data)


@router.get("", response_model=list[RuleSummary], summary="Every rule, by name", responses=AUTH_ERRORS)
def list_rules(principal: Reviewer, session: DbSession):
    return service.list_all(session=session)


@router.get("/{rule_id}", response_model=RuleOut, summary="A rule with every version, and which one runs",
            responses={**AUTH_ERRORS, **NOT_FOUND})
def get_rule(rule_id: RuleId, principal: Reviewer, session: DbSession):
    return service.get(session=session, rule_id=rule_id)


@router.put("/{rule_id}", response_model=RuleOut,
            summary="Write a new draft version (the published one keeps running), or change the description",
            responses={**AUTH_ERRORS, **CONDITION_ERRORS, **NOT_FOUND})
def update_rule(rule_id: RuleId, data: RuleUpdate, principal: Admin, session: DbSession):
    return service.update_rule(session=session, actor=principal.actor, rule_id=rule_id, data=data)


@router.post("/{rule_id}/publish", response_model=RuleOut,
             summary="Run a version in shadow or active mode; an older one than the running one rolls back",
             responses={**AUTH_ERRORS, **BAD_INPUT, **NOT_FOUND})
def publish_rule(rule_id: RuleId, data: PublishRequest, principal: Admin, session: DbSession):
    return service.publish(session=session, actor=principal.actor, rule_id=rule_id, version=data.version,
                           mode=data.mode)


@router.post("/{rule_id}/disable", response_model=RuleOut, summary="Stop running the rule",
             responses={**AUTH_ERRORS, **NOT_FOUND})
def disable_rule(rule_id: RuleId, principal: Admin, session: DbSession):
    return service.disable(session=session, actor=principal.actor, rule_id=rule_id)


@router.get("/{rule_id}/hits", response_model=HitPage,
            summary="The rule's hits, newest first, shadow ones included (keyset pagination)",
            responses={**AUTH_ERRORS, **NOT_FOUND, 422: {"description": "Invalid filter or cursor"}})
def list_hits(
    rule_id: RuleId, principal: Reviewer, session: DbSession,
    mode: Literal["shadow", "active"] | None = None,
    outcome: Literal["hit", "error"] | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=96)] = None,
):
    after = cursors.from_query(cursor, hits.decode_cursor)
    items, next_cursor = hits.list_page(session=session, rule_id=rule_id, limit=limit, after=after, mode=mode,
                                        outcome=outcome)
    return HitPage(items=items, next_cursor=next_cursor)


@router.post("/{rule_id}/snoozes", response_model=SnoozeOut, status_code=201,
             summary="Until a time, the rule's hits for an account are recorded but open no case",
             responses={**AUTH_ERRORS, **BAD_INPUT, **NOT_FOUND})
def snooze_rule(rule_id: RuleId, data: SnoozeCreate, principal: Reviewer, session: DbSession):
    return snoozes.create(session=session, actor=principal.actor, rule_id=rule_id, data=data)


@router.get("/{rule_id}/snoozes", response_model=list[SnoozeOut], summary="The rule's snoozes, latest ending first",
            responses={**AUTH_ERRORS, **NOT_FOUND})
def list_snoozes(rule_id: RuleId, principal: Reviewer, session: DbSession):
    return snoozes.list_for_rule(session=session, rule_id=rule_id)


@router.get("/{rule_id}/stats", response_model=RuleStats,
            summary="Hits, shadow hits, errors, cases, and the outcomes and precision of hit transactions",
            responses={**AUTH_ERRORS, **NOT_FOUND})
def rule_stats(rule_id: RuleId, principal: Reviewer, session: DbSession):
    return stats.for_rule(session=session, rule_id=rule_id)
