"""Tracking out: ``fulfillment.push`` writes one fulfillment to its marketplace, once in effect.

The operation row (key: order and fulfillment) is the truth. The connector reads the order's
existing shipments before every write, so a worker that died between the remote write and its
commit finds its own write on the next run instead of e-mailing the buyer twice.
"""

from __future__ import annotations

from sqlalchemy import select

from connectors.contract import (
    FulfillmentLineRef,
    FulfillmentRequest,
)
from hub.infrastructure.outbound import FULFILLMENT_PUSH_ACTOR, FULFILLMENT_QUEUE
from hub.infrastructure.tables import (
    FulfillmentLineRow,
    FulfillmentRow,
    OrderLineRow,
    OrderRow,
    table_of,
)
from sync.application import operations_run as run
from sync.domain.policies import FULFILLMENT_PUSH
from sync.infrastructure import operations as ops
from sync.worker.runtime import SyncRuntime, shop_context

ROUTE = run.Route(FULFILLMENT_PUSH, FULFILLMENT_PUSH_ACTOR, FULFILLMENT_QUEUE)
ORDERS = table_of(OrderRow)
LINES = table_of(OrderLineRow)
FULFILLMENTS = table_of(FulfillmentRow)
FULFILLMENT_LINES = table_of(FulfillmentLineRow)


def _request(runtime: SyncRuntime, order_id: int, fulfillment_id: int) -> FulfillmentRequest | None:
    with runtime.container.engine.connect() as db:
        head = db.execute(
            select(
                ORDERS.c.external_id,
                FULFILLMENTS.c.carrier,
                FULFILLMENTS.c.tracking_number,
                FULFILLMENTS.c.tracking_url,
            )
            .join(FULFILLMENTS, FULFILLMENTS.c.order_id == ORDERS.c.id)
            .where(ORDERS.c.id == order_id, FULFILLMENTS.c.id == fulfillment_id)
        ).first()
        if head is None:
            return None
        lines = db.execute(
            select(LINES.c.external_line_id, FULFILLMENT_LINES.c.quantity)
            .join(LINES, LINES.c.id == FULFILLMENT_LINES.c.order_line_id)
            .where(FULFILLMENT_LINES.c.fulfillment_id == fulfillment_id)
            .order_by(LINES.c.id)
        ).all()
    return FulfillmentRequest(
        order_external_id=head.external_id,
        lines=tuple(FulfillmentLineRef(line.external_line_id, line.quantity) for line in lines),
        carrier=head.carrier,
        tracking_number=head.tracking_number,
        tracking_url=head.tracking_url,
    )


def push_fulfillment(runtime: SyncRuntime, operation_id: int) -> None:
    with runtime.container.engine.begin() as db:
        operation = ops.claim(db, operation_id, lease_seconds=ROUTE.policy.lease_seconds)
    if operation is None:
        return
    request = _request(
        runtime, int(operation.payload["order_id"]), int(operation.payload["fulfillment_id"])
    )
    shop = runtime.shop(operation.shop_id or 0)
    if request is None or shop is None:
        run.fail(runtime, operation, "the order, its fulfillment or its shop no longer exists")
        return
    shop = run.active_shop(runtime, operation, ROUTE)
    if shop is None:
        return
    connector = runtime.connector(shop.marketplace.value)
    context = shop_context(shop)
    outcome = run.call_remote(
        runtime, operation, ROUTE, shop, lambda: connector.create_fulfillment(context, request)
    )
    if outcome is None:
        return
    result, duration_ms = outcome
    run.succeeded(
        runtime,
        operation,
        duration_ms,
        {"external_id": result.external_id, "already_existed": result.already_existed},
    )
