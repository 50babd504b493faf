"""Webhook screens (admins): endpoints with a secret shown once, deliveries with attempts and retry."""

from typing import Annotated

from fastapi import APIRouter, Form, Path, Request
from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.config import get_settings
from app.db import DbSession
from app.errors import NotFound
from app.security.deps import Principal
from app.web.deps import BrowserAdmin, ScreenRoute
from app.web.errors import redirect
from app.web.messages import labelled_errors
from app.web.templating import render
from app.webhooks import service as webhooks
from app.webhooks.enums import DeliveryStatus
from app.webhooks.models import EVENT_TYPES
from app.webhooks.schemas import EndpointCreate

router = APIRouter(route_class=ScreenRoute)
Id = Annotated[int, Path(ge=1, lt=2**63)]


def _endpoints_page(request: Request, session: Session, principal: Principal, *, status_code: int = 200, **context):
    return render(request, "webhooks/index.html", {
        "endpoints": webhooks.list_endpoints(session=session), "event_types": EVENT_TYPES,
        "form": {}, "errors": {}, "active_nav": "webhooks", **context,
    }, principal=principal, status_code=status_code)


@router.get("/webhooks")
def endpoints_page(request: Request, session: DbSession, principal: BrowserAdmin):
    return _endpoints_page(request, session, principal)


@router.post("/webhooks/endpoints")
def create_endpoint(
    request: Request, session: DbSession, principal: BrowserAdmin,
    url: Annotated[str, Form(max_length=2000)] = "",
    description: Annotated[str, Form(max_length=200)] = "",
    event_types: Annotated[list[str], Form()] = [],  # noqa: B006 (FastAPI copies defaults)
):
    form = {"url": url, "description": description, "event_types": event_types}
    try:
        data = EndpointCreate.model_validate({"url": url, "description": description or None,
                                              "event_types": event_types})
    except ValidationError as exc:
        errors = labelled_errors(exc.errors(include_input=False))
        return _endpoints_page(request, session, principal, status_code=422, form=form, errors=errors)
    created = webhooks.create_endpoint(session=session, actor=principal.actor, data=data)
    session.commit()
    # The one and only time the secret is shown; the page is not cached (Cache-Control from the headers middleware).
    return _endpoints_page(request, session, principal, created=created)


@router.post("/webhooks/endpoints/{endpoint_id}/test")
def send_test_event(endpoint_id: Id, request: Request, session: DbSession, principal: BrowserAdmin):
    delivery_id = webhooks.send_test(session=session, actor=principal.actor, endpoint_id=endpoint_id)
    return redirect(request, f"/webhooks/deliveries?tested={delivery_id}")


@router.post("/webhooks/endpoints/{endpoint_id}/{action}")
def change_endpoint(endpoint_id: Id, action: Annotated[str, Path(pattern="^(enable|disable|delete)$")],
                    request: Request, session: DbSession, principal: BrowserAdmin,
                    confirm: Annotated[str, Form(max_length=10)] = ""):
    if action == "delete":
        if confirm != "yes":
            endpoint = next((e for e in webhooks.list_endpoints(session=session) if e.id == endpoint_id), None)
            if endpoint is None:
                raise NotFound(f"webhook endpoint {endpoint_id} not found")
            return _endpoints_page(request, session, principal, confirm={
                "question": f"Delete endpoint #{endpoint_id}?",
                "detail": f"{endpoint.url} gets no more events, pending deliveries to it stop and this cannot be "
                          "undone; its delivery history is kept.",
                "action": f"/webhooks/endpoints/{endpoint_id}/delete", "button": f"Delete endpoint #{endpoint_id}",
                "cancel": "/webhooks"})
        webhooks.delete_endpoint(session=session, actor=principal.actor, endpoint_id=endpoint_id)
    else:
        webhooks.set_active(session=session, actor=principal.actor, endpoint_id=endpoint_id,
                            is_active=action == "enable")
    return redirect(request, "/webhooks")


@router.get("/webhooks/deliveries")
def deliveries_page(request: Request, session: DbSession, principal: BrowserAdmin):
    given = request.query_params.get("status")
    status = DeliveryStatus(given) if given in tuple(DeliveryStatus) else None
    worker = webhooks.worker_status(session=session, seen_within_minutes=get_settings().webhook_worker_seen_minutes)
    deliveries = webhooks.list_deliveries(session=session, status=status)
    payloads = webhooks.payloads(session=session, delivery_ids=[d.id for d in deliveries])
    return render(request, "webhooks/deliveries.html", {
        "deliveries": deliveries, "payloads": payloads, "status": status, "worker": worker,
        "retried": request.query_params.get("retried"), "tested": request.query_params.get("tested"),
        "active_nav": "webhooks",
    }, principal=principal)


@router.post("/webhooks/deliveries/{delivery_id}/retry")
def retry_delivery(delivery_id: Id, request: Request, session: DbSession, principal: BrowserAdmin):
    webhooks.retry(session=session, actor=principal.actor, delivery_id=delivery_id)
    return redirect(request, f"/webhooks/deliveries?retried={delivery_id}")
