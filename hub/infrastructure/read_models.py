"""Projections for the read side: only the columns a view shows, a fixed number of statements.

Documents are serialized here once, to the bytes the API serves and the cache stores.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import Engine, select

from hub.infrastructure.tables import (
    FulfillmentLineRow,
    FulfillmentRow,
    OrderLineRow,
    OrderRow,
    ProductRow,
    VariantBlankRow,
    VariantRow,
    table_of,
)

ORDERS = table_of(OrderRow)
LINES = table_of(OrderLineRow)
FULFILLMENTS = table_of(FulfillmentRow)
FULFILLMENT_LINES = table_of(FulfillmentLineRow)
PRODUCTS = table_of(ProductRow)
VARIANTS = table_of(VariantRow)
VARIANT_BLANKS = table_of(VariantBlankRow)

LIST_COLUMNS = (
    ORDERS.c.id,
    ORDERS.c.seller_id,
    ORDERS.c.shop_id,
    ORDERS.c.external_id,
    ORDERS.c.external_number,
    ORDERS.c.external_status,
    ORDERS.c.status,
    ORDERS.c.needs_review,
    ORDERS.c.currency,
    ORDERS.c.total,
    ORDERS.c.placed_at,
    ORDERS.c.updated_at,
)


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot serialize {type(value).__name__}")


def dumps(document: Any) -> bytes:
    return orjson.dumps(document, default=_default, option=orjson.OPT_UTC_Z)


@dataclass(frozen=True)
class OrderFilter:
    seller_id: int | None = None
    shop_id: int | None = None
    status: str | None = None
    needs_review: bool | None = None
    updated_since: datetime | None = None
    before_id: int | None = None
    limit: int = 50


@dataclass(frozen=True)
class Document:
    """A serialized view with the facts the API needs without parsing it."""

    version: int
    owner_id: int
    body: bytes


class SqlReadModel:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def list_orders(self, query: OrderFilter) -> tuple[list[dict[str, Any]], int | None]:
        """Newest first, keyset-paginated on id; returns the page and the next cursor."""
        statement = select(*LIST_COLUMNS).order_by(ORDERS.c.id.desc()).limit(query.limit + 1)
        if query.seller_id is not None:
            statement = statement.where(ORDERS.c.seller_id == query.seller_id)
        if query.shop_id is not None:
            statement = statement.where(ORDERS.c.shop_id == query.shop_id)
        if query.status is not None:
            statement = statement.where(ORDERS.c.status == query.status)
        if query.needs_review is not None:
            statement = statement.where(ORDERS.c.needs_review.is_(query.needs_review))
        if query.updated_since is not None:
            statement = statement.where(ORDERS.c.updated_at >= query.updated_since)
        if query.before_id is not None:
            statement = statement.where(ORDERS.c.id < query.before_id)
        with self._engine.connect() as db:
            rows = [dict(row._mapping) for row in db.execute(statement)]
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        return rows, (rows[-1]["id"] if more and rows else None)

    def order_document(self, order_id: int) -> Document | None:
        with self._engine.connect() as db:
            order = db.execute(select(ORDERS).where(ORDERS.c.id == order_id)).first()
            if order is None:
                return None
            lines = db.execute(
                select(
                    LINES.c.id,
                    LINES.c.external_line_id,
                    LINES.c.external_listing_id,
                    LINES.c.external_variant_id,
                    LINES.c.sku,
                    LINES.c.title,
                    LINES.c.quantity,
                    LINES.c.fulfilled_quantity,
                    LINES.c.reserved_quantity,
                    LINES.c.unit_price,
                    LINES.c.unit_price_presentment,
                    LINES.c.variant_id,
                    LINES.c.binding_id,
                    LINES.c.unmapped_reason,
                )
                .where(LINES.c.order_id == order_id)
                .order_by(LINES.c.id)
            ).all()
            shipments = db.execute(
                select(
                    FULFILLMENTS.c.id,
                    FULFILLMENTS.c.carrier,
                    FULFILLMENTS.c.tracking_number,
                    FULFILLMENTS.c.tracking_url,
                    FULFILLMENTS.c.created_at,
                    FULFILLMENT_LINES.c.order_line_id,
                    FULFILLMENT_LINES.c.quantity,
                )
                .join(FULFILLMENT_LINES, FULFILLMENT_LINES.c.fulfillment_id == FULFILLMENTS.c.id)
                .where(FULFILLMENTS.c.order_id == order_id)
                .order_by(FULFILLMENTS.c.id, FULFILLMENT_LINES.c.id)
            ).all()
        document = order_view(order._mapping, [row._mapping for row in lines], shipments)
        return Document(order.version, order.seller_id, dumps(document))

    def product_document(self, product_id: int) -> Document | None:
        with self._engine.connect() as db:
            product = db.execute(select(PRODUCTS).where(PRODUCTS.c.id == product_id)).first()
            if product is None:
                return None
            variants = db.execute(
                select(
                    VARIANTS.c.id,
                    VARIANTS.c.sku,
                    VARIANTS.c.price,
                    VARIANTS.c.cost,
                    VARIANTS.c.options,
                    VARIANTS.c.print_file_ref,
                    VARIANT_BLANKS.c.blank_id,
                    VARIANT_BLANKS.c.quantity_per_unit,
                )
                .outerjoin(VARIANT_BLANKS, VARIANT_BLANKS.c.variant_id == VARIANTS.c.id)
                .where(VARIANTS.c.product_id == product_id)
                .order_by(VARIANTS.c.position, VARIANT_BLANKS.c.blank_id)
            ).all()
        by_variant: dict[int, dict[str, Any]] = {}
        for row in variants:
            view = by_variant.setdefault(
                row.id,
                {
                    "id": row.id,
                    "sku": row.sku,
                    "price": row.price,
                    "cost": row.cost,
                    "options": row.options or {},
                    "print_file_ref": row.print_file_ref,
                    "blanks": [],
                },
            )
            if row.blank_id is not None:
                view["blanks"].append(
                    {"blank_id": row.blank_id, "quantity_per_unit": row.quantity_per_unit}
                )
        document = {
            "id": product.id,
            "seller_id": product.seller_id,
            "title": product.title,
            "description": product.description,
            "currency": product.currency,
            "version": product.version,
            "created_at": product.created_at,
            "updated_at": product.updated_at,
            "variants": list(by_variant.values()),
        }
        return Document(product.version, product.seller_id, dumps(document))


def order_view(order: Any, lines: Sequence[Any], shipments: Sequence[Any]) -> dict[str, Any]:
    fulfillments: dict[int, dict[str, Any]] = {}
    shipped_lines: dict[int, list[dict[str, int]]] = defaultdict(list)
    for row in shipments:
        fulfillments.setdefault(
            row.id,
            {
                "id": row.id,
                "carrier": row.carrier,
                "tracking_number": row.tracking_number,
                "tracking_url": row.tracking_url,
                "created_at": row.created_at,
                "lines": shipped_lines[row.id],
            },
        )
        shipped_lines[row.id].append({"order_line_id": row.order_line_id, "quantity": row.quantity})
    return {
        "id": order["id"],
        "seller_id": order["seller_id"],
        "shop_id": order["shop_id"],
        "external_id": order["external_id"],
        "external_number": order["external_number"],
        "external_status": order["external_status"],
        "status": order["status"],
        "needs_review": order["needs_review"],
        "review_reason": order["review_reason"],
        "paid": order["paid"],
        "cancelled": order["cancelled"],
        "refunded": order["refunded"],
        "currency": order["currency"],
        "total": order["total"],
        "presentment_currency": order["presentment_currency"],
        "total_presentment": order["total_presentment"],
        "customer": {"name": order["customer_name"], "email": order["customer_email"]},
        "shipping_address": order["shipping_address"] or {},
        "placed_at": order["placed_at"],
        "external_updated_at": order["external_updated_at"],
        "updated_at": order["updated_at"],
        "version": order["version"],
        "lines": [dict(line) for line in lines],
        "fulfillments": list(fulfillments.values()),
    }
