"""Admin JSON for webhooks: endpoints (the secret only in the creation response) and deliveries."""

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from app.db import DbSession
from app.openapi import AUTH_ERRORS, BAD_INPUT, Responses
from app.security.deps import Admin
from app.uow.routing import ApiRoute
from app.webhooks import service
from app.webhooks.enums import DeliveryStatus
from app.webhooks.schemas import DeliveryOut, DeliveryPage, EndpointCreate, EndpointCreated, EndpointOut, EndpointUpdate

router = APIRouter(prefix="/api/webhooks", tags=["webhooks"], route_class=ApiRoute)
Id = Annotated[int, Path(ge=1, lt=2**63)]
NOT_FOUND: Responses = {404: {"description": "Unknown endpoint or delivery"}}


@router.post("/endpoints", response_model=EndpointCreated, status_code=201,
             summary="Register an endpoint; the response holds its signing secret, shown this once",
             responses={**AUTH_ERRORS, **BAD_INPUT})
def create_endpoint(data: EndpointCreate, principal: Admin, session: DbSession):
    return service.create_endpoint(session=session, actor=principal.actor, data=data)


@router.get("/endpoints", response_model=list[EndpointOut], summary="Registered endpoints (no secrets)",
            responses=AUTH_ERRORS)
def list_endpoints(principal: Admin, session: DbSession):
    return service.list_endpoints(session=session)


@router.patch("/endpoints/{endpoint_id}", response_model=EndpointOut, summary="Enable or disable an endpoint",
              responses={**AUTH_ERRORS, **BAD_INPUT, **NOT_FOUND})
def update_endpoint(endpoint_id: Id, data: EndpointUpdate, principal: Admin, session: DbSession):
    return service.set_active(session=session, actor=principal.actor, endpoint_id=endpoint_id,
                              is_active=data.is_active)


@router.delete("/endpoints/{endpoint_id}", status_code=204, summary="Delete an endpoint (history is kept)",
               responses={**AUTH_ERRORS, **NOT_FOUND})
def delete_endpoint(endpoint_id: Id, principal: Admin, session: DbSession):
    service.delete_endpoint(session=session, actor=principal.actor, endpoint_id=endpoint_id)
    return Response(status_code=204)


@router.get("/deliveries", response_model=DeliveryPage, summary="Deliveries, newest first, with every attempt",
            responses=AUTH_ERRORS)
def list_deliveries(
    principal: Admin, session: DbSession,
    status: DeliveryStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
):
    return DeliveryPage(items=service.list_deliveries(session=session, status=status, limit=limit))


@router.post("/deliveries/{delivery_id}/retry", response_model=DeliveryOut, summary="Deliver again now",
             responses={**AUTH_ERRORS, **NOT_FOUND})
def retry_delivery(delivery_id: Id, principal: Admin, session: DbSession):
    return service.retry(session=session, actor=principal.actor, delivery_id=delivery_id)
