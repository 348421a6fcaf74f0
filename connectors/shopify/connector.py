"""The Shopify connector: the hub's ``MarketplaceConnector`` over the GraphQL Admin API.

It transports and translates, nothing more: every document it sends is in ``queries.py``,
every translation in ``mappers.py``, every failure is classified by ``client.py`` into the
contract's error classes, and the sync layer decides what to do about them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import httpx

from connectors.contract import (
    Capabilities,
    ConnectorConfig,
    FulfillmentRequest,
    FulfillmentResult,
    ImageLimits,
    ImageRef,
    ListingPage,
    NotFound,
    OrderPage,
    PermanentError,
    RateLimitModel,
    ShopContext,
    StaleStock,
    StockLevel,
    StockPushResult,
    TransientError,
    WebhookEnvelope,
    WebhookManagement,
    group_stock_levels,
)
from connectors.ratelimit import InProcessRateLimiter, RateLimiter
from connectors.shopify import mappers, queries, webhooks
from connectors.shopify.client import MARKETPLACE, ShopifyGraphQLClient
from hub.domain.errors import InvalidInput
from hub.domain.orders import ImportOrder
from hub.domain.shops import PushKind

DEFAULT_API_VERSION = "2026-04"  # compare-and-swap and idempotency keys are mandatory from here
STALE_CODE = "CHANGE_FROM_QUANTITY_STALE"
# Shopify is still running an earlier request with this key: the same key may be sent again.
RETRY_LATER_CODES = frozenset({"IDEMPOTENCY_CONCURRENT_REQUEST"})

CAPABILITIES = Capabilities(
    marketplace=MARKETPLACE,
    push_kinds=(PushKind.STOCK, PushKind.PRICE, PushKind.IMAGES),
    stock_batch_size=queries.INVENTORY_BATCH_SIZE,
    # https://shopify.dev/docs/apps/build/online-store/product-media
    images=ImageLimits(
        max_images=None,
        max_width=4472,
        max_height=4472,
        max_pixels=20_000_000,
        max_bytes=None,
        formats=("png", "jpeg", "gif"),
    ),
    rate_limit=RateLimitModel.COST_BUCKET,
    webhook_management=WebhookManagement.API,
    orders_sorted_by_update=True,
)


class ShopifyConnector:
    """One instance serves every Shopify shop; it holds app-level settings and HTTP clients."""

    def __init__(
        self,
        config: ConnectorConfig,
        *,
        rate_limiter: RateLimiter | None = None,
        sleep: Callable[[float], None] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.capabilities: Capabilities = CAPABILITIES
        self._secrets = (
            config.app_credentials.get("client_secret"),
            config.app_credentials.get("client_secret_previous"),
        )
        self._client = ShopifyGraphQLClient(
            config,
            api_version=config.api_version or DEFAULT_API_VERSION,
            rate_limiter=rate_limiter or config.rate_limiter or InProcessRateLimiter(),
            sleep=sleep,
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"ShopifyConnector({self._client!r})"

    # -- orders -------------------------------------------------------------------------------
    def list_orders_changed(
        self, shop: ShopContext, *, since: datetime, cursor: str | None = None
    ) -> OrderPage:
        """One page of orders updated at or after ``since``, oldest change first."""
        data = self._client.execute(
            shop,
            queries.ORDERS_UPDATED_SINCE,
            {
                "first": queries.ORDERS_PAGE_SIZE,
                "after": cursor,
                "query": f"updated_at:>='{mappers.search_timestamp(since)}'",
            },
        )
        with _payload_errors(shop, "orders page"):
            connection = data.get("orders")
            orders = tuple(
                self._complete_order(shop, node)
                for node in mappers.connection_nodes(connection, what="orders")
            )
            return OrderPage(
                orders=orders,
                next_cursor=mappers.next_page_cursor(connection),
                high_water_mark=max((order.external_updated_at for order in orders), default=None),
            )

    def get_order(self, shop: ShopContext, external_id: str) -> ImportOrder:
        data = self._client.execute(shop, queries.ORDER_BY_ID, {"id": external_id})
        node = data.get("order")
        if not isinstance(node, Mapping):
            raise _not_found(shop, f"order {external_id}")
        with _payload_errors(shop, f"order {external_id}"):
            return self._complete_order(shop, node)

    def _complete_order(self, shop: ShopContext, node: Mapping[str, Any]) -> ImportOrder:
        """Map an order, first fetching the rest of its lines when they span several pages."""
        order_id = node.get("id")
        if not isinstance(order_id, str) or not order_id:
            raise mappers.ShopifyPayloadError("an order node has no id")
        first_page = node.get("lineItems")
        lines = mappers.connection_nodes(first_page, what=f"order {order_id} lineItems")
        after = mappers.next_page_cursor(first_page)
        while after is not None:
            data = self._client.execute(
                shop,
                queries.ORDER_LINE_ITEMS,
                {"id": order_id, "first": queries.LINE_ITEMS_PAGE_SIZE, "after": after},
            )
            order = data.get("order")
            if not isinstance(order, Mapping):
                raise _not_found(shop, f"order {order_id} (while reading its lines)")
            page = order.get("lineItems")
            lines.extend(mappers.connection_nodes(page, what=f"order {order_id} lineItems"))
            after = mappers.next_page_cursor(page)
        return mappers.map_order(node, shop_id=shop.shop_id, line_nodes=lines)

    # -- listings -----------------------------------------------------------------------------
    def list_listings(self, shop: ShopContext, *, cursor: str | None = None) -> ListingPage:
        data = self._client.execute(
            shop,
            queries.PRODUCT_VARIANTS,
            {"first": queries.VARIANTS_PAGE_SIZE, "after": cursor},
        )
        with _payload_errors(shop, "product variants page"):
            connection = data.get("productVariants")
            return ListingPage(
                variants=tuple(
                    mappers.map_variant(node)
                    for node in mappers.connection_nodes(connection, what="productVariants")
                ),
                next_cursor=mappers.next_page_cursor(connection),
            )

    # -- stock --------------------------------------------------------------------------------
    def stock_item_id(
        self,
        *,
        listing_id: str | None,
        variant_id: str | None,
        inventory_item_id: str | None,
        sku: str | None,
    ) -> str | None:
        """Quantities belong to the variant's inventory item (its GID)."""
        return inventory_item_id or None

    def stock_batches(self, levels: Sequence[StockLevel]) -> list[list[StockLevel]]:
        """Chunks of at most 250 in input order: ``inventorySetQuantities`` takes any inventory
        items of the shop's location together, so nothing needs grouping."""
        return group_stock_levels(levels, self.capabilities.stock_batch_size)

    def set_stock_levels(
        self, shop: ShopContext, levels: Sequence[StockLevel], *, idempotency_key: str
    ) -> StockPushResult:
        """Absolute "available" quantities at the shop's location, all or nothing.

        The key goes to Shopify's ``@idempotent``: a retry with the same key and variables
        returns the first result instead of applying twice. A compare-and-swap mismatch
        fails the whole mutation (``StaleStock``, nothing applied).
        """
        if len(levels) > self.capabilities.stock_batch_size:
            raise ValueError(
                f"shopify takes at most {self.capabilities.stock_batch_size} quantities per "
                f"call, got {len(levels)}; split the batch"
            )
        if not levels:
            return StockPushResult(applied=())
        data = self._client.execute(
            shop,
            queries.INVENTORY_SET_QUANTITIES,
            {
                "input": mappers.inventory_set_input(levels, location_id=_location(shop)),
                "key": idempotency_key,
            },
        )
        _raise_stock_errors(shop, _payload(data, "inventorySetQuantities"))
        return StockPushResult(applied=tuple(level.item_id for level in levels))

    def read_stock_levels(self, shop: ShopContext, item_ids: Sequence[str]) -> dict[str, int]:
        """Available quantities at the shop's location; unknown or unstocked items are absent."""
        location = _location(shop)
        levels: dict[str, int] = {}
        size = queries.INVENTORY_BATCH_SIZE
        for start in range(0, len(item_ids), size):
            data = self._client.execute(
                shop,
                queries.INVENTORY_LEVELS,
                {"ids": list(item_ids[start : start + size]), "locationId": location},
            )
            nodes = data.get("nodes")
            levels.update(mappers.available_quantities(nodes if isinstance(nodes, list) else []))
        return levels

    # -- images -------------------------------------------------------------------------------
    def replace_listing_images(
        self, shop: ShopContext, listing_id: str, images: Sequence[ImageRef]
    ) -> tuple[str, ...]:
        """Detach every current image of the product, then attach ``images`` in order.

        Returns the new media ids. Shopify fetches and processes the images asynchronously;
        detached files stay in the store's Files until cleaned up.
        """
        data = self._client.execute(shop, queries.PRODUCT_MEDIA, {"id": listing_id})
        product = data.get("product")
        if not isinstance(product, Mapping):
            raise _not_found(shop, f"product {listing_id}")
        with _payload_errors(shop, f"product {listing_id} media"):
            old_ids = mappers.media_ids(product)
        if old_ids:
            self._detach_media(shop, listing_id, old_ids)
        if not images:
            return ()
        return self._attach_media(shop, listing_id, images, exclude=set(old_ids))

    def _detach_media(self, shop: ShopContext, listing_id: str, media: Sequence[str]) -> None:
        data = self._client.execute(
            shop,
            queries.FILE_UPDATE,
            {"files": [{"id": media_id, "referencesToRemove": [listing_id]} for media_id in media]},
        )
        _raise_user_errors(shop, f"detaching media from product {listing_id}", data, "fileUpdate")

    def _attach_media(
        self, shop: ShopContext, listing_id: str, images: Sequence[ImageRef], exclude: set[str]
    ) -> tuple[str, ...]:
        data = self._client.execute(
            shop,
            queries.PRODUCT_ADD_MEDIA,
            {
                "product": {"id": listing_id},
                "media": [
                    {"originalSource": image.url, "alt": image.alt, "mediaContentType": "IMAGE"}
                    for image in images
                ],
            },
        )
        what = f"adding media to product {listing_id}"
        payload = _raise_user_errors(shop, what, data, "productUpdate")
        product = payload.get("product")
        if not isinstance(product, Mapping):
            raise _not_found(shop, f"product {listing_id}")
        with _payload_errors(shop, what):
            return tuple(media for media in mappers.media_ids(product) if media not in exclude)

    # -- fulfillment --------------------------------------------------------------------------
    def create_fulfillment(
        self, shop: ShopContext, request: FulfillmentRequest
    ) -> FulfillmentResult:
        """Reads the order's fulfillments first: a tracking number already there is not sent
        again (fulfillmentCreate has no idempotency key and may notify the customer)."""
        data = self._client.execute(
            shop, queries.ORDER_FULFILLMENT_STATE, {"id": request.order_external_id}
        )
        order = data.get("order")
        if not isinstance(order, Mapping):
            raise _not_found(shop, f"order {request.order_external_id}")
        existing = mappers.fulfillment_with_tracking(order, request.tracking_number)
        if existing is not None:
            return FulfillmentResult(external_id=existing, already_existed=True)
        what = f"fulfilling order {request.order_external_id}"
        with _payload_errors(shop, what):
            fulfillment_input = mappers.fulfillment_input(order, request)
        created = self._client.execute(
            shop, queries.FULFILLMENT_CREATE, {"fulfillment": fulfillment_input}
        )
        payload = _raise_user_errors(shop, what, created, "fulfillmentCreate")
        fulfillment = payload.get("fulfillment")
        fulfillment_id = fulfillment.get("id") if isinstance(fulfillment, Mapping) else None
        if not isinstance(fulfillment_id, str):
            raise PermanentError(
                f"shopify shop {shop.external_id}: {what}: no fulfillment was returned",
                marketplace=MARKETPLACE,
            )
        return FulfillmentResult(external_id=fulfillment_id, already_existed=False)

    # -- webhooks and lifecycle ---------------------------------------------------------------
    def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> WebhookEnvelope:
        return webhooks.verify_webhook(body, headers, self._secrets)

    def close(self) -> None:
        self._client.close()


def create(config: ConnectorConfig) -> ShopifyConnector:
    """The ``hub.connectors`` entry point: app credentials ``client_secret`` and
    ``client_secret_previous``; API version from the config or 2026-04; the shared limiter
    from the config or an in-process one."""
    return ShopifyConnector(config)


# --------------------------------------------------------------------------------------------
# Helpers: payload checks and error translation
# --------------------------------------------------------------------------------------------


@contextmanager
def _payload_errors(shop: ShopContext, what: str) -> Iterator[None]:
    """A payload that does not have the documented shape is a permanent error, with detail."""
    try:
        yield
    except (mappers.ShopifyPayloadError, InvalidInput) as error:
        raise PermanentError(
            f"shopify shop {shop.external_id}: {what}: {error}",
            marketplace_message=str(error),
            marketplace=MARKETPLACE,
        ) from error


def _not_found(shop: ShopContext, what: str) -> NotFound:
    return NotFound(
        f"shopify shop {shop.external_id}: {what} does not exist (any more)",
        marketplace=MARKETPLACE,
    )


def _location(shop: ShopContext) -> str:
    if not shop.location_id:
        raise PermanentError(
            f"shopify shop {shop.external_id} (id {shop.shop_id}): no location is set; "
            "choose the shop's stock location before pushing stock",
            marketplace=MARKETPLACE,
        )
    return shop.location_id


def _payload(data: Mapping[str, Any], field: str) -> Mapping[str, Any]:
    payload = data.get(field)
    if not isinstance(payload, Mapping):
        raise PermanentError(f"shopify: {field} returned no payload", marketplace=MARKETPLACE)
    return payload


def _user_errors(payload: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    errors = payload.get("userErrors")
    return [error for error in errors if isinstance(error, Mapping)] if errors else []


def _raise_user_errors(
    shop: ShopContext, what: str, data: Mapping[str, Any], field: str
) -> Mapping[str, Any]:
    """The mutation's payload, or a PermanentError carrying Shopify's userErrors."""
    payload = _payload(data, field)
    errors = _user_errors(payload)
    if errors:
        message = mappers.user_error_messages(errors)
        raise PermanentError(
            f"shopify shop {shop.external_id}: {what}: {message}",
            marketplace_message=message,
            marketplace=MARKETPLACE,
        )
    return payload


def _raise_stock_errors(shop: ShopContext, payload: Mapping[str, Any]) -> None:
    errors = _user_errors(payload)
    if not errors:
        return
    codes = {error.get("code") for error in errors}
    message = mappers.user_error_messages(errors)
    what = f"shopify shop {shop.external_id}: setting stock"
    if STALE_CODE in codes:
        raise StaleStock(
            f"{what}: quantities changed on Shopify since they were read; nothing was applied "
            f"({message})",
            marketplace=MARKETPLACE,
        )
    if codes & RETRY_LATER_CODES:
        raise TransientError(f"{what}: {message}", marketplace=MARKETPLACE)
    raise PermanentError(f"{what}: {message}", marketplace_message=message, marketplace=MARKETPLACE)
