"""Inbound events: stored once per (marketplace, event key), with their outbox row if new."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, case, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from hub.infrastructure.clock import utcnow
from hub.infrastructure.tables import ShopRow, table_of
from sync.infrastructure.outbox import add_message
from sync.infrastructure.tables import InboundEventRow

EVENTS = table_of(InboundEventRow)
SHOPS = table_of(ShopRow)
PROCESS_ACTOR = "inbound.process"
PROCESS_QUEUE = "webhooks"

RECEIVED, HANDLED, REJECTED = "received", "handled", "rejected"


@dataclass(frozen=True)
class IncomingEvent:
    marketplace: str
    event_key: str
    topic: str
    body: bytes
    resource_id: str | None = None
    shop_reference: str | None = None  # matched against shops.external_id
    shop_id: int | None = None  # known already (WooCommerce's per-shop endpoint)
    rejected_reason: str | None = None  # verified but unusable (unparseable body)


@dataclass(frozen=True)
class StoredEvent:
    id: int | None  # None: a duplicate delivery
    status: str | None


@dataclass(frozen=True)
class Event:
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
    body: bytes


def store_event(engine: Engine, event: IncomingEvent) -> StoredEvent:
    """Insert the event unless its key was seen; a new, usable event gets its outbox row in the
    same transaction. An unknown shop is stored as rejected: answering 4xx would make the
    marketplace disable the subscription."""
    shop = (
        select(SHOPS.c.id)
        .where(
            SHOPS.c.marketplace == event.marketplace, SHOPS.c.external_id == event.shop_reference
        )
        .scalar_subquery()
        if event.shop_id is None
        else None
    )
    shop_value: Any = event.shop_id if shop is None else shop
    if event.rejected_reason:
        status: Any = REJECTED
        reason: Any = event.rejected_reason
    else:
        status = (
            case((shop_value.is_(None), REJECTED), else_=RECEIVED) if shop is not None else RECEIVED
        )
        reason = (
            case((shop_value.is_(None), f"unknown shop {event.shop_reference!r}"), else_=None)
            if shop is not None
            else None
        )
    values = {
        "marketplace": event.marketplace,
        "event_key": event.event_key,
        "shop_id": shop_value,
        "topic": event.topic,
        "resource_id": event.resource_id,
        "body": event.body,
        "status": status,
        "reason": reason,
        "attempts": 0,
        "received_at": utcnow(),
    }
    dialect_insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
    statement = (
        dialect_insert(EVENTS)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["marketplace", "event_key"])
        .returning(EVENTS.c.id, EVENTS.c.status)
    )
    with engine.begin() as db:
        row = db.execute(statement).first()
        if row is None:
            return StoredEvent(None, None)
        if row.status == RECEIVED:
            # No NOTIFY on the hot path (it serialises commits); the relay polls within 50 ms.
            add_message(db, PROCESS_ACTOR, PROCESS_QUEUE, {"event_id": row.id})
        return StoredEvent(row.id, row.status)


def load_event(db: Connection, event_id: int, *, lock: bool = False) -> Event | None:
    query = select(EVENTS).where(EVENTS.c.id == event_id)
    if lock:
        query = query.with_for_update()
    row = db.execute(query).first()
    return _event(row) if row else None


def mark(db: Connection, event_id: int, status: str, reason: str | None = None) -> None:
    db.execute(
        update(EVENTS)
        .where(EVENTS.c.id == event_id)
        .values(
            status=status,
            reason=reason,
            handled_at=utcnow() if status == HANDLED else None,
        )
    )


@dataclass(frozen=True)
class PendingEvent:
    """What a worker needs to handle an event; the body stays in the database."""

    id: int
    shop_id: int | None
    topic: str
    resource_id: str | None
    attempts: int


def begin_attempt(db: Connection, event_id: int) -> PendingEvent | None:
    """Count an attempt on a still-received event and return it, in one statement; ``None``
    when it was handled or rejected already (a duplicate message is then a no-op)."""
    row = db.execute(
        update(EVENTS)
        .where(EVENTS.c.id == event_id, EVENTS.c.status == RECEIVED)
        .values(attempts=EVENTS.c.attempts + 1)
        .returning(
            EVENTS.c.id, EVENTS.c.shop_id, EVENTS.c.topic, EVENTS.c.resource_id, EVENTS.c.attempts
        )
    ).first()
    if row is None:
        return None
    return PendingEvent(row.id, row.shop_id, row.topic, row.resource_id, row.attempts)


def stale_event_ids(db: Connection, older_than: datetime, limit: int = 500) -> list[int]:
    rows = db.execute(
        select(EVENTS.c.id)
        .where(and_(EVENTS.c.status == RECEIVED, EVENTS.c.received_at < older_than))
        .order_by(EVENTS.c.id)
        .limit(limit)
    )
    return [row.id for row in rows]


def list_events(
    db: Connection,
    *,
    shop_ids: list[int] | None,
    shop_id: int | None,
    status: str | None,
    topic: str | None,
    before_id: int | None,
    limit: int,
) -> list[dict[str, Any]]:
    query = (
        select(
            EVENTS.c.id,
            EVENTS.c.marketplace,
            EVENTS.c.event_key,
            EVENTS.c.shop_id,
            EVENTS.c.topic,
            EVENTS.c.resource_id,
            EVENTS.c.status,
            EVENTS.c.reason,
            EVENTS.c.attempts,
            EVENTS.c.received_at,
            EVENTS.c.handled_at,
            func.length(EVENTS.c.body).label("body_bytes"),
        )
        .order_by(EVENTS.c.id.desc())
        .limit(limit)
    )
    if shop_ids is not None:
        query = query.where(EVENTS.c.shop_id.in_(shop_ids))
    if shop_id is not None:
        query = query.where(EVENTS.c.shop_id == shop_id)
    if status is not None:
        query = query.where(EVENTS.c.status == status)
    if topic is not None:
        query = query.where(EVENTS.c.topic == topic)
    if before_id is not None:
        query = query.where(EVENTS.c.id < before_id)
    return [dict(row._mapping) for row in db.execute(query)]


def _event(row: Any) -> Event:
    return Event(
        id=row.id,
        marketplace=row.marketplace,
        event_key=row.event_key,
        shop_id=row.shop_id,
        topic=row.topic,
        resource_id=row.resource_id,
        status=row.status,
        reason=row.reason,
        attempts=row.attempts,
        received_at=row.received_at,
        handled_at=row.handled_at,
        body=bytes(row.body),
    )


def requeue(db: Connection, event_id: int) -> int:
    """Send a received event to its actor again (the stale sweep, a replay)."""
    return add_message(db, PROCESS_ACTOR, PROCESS_QUEUE, {"event_id": event_id})


def last_delivery(db: Connection, shop_id: int) -> datetime | None:
    """When the shop's newest verified delivery arrived (what a subscription check reports)."""
    found: datetime | None = db.execute(
        select(func.max(EVENTS.c.received_at)).where(EVENTS.c.shop_id == shop_id)
    ).scalar_one()
    return found
