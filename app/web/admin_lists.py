"""The lists screen, `/admin/lists`: the lists rules read with `in_list`, their items; replace, add, remove.

Admins change lists, analysts read them. Each change takes a confirm step (the first POST
answers the page with what will change, the second, confirm=yes, acts), so it works
without JS; creating a new list needs none. The rules live in app/rules/lists.py.
"""

import re
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request

from app.db import DbSession
from app.errors import NotFound
from app.rules import lists
from app.rules.models import LIST_NAME_PATTERN
from app.rules.schemas import ListItemsAdd, ListReplace
from app.security.deps import Principal
from app.uow.unit import OrmSession
from app.users.enums import Role
from app.web.admin_forms import apply_change
from app.web.deps import BrowserAdmin, BrowserUser, ScreenRoute
from app.web.messages import refusal
from app.web.templating import render

router = APIRouter(route_class=ScreenRoute)

ListName = Annotated[str, Path(pattern=r"^[a-z0-9_-]{1,64}$")]
Text = Annotated[str, Form(max_length=1000)]
Items = Annotated[str, Form(max_length=3_000_000)]  # up to 10,000 values of 256 characters, one per line
SHOWN_ITEMS = 200
TARGET = "#lists-main"
LABELS = {"name": "List name"}


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _joined(values: list[str], limit: int = 8) -> str:
    shown = ", ".join(values[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


def _page(request: Request, session: OrmSession, principal: Principal, *, status_code: int = 200, **context: Any):
    shown = []
    for summary in lists.list_all(session=session):
        items = lists.get(session=session, name=summary.name).items
        shown.append({"name": summary.name, "description": summary.description,
                      "item_count": summary.item_count, "shown": items[:SHOWN_ITEMS]})
    return render(request, "admin/lists/index.html", {
        "lists": shown, "can_edit": principal.role == Role.ADMIN, "active_nav": "rules", "errors": {},
        "forms": {}, "new": {}, **context}, principal=principal, status_code=status_code)


def _act(request: Request, session: OrmSession, principal: Principal, change: Callable[[], str], *,
         error_key: str, form: dict[str, Any]):
    """Run the change; on a refusal, the page with the error next to the form that was used."""
    outcome = apply_change(session, change, labels=LABELS)
    if "error" not in outcome:
        return _page(request, session, principal, **outcome)
    if outcome["status_code"] == 404:  # changed meanwhile (a value removed twice): shown in place, as a conflict
        outcome["status_code"] = 409
    errors = outcome.pop("field_errors", {})
    if error_key == "new":
        return _page(request, session, principal, errors=errors or {"name": outcome["error"]}, new=form, **outcome)
    return _page(request, session, principal, errors={error_key: " ".join(errors.values()) or outcome["error"]},
                 forms={error_key: form.get("items", "")}, **outcome)


def _confirm(request: Request, session: OrmSession, principal: Principal, *, title: str, text: str, button: str,
             action: str, fields: dict[str, str], danger: bool = False):
    return _page(request, session, principal, confirm={
        "title": title, "text": text, "button": button, "action": action, "fields": fields,
        "cancel": "/admin/lists", "target": TARGET, "button_class": "btn-danger" if danger else "btn-primary"})


def _existing(session: OrmSession, name: str) -> list[str] | None:
    try:
        return lists.get(session=session, name=name).items
    except NotFound:
        return None


@router.get("/admin/lists")
def lists_page(request: Request, session: DbSession, principal: BrowserUser):
    return _page(request, session, principal)


def _replace(request: Request, session: OrmSession, principal: Principal, *, name: str, description: str,
             items: str, confirm: str, error_key: str):
    values = _lines(items)
    form = {"name": name, "description": description, "items": items}
    current = _existing(session, name)
    if current is not None and confirm != "yes":
        new = sorted(set(values))
        removed, added = sorted(set(current) - set(new)), sorted(set(new) - set(current))
        changes = "; ".join(part for part in (f"removes {_joined(removed)}" if removed else "",
                                               f"adds {_joined(added)}" if added else "") if part)
        return _confirm(request, session, principal, title=f"Replace the items of {name}?",
                        text=f"{name} has {len(current):,} items and will have {len(new):,}"
                             f"{': ' + changes if changes else ' (the same ones)'}. "
                             "Rules reading it see the new items from the next transaction.",
                        button=f"Replace items of {name}", action=f"/admin/lists/{name}", danger=True,
                        fields={"description": description, "items": "\n".join(values) + "\n"})

    def change() -> str:
        data = ListReplace.model_validate({"description": description.strip() or None, "items": values})
        saved = lists.replace(session=session, actor=principal.actor, name=name, description=data.description,
                              items=data.items, description_given=True)
        verb = "Replaced the items of" if current is not None else "Created"
        return f"{verb} {saved.name}: {saved.item_count:,} item{'' if saved.item_count == 1 else 's'}."
    return _act(request, session, principal, change, error_key=error_key, form=form)


@router.post("/admin/lists")
def create_list(request: Request, session: DbSession, principal: BrowserAdmin, name: Text = "",
                description: Text = "", items: Items = "", confirm: Text = ""):
    name = name.strip()
    if not lists_name_ok(name):
        refused = refusal([{"loc": ("name",), "type": "string_pattern_mismatch",
                            "ctx": {"pattern": LIST_NAME_PATTERN}}], LABELS)
        return _page(request, session, principal, status_code=422, error=refused["error"],
                     errors=refused["field_errors"], new={"name": name, "description": description, "items": items})
    return _replace(request, session, principal, name=name, description=description, items=items, confirm=confirm,
                    error_key="new")


def lists_name_ok(name: str) -> bool:
    return re.fullmatch(LIST_NAME_PATTERN.strip("^$"), name) is not None


@router.post("/admin/lists/{name}")
def replace_list(name: ListName, request: Request, session: DbSession, principal: BrowserAdmin,
                 description: Text = "", items: Items = "", confirm: Text = ""):
    return _replace(request, session, principal, name=name, description=description, items=items, confirm=confirm,
                    error_key=f"{name}.replace")


@router.post("/admin/lists/{name}/items")
def add_items(name: ListName, request: Request, session: DbSession, principal: BrowserAdmin, items: Items = "",
              confirm: Text = ""):
    values = _lines(items)
    if values and confirm != "yes":
        plural = "" if len(values) == 1 else "s"
        return _confirm(request, session, principal, title=f"Add {len(values):,} item{plural} to {name}?",
                        text=f"Adds {_joined(values)}. Rules reading {name} see them from the next transaction.",
                        button=f"Add to {name}", action=f"/admin/lists/{name}/items",
                        fields={"items": "\n".join(values) + "\n"})

    def change() -> str:
        data = ListItemsAdd.model_validate({"items": values})
        before = len(lists.get(session=session, name=name).items)
        saved = lists.add_items(session=session, actor=principal.actor, name=name, items=data.items)
        added = saved.item_count - before
        return f"Added {added:,} item{'' if added == 1 else 's'} to {name}" + (
            "." if added == len(set(values)) else f" ({len(set(values)) - added:,} were there already).")
    return _act(request, session, principal, change, error_key=f"{name}.add", form={"items": items})


@router.post("/admin/lists/{name}/items/remove")
def remove_item(name: ListName, request: Request, session: DbSession, principal: BrowserAdmin,
                value: Annotated[str, Form(max_length=256)] = "", confirm: Text = ""):
    if confirm != "yes":
        return _confirm(request, session, principal, title=f"Remove {value} from {name}?",
                        text=f"Rules reading {name} no longer match {value} from the next transaction.",
                        button=f"Remove {value}", action=f"/admin/lists/{name}/items/remove", danger=True,
                        fields={"value": value})

    def change() -> str:
        lists.remove_item(session=session, actor=principal.actor, name=name, value=value)
        return f"Removed {value} from {name}."
    return _act(request, session, principal, change, error_key=f"{name}.add", form={})
