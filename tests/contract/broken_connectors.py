"""Deliberately broken connectors: the conformance suite must catch every one."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from connectors.contract import OrderPage, ShopContext, StockLevel, group_stock_levels
from connectors.shopify.connector import ShopifyConnector
from connectors.woocommerce.connector import WooCommerceConnector
from hub.domain.orders import ImportOrder


def _through_float(amount: Decimal) -> Decimal:
    return Decimal(float(amount))  # the bug: money through a binary float


class DropsLastOrderOfEachPage(ShopifyConnector):
    """An off-by-one in paging: the last order of every page is lost."""

    def list_orders_changed(
        self, shop: ShopContext, *, since: datetime, cursor: str | None = None
    ) -> OrderPage:
        page = super().list_orders_changed(shop, since=since, cursor=cursor)
        kept = page.orders[:-1]
        return dataclasses.replace(
            page,
            orders=kept,
            high_water_mark=max((o.external_updated_at for o in kept), default=None),
        )


class ParsesMoneyAsFloat(ShopifyConnector):
    """Money decoded as float and turned back into Decimal: 0.10 becomes 0.1000000000000000055…"""

    def get_order(self, shop: ShopContext, external_id: str) -> ImportOrder:
        return _float_money(super().get_order(shop, external_id))

    def list_orders_changed(
        self, shop: ShopContext, *, since: datetime, cursor: str | None = None
    ) -> OrderPage:
        page = super().list_orders_changed(shop, since=since, cursor=cursor)
        return dataclasses.replace(page, orders=tuple(_float_money(o) for o in page.orders))


def _float_money(order: ImportOrder) -> ImportOrder:
    return dataclasses.replace(
        order,
        total=_through_float(order.total),
        lines=tuple(
            dataclasses.replace(line, unit_price=_through_float(line.unit_price))
            for line in order.lines
        ),
    )


class PacksEveryLevelIntoOneBatch(ShopifyConnector):
    """Forgets the batch size: 600 levels become one call Shopify would refuse."""

    def stock_batches(self, levels: Sequence[StockLevel]) -> list[list[StockLevel]]:
        return [list(levels)] if levels else []


class ChunksAcrossParents(WooCommerceConnector):
    """Respects the size but not the endpoints: a chunk mixes simple products and several
    parents' variations, so one planned call is really several HTTP requests."""

    def stock_batches(self, levels: Sequence[StockLevel]) -> list[list[StockLevel]]:
        return group_stock_levels(levels, self.capabilities.stock_batch_size)


class SortsLevelsByQuantity(ShopifyConnector):
    """Groups right but reorders: a caller's order (and "the later level wins") is lost."""

    def stock_batches(self, levels: Sequence[StockLevel]) -> list[list[StockLevel]]:
        ordered = sorted(levels, key=lambda level: -level.quantity)
        return group_stock_levels(ordered, self.capabilities.stock_batch_size)
