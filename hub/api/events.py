"""Inbound events for operators and sellers: what arrived, what became of it, and a replay."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from hub.api.auth import current_principal
from hub.api.params import NUL_FREE, PathId, QueryId, parse_cursor
from hub.api.webhooks import WebhookConnectors
from hub.application.shops import load_shop
from hub.bootstrap import Container
from hub.domain.errors import InvalidInput, NotFound
from hub.domain.sellers import Principal
from hub.infrastructure.clock import utcnow
from sync.infrastructure import events
from sync.infrastructure.outbox import notify_channel

router = APIRouter(tags=["events"])


class EventOut(BaseModel):
    id: int
    marketplace: str
    event_key: str
    shop_id: int | None
    topic: str
    resource_id: str | None
    status: str
    reason: str | None
    attempts: int
    received_at: datetime
    handled_at: datetime | None
    body_bytes: int


class EventPage(BaseModel):
    items: list[EventOut]
    next_cursor: str | None


def _seller_shop_ids(container: Container, principal: Principal) -> list[int] | None:
    if principal.is_admin:
        return None
    with container.uow() as uow:
        return [shop.id for shop in uow.shops.list(principal.seller_id) if shop.id is not None]


@router.get("/events")
async def list_events(
    request: Request,
    shop_id: QueryId = None,
    status: str | None = Query(None, pattern="^(received|handled|rejected)$"),
    topic: str | None = Query(None, max_length=255, pattern=NUL_FREE),
    cursor: str | None = None,
    limit: int = Query(50, ge=1, le=200),
    principal: Principal = Depends(current_principal),
) -> EventPage:
    container: Container = request.app.state.container
    before_id = parse_cursor(cursor)

    def query() -> list[dict[str, object]]:
        allowed = _seller_shop_ids(container, principal)
        with container.engine.connect() as db:
            return events.list_events(
                db,
                shop_ids=allowed,
                shop_id=shop_id,
                status=status,
                topic=topic,
                before_id=before_id,
                limit=limit + 1,
            )

    rows = await run_in_threadpool(query)
    more = len(rows) > limit
    rows = rows[:limit]
    return EventPage(
        items=[EventOut.model_validate(row) for row in rows],
        next_cursor=str(rows[-1]["id"]) if more and rows else None,
    )


class WebhookStatus(BaseModel):
    shop_id: int
    marketplace: str
    webhook_management: str  # "api": we manage subscriptions; "manual": the seller does
    last_verified_delivery_at: datetime | None
    seconds_since_last_delivery: float | None


@router.get("/shops/{shop_id}/webhook-status")
def webhook_status(
    shop_id: PathId, request: Request, principal: Principal = Depends(current_principal)
) -> WebhookStatus:
    """The subscription check: how long since this shop's last verified delivery. Etsy's
    subscriptions live in its developer portal (``manual``), so this is all we can see there."""
    container: Container = request.app.state.container
    with container.uow() as uow:
        shop = load_shop(uow, shop_id, principal)
    connectors: WebhookConnectors = request.app.state.webhook_connectors
    management = connectors.get(shop.marketplace.value).capabilities.webhook_management.value
    with container.engine.connect() as db:
        last = events.last_delivery(db, shop_id)
    return WebhookStatus(
        shop_id=shop_id,
        marketplace=shop.marketplace.value,
        webhook_management=management,
        last_verified_delivery_at=last,
        seconds_since_last_delivery=(utcnow() - last).total_seconds() if last else None,
    )


@router.post("/events/{event_id}/replay")
def replay_event(
    event_id: PathId, request: Request, principal: Principal = Depends(current_principal)
) -> EventOut:
    """Handle the event again: it is set back to received and sent to its actor."""
    container: Container = request.app.state.container
    allowed = _seller_shop_ids(container, principal)
    with container.engine.begin() as db:
        event = events.load_event(db, event_id, lock=True)
        if event is None or (allowed is not None and event.shop_id not in allowed):
            raise NotFound(f"event {event_id} does not exist")
        if event.shop_id is None:
            raise InvalidInput(f"event {event_id} names no known shop; it cannot be handled")
        events.mark(db, event_id, events.RECEIVED)
        events.requeue(db, event_id)
        if db.dialect.name == "postgresql":
            db.execute(
                text("SELECT pg_notify(:c, '')"),
                {"c": notify_channel(container.settings.db_schema)},
            )
    return EventOut.model_validate(_list_one(container, event_id)[0])


def _list_one(container: Container, event_id: int) -> list[dict[str, object]]:
    with container.engine.connect() as db:
        return events.list_events(
            db,
            shop_ids=None,
            shop_id=None,
            status=None,
            topic=None,
            before_id=event_id + 1,
            limit=1,
        )
