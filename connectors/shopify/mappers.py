"""Pure translations between Shopify's GraphQL JSON and the hub's DTOs: no I/O, no decisions.

Shopify serialises money as decimal *strings* ("19.99", https://shopify.dev/docs/api/admin-graphql/latest/scalars/Decimal)
and timestamps as ISO 8601 (https://shopify.dev/docs/api/admin-graphql/latest/scalars/DateTime).
Money becomes ``Decimal`` from its string and a float is refused outright, so a lossy value can
never enter the books. A payload that does not have the documented shape raises
``ShopifyPayloadError``; the connector reports it as a permanent error with the detail.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from connectors.contract import (
    FulfillmentLineRef,
    FulfillmentRequest,
    ListingVariant,
    PriceLevel,
    StockLevel,
    WebhookSubscription,
)
from connectors.scalars import PayloadError, exact_money
from hub.domain.orders import ImportLine, ImportOrder

# https://shopify.dev/docs/api/admin-graphql/latest/enums/OrderDisplayFinancialStatus
PAID_STATUSES = frozenset({"PAID", "PARTIALLY_PAID", "PARTIALLY_REFUNDED", "REFUNDED"})
REFUNDED_STATUSES = frozenset({"PARTIALLY_REFUNDED", "REFUNDED"})
# https://shopify.dev/docs/api/admin-graphql/latest/enums/OrderDisplayFulfillmentStatus
FULFILLED_STATUS = "FULFILLED"
# Fulfillment orders that fulfillmentCreate accepts lines from.
FULFILLABLE_ORDER_STATUSES = frozenset({"OPEN", "IN_PROGRESS"})
# Fulfillments that no longer stand for a shipment: a tracking number on one of them is free.
VOID_FULFILLMENT_STATUSES = frozenset({"CANCELLED", "ERROR", "FAILURE"})
DEFAULT_VARIANT_TITLE = "Default Title"
SHIPPING_ADDRESS_KEYS: dict[str, str] = {  # Shopify MailingAddress field -> hub key
    "name": "name",
    "address1": "line1",
    "address2": "line2",
    "city": "city",
    "province": "region",
    "zip": "postal_code",
    "countryCodeV2": "country",
    "phone": "phone",
}


class ShopifyPayloadError(PayloadError):
    """A Shopify payload lacks a documented field or carries a value of the wrong type."""


# --------------------------------------------------------------------------------------------
# Scalars
# --------------------------------------------------------------------------------------------


def money(value: Any, *, what: str = "amount") -> Decimal:
    """Exact money from Shopify's decimal string; floats are refused, never rounded."""
    return exact_money(value, what=what, error=ShopifyPayloadError)


def timestamp(value: Any, *, what: str = "timestamp") -> datetime:
    """A timezone-aware UTC datetime from an ISO 8601 string (naive means UTC)."""
    if not isinstance(value, str):
        raise ShopifyPayloadError(f"{what}: expected an ISO 8601 string, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError as error:
        raise ShopifyPayloadError(f"{what}: {value!r} is not an ISO 8601 timestamp") from error
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError as error:  # "0001-01-01T00:00:00+01:00" is before year 1 in UTC
        raise ShopifyPayloadError(f"{what}: {value!r} is out of range in UTC") from error


def search_timestamp(moment: datetime) -> str:
    """A UTC ``...Z`` timestamp for Shopify's search syntax, floored to the second.

    Flooring widens the window by under a second, which only re-reads an order we dedupe.
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _mapping(node: Mapping[str, Any], key: str, *, what: str) -> Mapping[str, Any]:
    value = node.get(key)
    if not isinstance(value, Mapping):
        raise ShopifyPayloadError(f"{what}: '{key}' is missing or not an object")
    return value


def _optional_mapping(node: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    value = node.get(key)
    return value if isinstance(value, Mapping) else None


def _required_text(node: Mapping[str, Any], key: str, *, what: str) -> str:
    value = node.get(key)
    if not isinstance(value, str) or not value:
        raise ShopifyPayloadError(f"{what}: '{key}' is missing")
    return value


def _gid(node: Mapping[str, Any] | None) -> str | None:
    return _text(node.get("id")) if node is not None else None


# --------------------------------------------------------------------------------------------
# Orders
# --------------------------------------------------------------------------------------------


def connection_nodes(connection: Any, *, what: str) -> list[Mapping[str, Any]]:
    """The ``nodes`` of a GraphQL connection, checked to be objects."""
    if not isinstance(connection, Mapping) or not isinstance(connection.get("nodes"), list):
        raise ShopifyPayloadError(f"{what}: expected a connection with 'nodes'")
    nodes = connection["nodes"]
    if not all(isinstance(node, Mapping) for node in nodes):
        raise ShopifyPayloadError(f"{what}: every node must be an object")
    return list(nodes)


def next_page_cursor(connection: Any) -> str | None:
    """``endCursor`` when ``hasNextPage``, else None: the scan is complete."""
    info = connection.get("pageInfo") if isinstance(connection, Mapping) else None
    if not isinstance(info, Mapping) or info.get("hasNextPage") is not True:
        return None
    cursor = info.get("endCursor")
    if not isinstance(cursor, str) or not cursor:
        raise ShopifyPayloadError("pageInfo says there is a next page but gives no endCursor")
    return cursor


def order_flags(financial: str | None, fulfillment: str | None) -> dict[str, bool]:
    """Shopify's display statuses normalised to the hub's flags."""
    return {
        "paid": financial in PAID_STATUSES,
        "refunded": financial in REFUNDED_STATUSES,
        "fulfilled": fulfillment == FULFILLED_STATUS,
    }


def map_line(node: Mapping[str, Any]) -> ImportLine:
    """One ``LineItem``: ``currentQuantity`` (after refunds and removals), never ``quantity``."""
    line_id = _required_text(node, "id", what="line item")
    what = f"line item {line_id}"
    quantity = node.get("currentQuantity")
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise ShopifyPayloadError(f"{what}: 'currentQuantity' must be an integer")
    prices = _mapping(node, "originalUnitPriceSet", what=what)
    shop_price = _mapping(prices, "shopMoney", what=what)
    presentment = _optional_mapping(prices, "presentmentMoney")
    return ImportLine(
        external_line_id=line_id,
        quantity=quantity,
        unit_price=money(shop_price.get("amount"), what=f"{what} unit price"),
        sku=_text(node.get("sku")),
        external_listing_id=_gid(_optional_mapping(node, "product")),
        external_variant_id=_gid(_optional_mapping(node, "variant")),
        title=_text(node.get("name")) or "",
        unit_price_presentment=(
            money(presentment.get("amount"), what=f"{what} presentment unit price")
            if presentment is not None
            else None
        ),
    )


def map_shipping_address(node: Mapping[str, Any] | None) -> dict[str, Any]:
    """A ``MailingAddress`` under the hub's neutral keys; absent fields are left out, and so
    are values that are not text (every MailingAddress field is a String; a number or an
    object there could not even be stored as JSON)."""
    if node is None:
        return {}
    return {
        ours: value
        for theirs, ours in SHIPPING_ADDRESS_KEYS.items()
        if (value := _text(node.get(theirs))) is not None
    }


def map_order(
    node: Mapping[str, Any],
    *,
    shop_id: int,
    line_nodes: Sequence[Mapping[str, Any]] | None = None,
) -> ImportOrder:
    """One ``Order`` node; ``line_nodes`` are all its lines when they took more than one page."""
    order_id = _required_text(node, "id", what="order")
    what = f"order {order_id}"
    financial = node.get("displayFinancialStatus")
    fulfillment = node.get("displayFulfillmentStatus")
    totals = _mapping(node, "currentTotalPriceSet", what=what)
    shop_total = _mapping(totals, "shopMoney", what=what)
    presentment = _optional_mapping(totals, "presentmentMoney")
    address = _optional_mapping(node, "shippingAddress")
    customer = _optional_mapping(node, "customer")
    if line_nodes is None:
        line_nodes = connection_nodes(node.get("lineItems"), what=f"{what} lineItems")
    return ImportOrder(
        shop_id=shop_id,
        external_id=order_id,
        external_number=_required_text(node, "name", what=what),
        external_status=f"{financial or ''}/{fulfillment or ''}",
        external_updated_at=timestamp(node.get("updatedAt"), what=f"{what} updatedAt"),
        placed_at=timestamp(node.get("createdAt"), what=f"{what} createdAt"),
        currency=_required_text(shop_total, "currencyCode", what=f"{what} total"),
        total=money(shop_total.get("amount"), what=f"{what} total"),
        lines=tuple(map_line(line) for line in line_nodes),
        cancelled=node.get("cancelledAt") is not None,
        presentment_currency=_text(presentment.get("currencyCode")) if presentment else None,
        total_presentment=(
            money(presentment.get("amount"), what=f"{what} presentment total")
            if presentment
            else None
        ),
        customer_name=(
            _text(address.get("name") if address else None)
            or _text(customer.get("displayName") if customer else None)
        ),
        customer_email=_text(node.get("email")),
        shipping_address=map_shipping_address(address),
        **order_flags(
            financial if isinstance(financial, str) else None,
            fulfillment if isinstance(fulfillment, str) else None,
        ),
    )


# --------------------------------------------------------------------------------------------
# Listings and stock
# --------------------------------------------------------------------------------------------


def map_variant(node: Mapping[str, Any]) -> ListingVariant:
    """A ``ProductVariant``: the product is the listing, the variant and its inventory item
    are what stock and orders bind to. Titles read "Product / Variant" unless Shopify's
    placeholder "Default Title" would be the variant part."""
    variant_id = _required_text(node, "id", what="product variant")
    what = f"product variant {variant_id}"
    product = _mapping(node, "product", what=what)
    price = node.get("price")
    return ListingVariant(
        listing_id=_required_text(product, "id", what=f"{what} product"),
        variant_id=variant_id,
        inventory_item_id=_gid(_optional_mapping(node, "inventoryItem")),
        sku=_text(node.get("sku")),
        title=_variant_title(_text(product.get("title")), _text(node.get("title"))),
        price=money(price, what=f"{what} price") if price is not None else None,
    )


def _variant_title(product: str | None, variant: str | None) -> str:
    if variant and variant != DEFAULT_VARIANT_TITLE:
        return f"{product} / {variant}" if product else variant
    return product or variant or ""


def inventory_set_input(levels: Sequence[StockLevel], *, location_id: str) -> dict[str, Any]:
    """``InventorySetQuantitiesInput``: absolute "available" quantities with compare-and-swap.

    ``changeFromQuantity`` is mandatory from 2026-04: our expected quantity, or null to skip the
    check for that item (https://shopify.dev/docs/api/admin-graphql/latest/input-objects/InventoryQuantityInput).
    """
    return {
        "name": "available",
        "reason": "correction",
        "quantities": [
            {
                "inventoryItemId": level.item_id,
                "locationId": location_id,
                "quantity": level.quantity,
                "changeFromQuantity": level.expected_quantity,
            }
            for level in levels
        ],
    }


def money_string(value: Decimal, *, what: str = "price") -> str:
    """A ``Money`` input exactly as given: fixed-point digits of the Decimal, never a float,
    never rounded (``Decimal("12.99")`` -> ``"12.99"``, ``Decimal("1E+3")`` -> ``"1000"``).

    Raises ``ValueError`` for NaN or infinity, which no amount can be."""
    if not isinstance(value, Decimal) or not value.is_finite():
        raise ValueError(f"{what}: {value!r} is not a finite Decimal amount")
    return format(value, "f")


def variants_price_input(levels: Sequence[PriceLevel]) -> list[dict[str, Any]]:
    """``[ProductVariantsBulkInput!]``: the variant GID and its absolute price, nothing else
    (https://shopify.dev/docs/api/admin-graphql/latest/input-objects/ProductVariantsBulkInput)."""
    return [
        {"id": level.item_id, "price": money_string(level.price, what=f"{level.item_id} price")}
        for level in levels
    ]


def updated_variant_ids(payload: Mapping[str, Any]) -> set[str]:
    """The variant GIDs a ``productVariantsBulkUpdate`` payload reports as updated."""
    nodes = payload.get("productVariants")
    return {
        node["id"]
        for node in (nodes if isinstance(nodes, list) else [])
        if isinstance(node, Mapping) and isinstance(node.get("id"), str)
    }


def available_quantities(nodes: Iterable[Any]) -> dict[str, int]:
    """Inventory item GID -> "available" at the location, from ``nodes(ids:)``.

    Items that are unknown (null nodes) or not stocked at the location (null level) are left
    out rather than reported as 0: "we could not read it" is not "there are none".
    """
    levels: dict[str, int] = {}
    for node in nodes:
        if not isinstance(node, Mapping) or not _text(node.get("id")):
            continue
        level = _optional_mapping(node, "inventoryLevel")
        quantities = level.get("quantities") if level else None
        for quantity in quantities if isinstance(quantities, list) else ():
            if isinstance(quantity, Mapping) and quantity.get("name") == "available":
                value = quantity.get("quantity")
                if isinstance(value, int) and not isinstance(value, bool):
                    levels[node["id"]] = value
    return levels


# --------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------


def media_ids(product: Mapping[str, Any]) -> list[str]:
    """The ids of a product's media, in gallery order."""
    nodes = connection_nodes(product.get("media"), what=f"product {product.get('id')} media")
    return [node["id"] for node in nodes if _text(node.get("id"))]


# --------------------------------------------------------------------------------------------
# Fulfillment
# --------------------------------------------------------------------------------------------


def fulfillment_with_tracking(order: Mapping[str, Any], tracking_number: str) -> str | None:
    """The id of a standing fulfillment of ``order`` that already carries ``tracking_number``."""
    fulfillments = order.get("fulfillments")
    for fulfillment in fulfillments if isinstance(fulfillments, list) else ():
        if not isinstance(fulfillment, Mapping):
            continue
        if fulfillment.get("status") in VOID_FULFILLMENT_STATUSES:
            continue
        infos = fulfillment.get("trackingInfo")
        for info in infos if isinstance(infos, list) else ():
            if isinstance(info, Mapping) and info.get("number") == tracking_number:
                return _text(fulfillment.get("id"))
    return None


def line_items_by_fulfillment_order(
    order: Mapping[str, Any], lines: Sequence[FulfillmentLineRef]
) -> list[dict[str, Any]]:
    """``lineItemsByFulfillmentOrder`` for our order lines (LineItem GIDs and quantities).

    Each requested quantity is taken from the open fulfillment order lines of that LineItem,
    in Shopify's order, up to their ``remainingQuantity``. Raises ``ShopifyPayloadError`` when
    a line is not on the order or has fewer units left to fulfil than requested.
    """
    wanted: dict[str, int] = {}
    for line in lines:
        wanted[line.external_line_id] = wanted.get(line.external_line_id, 0) + line.quantity
    groups: dict[str, list[dict[str, Any]]] = {}
    for fulfillment_order in _fulfillable_orders(order):
        for item in connection_nodes(fulfillment_order.get("lineItems"), what="fulfillment order"):
            line_id = _gid(_optional_mapping(item, "lineItem"))
            remaining = item.get("remainingQuantity")
            if line_id not in wanted or not isinstance(remaining, int) or remaining <= 0:
                continue
            take = min(wanted[line_id], remaining)
            if take <= 0:
                continue
            wanted[line_id] -= take
            groups.setdefault(fulfillment_order["id"], []).append(
                {"id": item["id"], "quantity": take}
            )
    short = {line_id: left for line_id, left in wanted.items() if left > 0}
    if short:
        detail = ", ".join(f"{line_id} ({left} more)" for line_id, left in sorted(short.items()))
        raise ShopifyPayloadError(
            f"order {order.get('id')}: nothing or too little left to fulfil for {detail}"
        )
    if not groups:
        raise ShopifyPayloadError(f"order {order.get('id')}: no line to fulfil was requested")
    return [
        {"fulfillmentOrderId": fulfillment_order_id, "fulfillmentOrderLineItems": items}
        for fulfillment_order_id, items in groups.items()
    ]


def fulfillment_input(order: Mapping[str, Any], request: FulfillmentRequest) -> dict[str, Any]:
    """``FulfillmentInput`` for ``request`` against the order's open fulfillment orders
    (https://shopify.dev/docs/api/admin-graphql/latest/input-objects/FulfillmentInput)."""
    tracking = {"company": request.carrier, "number": request.tracking_number}
    if request.tracking_url:
        tracking["url"] = request.tracking_url
    return {
        "lineItemsByFulfillmentOrder": line_items_by_fulfillment_order(order, request.lines),
        "trackingInfo": tracking,
        "notifyCustomer": request.notify_customer,
    }


def _fulfillable_orders(order: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    nodes = connection_nodes(order.get("fulfillmentOrders"), what="order fulfillmentOrders")
    return [
        node
        for node in nodes
        if node.get("status") in FULFILLABLE_ORDER_STATUSES and _text(node.get("id"))
    ]


def user_error_messages(errors: Iterable[Any]) -> str:
    """Shopify's userErrors as one readable line: "field.path: message (CODE)"."""
    parts = []
    for error in errors:
        if not isinstance(error, Mapping):
            continue
        field = error.get("field")
        where = ".".join(str(part) for part in field) if isinstance(field, list) else ""
        code = error.get("code")
        text = f"{where}: {error.get('message')}" if where else str(error.get("message"))
        parts.append(f"{text} ({code})" if code else text)
    return "; ".join(parts)


# --------------------------------------------------------------------------------------------
# Onboarding: shop domains, granted scopes, the shop's identity, webhook subscriptions
# --------------------------------------------------------------------------------------------

# A shop is addressed by its permanent myshopify domain; Shopify's own app libraries accept
# only this shape before building an authorization URL or trusting a callback's ``shop``
# (https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens/authorization-code-grant,
# "Security checks").
MYSHOPIFY_DOMAIN = re.compile(r"[a-z0-9][a-z0-9-]*\.myshopify\.com")

# REST topic names (as ``X-Shopify-Topic`` carries them) -> GraphQL ``WebhookSubscriptionTopic``
# (https://shopify.dev/docs/api/admin-graphql/latest/enums/WebhookSubscriptionTopic).
WEBHOOK_TOPIC_ENUMS: dict[str, str] = {
    "app/uninstalled": "APP_UNINSTALLED",
    "fulfillments/create": "FULFILLMENTS_CREATE",
    "fulfillments/update": "FULFILLMENTS_UPDATE",
    "inventory_levels/update": "INVENTORY_LEVELS_UPDATE",
    "orders/cancelled": "ORDERS_CANCELLED",
    "orders/create": "ORDERS_CREATE",
    "orders/delete": "ORDERS_DELETE",
    "orders/edited": "ORDERS_EDITED",
    "orders/fulfilled": "ORDERS_FULFILLED",
    "orders/paid": "ORDERS_PAID",
    "orders/partially_fulfilled": "ORDERS_PARTIALLY_FULFILLED",
    "orders/updated": "ORDERS_UPDATED",
    "products/create": "PRODUCTS_CREATE",
    "products/delete": "PRODUCTS_DELETE",
    "products/update": "PRODUCTS_UPDATE",
    "shop/update": "SHOP_UPDATE",
}
_WEBHOOK_TOPIC_NAMES = {enum: name for name, enum in WEBHOOK_TOPIC_ENUMS.items()}


@dataclass(frozen=True)
class ShopIdentity:
    """What a fresh installation reads about the shop: names, currency, the stock location."""

    domain: str
    name: str
    currency: str | None
    location_id: str | None  # the first active location; None when the shop has none


def myshopify_domain(value: Any) -> str | None:
    """The lower-cased ``*.myshopify.com`` host in ``value``, or None if it is anything else
    (a custom domain, a URL, a path, another host)."""
    if not isinstance(value, str):
        return None
    host = value.strip().lower()
    return host if MYSHOPIFY_DOMAIN.fullmatch(host) else None


def granted_scopes(scope: Any) -> tuple[str, ...]:
    """The access token response's comma-separated ``scope`` as a tuple, blanks dropped."""
    if not isinstance(scope, str):
        return ()
    return tuple(part.strip() for part in scope.split(",") if part.strip())


def webhook_topic_enum(topic: str) -> str:
    """``orders/create`` -> ``ORDERS_CREATE``: the table first, else Shopify's naming rule."""
    return WEBHOOK_TOPIC_ENUMS.get(topic) or topic.replace("/", "_").upper()


def webhook_topic_name(enum: str) -> str:
    """``ORDERS_CREATE`` -> ``orders/create``; a topic we do not know keeps its enum name (the
    underscores cannot be split back into resource and event without the table)."""
    return _WEBHOOK_TOPIC_NAMES.get(enum, enum)


def map_webhook_subscription(node: Mapping[str, Any]) -> WebhookSubscription:
    """A ``WebhookSubscription`` node: ``uri`` (2026), else the deprecated ``endpoint`` /
    ``callbackUrl``. Shopify has no disabled state (it deletes), so a listed one is active."""
    subscription_id = _required_text(node, "id", what="webhook subscription")
    what = f"webhook subscription {subscription_id}"
    endpoint = _optional_mapping(node, "endpoint")
    address = (
        _text(node.get("uri"))
        or (_text(endpoint.get("callbackUrl")) if endpoint is not None else None)
        or _text(node.get("callbackUrl"))
    )
    if address is None:
        raise ShopifyPayloadError(f"{what}: 'uri' is missing")
    return WebhookSubscription(
        id=subscription_id,
        topic=webhook_topic_name(_required_text(node, "topic", what=what)),
        address=address,
        active=True,
    )


def shop_identity(data: Mapping[str, Any]) -> ShopIdentity:
    """The ``ShopIdentity`` query's answer: the shop and its first active location."""
    shop = _mapping(data, "shop", what="shop identity")
    domain = _required_text(shop, "myshopifyDomain", what="shop")
    locations = connection_nodes(data.get("locations"), what="shop locations")
    active = next(
        (node for node in locations if node.get("isActive") is True and _text(node.get("id"))),
        None,
    )
    return ShopIdentity(
        domain=domain,
        name=_text(shop.get("name")) or domain,
        currency=_text(shop.get("currencyCode")),
        location_id=_gid(active),
    )
