"""Shops: one seller's store on one marketplace, and what each marketplace gets pushed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from hub.domain.errors import InvalidTransition

DEFAULT_MAX_LISTED_QUANTITY = 999


class Marketplace(StrEnum):
    SHOPIFY = "shopify"
    ETSY = "etsy"
    WOOCOMMERCE = "woocommerce"


class PushKind(StrEnum):
    """What a binding can be pushed; each marketplace declares the kinds it takes."""

    STOCK = "stock"
    PRICE = "price"
    LISTING = "listing"  # quantity and price in one call
    IMAGES = "images"


# Shopify sets quantities and prices through separate mutations; Etsy and WooCommerce write
# quantity and price in one listing call. Connectors (a later issue) declare the same sets.
PUSH_KINDS: dict[Marketplace, tuple[PushKind, ...]] = {
    Marketplace.SHOPIFY: (PushKind.STOCK, PushKind.PRICE, PushKind.IMAGES),
    Marketplace.ETSY: (PushKind.LISTING, PushKind.IMAGES),
    Marketplace.WOOCOMMERCE: (PushKind.LISTING, PushKind.IMAGES),
}
QUANTITY_KINDS: tuple[PushKind, ...] = (PushKind.STOCK, PushKind.LISTING)
PRICE_KINDS: tuple[PushKind, ...] = (PushKind.PRICE, PushKind.LISTING)
IMAGE_KINDS: tuple[PushKind, ...] = (PushKind.IMAGES,)


class ShopStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    AUTH_FAILED = "auth_failed"
    DISCONNECTED = "disconnected"


@dataclass
class Shop:
    id: int | None
    seller_id: int
    marketplace: Marketplace
    external_id: str
    name: str
    status: ShopStatus = ShopStatus.ACTIVE
    stock_buffer: int = 0
    max_listed_quantity: int = DEFAULT_MAX_LISTED_QUANTITY
    api_base_url: str | None = None
    location_id: str | None = None
    credentials: dict[str, Any] = field(default_factory=dict, repr=False)
    created_at: datetime | None = None

    def pause(self) -> None:
        if self.status is ShopStatus.DISCONNECTED:
            raise InvalidTransition(
                f"shop {self.id}: cannot pause a disconnected shop; connect it again first"
            )
        self.status = ShopStatus.PAUSED

    def resume(self) -> None:
        if self.status is not ShopStatus.PAUSED:
            raise InvalidTransition(
                f"shop {self.id}: cannot resume from {self.status.value}; "
                "only a paused shop resumes"
            )
        self.status = ShopStatus.ACTIVE
