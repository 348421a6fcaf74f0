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
    cannot sell anyway writes nothing (unless it also changes a price).

Prices
    An item may carry a price (``StockLevel.price``): the product's offering price becomes it in
    the same write as the quantity; None leaves the remote price as read. updateListingInventory
    takes "a float equal to amount divided by divisor"
    (https://developers.etsy.com/documentation/reference#operation/updateListingInventory), so
    prices stay ``Decimal`` in the body (read ones exactly ``amount / divisor``) and the client
    writes their own digits as the JSON number. A price must be positive and a whole number of
    ``1/divisor`` (the divisor of the listing's Money prices), and where ``price_on_property``
    is empty every product keeps one price ("The update fails if the supplied values for ...
    price are incompatible with values in ``*_on_property`` fields"); ``InvalidPrice``
    otherwise, before anything is written.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeGuard

from connectors.etsy.mappers import EtsyPayloadError, live_products, money
from connectors.scalars import check_amount

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


class InvalidPrice(ValueError):
    """A wanted price Etsy cannot take: not positive, finer than the currency's divisor, or
    different between the products of a listing whose price does not vary by property."""


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


# One wanted item: (item, quantity) or (item, quantity, price); a price of None is left as read.
Wanted = tuple[ItemRef, int] | tuple[ItemRef, int, Decimal | None]


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
            if offering.get("is_enabled") is False or not _is_int(quantity):
                return 0
            return max(0, quantity)
    return 0


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _listed(value: Any) -> list[Any]:
    """A JSON array as read, or nothing when the field holds anything else."""
    return value if isinstance(value, list) else []


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


def offering_price(value: Any, *, what: str) -> Decimal:
    """An offering's price as read, exactly: ``amount / divisor`` of a Money object (or a plain
    number, as a write answer may hold), kept as a ``Decimal`` so it is written back untouched
    (the client writes a Decimal's own digits as the JSON number)."""
    if isinstance(value, Mapping):
        return money(value, what=what)
    return _plain_number(value, what)


def _plain_number(value: Any, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise EtsyPayloadError(f"{what}: expected a Money object or a number, got {value!r}")
    # a float by its shortest repr (as the JSON had it), an int exactly (no str() digit limit)
    number = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    return check_amount(number, what=what, error=EtsyPayloadError)


def check_price(price: Decimal, *, what: str) -> Decimal:
    """Refuses (``InvalidPrice``) a price that no currency takes: not a finite positive number.
    Needs no divisor, so it can run before anything is read."""
    if not isinstance(price, Decimal) or not price.is_finite() or price <= 0:
        raise InvalidPrice(f"{what}: a price must be a positive number, got {price!r}")
    return price


def _check_minor_units(price: Decimal, divisor: int, *, what: str) -> None:
    scaled = price * divisor
    if scaled != scaled.to_integral_value():
        raise InvalidPrice(
            f"{what}: price {price} has more places than the shop's currency allows "
            f"(a whole number of 1/{divisor}); round it before pushing"
        )


def _divisor(products: Sequence[Mapping[str, Any]], index: int, *, listing_id: str) -> int:
    """The Money divisor of a product's offering price, else of any offering of the listing
    (one shop, one currency)."""
    ordered = [products[index], *products]
    for product in ordered:
        for offering in _listed(product.get("offerings")):
            price = offering.get("price") if isinstance(offering, Mapping) else None
            divisor = price.get("divisor") if isinstance(price, Mapping) else None
            if isinstance(divisor, int) and not isinstance(divisor, bool) and divisor > 0:
                return divisor
    raise EtsyPayloadError(
        f"listing {listing_id}: no offering carries a Money price, so the currency's divisor "
        "is unknown and no price can be written"
    )


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
            for value in _listed(product.get("property_values"))
            if isinstance(value, Mapping)
        ]
        clean["offerings"] = [
            _writable_offering(offering, what=what)
            for offering in _listed(product.get("offerings"))
            if isinstance(offering, Mapping) and offering.get("is_deleted") is not True
        ]
        products.append(clean)
    writable["products"] = products
    return writable


def _writable_offering(offering: Mapping[str, Any], *, what: str) -> dict[str, Any]:
    clean = {key: copy.deepcopy(offering[key]) for key in OFFERING_KEYS if key in offering}
    clean["price"] = offering_price(offering.get("price"), what=f"{what} price")
    clean.setdefault("readiness_state_id", None)
    return clean


def _set_quantity(product: dict[str, Any], quantity: int) -> None:
    offerings = product.get("offerings") or []
    if not offerings:
        raise EtsyPayloadError("a product without offerings cannot hold a quantity")
    offerings[0]["quantity"] = quantity
    offerings[0]["is_enabled"] = quantity > 0


def _first_price(product: Mapping[str, Any]) -> Decimal | None:
    offerings = product.get("offerings") or []
    return offerings[0].get("price") if offerings else None


def _set_price(product: dict[str, Any], price: Decimal) -> None:
    offerings = product.get("offerings") or []
    if not offerings:
        raise EtsyPayloadError("a product without offerings cannot hold a price")
    offerings[0]["price"] = price


def _any_for_sale(inventory: Mapping[str, Any]) -> bool:
    """Whether an offering is enabled with a quantity above 0 (read as ``offering_quantity``
    does: a quantity that is not an integer is none)."""
    return any(
        offering.get("is_enabled") is not False
        and _is_int(offering.get("quantity"))
        and offering["quantity"] > 0
        for product in inventory["products"]
        for offering in product.get("offerings") or ()
    )


def plan_stock(
    inventory: ListingInventory, item: ItemRef, quantity: int, price: Decimal | None = None
) -> StockPlan:
    """The writes that make ``item`` show ``quantity`` (and ``price`` when given):
    ``plan_stock_many`` for one item."""
    return plan_stock_many(inventory, [(item, quantity, price)])


def plan_stock_many(inventory: ListingInventory, wanted: Sequence[Wanted]) -> StockPlan:
    """The writes that make every item of one listing show its quantity (and its price, where
    one is given), in one read-modify-write (see the module docstring): one
    ``updateListingInventory`` body carrying all of them, plus at most one state change decided
    on the result as a whole.

    Items apply in order, so where two name the same product (a SKU twice, or the whole
    listing and one SKU of it) the later wins; a later item without a price leaves the earlier
    one's price standing. Every item is checked before anything is planned: raises
    ``ValueError`` for an item of another listing or a negative quantity, ``UnknownStockItem``
    naming every item that names no product, ``AmbiguousStockItem`` when an item names the
    whole listing while its quantity varies by property (name SKUs instead), ``InvalidPrice``
    for a price Etsy would refuse (see the module docstring). All or nothing, because the write
    replaces the whole inventory: a partly wrong push is refused rather than half applied.
    """
    items = [_entry(one) for one in wanted]
    for item, quantity, price in items:
        if item.listing_id != inventory.listing_id:
            raise ValueError(
                f"item {stock_item_id(item.listing_id, item.sku)!r} is not of listing "
                f"{inventory.listing_id}; one plan covers one listing"
            )
        if quantity < 0:
            raise ValueError(f"a quantity cannot be negative, got {quantity}")
        if price is not None:
            check_price(price, what=f"item {stock_item_id(item.listing_id, item.sku)!r}")
    current = writable_inventory(inventory.body, listing_id=inventory.listing_id)
    targets, prices = _targets(inventory, len(current["products"]), items)
    repriced = {
        index: price
        for index, price in prices.items()
        if _first_price(current["products"][index]) != price
    }
    if not items or (not inventory.sellable and not any(targets.values()) and not repriced):
        return StockPlan(None, None, False)  # nothing asked, or nothing can be bought already
    desired = copy.deepcopy(current)
    reactivating = inventory.state in REACTIVATED_STATES
    for index, product in enumerate(desired["products"]):
        if index in targets:
            _set_quantity(product, targets[index])
        elif reactivating:
            _set_quantity(product, 0)  # read as 0 while inactive: keep it so once active
        if index in prices:
            _set_price(product, prices[index])
    _check_one_price(inventory, desired, repriced)
    state: str | None = None
    state_first = False
    if not _any_for_sale(desired):
        _set_quantity(desired["products"][0], PARKED_QUANTITY)
        if inventory.sellable:  # else it cannot sell already: only a price is being written
            state, state_first = INACTIVE, True
    elif reactivating:
        # Setting a sold_out listing active resets its quantity to 1 (ShopListing.state docs),
        # so that listing is activated before its inventory is written; an inactive one after.
        state, state_first = ACTIVE, inventory.state == SOLD_OUT
    body = None if desired == current else desired
    return StockPlan(body, state, state_first)


def _entry(wanted: Wanted) -> tuple[ItemRef, int, Decimal | None]:
    if len(wanted) == 2:
        return wanted[0], wanted[1], None
    return wanted[0], wanted[1], wanted[2]


def _check_one_price(
    inventory: ListingInventory, desired: Mapping[str, Any], repriced: Mapping[int, Decimal]
) -> None:
    """Where the price does not vary by property every product must keep one price; checked
    only when this plan changes a price (a listing read that way is Etsy's own business)."""
    products = desired["products"]
    if not repriced or len(products) < 2 or desired.get("price_on_property"):
        return
    distinct = {
        price for price in (_first_price(product) for product in products) if price is not None
    }
    if len(distinct) > 1:
        shown = ", ".join(str(price) for price in sorted(distinct))
        raise InvalidPrice(
            f"listing {inventory.listing_id}'s price does not vary by property "
            f"(price_on_property is empty), so all its products share one price; the push "
            f"would leave {shown}: push one price for every SKU (or the whole listing), or let "
            "the price vary by property on Etsy first"
        )


def _targets(
    inventory: ListingInventory,
    product_count: int,
    wanted: Sequence[tuple[ItemRef, int, Decimal | None]],
) -> tuple[dict[int, int], dict[int, Decimal]]:
    """Product index -> wanted quantity and product index -> wanted price, the later item
    winning (a None price leaves the earlier one); refuses (naming them all) items that name no
    product or a whole listing whose quantity varies by property, and prices finer than the
    listing's currency."""
    products = live_products(inventory.body)
    varies = product_count > 1 and bool(inventory.body.get("quantity_on_property"))
    targets: dict[int, int] = {}
    priced: list[tuple[int, Decimal, str]] = []
    unknown: list[str] = []
    ambiguous = False
    for item, quantity, price in wanted:
        try:
            chosen = _selected(products, item)
        except UnknownStockItem as error:
            unknown.append(str(error))
            continue
        if item.sku is None and varies:
            ambiguous = True
            continue
        targets.update(dict.fromkeys(chosen, quantity))
        if price is not None:
            what = f"item {stock_item_id(item.listing_id, item.sku)!r}"
            priced.extend((index, price, what) for index in chosen)
    if unknown:
        raise UnknownStockItem("; ".join(dict.fromkeys(unknown)))
    if ambiguous:
        raise AmbiguousStockItem(
            f"listing {inventory.listing_id} has products whose quantity varies by property; "
            "push each product by its SKU ('<listing_id>:<sku>')"
        )
    prices: dict[int, Decimal] = {}
    for index, price, what in priced:
        divisor = _divisor(products, index, listing_id=inventory.listing_id)
        _check_minor_units(price, divisor, what=what)
        prices[index] = price
    return targets, prices
