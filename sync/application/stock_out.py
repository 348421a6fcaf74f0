"""Stock out: a due trigger becomes frozen batch operations; each batch is pushed exactly once
in effect.

``push_due`` (actor ``stock.push``) takes the (kind, shop) trigger and snapshots the bindings
ahead of their pushed version into batches of the marketplace's size, each an operation keyed by
the hash of (kind, shop, sorted (binding, version) pairs) whose payload (values and expected
values) is frozen there and sent verbatim on every retry. Values equal to the last pushed one
are recorded as pushed without a call.

``push_batch`` (actor ``stock.push_batch``) sends one batch. A frozen batch is always sent;
only a batch whose members were all pushed at a newer version is skipped (superseded). A stale
compare-and-swap (Shopify) re-reads every item and re-sends the whole batch under a derived key
with the levels read as expected values and min(ours, theirs) where Shopify moved; when it shows
less than we would (a sale not imported yet, usually about to be), the shop's orders are pulled.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from connectors.contract import (
    MarketplaceConnector,
    PriceLevel,
    PriceWriter,
    RateLimited,
    StaleStock,
    StockLevel,
    TransientError,
)
from hub.domain.shops import PushKind, Shop, ShopStatus
from hub.infrastructure.outbound import (
    STOCK_BATCH_ACTOR,
    STOCK_QUEUE,
    request_operation,
    trigger_pull,
)
from sync.application import operations_run as run
from sync.domain.batches import batch_key, retry_key
from sync.domain.policies import STOCK_BATCH
from sync.infrastructure import operations as ops
from sync.infrastructure import pushes
from sync.worker.runtime import SyncRuntime, shop_context

log = logging.getLogger(__name__)
BATCH_ACTOR = STOCK_BATCH_ACTOR
ROUTE = run.Route(STOCK_BATCH, STOCK_BATCH_ACTOR, STOCK_QUEUE)


def push_due(runtime: SyncRuntime, shop_id: int, kind: str) -> list[int]:
    """Snapshot the due bindings into batch operations; returns the new operations' ids."""
    container = runtime.container
    shop = runtime.shop(shop_id)
    if shop is None:
        return []
    connector = runtime.connector(shop.marketplace.value)
    created: list[int] = []
    with container.uow() as uow:
        db = uow.connection
        uow.lock(f"push:{kind}:{shop_id}")
        pushes.take_trigger(db, kind, shop_id)
        if shop.status is not ShopStatus.ACTIVE:
            uow.commit()  # the bindings stay due; resuming the shop queues them again
            return []
        due = pushes.due_bindings(db, shop_id, kind)
        if not due:
            uow.commit()
            return []
        debounce = container.settings.push_debounce_ms
        if kind == PushKind.PRICE.value:
            created = _plan_prices(db, connector, shop_id, due, debounce)
            uow.commit()
            if created:
                runtime.publisher.publish()
            return created
        wanted = pushes.quantities(db, shop_id, shop.stock_buffer, shop.max_listed_quantity)
        carries_price = kind == PushKind.LISTING.value
        unchanged: list[pushes.Member] = []
        unpushable: list[pushes.Member] = []
        levels: list[StockLevel] = []
        members: dict[str, pushes.Member] = {}
        for binding in due:
            quantity = wanted.get(binding.binding_id, 0)
            # The listing kind writes the decided price with the quantity, unless it is what
            # the marketplace shows already (None: the remote price is left as it is).
            price = binding.listed_price if carries_price else None
            if price is not None and price == binding.last_pushed_price:
                price = None
            member = pushes.Member(binding.binding_id, binding.desired_version, quantity, price)
            item_id = connector.stock_item_id(
                listing_id=binding.listing_id,
                variant_id=binding.variant_id,
                inventory_item_id=binding.inventory_item_id,
                sku=binding.sku,
            )
            if item_id is None or item_id in members:
                unpushable.append(member)
                log.warning(
                    "binding cannot be pushed: no marketplace item id, or one shared",
                    extra={"binding_id": binding.binding_id, "shop_id": shop_id},
                )
            elif quantity == binding.last_pushed_quantity and price is None:
                unchanged.append(member)
            else:
                members[item_id] = member
                levels.append(
                    StockLevel(item_id, quantity, binding.last_pushed_quantity, price=price)
                )
        pushes.record_pushed(db, kind, unchanged, debounce_ms=debounce)
        pushes.record_pushed(db, kind, unpushable, debounce_ms=debounce, set_quantity=False)
        for batch in connector.stock_batches(levels):
            chosen = [members[level.item_id] for level in batch]
            key = batch_key(kind, shop_id, [(m.binding_id, m.version) for m in chosen])
            operation_id = request_operation(
                db,
                kind=STOCK_BATCH,
                shop_id=shop_id,
                key=key,
                payload=_payload(kind, batch, chosen),
                actor=BATCH_ACTOR,
                queue=STOCK_QUEUE,
            )
            if operation_id is not None:
                created.append(operation_id)
        uow.commit()
    if created:
        runtime.publisher.publish()  # the batches' messages, written with them
    return created


def _plan_prices(
    db: Connection,
    connector: MarketplaceConnector,
    shop_id: int,
    due: list[pushes.DueBinding],
    debounce_ms: int,
) -> list[int]:
    """The price kind (Shopify): the decided prices that differ from what was pushed, in the
    marketplace's batches; the rest recorded as pushed without a call."""
    unchanged: list[pushes.Member] = []
    levels: list[PriceLevel] = []
    members: dict[str, pushes.Member] = {}
    for binding in due:
        price = binding.listed_price
        member = pushes.Member(binding.binding_id, binding.desired_version, 0, price)
        if (
            price is None
            or price == binding.last_pushed_price
            or not isinstance(connector, PriceWriter)
            or not binding.variant_id
            or not binding.listing_id
            or binding.variant_id in members
        ):
            unchanged.append(replace_price(member, None))
            continue
        members[binding.variant_id] = member
        levels.append(PriceLevel(binding.variant_id, binding.listing_id, price))
    pushes.record_pushed(
        db, PushKind.PRICE.value, unchanged, debounce_ms=debounce_ms, set_quantity=False
    )
    created: list[int] = []
    if not levels:
        return created
    assert isinstance(connector, PriceWriter)
    for batch in connector.price_batches(levels):
        chosen = [members[level.item_id] for level in batch]
        key = batch_key(PushKind.PRICE.value, shop_id, [(m.binding_id, m.version) for m in chosen])
        operation_id = request_operation(
            db,
            kind=STOCK_BATCH,
            shop_id=shop_id,
            key=key,
            payload={
                "kind": PushKind.PRICE.value,
                "levels": [
                    {
                        "item_id": level.item_id,
                        "listing_id": level.listing_id,
                        "price": str(level.price),
                        "quantity": 0,
                        "binding_id": member.binding_id,
                        "version": member.version,
                    }
                    for level, member in zip(batch, chosen, strict=True)
                ],
            },
            actor=BATCH_ACTOR,
            queue=STOCK_QUEUE,
        )
        if operation_id is not None:
            created.append(operation_id)
    return created


def replace_price(member: pushes.Member, price: Decimal | None) -> pushes.Member:
    return pushes.Member(member.binding_id, member.version, member.quantity, price)


def _payload(kind: str, levels: list[StockLevel], members: list[pushes.Member]) -> dict[str, Any]:
    return {
        "kind": kind,
        "levels": [
            {
                "item_id": level.item_id,
                "quantity": level.quantity,
                "expected": level.expected_quantity,
                "price": None if level.price is None else str(level.price),
                "binding_id": member.binding_id,
                "version": member.version,
            }
            for level, member in zip(levels, members, strict=True)
        ],
    }


def _price(item: dict[str, Any]) -> Decimal | None:
    value = item.get("price")
    return None if value is None else Decimal(value)


def _levels(payload: dict[str, Any]) -> list[StockLevel]:
    return [
        StockLevel(item["item_id"], int(item["quantity"]), item["expected"], price=_price(item))
        for item in payload["levels"]
    ]


def _price_levels(payload: dict[str, Any]) -> list[PriceLevel]:
    return [
        PriceLevel(item["item_id"], item["listing_id"], Decimal(item["price"]))
        for item in payload["levels"]
    ]


def _members(payload: dict[str, Any]) -> list[pushes.Member]:
    return [
        pushes.Member(
            int(item["binding_id"]), int(item["version"]), int(item["quantity"]), _price(item)
        )
        for item in payload["levels"]
    ]


def push_batch(runtime: SyncRuntime, operation_id: int) -> None:
    container = runtime.container
    with container.engine.begin() as db:
        operation = ops.claim(db, operation_id, lease_seconds=ROUTE.policy.lease_seconds)
    if operation is None:
        return
    kind, members = operation.payload["kind"], _members(operation.payload)
    with container.engine.connect() as db:
        pushed = pushes.pushed_versions(db, kind, [m.binding_id for m in members])
    if all(pushed.get(m.binding_id, m.version) >= m.version for m in members):
        with container.engine.begin() as db:
            ops.finish(db, operation.id, ops.SUPERSEDED, error="every member was pushed newer")
        return
    shop = run.active_shop(runtime, operation, ROUTE)
    if shop is None:
        return
    connector = runtime.connector(shop.marketplace.value)
    is_price = kind == PushKind.PRICE.value
    levels = [] if is_price else _levels(operation.payload)

    def send() -> StaleStock | None:
        if is_price:
            assert isinstance(connector, PriceWriter)
            connector.set_prices(
                shop_context(shop), _price_levels(operation.payload), idempotency_key=operation.key
            )
            return None
        try:
            connector.set_stock_levels(shop_context(shop), levels, idempotency_key=operation.key)
        except StaleStock as stale:  # nothing applied: answered below, outside the error map
            return stale
        return None

    outcome = run.call_remote(runtime, operation, ROUTE, shop, send)
    if outcome is None:
        return
    stale, duration_ms = outcome
    if stale is not None:
        _resend_stale(runtime, connector, shop, operation, levels, duration_ms, stale.message)
        return

    def record(db: Connection) -> None:
        ops.record_attempt(db, operation.id, ok=True, duration_ms=duration_ms)
        ops.finish(db, operation.id, ops.SUCCEEDED, result={"applied": len(members)})
        pushes.record_pushed(
            db,
            kind,
            members,
            debounce_ms=container.settings.push_debounce_ms,
            set_quantity=not is_price,
            set_price=True,
        )

    ops.in_transaction(container.engine, record)


def _resend_stale(
    runtime: SyncRuntime,
    connector: MarketplaceConnector,
    shop: Shop,
    operation: ops.Operation,
    levels: list[StockLevel],
    duration_ms: int,
    message: str,
) -> None:
    """Nothing was applied: read every item, send the whole batch again under a derived key."""
    with runtime.container.engine.begin() as db:
        ops.record_attempt(db, operation.id, ok=False, duration_ms=duration_ms, error=message)
    try:
        theirs = connector.read_stock_levels(shop_context(shop), [lvl.item_id for lvl in levels])
    except (RateLimited, TransientError) as error:
        run.wait(
            runtime, operation, error.retry_after or 5.0, BATCH_ACTOR, STOCK_QUEUE, error=message
        )
        return
    fresh: list[StockLevel] = []
    unknown_sale = False  # it shows less than we would: a sale we have not imported yet
    for level in levels:
        current = theirs.get(level.item_id)
        if current is None:
            fresh.append(StockLevel(level.item_id, level.quantity, None))
        elif current != level.expected_quantity:  # moved on the marketplace: never upward
            fresh.append(StockLevel(level.item_id, min(level.quantity, current), current))
            unknown_sale = unknown_sale or current < level.quantity
        else:
            fresh.append(StockLevel(level.item_id, level.quantity, current))
    payload = dict(operation.payload)
    payload["levels"] = [
        {**item, "quantity": new.quantity, "expected": new.expected_quantity}
        for item, new in zip(operation.payload["levels"], fresh, strict=True)
    ]
    expected = {
        lvl.item_id: lvl.expected_quantity for lvl in fresh if lvl.expected_quantity is not None
    }
    with runtime.container.engine.begin() as db:
        new_id = request_operation(
            db,
            kind=STOCK_BATCH,
            shop_id=operation.shop_id,
            key=retry_key(operation.key, expected),
            payload=payload,
            actor=BATCH_ACTOR,
            queue=STOCK_QUEUE,
        )
        ops.finish(
            db,
            operation.id,
            ops.SUPERSEDED,
            error=f"compare-and-swap stale ({message}); re-sent as operation {new_id}",
        )
        if unknown_sale:  # else the sale that moved it is imported already: nothing to pull
            # One queued pull per shop however many batches go stale before it starts.
            trigger_pull(
                db, operation.shop_id or 0, delay_ms=runtime.container.settings.push_debounce_ms
            )
    runtime.publisher.publish()
