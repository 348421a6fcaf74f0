"""Two deliberately broken Shopify connectors: the conformance suite must catch both."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from decimal import Decimal

from connectors.contract import OrderPage, ShopContext
from connectors.shopify.connector import ShopifyConnector
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
