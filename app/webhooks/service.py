"""Webhook endpoints (admin), deliveries and manual retries; services flush only."""

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.audit.service import Actor
from app.errors import NotFound
from app.uow.unit import OrmSession
from app.webhooks import outbox, signing
from app.webhooks.enums import DeliveryStatus
from app.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from app.webhooks.schemas import AttemptOut, DeliveryOut, EndpointCreate, EndpointCreated, EndpointOut, WorkerStatus

E = WebhookEndpoint.__table__.c
D = WebhookDelivery.__table__.c
V = WebhookEvent.__table__.c
A = WebhookAttempt.__table__.c


def _out(endpoint: WebhookEndpoint) -> EndpointOut:
    return EndpointOut(id=endpoint.id, url=endpoint.url, description=endpoint.description,
                       event_types=list(endpoint.event_types), is_active=endpoint.is_active,
                       created_at=endpoint.created_at)


def create_endpoint(*, session: OrmSession, actor: Actor, data: EndpointCreate) -> EndpointCreated:
    """Register an endpoint with a new server-generated secret (returned this once)."""
    endpoint = WebhookEndpoint(url=data.url, description=data.description, event_types=data.event_types,
                               secret=signing.new_secret(), created_by=actor.id)
    session.add(endpoint)
    session.flush()
    session.refresh(endpoint)
    out = _out(endpoint)
    audit.record(session, actor=actor, action="webhook.endpoint_created", entity_type="webhook_endpoint",
                 entity_id=endpoint.id, after=out.model_dump(mode="json", exclude={"created_at"}))
    return EndpointCreated(**out.model_dump(), secret=endpoint.secret)


def list_endpoints(*, session: Session) -> list[EndpointOut]:
    """Endpoints not deleted, newest first (never their secrets)."""
    rows = session.scalars(select(WebhookEndpoint).where(E.deleted_at.is_(None)).order_by(E.id.desc()))
    return [_out(endpoint) for endpoint in rows]


def _get_for_update(session: Session, endpoint_id: int) -> WebhookEndpoint:
    endpoint = session.scalars(
        select(WebhookEndpoint).where(E.id == endpoint_id, E.deleted_at.is_(None)).with_for_update()
    ).one_or_none()
    if endpoint is None:
        raise NotFound(f"webhook endpoint {endpoint_id} not found")
    return endpoint


def set_active(*, session: OrmSession, actor: Actor, endpoint_id: int, is_active: bool) -> EndpointOut:
    """Enable or disable an endpoint; pending deliveries wait while it is disabled."""
    endpoint = _get_for_update(session, endpoint_id)
    before = endpoint.is_active
    if before != is_active:
        endpoint.is_active = is_active
        endpoint.updated_at = func.now()
        session.flush()
        session.refresh(endpoint)
        action = "webhook.endpoint_enabled" if is_active else "webhook.endpoint_disabled"
        audit.record(session, actor=actor, action=action,
                     entity_type="webhook_endpoint", entity_id=endpoint_id,
                     before={"is_active": before}, after={"is_active": is_active})
    return _out(endpoint)


def delete_endpoint(*, session: OrmSession, actor: Actor, endpoint_id: int) -> None:
    """Delete an endpoint: it gets nothing more; its delivery history is kept."""
    endpoint = _get_for_update(session, endpoint_id)
    endpoint.deleted_at = func.now()
    endpoint.is_active = False
    session.flush()
    audit.record(session, actor=actor, action="webhook.endpoint_deleted", entity_type="webhook_endpoint",
                 entity_id=endpoint_id, before={"url": endpoint.url})


def send_test(*, session: OrmSession, actor: Actor, endpoint_id: int) -> int:
    """A `webhook.test` event to this endpoint only, delivered by the worker like any other; audited."""
    endpoint = _get_for_update(session, endpoint_id)
    payload = {"endpoint_id": endpoint_id, "message": "A test event from Riskdesk: this endpoint receives webhooks.",
               "sent_by": actor.name}
    delivery_id = outbox.enqueue_for_endpoint(session, endpoint_id, "webhook.test", payload)
    audit.record(session, actor=actor, action="webhook.test_sent", entity_type="webhook_endpoint",
                 entity_id=endpoint_id, after={"delivery_id": delivery_id, "url": endpoint.url})
    return delivery_id


DELIVERY_ROWS = (
    select(D.id, D.endpoint_id, E.url.label("endpoint_url"), V.event_type, V.message_id, D.status,
           D.attempt_count, D.max_attempts, D.next_attempt_at, D.last_status_code, D.last_error,
           D.delivered_at, D.created_at)
    .join(WebhookEndpoint.__table__, E.id == D.endpoint_id)
    .join(WebhookEvent.__table__, V.id == D.event_id)
)


def list_deliveries(*, session: Session, status: DeliveryStatus | None = None, limit: int = 100) -> list[DeliveryOut]:
    """Newest deliveries first, each with its attempts."""
    statement = DELIVERY_ROWS.order_by(D.id.desc()).limit(limit)
    if status:
        statement = statement.where(D.status == status)
    deliveries = [DeliveryOut(**row._asdict()) for row in session.execute(statement)]
    by_id = {d.id: d for d in deliveries}
    if by_id:
        for row in session.execute(
            select(A.delivery_id, A.attempt_no, A.started_at, A.duration_ms, A.status_code, A.error)
            .where(A.delivery_id.in_(list(by_id))).order_by(A.id)
        ):
            by_id[row.delivery_id].attempts.append(AttemptOut(**{k: v for k, v in row._asdict().items()
                                                                 if k != "delivery_id"}))
    return deliveries


def payloads(*, session: Session, delivery_ids: list[int]) -> dict[int, dict]:
    """Each delivery's event payload (the `data` the endpoint receives), by delivery id."""
    if not delivery_ids:
        return {}
    rows = session.execute(select(D.id, V.payload).join(WebhookEvent.__table__, V.id == D.event_id)
                           .where(D.id.in_(delivery_ids)))
    return {row.id: row.payload for row in rows}


def retry(*, session: OrmSession, actor: Actor, delivery_id: int) -> DeliveryOut:
    """Make a delivery due now with at least one more attempt allowed (whatever its state)."""
    row = session.execute(
        update(WebhookDelivery.__table__).where(D.id == delivery_id)
        .values(status=DeliveryStatus.PENDING, next_attempt_at=func.now(), updated_at=func.now(),
                max_attempts=func.greatest(D.max_attempts, D.attempt_count + 1))
        .returning(D.id, D.attempt_count)
    ).one_or_none()
    if row is None:
        raise NotFound(f"webhook delivery {delivery_id} not found")
    audit.record(session, actor=actor, action="webhook.delivery_retried", entity_type="webhook_delivery",
                 entity_id=delivery_id, after={"status": DeliveryStatus.PENDING, "attempts_so_far": row.attempt_count})
    return DeliveryOut(**session.execute(DELIVERY_ROWS.where(D.id == delivery_id)).one()._asdict())


LATEST_WORKER = text(
    "SELECT worker_id, last_seen_at, last_seen_at >= now() - make_interval(mins => :minutes) AS is_running,"
    " greatest(0, extract(epoch FROM now() - last_seen_at))::int AS seconds_ago"
    " FROM webhook_workers ORDER BY last_seen_at DESC LIMIT 1"
)


def worker_status(*, session: Session, seen_within_minutes: int) -> WorkerStatus:
    """The most recently seen delivery worker, and whether that was within the last minutes given."""
    # Compared with the database clock, the one the workers' heartbeats are written with.
    row = session.execute(LATEST_WORKER, {"minutes": seen_within_minutes}).one_or_none()
    if row is None:
        return WorkerStatus(seen_within_minutes=seen_within_minutes)
    return WorkerStatus(seen_within_minutes=seen_within_minutes, last_seen_at=row.last_seen_at,
                        seconds_ago=row.seconds_ago, worker_id=row.worker_id, is_running=row.is_running)
