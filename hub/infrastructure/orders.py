"""Orders, their lines and fulfillments on SQL (the write side; projections live in queries)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from hub.domain.orders import Fulfillment, FulfillmentLine, Order, OrderLine, ProductionStatus
from hub.infrastructure.clock import utcnow
from hub.infrastructure.tables import (
    FulfillmentLineRow,
    FulfillmentRow,
    OrderLineRow,
    OrderRow,
    table_of,
)

ORDERS = table_of(OrderRow)
LINES = table_of(OrderLineRow)
FULFILLMENTS = table_of(FulfillmentRow)
FULFILLMENT_LINES = table_of(FulfillmentLineRow)


IN_CHUNK = 500  # values per IN (...): far below every database's parameter limit


@dataclass(frozen=True)
class OrderRef:
    """Where an order is and whether its buyer data is gone, without loading it."""

    id: int
    shop_id: int
    external_id: str
    redacted: bool


class SqlOrderRepository:
    def __init__(self, connection: Connection) -> None:
        self._db = connection

    def get(self, order_id: int) -> Order | None:
        found = self._load(ORDERS.c.id == order_id, lock=True)
        return found[0] if found else None

    def get_by_external(self, shop_id: int, external_id: str) -> Order | None:
        found = self._load(
            (ORDERS.c.shop_id == shop_id) & (ORDERS.c.external_id == external_id), lock=True
        )
        return found[0] if found else None

    def with_unmapped_lines(self, shop_id: int) -> list[Order]:
        return self._load(
            (ORDERS.c.shop_id == shop_id) & ORDERS.c.has_unmapped_lines.is_(True), lock=True
        )

    def save(self, order: Order) -> Order:
        now = utcnow()
        order.version += 1
        values = _order_values(order)
        if order.id is None:
            order.id = self._db.execute(
                insert(ORDERS)
                .values(**values, created_at=now, updated_at=now)
                .returning(ORDERS.c.id)
            ).scalar_one()
        else:
            self._db.execute(
                update(ORDERS).where(ORDERS.c.id == order.id).values(**values, updated_at=now)
            )
        self._replace_lines(order)
        return order

    def add_fulfillment(self, fulfillment: Fulfillment) -> Fulfillment:
        now = utcnow()
        fulfillment.id = self._db.execute(
            insert(FULFILLMENTS)
            .values(
                order_id=fulfillment.order_id,
                carrier=fulfillment.carrier,
                tracking_number=fulfillment.tracking_number,
                tracking_url=fulfillment.tracking_url,
                created_at=now,
            )
            .returning(FULFILLMENTS.c.id)
        ).scalar_one()
        fulfillment.created_at = now
        self._db.execute(
            insert(FULFILLMENT_LINES),
            [
                {
                    "fulfillment_id": fulfillment.id,
                    "order_line_id": line.order_line_id,
                    "quantity": line.quantity,
                }
                for line in fulfillment.lines
            ],
        )
        return fulfillment

    # --- buyer data (privacy) -----------------------------------------------------------------
    def find_buyer_orders(
        self, *, shop_id: int | None, email: str | None, external_ids: Collection[str] = ()
    ) -> list[OrderRef]:
        """Orders of one buyer: by their email (any case) or by the order ids the marketplace
        named; redacted ones too (their email is gone, so only the ids still find them).
        Nothing without an identifier."""
        conditions: list[Any] = []
        if email and email.strip():
            conditions.append(func.lower(ORDERS.c.customer_email) == email.strip().lower())
        for chunk in _chunks(sorted({value for value in external_ids if value})):
            conditions.append(ORDERS.c.external_id.in_(chunk))
        found: dict[int, OrderRef] = {}
        for condition in conditions:
            query = select(
                ORDERS.c.id, ORDERS.c.shop_id, ORDERS.c.external_id, ORDERS.c.buyer_redacted_at
            ).where(condition)
            if shop_id is not None:
                query = query.where(ORDERS.c.shop_id == shop_id)
            for row in self._db.execute(query):
                found[row.id] = OrderRef(
                    row.id, row.shop_id, row.external_id, row.buyer_redacted_at is not None
                )
        return [found[key] for key in sorted(found)]

    def unredacted_order_ids(
        self,
        *,
        shop_id: int | None = None,
        updated_before: datetime | None = None,
        after_id: int = 0,
        limit: int = 100,
    ) -> list[int]:
        """Ids of orders still holding buyer data, in id order after ``after_id``: a shop's, or
        those untouched since ``updated_before`` (retention)."""
        query = (
            select(ORDERS.c.id)
            .where(ORDERS.c.buyer_redacted_at.is_(None), ORDERS.c.id > after_id)
            .order_by(ORDERS.c.id)
            .limit(limit)
        )
        if shop_id is not None:
            query = query.where(ORDERS.c.shop_id == shop_id)
        if updated_before is not None:
            query = query.where(ORDERS.c.updated_at < updated_before)
        return [row.id for row in self._db.execute(query)]

    def read_many(self, order_ids: Collection[int]) -> list[Order]:
        """Orders with their lines, unlocked (an export reads; it changes nothing)."""
        loaded: list[Order] = []
        for chunk in _chunks(sorted(order_ids)):
            loaded.extend(self._load(ORDERS.c.id.in_(chunk), lock=False))
        return loaded

    def fulfillments_of(self, order_ids: Collection[int]) -> dict[int, list[Fulfillment]]:
        found: dict[int, dict[int, Fulfillment]] = defaultdict(dict)
        for chunk in _chunks(sorted(order_ids)):
            rows = self._db.execute(
                select(
                    FULFILLMENTS,
                    FULFILLMENT_LINES.c.order_line_id,
                    FULFILLMENT_LINES.c.quantity,
                )
                .outerjoin(
                    FULFILLMENT_LINES, FULFILLMENT_LINES.c.fulfillment_id == FULFILLMENTS.c.id
                )
                .where(FULFILLMENTS.c.order_id.in_(chunk))
                .order_by(FULFILLMENTS.c.id, FULFILLMENT_LINES.c.id)
            )
            for row in rows:
                shipment = found[row.order_id].setdefault(
                    row.id,
                    Fulfillment(
                        id=row.id,
                        order_id=row.order_id,
                        carrier=row.carrier,
                        tracking_number=row.tracking_number,
                        tracking_url=row.tracking_url,
                        lines=[],
                        created_at=row.created_at,
                    ),
                )
                if row.order_line_id is not None:
                    shipment.lines.append(FulfillmentLine(row.order_line_id, row.quantity))
        return {order_id: list(shipments.values()) for order_id, shipments in found.items()}

    def _replace_lines(self, order: Order) -> None:
        """Lines as one: drop the ones gone, update the ones kept, insert the new ones."""
        kept = [line.id for line in order.lines if line.id is not None]
        gone = delete(LINES).where(LINES.c.order_id == order.id)
        if kept:
            gone = gone.where(LINES.c.id.not_in(kept))
        self._db.execute(gone)
        for line in order.lines:
            if line.id is not None:
                self._db.execute(
                    update(LINES).where(LINES.c.id == line.id).values(**_line_values(line))
                )
        new = [line for line in order.lines if line.id is None]
        for line in new:
            line.id = self._db.execute(
                insert(LINES).values(order_id=order.id, **_line_values(line)).returning(LINES.c.id)
            ).scalar_one()

    def _load(self, condition: Any, *, lock: bool) -> list[Order]:
        query = select(ORDERS).where(condition).order_by(ORDERS.c.id)
        if lock:
            query = query.with_for_update()
        rows = list(self._db.execute(query))
        if not rows:
            return []
        lines: dict[int, list[OrderLine]] = defaultdict(list)
        line_rows = self._db.execute(
            select(LINES).where(LINES.c.order_id.in_([r.id for r in rows])).order_by(LINES.c.id)
        )
        for row in line_rows:
            lines[row.order_id].append(_line(row))
        return [_order(row, lines.get(row.id, [])) for row in rows]


def _order_values(order: Order) -> dict[str, Any]:
    return {
        "seller_id": order.seller_id,
        "shop_id": order.shop_id,
        "external_id": order.external_id,
        "external_number": order.external_number,
        "external_status": order.external_status,
        "status": order.status.value,
        "needs_review": order.needs_review,
        "review_reason": order.review_reason,
        "paid": order.paid,
        "cancelled": order.cancelled,
        "refunded": order.refunded,
        "externally_fulfilled": order.externally_fulfilled,
        "currency": order.currency,
        "total": order.total,
        "presentment_currency": order.presentment_currency,
        "total_presentment": order.total_presentment,
        "customer_name": order.customer_name,
        "customer_email": order.customer_email,
        "shipping_address": order.shipping_address,
        "buyer_redacted_at": order.buyer_redacted_at,
        "placed_at": order.placed_at,
        "external_updated_at": order.external_updated_at,
        "version": order.version,
        "has_unmapped_lines": any(line.variant_id is None for line in order.lines),
    }


def _line_values(line: OrderLine) -> dict[str, Any]:
    return {
        "external_line_id": line.external_line_id,
        "external_listing_id": line.external_listing_id,
        "external_variant_id": line.external_variant_id,
        "sku": line.sku,
        "title": line.title,
        "quantity": line.quantity,
        "fulfilled_quantity": line.fulfilled_quantity,
        "reserved_quantity": line.reserved_quantity,
        "unit_price": line.unit_price,
        "unit_price_presentment": line.unit_price_presentment,
        "variant_id": line.variant_id,
        "binding_id": line.binding_id,
        "unmapped_reason": line.unmapped_reason,
    }


def _line(row: Any) -> OrderLine:
    return OrderLine(
        id=row.id,
        external_line_id=row.external_line_id,
        quantity=row.quantity,
        unit_price=row.unit_price,
        sku=row.sku,
        external_listing_id=row.external_listing_id,
        external_variant_id=row.external_variant_id,
        title=row.title,
        unit_price_presentment=row.unit_price_presentment,
        fulfilled_quantity=row.fulfilled_quantity,
        reserved_quantity=row.reserved_quantity,
        variant_id=row.variant_id,
        binding_id=row.binding_id,
        unmapped_reason=row.unmapped_reason,
    )


def _order(row: Any, lines: list[OrderLine]) -> Order:
    return Order(
        id=row.id,
        seller_id=row.seller_id,
        shop_id=row.shop_id,
        external_id=row.external_id,
        external_number=row.external_number,
        external_status=row.external_status,
        external_updated_at=row.external_updated_at,
        placed_at=row.placed_at,
        currency=row.currency,
        total=row.total,
        status=ProductionStatus(row.status),
        needs_review=row.needs_review,
        review_reason=row.review_reason,
        paid=row.paid,
        cancelled=row.cancelled,
        refunded=row.refunded,
        externally_fulfilled=row.externally_fulfilled,
        presentment_currency=row.presentment_currency,
        total_presentment=row.total_presentment,
        customer_name=row.customer_name,
        customer_email=row.customer_email,
        shipping_address=dict(row.shipping_address or {}),
        buyer_redacted_at=row.buyer_redacted_at,
        lines=lines,
        version=row.version,
    )


def _chunks(values: list[Any]) -> list[list[Any]]:
    return [values[start : start + IN_CHUNK] for start in range(0, len(values), IN_CHUNK)]
