"""Pure translations between WooCommerce REST (``wc/v3``) JSON and the hub's DTOs: no I/O.

Money: order totals and line ``subtotal``/``total`` are decimal *strings*, but a line's
``price`` is a JSON number that WooCommerce computes in PHP floating point from the line's
*discounted* total divided by its quantity (``WC_Abstract_Order::get_item_total``), e.g.
``3.3333333333333335``. It is never read: the unit price is the string ``subtotal`` (before
discounts) divided by the quantity, and the discounted amount is the string ``total``, both
exact ``Decimal``s (https://woocommerce.github.io/woocommerce-rest-api-docs/#order-line-items-properties).
A float is refused outright, so a lossy value can never enter the books.

Dates: every resource carries a site-local date and a ``_gmt`` twin; both are ISO 8601 without a
zone suffix. Only the ``_gmt`` ones are read, as UTC.

A payload without the documented shape raises ``WooCommercePayloadError``; the connector reports
it as a permanent error with the detail.
"""

from __future__ import annotations

import html
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from connectors.contract import (
    FulfillmentRequest,
    ImageRef,
    ListingVariant,
    StockLevel,
    WebhookSubscription,
)
from connectors.scalars import PayloadError, exact_money
from hub.domain.orders import ImportLine, ImportOrder

# Order statuses (https://woocommerce.github.io/woocommerce-rest-api-docs/#order-properties).
# ``processing`` and ``completed`` are WooCommerce's own "paid" statuses (wc_get_is_paid_statuses);
# a refunded order was paid first. ``on-hold`` is "awaiting payment" (bank transfer, cheque)
# unless the order was paid and then held (``date_paid_gmt`` set), so it, and any status a plugin
# adds, count as paid exactly when ``date_paid_gmt`` is set.
PAID_STATUSES = frozenset({"processing", "completed", "refunded"})
UNPAID_STATUSES = frozenset({"pending", "failed", "checkout-draft"})
CANCELLED_STATUSES = frozenset({"cancelled", "trash"})
REFUNDED_STATUS = "refunded"
FULFILLED_STATUS = "completed"
# Statuses a tracking write leaves alone: already done, or closed without shipping.
NO_COMPLETION_STATUSES = frozenset({"completed", "cancelled", "refunded", "failed", "trash"})

# ISO 4217 minor units where they are not 2; WooCommerce itself formats with the site's
# "number of decimals" setting, so amounts are only quantized where that loses nothing.
MINOR_UNITS: dict[str, int] = {
    **dict.fromkeys(
        (
            "BIF",
            "CLP",
            "DJF",
            "GNF",
            "ISK",
            "JPY",
            "KMF",
            "KRW",
            "PYG",
            "RWF",
            "UGX",
            "UYI",
            "VND",
            "VUV",
            "XAF",
            "XOF",
            "XPF",
        ),
        0,
    ),
    **dict.fromkeys(["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"], 3),
}
DEFAULT_MINOR_UNITS = 2
# REST API keys: ``ck_``/``cs_`` and ``wc_rand_hash()`` (40 hex digits) from WooCommerce; keys
# made by plugins or by hand vary, so only the prefix and a sane alphabet and length are held.
CONSUMER_KEY = re.compile(r"ck_[A-Za-z0-9_]{8,128}")
CONSUMER_SECRET = re.compile(r"cs_[A-Za-z0-9_]{8,128}")
MAX_STATE_CHARS = 512
CURRENCY_CODE = re.compile(r"[A-Z]{3}")
REFUNDED_ITEM_META = "_refunded_item_id"
MAX_STOCK_QUANTITY = 2**63  # WooCommerce stores stock as a signed 64-bit number at most
# Resource ids are PHP integers in the REST answers, so never above PHP_INT_MAX (64-bit).
MAX_RESOURCE_ID = 2**63 - 1
SKIPPED_PRODUCT_TYPES = frozenset({"grouped", "external"})  # nothing to stock or sell through us
VARIABLE_TYPE = "variable"
SHIPPING_KEYS: dict[str, str] = {  # WooCommerce address field -> hub key
    "address_1": "line1",
    "address_2": "line2",
    "city": "city",
    "state": "region",
    "postcode": "postal_code",
    "country": "country",
    "phone": "phone",
}


class WooCommercePayloadError(PayloadError):
    """A WooCommerce payload lacks a documented field or carries a value of the wrong type."""


# --------------------------------------------------------------------------------------------
# Scalars
# --------------------------------------------------------------------------------------------


def money(value: Any, *, what: str = "amount") -> Decimal:
    """Exact money from a decimal string (or an integer); floats and booleans are refused."""
    return exact_money(value, what=what, error=WooCommercePayloadError)


def optional_money(value: Any, *, what: str) -> Decimal | None:
    """A price that may be blank: WooCommerce sends ``""`` for a product without a price."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return money(value, what=what)


def minor_unit(currency: str) -> Decimal:
    """The currency's smallest unit as an exponent: ``Decimal("0.01")`` for USD, 1 for JPY."""
    return Decimal(1).scaleb(-MINOR_UNITS.get(currency.upper(), DEFAULT_MINOR_UNITS))


def exact_amount(value: Decimal, currency: str) -> Decimal:
    """``value`` at the currency's minor unit when that loses nothing, else untouched
    (a site set to more decimals than the currency has keeps them)."""
    quantized = value.quantize(minor_unit(currency))
    return quantized if quantized == value else value


def unit_price(subtotal: Decimal, quantity: int, currency: str) -> Decimal:
    """The undiscounted unit price: ``subtotal / quantity`` at the minor unit, half up.

    Exact whenever the subtotal divides evenly (the usual case: WooCommerce multiplies a unit
    price by the quantity); otherwise it is the nearest minor unit, never a binary float.
    """
    if quantity <= 0:
        return exact_amount(subtotal, currency)
    return (subtotal / quantity).quantize(minor_unit(currency), rounding=ROUND_HALF_UP)


def gmt_timestamp(value: Any, *, what: str = "timestamp") -> datetime:
    """A ``*_gmt`` ISO 8601 value (no zone suffix: it is UTC) as an aware UTC datetime."""
    if not isinstance(value, str) or not value.strip():
        raise WooCommercePayloadError(f"{what}: expected an ISO 8601 string, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError as error:
        raise WooCommercePayloadError(f"{what}: {value!r} is not an ISO 8601 timestamp") from error
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError as error:  # "0001-01-01T00:00:00+01:00" is before year 1 in UTC
        raise WooCommercePayloadError(f"{what}: {value!r} is out of range in UTC") from error


def optional_gmt_timestamp(value: Any, *, what: str) -> datetime | None:
    return None if value in (None, "") else gmt_timestamp(value, what=what)


def wc_gmt(moment: datetime) -> str:
    """A datetime as WooCommerce's GMT query format: ``YYYY-MM-DDTHH:MM:SS`` in UTC, no zone."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _positive_int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if value > 0 else None


def _required_int(node: Mapping[str, Any], key: str, *, what: str) -> int:
    value = node.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise WooCommercePayloadError(f"{what}: '{key}' must be an integer, got {value!r}")
    return value


def resource_id(value: Any) -> int | None:
    """A WooCommerce id (a positive integer, or its ASCII decimal text) or None.

    Ids from an answer go into the next request's path (``/orders/{id}/refunds``): only a
    plain number is safe there; a control character would make httpx refuse the URL.
    """
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value) if len(value) <= len(str(MAX_RESOURCE_ID)) else None
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 < value <= MAX_RESOURCE_ID else None


def path_id(node: Mapping[str, Any], *, what: str) -> int:
    """The node's ``id`` checked by ``resource_id``, for a URL path; else a payload error."""
    value = resource_id(node.get("id"))
    if value is None:
        raise WooCommercePayloadError(
            f"{what}: 'id' must be a positive integer, got {node.get('id')!r:.80}"
        )
    return value


def _mapping(node: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = node.get(key)
    return value if isinstance(value, Mapping) else {}


def expect_list(body: Any, *, what: str) -> list[Mapping[str, Any]]:
    """A JSON array of objects (a collection response)."""
    if not isinstance(body, list) or not all(isinstance(item, Mapping) for item in body):
        raise WooCommercePayloadError(f"{what}: expected a JSON array of objects")
    return list(body)


def expect_object(body: Any, *, what: str) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise WooCommercePayloadError(f"{what}: expected a JSON object")
    return body


def display_text(value: Any) -> str:
    """Names as shown in the shop: WooCommerce sends HTML entities (``&ndash;``)."""
    return html.unescape(value).strip() if isinstance(value, str) else ""


# --------------------------------------------------------------------------------------------
# Orders
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderFlags:
    paid: bool
    cancelled: bool
    refunded: bool
    fulfilled: bool


def order_flags(status: str, *, date_paid_gmt: Any, has_refunds: bool) -> OrderFlags:
    """WooCommerce's one status normalised to the hub's flags (see the constants above)."""
    paid = status in PAID_STATUSES or (
        status not in UNPAID_STATUSES and date_paid_gmt not in (None, "")
    )
    return OrderFlags(
        paid=paid,
        cancelled=status in CANCELLED_STATUSES,
        refunded=status == REFUNDED_STATUS or has_refunds,
        fulfilled=status == FULFILLED_STATUS,
    )


def refunded_quantities(
    refunds: Iterable[Mapping[str, Any]], lines: Sequence[Mapping[str, Any]]
) -> dict[int, int]:
    """Units refunded per order line id, from ``GET /orders/{id}/refunds``.

    A refund's lines carry negative quantities and name the order line they refund in their
    ``_refunded_item_id`` meta (https://woocommerce.github.io/woocommerce-rest-api-docs/#list-all-refunds);
    a refund line without it is matched to the order line with the same product and variation.
    An amount-only refund (no lines) changes no quantity.
    """
    refunded: dict[int, int] = defaultdict(int)
    for refund in refunds:
        items = refund.get("line_items")
        for item in items if isinstance(items, list) else ():
            if not isinstance(item, Mapping):
                continue
            quantity = item.get("quantity")
            if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity == 0:
                continue
            line_id = _refunded_item_id(item) or _same_product_line(item, lines)
            if line_id is not None:
                refunded[line_id] += abs(quantity)
    return dict(refunded)


def _refunded_item_id(item: Mapping[str, Any]) -> int | None:
    meta = item.get("meta_data")
    for entry in meta if isinstance(meta, list) else ():
        if isinstance(entry, Mapping) and entry.get("key") == REFUNDED_ITEM_META:
            try:
                return int(str(entry.get("value")))
            except ValueError:
                return None
    return None


def _same_product_line(item: Mapping[str, Any], lines: Sequence[Mapping[str, Any]]) -> int | None:
    for line in lines:
        if (line.get("product_id"), line.get("variation_id") or 0) == (
            item.get("product_id"),
            item.get("variation_id") or 0,
        ):
            return _positive_int(line.get("id"))
    return None


def map_line(node: Mapping[str, Any], *, currency: str, refunded: int = 0) -> ImportLine:
    """One line item: the quantity net of refunds, the unit price from ``subtotal``."""
    line_id = _required_int(node, "id", what="line item")
    what = f"line item {line_id}"
    quantity = _required_int(node, "quantity", what=what)
    subtotal = money(node.get("subtotal"), what=f"{what} subtotal")
    return ImportLine(
        external_line_id=str(line_id),
        quantity=max(0, quantity - refunded),
        unit_price=unit_price(subtotal, quantity, currency),
        sku=_text(node.get("sku")),
        external_listing_id=_id_text(node.get("product_id")),
        external_variant_id=_id_text(node.get("variation_id")),
        title=display_text(node.get("name")),
    )


def line_total(node: Mapping[str, Any], currency: str) -> Decimal:
    """A line's discounted amount (``total``, after discounts, before tax), exact.

    The hub's ``ImportLine`` has no field for it yet; kept here so callers that need the
    discounted figure never reach for the float ``price``.
    """
    return exact_amount(money(node.get("total"), what="line total"), currency)


def _id_text(value: Any) -> str | None:
    number = _positive_int(value)
    return str(number) if number is not None else None


def map_address(node: Mapping[str, Any]) -> dict[str, Any]:
    """A WooCommerce address under the hub's neutral keys; empty fields are left out."""
    address = {
        ours: node[theirs] for theirs, ours in SHIPPING_KEYS.items() if _text(node.get(theirs))
    }
    name = _person(node)
    return {"name": name, **address} if name else address


def _person(node: Mapping[str, Any]) -> str | None:
    parts = [node.get("first_name"), node.get("last_name")]
    name = " ".join(part.strip() for part in parts if isinstance(part, str) and part.strip())
    return name or None


def map_order(
    node: Mapping[str, Any],
    *,
    shop_id: int,
    refunds: Sequence[Mapping[str, Any]] = (),
) -> ImportOrder:
    """One order as ``GET /orders/{id}`` returns it, with its refunds' lines when it has any.

    ``total`` is the amount still charged: the order total plus its refund totals (negative
    strings in ``refunds[].total``), like Shopify's current total.
    """
    order_id = _required_int(node, "id", what="order")
    what = f"order {order_id}"
    currency = _text(node.get("currency"))
    if currency is None:
        raise WooCommercePayloadError(f"{what}: 'currency' is missing")
    status = _text(node.get("status")) or ""
    line_nodes = expect_list(node.get("line_items", []), what=f"{what} line_items")
    refunded = refunded_quantities(refunds, line_nodes)
    shipping, billing = _mapping(node, "shipping"), _mapping(node, "billing")
    listed_refunds = node.get("refunds")
    order_refunds = [
        r
        for r in (listed_refunds if isinstance(listed_refunds, list) else ())
        if isinstance(r, Mapping)
    ]
    flags = order_flags(
        status, date_paid_gmt=node.get("date_paid_gmt"), has_refunds=bool(order_refunds)
    )
    return ImportOrder(
        shop_id=shop_id,
        external_id=str(order_id),
        external_number=_text(node.get("number")) or str(order_id),
        external_status=status,
        external_updated_at=gmt_timestamp(
            node.get("date_modified_gmt") or node.get("date_created_gmt"),
            what=f"{what} date_modified_gmt",
        ),
        placed_at=gmt_timestamp(node.get("date_created_gmt"), what=f"{what} date_created_gmt"),
        currency=currency,
        total=_current_total(node, order_refunds, currency, what=what),
        lines=tuple(
            map_line(
                line,
                currency=currency,
                refunded=refunded.get(_positive_int(line.get("id")) or 0, 0),
            )
            for line in line_nodes
        ),
        paid=flags.paid,
        cancelled=flags.cancelled,
        refunded=flags.refunded,
        fulfilled=flags.fulfilled,
        customer_name=_person(shipping) or _person(billing),
        customer_email=_text(billing.get("email")),
        shipping_address=map_address(shipping),
    )


def _current_total(
    node: Mapping[str, Any], refunds: Sequence[Mapping[str, Any]], currency: str, *, what: str
) -> Decimal:
    total = money(node.get("total"), what=f"{what} total")
    for refund in refunds:
        total += money(refund.get("total", "0"), what=f"{what} refund total")
    return exact_amount(total, currency)


def needs_refund_lines(node: Mapping[str, Any]) -> bool:
    """Whether the order has refunds, whose lines only ``GET /orders/{id}/refunds`` lists."""
    refunds = node.get("refunds")
    return isinstance(refunds, list) and any(isinstance(r, Mapping) for r in refunds)


# --------------------------------------------------------------------------------------------
# Listings and stock
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class StockItem:
    """A stock handle: ``"<product_id>"`` (a simple product, or a variable product's own
    stock) or ``"<product_id>:<variation_id>"`` (a variation, written through its parent)."""

    product_id: int
    variation_id: int | None = None

    def __str__(self) -> str:
        if self.variation_id is None:
            return str(self.product_id)
        return f"{self.product_id}:{self.variation_id}"

    @classmethod
    def parse(cls, item_id: str) -> StockItem:
        head, _, tail = item_id.strip().partition(":")
        try:
            product = int(head)
            variation = int(tail) if tail else None
        except ValueError:
            raise ValueError(f"not a WooCommerce stock item id: {item_id!r}") from None
        if product <= 0 or (variation is not None and variation <= 0):
            raise ValueError(f"not a WooCommerce stock item id: {item_id!r}")
        return cls(product, variation)


def is_variable(product: Mapping[str, Any]) -> bool:
    return product.get("type") == VARIABLE_TYPE


def listing_variants(
    product: Mapping[str, Any], variations: Sequence[Mapping[str, Any]] = ()
) -> list[ListingVariant]:
    """A product as the variants orders and stock bind to: each variation of a variable
    product (the parent itself is not sold), the product itself otherwise."""
    product_id = _required_int(product, "id", what="product")
    if _text(product.get("type")) in SKIPPED_PRODUCT_TYPES:
        return []
    name = display_text(product.get("name"))
    if not is_variable(product):
        return [
            ListingVariant(
                listing_id=str(product_id),
                variant_id=None,
                inventory_item_id=None,
                sku=_text(product.get("sku")),
                title=name,
                price=optional_money(product.get("price"), what=f"product {product_id} price"),
            )
        ]
    return [_variation_variant(product_id, name, variation) for variation in variations]


def _variation_variant(product_id: int, name: str, node: Mapping[str, Any]) -> ListingVariant:
    variation_id = _required_int(node, "id", what=f"product {product_id} variation")
    return ListingVariant(
        listing_id=str(product_id),
        variant_id=str(variation_id),
        inventory_item_id=None,
        sku=_text(node.get("sku")),
        title=display_text(node.get("name")) or _variation_title(name, node),
        price=optional_money(node.get("price"), what=f"variation {variation_id} price"),
    )


def _variation_title(product_name: str, node: Mapping[str, Any]) -> str:
    attributes = node.get("attributes")
    options = [
        str(attribute.get("option"))
        for attribute in (attributes if isinstance(attributes, list) else ())
        if isinstance(attribute, Mapping) and attribute.get("option")
    ]
    return f"{product_name} \N{EN DASH} {', '.join(options)}" if options else product_name


def managed_quantity(node: Mapping[str, Any]) -> int | None:
    """The item's own stock, or None when it does not manage stock itself.

    ``manage_stock`` is ``true``, ``false`` or, on a variation whose parent holds the stock,
    the string ``"parent"`` (``WC_Product_Variation::managing_stock``), with the parent's
    quantity: that shared quantity is not the variation's own, so it is not reported.
    """
    quantity = node.get("stock_quantity")
    if node.get("manage_stock") is not True:
        return None
    # A whole number in the int64 range only: never truncate "2.5", never expand "1e999999999"
    # into a billion digits.
    if isinstance(quantity, Decimal):
        whole = (
            quantity.is_finite()
            and quantity.copy_abs() < MAX_STOCK_QUANTITY
            and quantity == quantity.to_integral_value()
        )
        return int(quantity) if whole else None
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        return None
    return quantity if abs(quantity) < MAX_STOCK_QUANTITY else None


def batch_requests(levels: Sequence[StockLevel]) -> dict[int | None, list[dict[str, Any]]]:
    """The ``update`` arrays per endpoint: key None is ``/products/batch``, a product id is
    ``/products/{id}/variations/batch``.

    ``manage_stock: true`` travels with every quantity: WooCommerce stores ``stock_quantity``
    only on an item that manages stock and silently drops it otherwise
    (``WC_REST_Product_Variations_Controller::prepare_object_for_database``), so a push to an
    unmanaged item would be lost while reported done. The hub's quantity is the truth.

    A level with a price (the listing push kind) sets ``regular_price`` in the same item, as
    the decimal string WooCommerce documents for products and variations
    (https://woocommerce.github.io/woocommerce-rest-api-docs/#product-properties,
    #product-variation-properties): the Decimal's exact digits, never a float (WooCommerce
    stores a float trimmed, "1000.00" as "1000") nor scientific notation. Without a price the
    key is absent and WooCommerce leaves the price as it is.
    """
    groups: dict[int | None, list[dict[str, Any]]] = defaultdict(list)
    for level in levels:
        item = StockItem.parse(level.item_id)
        key = item.product_id if item.variation_id is not None else None
        item_id = item.variation_id if item.variation_id is not None else item.product_id
        update: dict[str, Any] = {
            "id": item_id,
            "manage_stock": True,
            "stock_quantity": level.quantity,
        }
        if level.price is not None:
            update["regular_price"] = price_text(level.price)
        groups[key].append(update)
    return dict(groups)


def price_text(price: Decimal) -> str:
    """A price as WooCommerce's ``regular_price`` takes it: the exact decimal string
    (``Decimal("19.99")`` -> ``"19.99"``, ``Decimal("1E+3")`` -> ``"1000"``)."""
    return format(price, "f")


@dataclass(frozen=True)
class BatchFailure:
    item_id: str
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.item_id}: {self.code}: {self.message}"


def batch_outcome(
    body: Any, *, parent: int | None, requested: Sequence[Mapping[str, Any]]
) -> tuple[list[str], list[BatchFailure]]:
    """Applied stock item ids and per-item failures of one batch response.

    WooCommerce answers 200 for the batch and reports each item's failure in place:
    ``{"id": 5, "error": {"code", "message", "data": {"status"}}}``
    (``WC_REST_Controller::batch_items``). An item missing from the answer is a failure too.
    """
    answer = expect_object(body, what="batch response")
    listed = answer.get("update")
    entries = [e for e in (listed if isinstance(listed, list) else ()) if isinstance(e, Mapping)]
    by_id = {_positive_int(entry.get("id")): entry for entry in entries}
    applied: list[str] = []
    failures: list[BatchFailure] = []
    for index, item in enumerate(requested):
        entry = by_id.get(item["id"])
        if entry is None and index < len(entries) and not entries[index].get("id"):
            entry = entries[index]  # an answer that lost its id keeps the request's order
        stock_id = str(
            StockItem(parent, item["id"]) if parent is not None else StockItem(item["id"])
        )
        error = entry.get("error") if entry is not None else None
        if entry is None:
            failures.append(BatchFailure(stock_id, "missing", "not in the batch response"))
        elif isinstance(error, Mapping):
            failures.append(
                BatchFailure(stock_id, str(error.get("code", "")), str(error.get("message", "")))
            )
        else:
            applied.append(stock_id)
    return applied, failures


# --------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------


def images_payload(images: Sequence[ImageRef]) -> list[dict[str, str]]:
    """``images`` for ``PUT /products/{id}``: the whole gallery, first image featured."""
    return [{"src": image.url, **({"alt": image.alt} if image.alt else {})} for image in images]


def image_ids(product: Mapping[str, Any]) -> tuple[str, ...]:
    images = product.get("images")
    return tuple(
        str(image["id"])
        for image in (images if isinstance(images, list) else ())
        if isinstance(image, Mapping) and _positive_int(image.get("id")) is not None
    )


# --------------------------------------------------------------------------------------------
# Tracking
# --------------------------------------------------------------------------------------------


def tracking_payload(request: FulfillmentRequest) -> dict[str, str]:
    """A Shipment Tracking item: a predefined provider by name, or a custom provider with our
    link (the extension ignores ``tracking_link`` for predefined providers)
    (https://woocommerce.com/document/shipment-tracking/shipment-tracking-rest-api-create-tracking-item/)."""
    if request.tracking_url:
        return {
            "tracking_number": request.tracking_number,
            "custom_tracking_provider": request.carrier,
            "custom_tracking_link": request.tracking_url,
        }
    return {"tracking_number": request.tracking_number, "tracking_provider": request.carrier}


def tracking_with_number(items: Iterable[Mapping[str, Any]], number: str) -> str | None:
    """The ``tracking_id`` of an existing tracking item carrying ``number``."""
    for item in items:
        if str(item.get("tracking_number", "")).strip() == number.strip():
            return str(item.get("tracking_id", "")) or None
    return None


def tracking_note(request: FulfillmentRequest) -> str:
    """The order note that carries tracking where the extension is absent."""
    text = f"Shipped with {request.carrier}. Tracking number: {request.tracking_number}."
    return f"{text} Track it at {request.tracking_url}" if request.tracking_url else text


def note_with_number(notes: Iterable[Mapping[str, Any]], number: str) -> str | None:
    """The id of an order note that already mentions the tracking number."""
    for note in notes:
        if number.strip() and number.strip() in display_text(note.get("note")):
            note_id = _positive_int(note.get("id"))
            return str(note_id) if note_id is not None else None
    return None


# --------------------------------------------------------------------------------------------
# Onboarding: the keys the app authentication endpoint posts, the store's identity
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PostedKeys:
    """The JSON ``/wc-auth/v1/authorize`` POSTs to the app's ``callback_url``
    (https://woocommerce.github.io/woocommerce-rest-api-docs/#rest-api-keys)."""

    user_id: str  # the app's own reference: the hub's state
    consumer_key: str
    consumer_secret: str
    key_permissions: str | None
    key_id: int | None

    def __repr__(self) -> str:
        return f"PostedKeys(user_id={self.user_id!r}, key_permissions={self.key_permissions!r})"


def looks_like_keys(consumer_key: Any, consumer_secret: Any) -> bool:
    """Whether the pair has the shape of WooCommerce REST API keys (no I/O)."""
    return (
        isinstance(consumer_key, str)
        and isinstance(consumer_secret, str)
        and CONSUMER_KEY.fullmatch(consumer_key) is not None
        and CONSUMER_SECRET.fullmatch(consumer_secret) is not None
    )


def posted_keys(body: bytes) -> PostedKeys:
    """``{key_id, user_id, consumer_key, consumer_secret, key_permissions}`` from the raw
    body; anything else raises ``WooCommercePayloadError``. ``user_id`` is the string the app
    sent (PHP echoes the query value); a number is taken as its decimal text."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as error:  # the callback is public: any bytes come
        raise WooCommercePayloadError("the body is not JSON") from error
    if not isinstance(document, Mapping):
        raise WooCommercePayloadError("the body is not a JSON object")
    user_id = document.get("user_id")
    if isinstance(user_id, int) and not isinstance(user_id, bool):
        user_id = str(user_id)
    if not isinstance(user_id, str) or not user_id.strip() or len(user_id) > MAX_STATE_CHARS:
        raise WooCommercePayloadError("'user_id' (the authorization's state) is missing")
    key, secret = document.get("consumer_key"), document.get("consumer_secret")
    if not looks_like_keys(key, secret):
        raise WooCommercePayloadError(
            "'consumer_key'/'consumer_secret' are missing or are not WooCommerce REST API keys"
        )
    permissions = document.get("key_permissions")
    if permissions is not None and not isinstance(permissions, str):
        raise WooCommercePayloadError(f"'key_permissions' must be a string, got {permissions!r}")
    return PostedKeys(
        user_id=user_id,
        consumer_key=str(key),
        consumer_secret=str(secret),
        key_permissions=permissions,
        key_id=_positive_int(document.get("key_id")),
    )


def setting_currency(option: Any) -> str | None:
    """The ISO code in a ``woocommerce_currency`` setting option's ``value``
    (https://woocommerce.github.io/woocommerce-rest-api-docs/#setting-option-properties)."""
    value = option.get("value") if isinstance(option, Mapping) else None
    code = value.strip().upper() if isinstance(value, str) else ""
    return code if CURRENCY_CODE.fullmatch(code) else None


def site_name(index: Any) -> str | None:
    """The site title from the WordPress REST index (``GET /wp-json/``), entities decoded."""
    name = display_text(index.get("name")) if isinstance(index, Mapping) else ""
    return name or None


# --------------------------------------------------------------------------------------------
# Webhook subscriptions (https://woocommerce.github.io/woocommerce-rest-api-docs/#webhooks)
# --------------------------------------------------------------------------------------------


def webhook_request(name: str, topic: str, address: str, secret: str) -> dict[str, str]:
    """The body of ``POST /webhooks``: always with our secret, saved active."""
    return {
        "name": name,
        "topic": topic,
        "delivery_url": address,
        "secret": secret,
        "status": "active",
    }


def webhook_subscription(node: Mapping[str, Any]) -> WebhookSubscription:
    """A webhook object as the contract's subscription; ``active`` only when WooCommerce
    delivers (not ``paused``, not ``disabled`` after failures)."""
    webhook_id = _positive_int(node.get("id"))
    topic = node.get("topic")
    address = node.get("delivery_url")
    if webhook_id is None:
        raise WooCommercePayloadError(
            f"webhook: 'id' must be a positive integer, got {node.get('id')!r}"
        )
    if not isinstance(topic, str) or not isinstance(address, str):
        raise WooCommercePayloadError(
            f"webhook {webhook_id}: 'topic' and 'delivery_url' must be strings"
        )
    return WebhookSubscription(
        id=str(webhook_id),
        topic=topic,
        address=address,
        active=node.get("status") == "active",
    )
