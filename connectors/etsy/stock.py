"""Stock on Etsy: which product an item id names, and how an absolute quantity becomes an
inventory write plus, when needed, a listing state change. Pure functions, no I/O.

Item ids (``StockLevel.item_id``)
    ``"<listing_id>"``       every product of the listing: a listing with one product, or one
                             whose quantity does not vary by property (``quantity_on_property``
                             empty, so Etsy requires one quantity for all products anyway).
    ``"<listing_id>:<sku>"`` the listing's product(s) carrying that SKU.
Product ids are not used: Etsy renumbers ``product_id`` and ``offering_id`` on every
``updateListingInventory`` (https://github.com/etsy/open-api/issues/432, #523), so an id read
before a push is stale after it; the seller's SKU survives.

Zero stock
    Etsy refuses an inventory without an offering above 0 ("One offering must have quantity
    greater than 0"; "There is no way in the API to zero out all of the inventory for a
    listing", https://github.com/etsy/open-api/issues/560). An offering at 0 is written
    ``quantity: 0, is_enabled: false`` (the schema allows 0; disabled offerings are not shown).
    When every offering would be 0, the listing is deactivated (``updateListing``
    ``state=inactive``, done first so nothing sells meanwhile) and its first offering is left at
    quantity 1, the least Etsy accepts. Restocking a listing that is ``inactive`` or
    ``sold_out`` reactivates it (``state=active``). Draft and expired listings are never
    published or renewed here (that is the seller's call and may cost a fee).

Many items at once
    ``plan_stock_many`` takes every wanted quantity of one listing and plans one inventory
    write holding them all, so a listing costs one read and at most one write however many of
    its SKUs change. The zero-stock rules apply to the result as a whole: the listing is
    deactivated only when no offering is left above 0 after every item is applied, and
    reactivated when an inactive or sold-out listing gets any offering above 0.

Equal states
    0, a disabled offering and a listing that is not ``active`` are the same thing: nothing can
    be bought. ``read_quantity`` reports 0 for all three, and a push of 0 to a listing that
    cannot sell anyway writes nothing.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from connectors.etsy.mappers import EtsyPayloadError, live_products, money

ACTIVE = "active"
INACTIVE = "inactive"
SOLD_OUT = "sold_out"
REACTIVATED_STATES = frozenset({INACTIVE, SOLD_OUT})
PARKED_QUANTITY = 1

# updateListingInventory request body (https://developers.etsy.com/documentation/reference#operation/updateListingInventory):
# everything else getListingInventory returns (product_id, offering_id, is_deleted, scale_name,
# value_pairs, the listing association...) is read-only and refused with "Array contains
# invalid keys".
INVENTORY_KEYS = (
    "price_on_property",
    "quantity_on_property",
    "sku_on_property",
    "readiness_state_on_property",
)
PRODUCT_KEYS = ("sku", "property_values", "offerings")
PROPERTY_VALUE_KEYS = ("property_id", "property_name", "scale_id", "value_ids", "values")
OFFERING_KEYS = ("price", "quantity", "is_enabled", "readiness_state_id")


class UnknownStockItem(LookupError):
    """The item id names no product of the listing."""


class AmbiguousStockItem(ValueError):
    """The item id names a whole listing whose products hold different quantities."""


@dataclass(frozen=True)
class ItemRef:
    listing_id: str
    sku: str | None = None  # None: every product of the listing


def stock_item_id(listing_id: str, sku: str | None = None) -> str:
    """The ``StockLevel.item_id`` for a listing, or for its product(s) with ``sku``."""
    return f"{listing_id}:{sku}" if sku else listing_id


def parse_item_id(item_id: str) -> ItemRef:
    """Raises ``ValueError`` unless ``item_id`` is "<listing_id>" or "<listing_id>:<sku>"."""
    listing_id, colon, sku = item_id.strip().partition(":")
    if not listing_id.isdigit() or (colon and not sku):
        raise ValueError(
            f"{item_id!r} is not an Etsy stock item id ('<listing_id>' or '<listing_id>:<sku>')"
        )
    return ItemRef(listing_id, sku or None)


@dataclass(frozen=True)
class ListingInventory:
    """What ``getListingInventory?includes=Listing`` said about one listing."""

    listing_id: str
    state: str | None  # the listing's state; None when Etsy did not attach the listing
    body: Mapping[str, Any]  # the ListingInventory as read (Money prices, read-only keys)

    @property
    def sellable(self) -> bool:
        """Only an active listing sells; an unknown state is taken as active."""
        return self.state in (None, ACTIVE)


@dataclass(frozen=True)
class StockPlan:
    """The writes that make one listing show the wanted quantity."""

    inventory: dict[str, Any] | None  # the updateListingInventory body; None: nothing changes
    state: str | None  # the updateListing state to set; None: leave it
    state_first: bool  # change the state before writing the inventory

    @property
    def writes(self) -> bool:
        return self.inventory is not None or self.state is not None


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def offering_quantity(product: Mapping[str, Any]) -> int:
    """A product's sellable quantity: its offering's quantity when enabled, else 0."""
    offerings = product.get("offerings")
    for offering in offerings if isinstance(offerings, list) else ():
        if isinstance(offering, Mapping) and offering.get("is_deleted") is not True:
            quantity = offering.get("quantity")
            if offering.get("is_enabled") is False or not isinstance(quantity, int):
                return 0
            return max(0, quantity)
    return 0


def _selected(products: list[Mapping[str, Any]], item: ItemRef) -> list[int]:
    if not products:
        raise UnknownStockItem(f"listing {item.listing_id} has no inventory records")
    if item.sku is None:
        return list(range(len(products)))
    chosen = [index for index, product in enumerate(products) if product.get("sku") == item.sku]
    if not chosen:
        raise UnknownStockItem(f"listing {item.listing_id} has no product with SKU {item.sku!r}")
    return chosen


def read_quantity(inventory: ListingInventory, item: ItemRef) -> int | None:
    """The quantity buyers can buy of ``item``; None when it cannot be told as one number
    (a multi-product listing addressed as a whole whose products differ, or no such SKU)."""
    products = live_products(inventory.body)
    try:
        chosen = _selected(products, item)
    except UnknownStockItem:
        return None
    if not inventory.sellable:
        return 0
    quantities = {offering_quantity(products[index]) for index in chosen}
    return quantities.pop() if len(quantities) == 1 else None


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def price_number(value: Any, *, what: str) -> float:
    """An offering's Money as the float updateListingInventory takes ("a float equal to amount
    divided by divisor"), refused unless the float prints back as exactly that amount, so the
    remote price is written back untouched."""
    exact = money(value, what=what) if isinstance(value, Mapping) else _plain_number(value, what)
    number = float(exact)
    if Decimal(repr(number)) != exact:
        raise EtsyPayloadError(f"{what}: {exact} cannot be written back exactly")
    return number


def _plain_number(value: Any, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise EtsyPayloadError(f"{what}: expected a Money object or a number, got {value!r}")
    return Decimal(str(value))


def writable_inventory(body: Mapping[str, Any], *, listing_id: str) -> dict[str, Any]:
    """The updateListingInventory body equal to what was read: documented keys only, deleted
    products and offerings dropped, Money prices as numbers, ``readiness_state_id`` kept."""
    writable: dict[str, Any] = {
        key: copy.deepcopy(body[key]) for key in INVENTORY_KEYS if key in body
    }
    products = []
    for product in live_products(body):
        what = f"listing {listing_id} product {product.get('product_id')}"
        clean: dict[str, Any] = {key: product[key] for key in ("sku",) if key in product}
        clean["property_values"] = [
            {key: copy.deepcopy(value[key]) for key in PROPERTY_VALUE_KEYS if key in value}
            for value in product.get("property_values") or ()
            if isinstance(value, Mapping)
        ]
        clean["offerings"] = [
            _writable_offering(offering, what=what)
            for offering in product.get("offerings") or ()
            if isinstance(offering, Mapping) and offering.get("is_deleted") is not True
        ]
        products.append(clean)
    writable["products"] = products
    return writable


def _writable_offering(offering: Mapping[str, Any], *, what: str) -> dict[str, Any]:
    clean = {key: copy.deepcopy(offering[key]) for key in OFFERING_KEYS if key in offering}
    clean["price"] = price_number(offering.get("price"), what=f"{what} price")
    clean.setdefault("readiness_state_id", None)
    return clean


def _set_quantity(product: dict[str, Any], quantity: int) -> None:
    offerings = product.get("offerings") or []
    if not offerings:
        raise EtsyPayloadError("a product without offerings cannot hold a quantity")
    offerings[0]["quantity"] = quantity
    offerings[0]["is_enabled"] = quantity > 0


def _any_for_sale(inventory: Mapping[str, Any]) -> bool:
    return any(
        offering.get("is_enabled") is not False and (offering.get("quantity") or 0) > 0
        for product in inventory["products"]
        for offering in product.get("offerings") or ()
    )


def plan_stock(inventory: ListingInventory, item: ItemRef, quantity: int) -> StockPlan:
    """The writes that make ``item`` show ``quantity``: ``plan_stock_many`` for one item."""
    return plan_stock_many(inventory, [(item, quantity)])


def plan_stock_many(
    inventory: ListingInventory, wanted: Sequence[tuple[ItemRef, int]]
) -> StockPlan:
    """The writes that make every item of one listing show its quantity, in one
    read-modify-write (see the module docstring): one ``updateListingInventory`` body carrying
    all of them, plus at most one state change decided on the result as a whole.

    Items apply in order, so where two name the same product (a SKU twice, or the whole
    listing and one SKU of it) the later wins. Every item is checked before anything is
    planned: raises ``ValueError`` for an item of another listing or a negative quantity,
    ``UnknownStockItem`` naming every item that names no product, ``AmbiguousStockItem`` when
    an item names the whole listing while its quantity varies by property (name SKUs instead).
    All or nothing, because the write replaces the whole inventory: a partly wrong push is
    refused rather than half applied.
    """
    for item, quantity in wanted:
        if item.listing_id != inventory.listing_id:
            raise ValueError(
                f"item {stock_item_id(item.listing_id, item.sku)!r} is not of listing "
                f"{inventory.listing_id}; one plan covers one listing"
            )
        if quantity < 0:
            raise ValueError(f"a quantity cannot be negative, got {quantity}")
    current = writable_inventory(inventory.body, listing_id=inventory.listing_id)
    targets = _targets(inventory, len(current["products"]), wanted)
    if not wanted or (not inventory.sellable and not any(targets.values())):
        return StockPlan(None, None, False)  # nothing asked, or nothing can be bought already
    desired = copy.deepcopy(current)
    reactivating = inventory.state in REACTIVATED_STATES
    for index, product in enumerate(desired["products"]):
        if index in targets:
            _set_quantity(product, targets[index])
        elif reactivating:
            _set_quantity(product, 0)  # read as 0 while inactive: keep it so once active
    state: str | None = None
    state_first = False
    if not _any_for_sale(desired):
        _set_quantity(desired["products"][0], PARKED_QUANTITY)
        state, state_first = INACTIVE, True
    elif reactivating:
        # Setting a sold_out listing active resets its quantity to 1 (ShopListing.state docs),
        # so that listing is activated before its inventory is written; an inactive one after.
        state, state_first = ACTIVE, inventory.state == SOLD_OUT
    body = None if desired == current else desired
    return StockPlan(body, state, state_first)


def _targets(
    inventory: ListingInventory, product_count: int, wanted: Sequence[tuple[ItemRef, int]]
) -> dict[int, int]:
    """Product index -> wanted quantity, the later item winning; refuses (naming them all)
    items that name no product or a whole listing whose quantity varies by property."""
    products = live_products(inventory.body)
    varies = product_count > 1 and bool(inventory.body.get("quantity_on_property"))
    targets: dict[int, int] = {}
    unknown: list[str] = []
    ambiguous = False
    for item, quantity in wanted:
        try:
            chosen = _selected(products, item)
        except UnknownStockItem as error:
            unknown.append(str(error))
            continue
        if item.sku is None and varies:
            ambiguous = True
            continue
        targets.update(dict.fromkeys(chosen, quantity))
    if unknown:
        raise UnknownStockItem("; ".join(dict.fromkeys(unknown)))
    if ambiguous:
        raise AmbiguousStockItem(
            f"listing {inventory.listing_id} has products whose quantity varies by property; "
            "push each product by its SKU ('<listing_id>:<sku>')"
        )
    return targets
