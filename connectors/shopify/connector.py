"""The Shopify connector: the hub's ``MarketplaceConnector`` over the GraphQL Admin API.

It transports and translates, nothing more: every document it sends is in ``queries.py``,
every translation in ``mappers.py``, every failure is classified by ``client.py`` into the
contract's error classes, and the sync layer decides what to do about them.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import httpx

from connectors.contract import (
    AuthorizationCallback,
    AuthorizationRejected,
    AuthorizationStart,
    Capabilities,
    ConnectedShop,
    ConnectorConfig,
    FulfillmentRequest,
    FulfillmentResult,
    ImageLimits,
    ImageRef,
    ListingPage,
    NotFound,
    OrderPage,
    PermanentError,
    PriceLevel,
    RateLimitModel,
    ShopContext,
    StaleStock,
    StockLevel,
    StockPushResult,
    TransientError,
    WebhookEnvelope,
    WebhookManagement,
    WebhookSubscription,
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
# ProductVariantsBulkUpdateUserErrorCode values that mean the product or a variant is gone
# (https://shopify.dev/docs/api/admin-graphql/latest/enums/ProductVariantsBulkUpdateUserErrorCode).
PRICE_NOT_FOUND_CODES = frozenset({"PRODUCT_DOES_NOT_EXIST", "PRODUCT_VARIANT_DOES_NOT_EXIST"})

# What the hub needs, and no more (https://shopify.dev/docs/api/usage/access-scopes: "Any scope
# that writes a resource also grants read access to it"): orders read, products written (media),
# inventory written (stock), locations read (the stock location), merchant-managed fulfillment
# orders written (fulfillmentCreate). Override with app_credentials["scopes"] (comma-separated).
DEFAULT_SCOPES = (
    "read_orders",
    "write_products",
    "write_inventory",
    "read_locations",
    "write_merchant_managed_fulfillment_orders",
)
# The topics the hub subscribes to, by the names X-Shopify-Topic carries.
WEBHOOK_TOPICS = ("orders/create", "orders/updated", "app/uninstalled")
WEBHOOK_FORMAT = "JSON"

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
    """One instance serves every Shopify shop; it holds app-level settings and HTTP clients.

    Besides the ``MarketplaceConnector`` it is the ``ShopAuthorization`` (Shopify's OAuth
    authorization code grant) and the ``WebhookRegistry`` (subscriptions over GraphQL).
    """

    webhook_topics: tuple[str, ...] = WEBHOOK_TOPICS

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
        client_id = config.app_credentials.get("client_id")
        self._client_id = client_id if isinstance(client_id, str) and client_id else None
        self._scopes = _configured_scopes(config.app_credentials.get("scopes"))
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

    # -- prices -------------------------------------------------------------------------------
    def price_batches(self, levels: Sequence[PriceLevel]) -> list[list[PriceLevel]]:
        """One group per product (``productVariantsBulkUpdate`` takes one), in the order each
        product first appears, input order inside, cut into chunks of at most 250. Pure."""
        return _group_by_listing(levels, queries.PRICE_BATCH_SIZE)

    def set_prices(
        self, shop: ShopContext, levels: Sequence[PriceLevel], *, idempotency_key: str
    ) -> None:
        """Absolute prices for variants of one product, in the shop's currency, exactly as
        given (decimal strings, nothing rounded): one ``productVariantsBulkUpdate``, all or
        nothing.

        Setting an absolute price twice is setting it once, so ``idempotency_key`` is not
        needed and not sent. Raises ``ValueError`` for a group that
        ``price_batches`` would not make (several products, more than 250 variants) or a
        non-finite price; ``NotFound`` when the product or a variant is gone; ``PermanentError``
        with Shopify's messages for any other userError.
        """
        del idempotency_key
        if not levels:
            return
        products = list(dict.fromkeys(level.listing_id for level in levels))
        if len(products) != 1:
            raise ValueError(
                "shopify sets prices for one product per call, got variants of "
                f"{len(products)} products ({', '.join(products)}); split with price_batches"
            )
        if len(levels) > queries.PRICE_BATCH_SIZE:
            raise ValueError(
                f"shopify takes at most {queries.PRICE_BATCH_SIZE} variant prices per call, got "
                f"{len(levels)}; split with price_batches"
            )
        product_id = products[0]
        variants = mappers.variants_price_input(levels)
        data = self._client.execute(
            shop,
            queries.PRODUCT_VARIANTS_BULK_UPDATE,
            {"productId": product_id, "variants": variants},
        )
        payload = _raise_price_errors(shop, product_id, _payload(data, "productVariantsBulkUpdate"))
        missing = {level.item_id for level in levels} - mappers.updated_variant_ids(payload)
        if missing:
            raise PermanentError(
                f"shopify shop {shop.external_id}: setting prices of product {product_id}: "
                f"Shopify did not report variants {', '.join(sorted(missing))} as updated",
                marketplace=MARKETPLACE,
            )

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

    # -- onboarding: the authorization code grant ---------------------------------------------
    # https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens/authorization-code-grant
    def authorization_url(self, start: AuthorizationStart) -> str:
        """The shop's consent page: ``https://{shop}/admin/oauth/authorize?client_id&scope&
        redirect_uri&state`` (``start.api_base_url`` replaces ``https://{shop}`` for sandboxes).

        An offline token is asked for (no ``grant_options[]``): the hub works without a user.
        Raises ``InvalidInput`` unless ``start.shop_hint`` is a ``*.myshopify.com`` domain.
        """
        shop = mappers.myshopify_domain(start.shop_hint)
        if shop is None:
            raise InvalidInput(
                f"shopify: {start.shop_hint!r} is not a shop domain; give the shop's "
                "permanent address, like example-shop.myshopify.com"
            )
        query = urlencode(
            {
                "client_id": self._require_client_id(),
                "scope": ",".join(self._scopes),
                "redirect_uri": start.redirect_uri,
                "state": start.state,
            }
        )
        return f"{_site(shop, start.api_base_url)}/admin/oauth/authorize?{query}"

    def callback_state(self, callback: AuthorizationCallback) -> str:
        """The callback's ``state`` once its ``hmac`` verifies with the client secret (or the
        previous one) and its ``shop`` is a myshopify domain. No I/O."""
        query = callback.query
        error = query.get("error")
        if error:
            detail = query.get("error_description") or error
            raise AuthorizationRejected(
                f"shopify authorization was not granted ({error}: {detail})",
                marketplace=MARKETPLACE,
            )
        missing = [name for name in ("code", "hmac", "shop", "state") if not query.get(name)]
        if missing:
            raise AuthorizationRejected(
                f"shopify authorization: the callback lacks {', '.join(missing)}",
                marketplace=MARKETPLACE,
            )
        webhooks.verify_query_signature(query, self._secrets)
        if mappers.myshopify_domain(query["shop"]) is None:
            raise AuthorizationRejected(
                f"shopify authorization: {query['shop']!r} is not a myshopify domain",
                marketplace=MARKETPLACE,
            )
        return query["state"]

    def complete_authorization(
        self, callback: AuthorizationCallback, start: AuthorizationStart
    ) -> ConnectedShop:
        """Check the callback against ``start`` (state, shop), exchange the code for an offline
        token, then read the shop and its first active location with that token."""
        state = self.callback_state(callback)
        if not hmac.compare_digest(state.encode(), start.state.encode()):
            raise AuthorizationRejected(
                "shopify authorization: the callback's state is not this authorization's",
                marketplace=MARKETPLACE,
            )
        shop = mappers.myshopify_domain(callback.query["shop"])
        if shop is None or shop != mappers.myshopify_domain(start.shop_hint):
            raise AuthorizationRejected(
                f"shopify authorization: the callback is for {callback.query['shop']!r}, "
                f"not the shop this installation started for ({start.shop_hint!r})",
                marketplace=MARKETPLACE,
            )
        granted = self._client.exchange_authorization_code(
            _site(shop, start.api_base_url),
            client_id=self._require_client_id(),
            client_secret=self._require_client_secret(),
            code=callback.query["code"],
        )
        token = granted["access_token"]
        scope = granted.get("scope") if isinstance(granted.get("scope"), str) else ""
        connected = ShopContext(
            shop_id=0,
            external_id=shop,
            credentials={"access_token": token},
            api_base_url=start.api_base_url,
        )
        data = self._client.execute(connected, queries.SHOP_IDENTITY)
        with _payload_errors(connected, "reading the newly connected shop"):
            identity = mappers.shop_identity(data)
        return ConnectedShop(
            external_id=shop,
            name=identity.name,
            credentials={"access_token": token, "scope": scope},
            api_base_url=start.api_base_url,
            location_id=identity.location_id,
            scopes=mappers.granted_scopes(scope),
            currency=identity.currency,
        )

    def _require_client_id(self) -> str:
        if self._client_id is None:
            raise PermanentError(
                "shopify: the app's client_id is not configured; set it beside client_secret",
                marketplace=MARKETPLACE,
            )
        return self._client_id

    def _require_client_secret(self) -> str:
        secret = self._secrets[0]
        if not isinstance(secret, str) or not secret:
            raise PermanentError(
                "shopify: the app's client_secret is not configured", marketplace=MARKETPLACE
            )
        return secret

    # -- webhook subscriptions ----------------------------------------------------------------
    def list_webhooks(self, shop: ShopContext) -> list[WebhookSubscription]:
        """Every subscription of the app on the shop, all pages, topics by their REST names."""
        found: list[WebhookSubscription] = []
        after: str | None = None
        while True:
            data = self._client.execute(shop, queries.WEBHOOK_SUBSCRIPTIONS, {"after": after})
            with _payload_errors(shop, "webhook subscriptions page"):
                connection = data.get("webhookSubscriptions")
                nodes = mappers.connection_nodes(connection, what="webhookSubscriptions")
                found.extend(mappers.map_webhook_subscription(node) for node in nodes)
                after = mappers.next_page_cursor(connection)
            if after is None:
                return found

    def create_webhook(
        self, shop: ShopContext, topic: str, address: str, *, secret: str | None
    ) -> WebhookSubscription:
        """``webhookSubscriptionCreate`` with ``uri``; ``secret`` is ignored (Shopify signs
        every delivery with the app's client secret). A duplicate topic and address comes back
        as a userError, hence a ``PermanentError``."""
        del secret
        data = self._client.execute(
            shop,
            queries.WEBHOOK_SUBSCRIPTION_CREATE,
            {
                "topic": mappers.webhook_topic_enum(topic),
                "subscription": {"uri": address, "format": WEBHOOK_FORMAT},
            },
        )
        what = f"subscribing to {topic}"
        payload = _raise_user_errors(shop, what, data, "webhookSubscriptionCreate")
        node = payload.get("webhookSubscription")
        if not isinstance(node, Mapping):
            raise PermanentError(
                f"shopify shop {shop.external_id}: {what}: no subscription was returned",
                marketplace=MARKETPLACE,
            )
        with _payload_errors(shop, what):
            return mappers.map_webhook_subscription(node)

    def enable_webhook(self, shop: ShopContext, subscription_id: str) -> WebhookSubscription:
        """Shopify has no disabled state (it deletes a failing subscription), so this returns
        the subscription unchanged, or raises ``NotFound`` when Shopify deleted it."""
        data = self._client.execute(shop, queries.WEBHOOK_SUBSCRIPTION, {"id": subscription_id})
        node = data.get("webhookSubscription")
        if not isinstance(node, Mapping):
            raise _not_found(shop, f"webhook subscription {subscription_id}")
        with _payload_errors(shop, f"webhook subscription {subscription_id}"):
            return mappers.map_webhook_subscription(node)

    # -- webhooks and lifecycle ---------------------------------------------------------------
    def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> WebhookEnvelope:
        return webhooks.verify_webhook(body, headers, self._secrets)

    def close(self) -> None:
        self._client.close()


def create(config: ConnectorConfig) -> ShopifyConnector:
    """The ``hub.connectors`` entry point: app credentials ``client_id``, ``client_secret``,
    ``client_secret_previous`` and optional ``scopes`` (comma-separated); API version from the
    config or 2026-04; the shared limiter from the config or an in-process one."""
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


def _configured_scopes(value: Any) -> tuple[str, ...]:
    """``app_credentials["scopes"]``: a comma-separated string or a list; DEFAULT_SCOPES if
    absent or empty."""
    if isinstance(value, str):
        parts = value.split(",")
    elif isinstance(value, list | tuple):
        parts = [str(part) for part in value]
    else:
        parts = []
    scopes = tuple(part.strip() for part in parts if part.strip())
    return scopes or DEFAULT_SCOPES


def _site(shop_domain: str, api_base_url: str | None) -> str:
    """Where the shop's admin lives: its own domain, or a sandbox standing in for it."""
    return api_base_url.rstrip("/") if api_base_url else f"https://{shop_domain}"


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


def _group_by_listing(levels: Sequence[PriceLevel], size: int) -> list[list[PriceLevel]]:
    """``group_stock_levels`` for prices, keyed by product: groups in the order their product
    first appears, input order inside, each cut into chunks of at most ``size``."""
    grouped: dict[str, list[PriceLevel]] = {}
    for level in levels:
        grouped.setdefault(level.listing_id, []).append(level)
    return [
        group[start : start + size]
        for group in grouped.values()
        for start in range(0, len(group), size)
    ]


def _raise_price_errors(
    shop: ShopContext, product_id: str, payload: Mapping[str, Any]
) -> Mapping[str, Any]:
    """The payload, or ``NotFound`` (product or variant gone) / ``PermanentError`` (any other
    userError, a negative price say) carrying Shopify's messages; nothing was applied."""
    errors = _user_errors(payload)
    if not errors:
        return payload
    codes = {error.get("code") for error in errors}
    message = mappers.user_error_messages(errors)
    what = f"shopify shop {shop.external_id}: setting prices of product {product_id}"
    error_class = NotFound if codes & PRICE_NOT_FOUND_CODES else PermanentError
    raise error_class(f"{what}: {message}", marketplace_message=message, marketplace=MARKETPLACE)


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
