"""JSON for the lists conditions read with `in_list(name, value)`: admins write, analysts read."""

from typing import Annotated

from fastapi import APIRouter, Path

from app.db import DbSession
from app.fields import QueryText
from app.openapi import AUTH_ERRORS, BAD_INPUT, Responses
from app.rules import lists
from app.rules.schemas import ListItemsAdd, ListOut, ListReplace, ListSummary
from app.security.deps import Admin, Reviewer
from app.uow.routing import ApiRoute

router = APIRouter(prefix="/api/lists", tags=["rules"], route_class=ApiRoute)
ListName = Annotated[str, Path(pattern=r"^[a-z0-9_-]{1,64}$",
                               description="Lowercase letters, digits, `_` and `-`; 1 to 64 characters")]
NOT_FOUND: Responses = {404: {"description": "Unknown list (or value)"}}


@router.put("/{name}", response_model=ListOut, summary="Create a list or replace its items",
            responses={**AUTH_ERRORS, **BAD_INPUT})
def replace_list(name: ListName, data: ListReplace, principal: Admin, session: DbSession):
    return lists.replace(session=session, actor=principal.actor, name=name, description=data.description,
                         items=data.items, description_given="description" in data.model_fields_set)


@router.post("/{name}/items", response_model=ListOut, summary="Add values to a list",
             responses={**AUTH_ERRORS, **BAD_INPUT, **NOT_FOUND})
def add_list_items(name: ListName, data: ListItemsAdd, principal: Admin, session: DbSession):
    return lists.add_items(session=session, actor=principal.actor, name=name, items=data.items)


@router.delete("/{name}/items/{value:path}", response_model=ListOut, summary="Remove a value from a list",
               responses={**AUTH_ERRORS, **NOT_FOUND, 422: {"description": "Invalid list name or value"}})
def remove_list_item(name: ListName, value: Annotated[QueryText, Path(min_length=1, max_length=256)],
                     principal: Admin, session: DbSession):
    return lists.remove_item(session=session, actor=principal.actor, name=name, value=value)


@router.get("", response_model=list[ListSummary], summary="Every list, with its item count", responses=AUTH_ERRORS)
def list_lists(principal: Reviewer, session: DbSession):
    return lists.list_all(session=session)


@router.get("/{name}", response_model=ListOut, summary="A list with its items",
            responses={**AUTH_ERRORS, **NOT_FOUND, 422: {"description": "Invalid list name"}})
def get_list(name: ListName, principal: Reviewer, session: DbSession):
    return lists.get(session=session, name=name)
