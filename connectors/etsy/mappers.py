"""Pure translations between Etsy Open API v3 JSON and the hub's DTOs: no I/O, no decisions.

Etsy sends money as ``Money {amount: int, divisor: int, currency_code}``
(https://developers.etsy.com/documentation/reference#tag/Shop-Receipt, schema ``Money``): the
value is exactly ``amount / divisor`` and the divisor is whatever Etsy says (100 for EUR, 1 for
JPY), never assumed. Timestamps are epoch seconds, read as UTC. A payload that lacks a
documented field raises ``EtsyPayloadError``; the connector reports it as a permanent error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal, Inexact, InvalidOperation, localcontext
from typing import Any

from connectors.contract import ListingVariant
from connectors.scalars import PayloadError, check_amount
from hub.domain.orders import ImportLine, ImportOrder

# ShopReceipt.status (getShopReceipts): "paid", "completed", "open", "payment processing",
# "canceled", "fully refunded", "partially refunded". Third-party data shows capitalised values
# ("Paid"), so every comparison is on the lower-cased, stripped value.
PAID_STATUSES = frozenset({"paid", "completed", "partially refunded", "fully refunded"})
REFUNDED_STATUSES = frozenset({"partially refunded", "fully refunded"})
CANCELLED_STATUSES = frozenset({"canceled", "cancelled"})
COMPLETED_STATUS = "completed"
FULLY_REFUNDED = "fully refunded"
SHIPPING_ADDRESS_KEYS: dict[str, str] = {  # ShopReceipt field -> hub key
    "name": "name",
    "first_line": "line1",
    "second_line": "line2",
    "city": "city",
    "state": "region",
    "zip": "postal_code",
    "country_iso": "country",
}


INT64_LIMIT = 2**63


class EtsyPayloadError(PayloadError):
    """An Etsy payload lacks a documented field or carries a value of the wrong type."""


# --------------------------------------------------------------------------------------------
# Scalars
# --------------------------------------------------------------------------------------------


def _integer(value: Any, *, what: str) -> int:
    """An int64 from JSON (Etsy's ids, amounts, timestamps and quantities all are): bools,
    fractions and numbers out of range are refused (``decode_json`` makes ``12.0`` and ``1e3``
    Decimals; ``1e999999999`` is one too, and must not become a billion-digit int)."""
    if isinstance(value, bool):
        raise EtsyPayloadError(f"{what}: expected an integer, got {value!r}")
    if (
        isinstance(value, Decimal)
        and value.is_finite()
        and value.copy_abs() < INT64_LIMIT
        and value == value.to_integral_value()
    ):
        value = int(value)
    if isinstance(value, int) and -INT64_LIMIT <= value < INT64_LIMIT:
        return value
    if isinstance(value, int | Decimal):
        raise EtsyPayloadError(f"{what}: {value} is not a whole number in the int64 range")
    raise EtsyPayloadError(f"{what}: expected an integer, got {value!r}")


def money(value: Any, *, what: str = "amount") -> Decimal:
    """Exactly ``amount / divisor`` of an Etsy ``Money``.

    A power-of-ten divisor shifts the decimal point, so 1641/100 is ``16.41`` and 10/100 keeps
    its cents as ``0.10``; any other divisor must divide exactly or the payload is refused
    rather than rounded.
    """
    if not isinstance(value, Mapping):
        raise EtsyPayloadError(f"{what}: expected a Money object, got {value!r}")
    amount = _integer(value.get("amount"), what=f"{what}.amount")
    divisor = _integer(value.get("divisor"), what=f"{what}.divisor")
    if divisor <= 0:
        raise EtsyPayloadError(f"{what}: divisor must be positive, got {divisor}")
    digits = len(str(divisor)) - 1
    with localcontext() as context:
        context.traps[Inexact] = True
        try:
            if divisor == 10**digits:
                value = Decimal(amount).scaleb(-digits)
            else:
                value = Decimal(amount) / Decimal(divisor)
        except (Inexact, InvalidOperation) as error:
            raise EtsyPayloadError(f"{what}: {amount}/{divisor} is not an exact amount") from error
    return check_amount(value, what=what, error=EtsyPayloadError)


def currency(value: Any, *, what: str) -> str:
    code = value.get("currency_code") if isinstance(value, Mapping) else None
    if not isinstance(code, str) or not code:
        raise EtsyPayloadError(f"{what}: currency_code is missing")
    return code


def epoch(value: Any, *, what: str) -> datetime:
    """A UTC datetime from Etsy's epoch seconds (years 1 to 9999, as ``datetime`` holds)."""
    seconds = _integer(value, what=what)
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError) as error:
        raise EtsyPayloadError(f"{what}: {seconds} is out of range for a timestamp") from error


def epoch_seconds(moment: datetime) -> int:
    """Whole epoch seconds, floored (a naive datetime is UTC): widening a window by under a
    second only re-reads a receipt we drop as a duplicate."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() // 1)


def _text(value: Any) -> str | None:
    return (value.strip() or None) if isinstance(value, str) else None


def _id(value: Any) -> str | None:
    """An Etsy numeric id (int64, positive) as our string id; None for null, 0 or garbage.

    Only ASCII digits pass, so an id is safe in a URL path (``/listings/{id}/inventory``)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    if isinstance(value, int):
        return str(value) if 0 < value < INT64_LIMIT else None
    text = value.strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 19):
        return None
    return text if 0 < int(text) < INT64_LIMIT else None


def required_id(node: Mapping[str, Any], key: str, *, what: str) -> str:
    value = _id(node.get(key))
    if value is None:
        raise EtsyPayloadError(f"{what}: '{key}' is missing")
    return value


def status_of(node: Mapping[str, Any]) -> str:
    """The receipt status normalised for comparison: lower case, single spaces."""
    raw = node.get("status")
    return " ".join(raw.lower().split()) if isinstance(raw, str) else ""


# --------------------------------------------------------------------------------------------
# Pages
# --------------------------------------------------------------------------------------------


def page_results(body: Any, *, what: str) -> tuple[int, list[Mapping[str, Any]]]:
    """``{count, results}`` of an Etsy collection, checked to hold objects."""
    if not isinstance(body, Mapping) or not isinstance(body.get("results"), list):
        raise EtsyPayloadError(f"{what}: expected {{count, results}}")
    results = body["results"]
    if not all(isinstance(item, Mapping) for item in results):
        raise EtsyPayloadError(f"{what}: every result must be an object")
    count = body.get("count")
    total = count if isinstance(count, int) and not isinstance(count, bool) else len(results)
    return total, list(results)


# --------------------------------------------------------------------------------------------
# Receipts
# --------------------------------------------------------------------------------------------


def receipt_id(receipt: Mapping[str, Any]) -> int:
    """The receipt's id: a positive integer (paging cursors keep ids, and only those)."""
    number = _integer(receipt.get("receipt_id"), what="receipt receipt_id")
    if number <= 0:
        raise EtsyPayloadError(f"receipt receipt_id: {number} is not a receipt id")
    return number


def updated_at(receipt: Mapping[str, Any]) -> int:
    """``update_timestamp`` (``updated_timestamp`` is its documented twin) in epoch seconds,
    not before 1970 (paging cursors keep it as ``min_last_modified``, which cannot be)."""
    value = receipt.get("update_timestamp", receipt.get("updated_timestamp"))
    what = f"receipt {receipt.get('receipt_id')} update_timestamp"
    seconds = _integer(value, what=what)
    if seconds < 0:
        raise EtsyPayloadError(f"{what}: {seconds} is before 1970")
    return seconds


def receipt_flags(receipt: Mapping[str, Any]) -> dict[str, bool]:
    """Etsy's status and booleans normalised to the hub's flags.

    Refunded: any ``refunds`` entry or a refunded status; the core then flags the order for
    review when production already started.
    """
    status = status_of(receipt)
    refunds = receipt.get("refunds")
    return {
        "paid": receipt.get("is_paid") is True or status in PAID_STATUSES,
        "cancelled": status in CANCELLED_STATUSES,
        "refunded": bool(refunds) or status in REFUNDED_STATUSES,
        "fulfilled": receipt.get("is_shipped") is True or status == COMPLETED_STATUS,
    }


def map_transaction(node: Mapping[str, Any], *, fully_refunded: bool) -> ImportLine:
    """One ``ShopReceiptTransaction``: ``price`` is the unit price, an empty SKU is None.

    Etsy has no per-transaction refunded quantity (refunds are receipt-level amounts), so the
    current quantity is ``quantity``, except on a fully refunded receipt where nothing remains
    sold and every line's current quantity is 0.
    """
    line_id = required_id(node, "transaction_id", what="transaction")
    what = f"transaction {line_id}"
    quantity = _integer(node.get("quantity"), what=f"{what} quantity")
    if quantity < 0:
        raise EtsyPayloadError(f"{what}: negative quantity {quantity}")
    return ImportLine(
        external_line_id=line_id,
        quantity=0 if fully_refunded else quantity,
        unit_price=money(node.get("price"), what=f"{what} price"),
        sku=_text(node.get("sku")),
        external_listing_id=_id(node.get("listing_id")),
        external_variant_id=_id(node.get("product_id")),
        title=_text(node.get("title")) or "",
    )


def map_shipping_address(receipt: Mapping[str, Any]) -> dict[str, Any]:
    """The receipt's recipient under the hub's neutral keys; absent fields are left out."""
    return {
        ours: receipt[theirs].strip()
        for theirs, ours in SHIPPING_ADDRESS_KEYS.items()
        if isinstance(receipt.get(theirs), str) and receipt[theirs].strip()
    }


def map_receipt(receipt: Mapping[str, Any], *, shop_id: int) -> ImportOrder:
    """One ``ShopReceipt``: the receipt id is both the external id and the order number; the
    status is kept verbatim; the total is ``grandtotal`` as charged."""
    number = str(receipt_id(receipt))
    what = f"receipt {number}"
    transactions = receipt.get("transactions")
    if not isinstance(transactions, list) or not all(
        isinstance(node, Mapping) for node in transactions
    ):
        raise EtsyPayloadError(f"{what}: 'transactions' must be a list of objects")
    grandtotal = receipt.get("grandtotal")
    raw_status = receipt.get("status")
    fully_refunded = status_of(receipt) == FULLY_REFUNDED
    flags = receipt_flags(receipt)
    return ImportOrder(
        shop_id=shop_id,
        external_id=number,
        external_number=number,
        external_status=raw_status if isinstance(raw_status, str) else "",
        external_updated_at=epoch(updated_at(receipt), what=f"{what} update_timestamp"),
        placed_at=epoch(
            receipt.get("created_timestamp", receipt.get("create_timestamp")),
            what=f"{what} created_timestamp",
        ),
        currency=currency(grandtotal, what=f"{what} grandtotal"),
        total=money(grandtotal, what=f"{what} grandtotal"),
        lines=tuple(map_transaction(node, fully_refunded=fully_refunded) for node in transactions),
        customer_name=_text(receipt.get("name")),
        customer_email=_text(receipt.get("buyer_email")),
        shipping_address=map_shipping_address(receipt),
        paid=flags["paid"],
        cancelled=flags["cancelled"],
        refunded=flags["refunded"],
        fulfilled=flags["fulfilled"],
    )


def shipment_with_tracking(receipt: Mapping[str, Any], tracking_code: str) -> str | None:
    """Our id of the receipt's shipment carrying ``tracking_code``, if one exists.

    ``receipt_shipping_id`` may be null (ShopReceiptShipment schema): then the id is
    "<receipt_id>:<tracking_code>", stable across reads.
    """
    wanted = tracking_code.strip()
    shipments = receipt.get("shipments")
    for shipment in shipments if isinstance(shipments, list) else ():
        if not isinstance(shipment, Mapping):
            continue
        code = shipment.get("tracking_code")
        if isinstance(code, str) and code.strip() == wanted:
            return _id(shipment.get("receipt_shipping_id")) or (
                f"{receipt.get('receipt_id')}:{wanted}"
            )
    return None


# --------------------------------------------------------------------------------------------
# Listings
# --------------------------------------------------------------------------------------------


def live_products(inventory: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The inventory's products that are not deleted, in Etsy's order."""
    products = inventory.get("products")
    if not isinstance(products, list):
        raise EtsyPayloadError("inventory: 'products' must be a list")
    return [p for p in products if isinstance(p, Mapping) and p.get("is_deleted") is not True]


def first_offering(product: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """A product's offering: the first one not deleted (Etsy gives each product one)."""
    offerings = product.get("offerings")
    for offering in offerings if isinstance(offerings, list) else ():
        if isinstance(offering, Mapping) and offering.get("is_deleted") is not True:
            return offering
    return None


def _variation_label(product: Mapping[str, Any]) -> str:
    values: list[str] = []
    entries = product.get("property_values")
    for entry in entries if isinstance(entries, list) else ():
        found = entry.get("values") if isinstance(entry, Mapping) else None
        values.extend(str(value) for value in (found if isinstance(found, list) else ()) if value)
    return " / ".join(values)


def map_listing_variants(
    listing: Mapping[str, Any], inventory: Mapping[str, Any] | None
) -> list[ListingVariant]:
    """One variant per live product of a listing (variant id = ``product_id``).

    Titles read "Listing title / Size / Colour" when the product has property values. A
    listing without inventory records yields one variant for the listing itself.
    """
    listing_id = required_id(listing, "listing_id", what="listing")
    title = _text(listing.get("title")) or ""
    products = live_products(inventory) if inventory is not None else []
    if not products:
        skus = listing.get("skus")
        price = listing.get("price")
        return [
            ListingVariant(
                listing_id=listing_id,
                variant_id=None,
                inventory_item_id=None,
                sku=_text(skus[0]) if isinstance(skus, list) and skus else None,
                title=title,
                price=money(price, what=f"listing {listing_id} price") if price else None,
            )
        ]
    variants = []
    for product in products:
        offering = first_offering(product)
        label = _variation_label(product)
        price = offering.get("price") if offering else None
        variants.append(
            ListingVariant(
                listing_id=listing_id,
                variant_id=_id(product.get("product_id")),
                inventory_item_id=None,
                sku=_text(product.get("sku")),
                title=f"{title} / {label}" if label and title else (label or title),
                price=money(price, what=f"listing {listing_id} price") if price else None,
            )
        )
    return variants


def listing_inventory(listing: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The ``inventory`` association of a listing fetched with ``includes=Inventory``."""
    inventory = listing.get("inventory")
    return inventory if isinstance(inventory, Mapping) and "products" in inventory else None


def image_ids(body: Any) -> list[str]:
    """The ids of a listing's images (getListingImages), in rank order."""
    _, results = page_results(body, what="listing images")
    ranked = sorted(results, key=lambda image: _rank(image.get("rank")))
    return [image_id for image in ranked if (image_id := _id(image.get("listing_image_id")))]


def _rank(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 1_000_000


def receipts_by_id(receipts: Iterable[Mapping[str, Any]]) -> dict[int, Mapping[str, Any]]:
    """Receipts keyed by id, the first occurrence winning (a page never holds one twice)."""
    found: dict[int, Mapping[str, Any]] = {}
    for receipt in receipts:
        found.setdefault(receipt_id(receipt), receipt)
    return found


# --------------------------------------------------------------------------------------------
# Onboarding: getMe and getShop
# --------------------------------------------------------------------------------------------


def self_shop_id(body: Any) -> str | None:
    """The shop of the user a token belongs to, from getMe's ``Self {user_id, shop_id}``;
    None when the user has no shop."""
    if not isinstance(body, Mapping):
        raise EtsyPayloadError("getMe: expected an object")
    if _id(body.get("user_id")) is None:
        raise EtsyPayloadError("getMe: 'user_id' is missing")
    return _id(body.get("shop_id"))


def shop_identity(body: Any, *, shop_id: str) -> tuple[str, str]:
    """``(shop_name, currency_code)`` of getShop's ``Shop``, checked to be ``shop_id``."""
    if not isinstance(body, Mapping):
        raise EtsyPayloadError("getShop: expected an object")
    answered = required_id(body, "shop_id", what="getShop")
    if answered != shop_id:
        raise EtsyPayloadError(f"getShop: asked for shop {shop_id}, got shop {answered}")
    name = _text(body.get("shop_name"))
    if name is None:
        raise EtsyPayloadError("getShop: 'shop_name' is missing")
    return name, currency(body, what="getShop")


def error_message(body: Any) -> str | None:
    """Etsy's ``ErrorSchema`` ``{"error": "..."}`` (with ``error_description`` on OAuth)."""
    if not isinstance(body, Mapping):
        return None
    error = body.get("error")
    description = body.get("error_description")
    parts: Sequence[Any] = [part for part in (error, description) if isinstance(part, str)]
    return ": ".join(parts) or None
