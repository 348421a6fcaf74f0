"""What a core transaction asks the sync engine to do, written in that same transaction.

* Outbox rows: broker messages that exist only if the change commits (the relay publishes them).
* Push triggers: one row per (kind, shop) while a push is queued. The first change inserts it
  with a message delayed by the debounce; later changes find it and add nothing, so a burst of
  changes makes one push of the latest values. The push deletes the row when it takes it.
* Operations: one row per outbound write with its idempotency key (a fulfillment's tracking).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, insert, literal, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql import Select

from hub.domain.shops import PushKind
from hub.infrastructure.clock import utcnow
from hub.infrastructure.tables import OutboxRow, PushTriggerRow, SyncOperationRow, table_of

OUTBOX = table_of(OutboxRow)
TRIGGERS = table_of(PushTriggerRow)
OPERATIONS = table_of(SyncOperationRow)

# Actor names and queues the sync engine declares; the core names them to address its messages.
STOCK_PUSH_ACTOR, STOCK_QUEUE = "stock.push", "stock"
FULFILLMENT_PUSH_ACTOR, FULFILLMENT_QUEUE = "fulfillment.push", "fulfillment"
FULFILLMENT_PUSH_KIND = "fulfillment.push"
STOCK_BATCH_ACTOR = "stock.push_batch"
CATALOG_PULL_ACTOR, CATALOG_QUEUE = "catalog.pull", "catalog"
WEBHOOKS_CHECK_ACTOR = "shops.check_webhooks"  # on the catalog queue: slow, rare shop upkeep
IMAGES_QUEUE = "images"
IMAGES_RENDER_ACTOR = IMAGES_RENDER_KIND = "images.render"
IMAGES_PUSH_ACTOR = "images.push"  # (shop, kind): snapshot the due listings into operations
IMAGES_LISTING_ACTOR = "images.push_listing"  # one listing's images, one operation
IMAGES_LISTING_KIND = "images.listing"
# The push kinds an actor exists for; price gets its own with pricing.
PUSH_ACTORS: dict[PushKind, tuple[str, str]] = {
    PushKind.STOCK: (STOCK_PUSH_ACTOR, STOCK_QUEUE),
    PushKind.LISTING: (STOCK_PUSH_ACTOR, STOCK_QUEUE),
    PushKind.PRICE: (STOCK_PUSH_ACTOR, STOCK_QUEUE),  # Shopify: prices apart from quantities
    PushKind.IMAGES: (IMAGES_PUSH_ACTOR, IMAGES_QUEUE),
}
QUEUED = "queued"


def add_message(
    db: Connection, actor: str, queue: str, payload: dict[str, Any], *, delay_ms: int = 0
) -> int:
    """Write a message in the caller's transaction; it exists only if that transaction commits."""
    new_id: int = db.execute(
        insert(OUTBOX)
        .values(actor=actor, queue=queue, payload=payload, delay_ms=delay_ms, created_at=utcnow())
        .returning(OUTBOX.c.id)
    ).scalar_one()
    return new_id


def _dialect_insert(db: Connection) -> Any:
    return pg_insert if db.dialect.name == "postgresql" else sqlite_insert


def trigger_pushes(
    db: Connection, kind_shops: Select[tuple[str, int]], *, debounce_ms: int
) -> list[tuple[str, int]]:
    """Queue a push for every (kind, shop) the select yields that has none queued yet.

    Returns the triggers this call created; each got its delayed message.
    """
    now = utcnow()
    due = now + timedelta(milliseconds=debounce_ms)
    pairs = kind_shops.subquery()
    created = db.execute(
        _dialect_insert(db)(TRIGGERS)
        .from_select(
            ["kind", "shop_id", "due_at", "created_at"],
            select(
                pairs.c[0],
                pairs.c[1],
                literal(due, TRIGGERS.c.due_at.type),
                literal(now, TRIGGERS.c.created_at.type),
            )
            .distinct()
            .where(literal(True)),  # SQLite: a WHERE keeps ON CONFLICT from parsing as a join
        )
        .on_conflict_do_nothing(index_elements=["kind", "shop_id"])
        .returning(TRIGGERS.c.kind, TRIGGERS.c.shop_id)
    ).all()
    for kind, shop_id in created:
        actor, queue = PUSH_ACTORS[PushKind(kind)]
        add_message(db, actor, queue, {"shop_id": shop_id, "kind": kind}, delay_ms=debounce_ms)
    return [(kind, shop_id) for kind, shop_id in created]


def pushable(kinds: Iterable[PushKind]) -> list[str]:
    """The kinds among ``kinds`` that have a push actor, as stored strings."""
    return sorted(kind.value for kind in set(kinds) if kind in PUSH_ACTORS)


def request_operation(
    db: Connection,
    *,
    kind: str,
    shop_id: int | None,
    key: str,
    payload: dict[str, Any],
    actor: str,
    queue: str,
) -> int | None:
    """Insert an operation under its idempotency key with the message that runs it; ``None``
    when the key exists already (the same request made twice is one operation)."""
    now = utcnow()
    operation_id = db.execute(
        _dialect_insert(db)(OPERATIONS)
        .values(
            kind=kind,
            shop_id=shop_id,
            key=key,
            status=QUEUED,
            payload=payload,
            attempts=0,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(OPERATIONS.c.id)
    ).scalar_one_or_none()
    if operation_id is not None:
        add_message(db, actor, queue, {"operation_id": operation_id})
    return operation_id


class SqlOutboundRequests:
    def __init__(self, connection: Connection) -> None:
        self._db = connection

    def push_fulfillment(self, shop_id: int, order_id: int, fulfillment_id: int) -> int | None:
        return request_operation(
            self._db,
            kind=FULFILLMENT_PUSH_KIND,
            shop_id=shop_id,
            key=f"fulfillment:{order_id}:{fulfillment_id}",
            payload={"order_id": order_id, "fulfillment_id": fulfillment_id},
            actor=FULFILLMENT_PUSH_ACTOR,
            queue=FULFILLMENT_QUEUE,
        )


PULL_TRIGGER_KIND = "orders.pull"  # a pull queued for a shop; the scan takes it when it starts
PULL_ACTOR_QUEUE = ("orders.pull", "orders")


def trigger_pull(db: Connection, shop_id: int, *, delay_ms: int) -> bool:
    """Queue one order pull for the shop unless one is queued and not started: many hints
    (stale stock pushes, say) make one scan. True when this call queued it."""
    now = utcnow()
    created = db.execute(
        _dialect_insert(db)(TRIGGERS)
        .values(
            kind=PULL_TRIGGER_KIND,
            shop_id=shop_id,
            due_at=now + timedelta(milliseconds=delay_ms),
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["kind", "shop_id"])
        .returning(TRIGGERS.c.shop_id)
    ).first()
    if created is None:
        return False
    actor, queue = PULL_ACTOR_QUEUE
    add_message(db, actor, queue, {"shop_id": shop_id}, delay_ms=delay_ms)
    return True


def trigger_actor(kind: str) -> tuple[str, str]:
    """The actor a queued trigger of ``kind`` sends its message to."""
    if kind == PULL_TRIGGER_KIND:
        return PULL_ACTOR_QUEUE
    return PUSH_ACTORS[PushKind(kind)]
