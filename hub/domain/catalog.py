"""Products, their variants, the blanks they are printed on, and bindings to marketplaces."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from hub.domain.errors import InvalidInput
from hub.domain.shops import PushKind


@dataclass(frozen=True)
class BlankUsage:
    """How many units of one blank a single unit of a variant consumes."""

    blank_id: int
    quantity_per_unit: int

    def __post_init__(self) -> None:
        if self.quantity_per_unit <= 0:
            raise InvalidInput(
                f"blank {self.blank_id}: quantity_per_unit must be at least 1, "
                f"got {self.quantity_per_unit}"
            )


@dataclass
class Variant:
    id: int | None
    sku: str
    price: Decimal  # our default retail price, in the product's currency
    options: dict[str, str] = field(default_factory=dict)
    print_file_ref: str | None = None
    blanks: list[BlankUsage] = field(default_factory=list)
    cost: Decimal | None = None  # what producing one costs us; None: no derived shop price


@dataclass
class Product:
    id: int | None
    seller_id: int
    title: str
    description: str = ""
    currency: str = "USD"
    variants: list[Variant] = field(default_factory=list)
    version: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def check_skus_unique(self) -> None:
        seen: set[str] = set()
        for variant in self.variants:
            if variant.sku in seen:
                raise InvalidInput(f"product {self.title!r}: SKU {variant.sku!r} appears twice")
            seen.add(variant.sku)


@dataclass
class Blank:
    """The business's own stock: one garment or mug in one size and colour."""

    id: int | None
    code: str
    name: str
    on_hand: int = 0
    reserved: int = 0
    version: int = 0

    @property
    def free(self) -> int:
        return self.on_hand - self.reserved


@dataclass
class PushState:
    kind: PushKind
    desired_version: int = 1
    pushed_version: int = 0

    @property
    def is_due(self) -> bool:
        return self.desired_version > self.pushed_version


@dataclass
class Binding:
    """Our variant in one shop: the marketplace's ids and what was last pushed there."""

    id: int | None
    shop_id: int
    variant_id: int
    external_listing_id: str | None = None
    external_variant_id: str | None = None
    external_inventory_item_id: str | None = None
    push_states: dict[PushKind, PushState] = field(default_factory=dict)
    last_pushed_quantity: int | None = None
    last_pushed_price: Decimal | None = None
    last_pushed_image_keys: list[str] | None = None
    created_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    listed_price: Decimal | None = None  # the price decided for this shop: what a push sends
    price_review: str | None = None  # why a person must look at the price (None: all is well)
