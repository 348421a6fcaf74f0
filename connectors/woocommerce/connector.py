"""The WooCommerce connector: the hub's ``MarketplaceConnector`` over the REST API ``wc/v3``.

It transports and translates, nothing more: every translation is in ``mappers.py``, every
failure is classified by ``client.py`` into the contract's error classes, webhooks are read by
``webhooks.py``, and the sync layer decides what to do about the rest.

Orders. ``GET /orders?modified_after=…&dates_are_gmt=true&orderby=id&order=asc`` pages by
number; the list cannot be sorted by modification time, so ``capabilities.orders_sorted_by_update``
is False: each ``OrderPage.high_water_mark`` is the newest ``date_modified_gmt`` of that page,
and the caller must advance its cursor to the largest of them only after the whole scan (a
page's mark says nothing about orders on later pages). An order that leaves the result set
mid-scan (trashed, deleted) shifts later ones up a page; the scan notices the shrinking
``X-WP-Total`` and re-reads the pages they slid onto (``paging.pages_to_reread``).
``modified_after`` is exclusive in WordPress, so it is sent one second before ``since``
(floored to the second): an order changed exactly at ``since`` is read again, never missed.
Sites too old to know ``modified_after`` ignore it; orders older than the window are dropped
client-side, so the answer stays right (only slower).

Refunds. An order's ``refunds`` list holds only ids and amounts; its lines' quantities are net
of refunds only after ``GET /orders/{id}/refunds``, which lists refund lines with negative
quantities and the refunded order line in ``_refunded_item_id``. That call is made only for
orders that have refunds.

Stock. ``StockLevel.item_id`` is ``"<product_id>"`` for a simple product (or a variable
product's own stock) and ``"<product_id>:<variation_id>"`` for a variation. A push is one
``POST /products/batch`` for products and one ``POST /products/{parent}/variations/batch``
per parent, each at most 100 items (``capabilities.stock_batch_size``), each item sent with
``manage_stock: true`` and, when the level carries a price (the listing kind), the
``regular_price`` string in the same item (see ``mappers.batch_requests``); ``price=None``
sends no price, so WooCommerce keeps its own. ``stock_batches`` groups levels by
that endpoint, so each ``set_stock_levels`` call it plans is exactly one HTTP request (100
variable products of 100 variations each: 100 calls). There is no compare-and-swap
(``expected_quantity`` is ignored) and no idempotency key; quantities are absolute, so a
resend is harmless. Per-item errors raise ``StockPushFailed`` (a ``PermanentError``) naming
each item, after the other items were applied; a refused item keeps its old quantity and price
(WooCommerce saves an item whole or not at all). WooCommerce keeps no price on a variable
product itself (``prepare_object_for_database`` clears it): prices belong on variations.

Tracking. With the Shipment Tracking extension (detected per site, remembered for an hour)
a tracking item is added; without it, an order note (``customer_note`` when the customer is to
be notified). Either way the order then moves to ``completed`` (which sends WooCommerce's
"Completed order" e-mail, where the extension prints its tracking links) unless it already is,
or is closed. Existing tracking items and notes are read first, so the same tracking number is
never written twice, and the writes are sent once (no blind resend). WooCommerce core has no
per-line fulfilment: the request's lines are not sent.

Onboarding (https://woocommerce.github.io/woocommerce-rest-api-docs/#rest-api-keys). The seller
is sent to the store's ``/wc-auth/v1/authorize`` with our state as ``user_id``; once the admin
approves, WooCommerce POSTs ``{key_id, user_id, consumer_key, consumer_secret,
key_permissions}`` to our ``callback_url`` (and wants exactly 200 back, or it deletes the keys),
then sends the browser to ``return_url?success=1&user_id=…``. The keys are proved with one
authenticated read of the store's currency setting (a refusal is ``AuthorizationRejected``)
and the site title is read from the WordPress index. Keys a seller pastes go through the same
check plus a write probe (an empty ``POST /products/batch``), since nothing else says whether
a pasted key may write.

Webhook subscriptions (https://woocommerce.github.io/woocommerce-rest-api-docs/#webhooks). Each
is created active with the shop's own secret (WooCommerce signs with it; without one it picks a
secret nobody can read back); WooCommerce disables one after repeated failed deliveries and
``enable_webhook`` puts it back.
"""

from __future__ import annotations

import hmac
import time
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx

from connectors.contract import (
    AuthError,
    AuthorizationCallback,
    AuthorizationRejected,
    AuthorizationStart,
    Capabilities,
    ConnectedShop,
    ConnectorConfig,
    ConnectorError,
    FulfillmentRequest,
    FulfillmentResult,
    ImageLimits,
    ImageRef,
    ListingPage,
    ListingVariant,
    NotFound,
    OrderPage,
    PermanentError,
    RateLimitModel,
    ShopContext,
    StockLevel,
    StockPushResult,
    WebhookEnvelope,
    WebhookManagement,
    WebhookSubscription,
    group_stock_levels,
)
from connectors.ratelimit import InProcessRateLimiter, RateLimiter
from connectors.woocommerce import mappers, webhooks
from connectors.woocommerce.client import (
    API_PATH,
    DEFAULT_REQUESTS_PER_SECOND,
    MARKETPLACE,
    TRACKING_API_PATH,
    WooCommerceClient,
    WooResponse,
    base_url,
)
from connectors.woocommerce.paging import (
    TOTAL_HEADER,
    CursorError,
    OrderScanCursor,
    has_next_page,
    header_int,
    pages_to_reread,
)
from hub.domain.errors import InvalidInput
from hub.domain.orders import ImportOrder
from hub.domain.shops import PushKind

PAGE_SIZE = 100  # WordPress caps per_page at 100
STOCK_BATCH_SIZE = 100  # the default woocommerce_rest_batch_items_limit
MAX_PAGES = 1_000
TRACKING_EXTENSION_TTL_SECONDS = 3600.0
NO_ROUTE = (404, "rest_no_route")
TRACKING_PREFIX, NOTE_PREFIX = "tracking:", "note:"
APP_NAME = "marketplace-hub"  # shown to the store admin; ``app_credentials["app_name"]`` wins
AUTH_SCOPE = "read_write"
AUTHORIZE_PATH = "wc-auth/v1/authorize"
CURRENCY_SETTING = "settings/general/woocommerce_currency"
WEBHOOK_TOPICS = ("order.created", "order.updated")
INVALID_WEBHOOK_ID = (400, "woocommerce_rest_webhook_invalid_id")  # how WooCommerce says 404

CAPABILITIES = Capabilities(
    marketplace=MARKETPLACE,
    push_kinds=(PushKind.LISTING, PushKind.IMAGES),
    stock_batch_size=STOCK_BATCH_SIZE,
    # WordPress downloads each image URL into its media library; size limits are the host's
    # (upload_max_filesize, big-image scaling above 2560 px keeps the original), so only a
    # generous ceiling is declared. MIME types: wc_rest_allowed_image_mime_types.
    images=ImageLimits(
        max_images=None,
        max_width=10_000,
        max_height=10_000,
        max_pixels=None,
        max_bytes=None,
        formats=("jpeg", "png", "gif", "webp"),
    ),
    rate_limit=RateLimitModel.NONE,
    webhook_management=WebhookManagement.API,
    orders_sorted_by_update=False,
)


class StockPushFailed(PermanentError):
    """WooCommerce refused some items of a stock push; the others were applied."""

    def __init__(
        self,
        message: str,
        *,
        applied: tuple[str, ...],
        failures: tuple[mappers.BatchFailure, ...],
        **kw: Any,
    ) -> None:
        super().__init__(message, **kw)
        self.applied = applied
        self.failures = failures


class WooCommerceConnector:
    """One instance serves every WooCommerce site; it holds app-level settings, HTTP clients
    and two per-site memories (auth mode, Shipment Tracking presence).

    Besides ``MarketplaceConnector`` it is a ``ShopAuthorization`` (the app authentication
    endpoint, plus ``connect_with_keys`` for pasted keys) and a ``WebhookRegistry``."""

    webhook_topics: tuple[str, ...] = WEBHOOK_TOPICS

    def __init__(
        self,
        config: ConnectorConfig,
        *,
        rate_limiter: RateLimiter | None = None,
        webhook_secrets: webhooks.WebhookSecrets | None = None,
        requests_per_second: int | None = None,
        page_size: int = PAGE_SIZE,
        sleep: Callable[[float], None] | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.capabilities: Capabilities = CAPABILITIES
        self._app_name = str(config.app_credentials.get("app_name") or APP_NAME)
        self._webhook_secrets = webhook_secrets
        self._page_size = page_size
        self._clock = clock
        self._tracking_extension: dict[str, tuple[bool, float]] = {}
        self._client = WooCommerceClient(
            config,
            rate_limiter=rate_limiter or config.rate_limiter or InProcessRateLimiter(),
            requests_per_second=requests_per_second or DEFAULT_REQUESTS_PER_SECOND,
            sleep=sleep,
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"WooCommerceConnector({self._client!r})"

    @property
    def client(self) -> WooCommerceClient:
        return self._client

    # -- orders -------------------------------------------------------------------------------
    def list_orders_changed(
        self, shop: ShopContext, *, since: datetime, cursor: str | None = None
    ) -> OrderPage:
        """One page of orders modified after ``since`` (see the module docstring)."""
        scan = self._scan(shop, since, cursor)
        response = self._orders_page(shop, scan.modified_after, scan.page)
        with _payload_errors(shop, "orders page"):
            nodes = mappers.expect_list(response.body, what="orders page")
        total = header_int(response.headers, TOTAL_HEADER)
        nodes = self._with_shifted_orders(shop, scan, total, nodes)
        with _payload_errors(shop, "orders page"):
            window_start = mappers.gmt_timestamp(scan.modified_after)
            mapped = [self._complete_order(shop, node) for node in nodes]
        orders = tuple(o for o in mapped if o.external_updated_at > window_start)
        more = has_next_page(
            response.headers, page=scan.page, count=len(nodes), per_page=self._page_size
        )
        return OrderPage(
            orders=orders,
            next_cursor=OrderScanCursor(scan.page + 1, scan.modified_after, total).encode()
            if more
            else None,
            high_water_mark=max((order.external_updated_at for order in orders), default=None),
        )

    def _with_shifted_orders(
        self,
        shop: ShopContext,
        scan: OrderScanCursor,
        total: int | None,
        nodes: list[Mapping[str, Any]],
    ) -> list[Mapping[str, Any]]:
        """Prepend the pages that orders slid onto when the set shrank mid-scan."""
        pages = pages_to_reread(scan.total, total, page=scan.page, per_page=self._page_size)
        for page in reversed(pages):
            earlier = self._orders_page(shop, scan.modified_after, page)
            with _payload_errors(shop, "orders page"):
                nodes = _unique(mappers.expect_list(earlier.body, what="orders page") + nodes)
        return nodes

    def get_order(self, shop: ShopContext, external_id: str) -> ImportOrder:
        order_id = _numeric_id(shop, external_id, "order")
        response = self._client.request(shop, "GET", f"{API_PATH}orders/{order_id}")
        with _payload_errors(shop, f"order {order_id}"):
            return self._complete_order(
                shop, mappers.expect_object(response.body, what=f"order {order_id}")
            )

    def _scan(self, shop: ShopContext, since: datetime, cursor: str | None) -> OrderScanCursor:
        if cursor is None:
            start = since.replace(microsecond=0) - timedelta(seconds=1)
            return OrderScanCursor(1, mappers.wc_gmt(start), None)
        try:
            return OrderScanCursor.decode(cursor)
        except CursorError as error:
            raise PermanentError(
                f"woocommerce site {shop.external_id}: {error}", marketplace=MARKETPLACE
            ) from error

    def _orders_page(self, shop: ShopContext, modified_after: str, page: int) -> WooResponse:
        params = {
            "modified_after": modified_after,
            "dates_are_gmt": "true",
            "per_page": self._page_size,
            "page": page,
            "orderby": "id",
            "order": "asc",
        }
        return self._client.request(shop, "GET", f"{API_PATH}orders", params=params)

    def _complete_order(self, shop: ShopContext, node: Mapping[str, Any]) -> ImportOrder:
        """Map an order, first reading its refunds' lines when it has refunds."""
        refunds: list[Mapping[str, Any]] = []
        if mappers.needs_refund_lines(node):
            order_id = mappers.path_id(node, what="order")
            refunds = self._get_all(shop, f"{API_PATH}orders/{order_id}/refunds", {})
        return mappers.map_order(node, shop_id=shop.shop_id, refunds=refunds)

    # -- listings -----------------------------------------------------------------------------
    def list_listings(self, shop: ShopContext, *, cursor: str | None = None) -> ListingPage:
        """One page of products; a variable product brings all its variations along."""
        page = _page_number(shop, cursor)
        params = {"per_page": self._page_size, "page": page, "orderby": "id", "order": "asc"}
        response = self._client.request(shop, "GET", f"{API_PATH}products", params=params)
        with _payload_errors(shop, "products page"):
            products = mappers.expect_list(response.body, what="products page")
            variants: list[ListingVariant] = []
            for product in products:
                variants.extend(mappers.listing_variants(product, self._variations(shop, product)))
        more = has_next_page(
            response.headers, page=page, count=len(products), per_page=self._page_size
        )
        return ListingPage(variants=tuple(variants), next_cursor=str(page + 1) if more else None)

    def _variations(self, shop: ShopContext, product: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        """A variable product's variations; none for other types (they have none to list)."""
        if not mappers.is_variable(product):
            return []
        product_id = mappers.path_id(product, what="product")
        return self._get_all(shop, f"{API_PATH}products/{product_id}/variations", {})

    # -- stock --------------------------------------------------------------------------------
    def stock_item_id(
        self,
        *,
        listing_id: str | None,
        variant_id: str | None,
        inventory_item_id: str | None,
        sku: str | None,
    ) -> str | None:
        """``"<product>"`` for a simple product, ``"<product>:<variation>"`` for a variation."""
        if not listing_id:
            return None
        return f"{listing_id}:{variant_id}" if variant_id else listing_id

    def stock_batches(self, levels: Sequence[StockLevel]) -> list[list[StockLevel]]:
        """One group per batch endpoint, chunked at 100: the simple products together
        (``POST /products/batch``), each parent's variations together
        (``POST /products/{parent}/variations/batch``), so every group is one HTTP request.

        A malformed item id gets a group of its own: its push fails with a ``PermanentError``
        without taking the well-formed items of the shop down with it.
        """
        return group_stock_levels(levels, self.capabilities.stock_batch_size, _batch_endpoint)

    def set_stock_levels(
        self, shop: ShopContext, levels: Sequence[StockLevel], *, idempotency_key: str
    ) -> StockPushResult:
        """Absolute quantities, one batch per endpoint (see the module docstring).

        ``idempotency_key`` has no WooCommerce counterpart: absolute values make resends safe.
        """
        if len(levels) > self.capabilities.stock_batch_size:
            raise ValueError(
                f"woocommerce takes at most {self.capabilities.stock_batch_size} quantities per "
                f"call, got {len(levels)}; split the batch"
            )
        with _payload_errors(shop, "stock push"):
            groups = mappers.batch_requests(levels)
        applied: list[str] = []
        failures: list[mappers.BatchFailure] = []
        for parent, items in groups.items():
            path = (
                f"{API_PATH}products/batch"
                if parent is None
                else f"{API_PATH}products/{parent}/variations/batch"
            )
            response = self._client.request(shop, "POST", path, json_body={"update": items})
            with _payload_errors(shop, "stock push"):
                done, failed = mappers.batch_outcome(response.body, parent=parent, requested=items)
            applied.extend(done)
            failures.extend(failed)
        if failures:
            raise _stock_failures(shop, tuple(applied), tuple(failures))
        order = {level.item_id: index for index, level in enumerate(levels)}
        return StockPushResult(
            applied=tuple(sorted(applied, key=lambda item: order.get(item, len(order))))
        )

    def read_stock_levels(self, shop: ShopContext, item_ids: Sequence[str]) -> dict[str, int]:
        """Each item's own managed quantity; items that are unknown, malformed or do not manage
        stock themselves are absent ("we could not read it" is not "there are none")."""
        by_parent: dict[int | None, set[int]] = defaultdict(set)
        for item_id in item_ids:
            try:
                item = mappers.StockItem.parse(item_id)
            except ValueError:
                continue
            parent = item.product_id if item.variation_id is not None else None
            by_parent[parent].add(item.variation_id or item.product_id)
        levels: dict[str, int] = {}
        for parent, ids in by_parent.items():
            levels.update(self._managed_quantities(shop, parent, sorted(ids)))
        return levels

    def _managed_quantities(
        self, shop: ShopContext, parent: int | None, ids: Sequence[int]
    ) -> dict[str, int]:
        path = (
            f"{API_PATH}products" if parent is None else f"{API_PATH}products/{parent}/variations"
        )
        levels: dict[str, int] = {}
        for start in range(0, len(ids), PAGE_SIZE):
            chunk = ids[start : start + PAGE_SIZE]
            params = {"include": ",".join(map(str, chunk)), "per_page": PAGE_SIZE}
            try:
                nodes = self._get_all(shop, path, params)
            except NotFound:
                continue  # the parent product is gone: its variations are unknown
            for node in nodes:
                quantity = mappers.managed_quantity(node)
                node_id = node.get("id")
                if quantity is None or not isinstance(node_id, int) or node_id not in chunk:
                    continue
                item = mappers.StockItem(parent, node_id) if parent else mappers.StockItem(node_id)
                levels[str(item)] = quantity
        return levels

    # -- images -------------------------------------------------------------------------------
    def replace_listing_images(
        self, shop: ShopContext, listing_id: str, images: Sequence[ImageRef]
    ) -> tuple[str, ...]:
        """Set the product's whole gallery (the first image is the featured one); an empty
        list clears it. Returns the new attachment ids.

        WordPress downloads every URL inside this request, so it can be slow: it is sent once
        (a timeout may still complete on the site; sending again would sideload every image a
        second time). The list replaces the old one, so a later resend lands on the same state.
        """
        product_id = _numeric_id(shop, listing_id, "product")
        response = self._client.request(
            shop,
            "PUT",
            f"{API_PATH}products/{product_id}",
            json_body={"images": mappers.images_payload(images)},
            resend_safe=False,
        )
        with _payload_errors(shop, f"product {product_id} images"):
            return mappers.image_ids(
                mappers.expect_object(response.body, what=f"product {product_id}")
            )

    # -- fulfillment --------------------------------------------------------------------------
    def create_fulfillment(
        self, shop: ShopContext, request: FulfillmentRequest
    ) -> FulfillmentResult:
        """Record the tracking number once, then complete the order (module docstring)."""
        order_id = _numeric_id(shop, request.order_external_id, "order")
        order_path = f"{API_PATH}orders/{order_id}"
        order = self._client.request(shop, "GET", order_path).body
        with _payload_errors(shop, f"order {order_id}"):
            status = str(mappers.expect_object(order, what=f"order {order_id}").get("status", ""))
        trackings = self._tracking_items(shop, order_id)
        existing = self._existing_tracking(shop, order_id, request, trackings)
        if existing is not None:
            result = FulfillmentResult(external_id=existing, already_existed=True)
        elif trackings is not None:
            result = self._add_tracking_item(shop, order_id, request)
        else:
            result = self._add_tracking_note(shop, order_id, request)
        if status not in mappers.NO_COMPLETION_STATUSES:
            self._client.request(
                shop, "PUT", order_path, json_body={"status": "completed"}, resend_safe=False
            )
        return result

    def _tracking_items(self, shop: ShopContext, order_id: int) -> list[Mapping[str, Any]] | None:
        """The order's Shipment Tracking items, or None when the site lacks the extension."""
        site = base_url(shop)
        known = self._tracking_extension.get(site)
        if (
            known is not None
            and not known[0]
            and self._clock() - known[1] < (TRACKING_EXTENSION_TTL_SECONDS)
        ):
            return None
        response = self._client.request(
            shop,
            "GET",
            f"{TRACKING_API_PATH}orders/{order_id}/shipment-trackings",
            tolerate=(NO_ROUTE,),
        )
        present = response.status != NO_ROUTE[0]
        self._tracking_extension[site] = (present, self._clock())
        if not present:
            return None
        with _payload_errors(shop, f"order {order_id} shipment trackings"):
            return mappers.expect_list(response.body, what="shipment trackings")

    def _existing_tracking(
        self,
        shop: ShopContext,
        order_id: int,
        request: FulfillmentRequest,
        trackings: list[Mapping[str, Any]] | None,
    ) -> str | None:
        """A tracking item or an order note already carrying the number (notes are read in
        both modes: a site may have gained the extension after we wrote a note)."""
        found = mappers.tracking_with_number(trackings or [], request.tracking_number)
        if found is not None:
            return TRACKING_PREFIX + found
        notes = self._client.request(shop, "GET", f"{API_PATH}orders/{order_id}/notes").body
        with _payload_errors(shop, f"order {order_id} notes"):
            note = mappers.note_with_number(
                mappers.expect_list(notes, what="order notes"), request.tracking_number
            )
        return NOTE_PREFIX + note if note is not None else None

    def _add_tracking_item(
        self, shop: ShopContext, order_id: int, request: FulfillmentRequest
    ) -> FulfillmentResult:
        response = self._client.request(
            shop,
            "POST",
            f"{TRACKING_API_PATH}orders/{order_id}/shipment-trackings",
            json_body=mappers.tracking_payload(request),
            resend_safe=False,
        )
        with _payload_errors(shop, f"order {order_id} shipment tracking"):
            tracking_id = mappers.expect_object(response.body, what="tracking").get("tracking_id")
        if not tracking_id:
            raise _no_id(shop, f"order {order_id}: the tracking item")
        return FulfillmentResult(
            external_id=TRACKING_PREFIX + str(tracking_id), already_existed=False
        )

    def _add_tracking_note(
        self, shop: ShopContext, order_id: int, request: FulfillmentRequest
    ) -> FulfillmentResult:
        response = self._client.request(
            shop,
            "POST",
            f"{API_PATH}orders/{order_id}/notes",
            json_body={
                "note": mappers.tracking_note(request),
                "customer_note": request.notify_customer,
            },
            resend_safe=False,
        )
        with _payload_errors(shop, f"order {order_id} note"):
            note_id = mappers.expect_object(response.body, what="order note").get("id")
        if not note_id:
            raise _no_id(shop, f"order {order_id}: the order note")
        return FulfillmentResult(external_id=NOTE_PREFIX + str(note_id), already_existed=False)

    # -- onboarding ---------------------------------------------------------------------------
    def authorization_url(self, start: AuthorizationStart) -> str:
        """The store's ``/wc-auth/v1/authorize`` asking for ``read_write`` keys; our state
        travels as ``user_id`` (WooCommerce's "user ID in your app") and comes back in the
        POSTed keys and on ``return_url``. The page is on ``start.api_base_url`` when set
        (sandboxes), else on the store URL ``start.shop_hint``, which is required."""
        site = _store_site(start)
        if not start.return_url:
            raise InvalidInput(
                "woocommerce authorization: a return_url is required (where the store sends "
                "the seller's browser back)"
            )
        query = urlencode(
            {
                "app_name": self._app_name,
                "scope": AUTH_SCOPE,
                "user_id": start.state,
                "return_url": start.return_url,
                "callback_url": start.redirect_uri,
            }
        )
        root = _with_scheme(start.api_base_url or site).rstrip("/")
        return f"{root}/{AUTHORIZE_PATH}?{query}"

    def callback_state(self, callback: AuthorizationCallback) -> str:
        """The ``user_id`` of the POSTed keys, once the body holds WooCommerce keys. No I/O."""
        return _posted_keys(callback).user_id

    def complete_authorization(
        self, callback: AuthorizationCallback, start: AuthorizationStart
    ) -> ConnectedShop:
        """Take the POSTed keys for the store ``start`` names, after one authenticated read
        proves them (``AuthorizationRejected`` when the store refuses them)."""
        keys = _posted_keys(callback)
        if not hmac.compare_digest(keys.user_id.encode(), start.state.encode()):
            raise _rejected("the posted keys name another authorization (user_id)")
        if keys.key_permissions not in (None, AUTH_SCOPE):
            raise _rejected(
                f"the store granted {keys.key_permissions!r} keys; {AUTH_SCOPE!r} was asked for"
            )
        return self._verified_shop(
            _store_site(start),
            keys.consumer_key,
            keys.consumer_secret,
            api_base_url=start.api_base_url,
            check_write=False,
        )

    def connect_with_keys(
        self, site: str, consumer_key: str, consumer_secret: str, *, api_base_url: str | None
    ) -> ConnectedShop:
        """A store whose admin pasted REST API keys (WooCommerce > Settings > Advanced > REST
        API, Read/Write): the same check as the callback's, plus a write probe, so a read-only
        key is refused now rather than on the first stock push."""
        if not mappers.looks_like_keys(consumer_key, consumer_secret):
            raise _rejected("these are not WooCommerce REST API keys (ck_… and cs_…)")
        return self._verified_shop(
            site, consumer_key, consumer_secret, api_base_url=api_base_url, check_write=True
        )

    def _verified_shop(
        self,
        site: str,
        consumer_key: str,
        consumer_secret: str,
        *,
        api_base_url: str | None,
        check_write: bool,
    ) -> ConnectedShop:
        external_id = webhooks.normalize_site(site)
        if not external_id:
            raise InvalidInput(f"woocommerce: {site!r} is not a store URL")
        shop = ShopContext(
            shop_id=0,
            external_id=external_id,
            credentials={"consumer_key": consumer_key, "consumer_secret": consumer_secret},
            api_base_url=api_base_url,
        )
        with _keys_refused(shop):
            option = self._client.request(shop, "GET", f"{API_PATH}{CURRENCY_SETTING}").body
            if check_write:  # an empty batch: allowed to a key that may write, changes nothing
                self._client.request(shop, "POST", f"{API_PATH}products/batch", json_body={})
        return ConnectedShop(
            external_id=external_id,
            name=self._site_name(shop) or external_id,
            credentials=dict(shop.credentials),
            api_base_url=api_base_url,
            scopes=(AUTH_SCOPE,),
            currency=mappers.setting_currency(option),
        )

    def _site_name(self, shop: ShopContext) -> str | None:
        """The site title from the WordPress index (only its ``name``); None when unreadable."""
        try:
            response = self._client.request(shop, "GET", "wp-json/", params={"_fields": "name"})
        except ConnectorError:
            return None
        return mappers.site_name(response.body)

    # -- webhook subscriptions ----------------------------------------------------------------
    def list_webhooks(self, shop: ShopContext) -> list[WebhookSubscription]:
        """Every webhook of the site, whatever its status, page by page."""
        nodes = self._get_all(shop, f"{API_PATH}webhooks", {}, per_page=self._page_size)
        with _payload_errors(shop, "webhooks"):
            return [mappers.webhook_subscription(node) for node in nodes]

    def create_webhook(
        self, shop: ShopContext, topic: str, address: str, *, secret: str | None
    ) -> WebhookSubscription:
        """``POST /webhooks`` saved active, signed with ``secret`` (required, else
        ``PermanentError``: WooCommerce would pick one we cannot read back). Sent once: a
        blind resend would create a twin, so a caller that lost the answer lists first."""
        if not secret:
            raise PermanentError(
                f"woocommerce site {shop.external_id}: no webhook secret for shop {shop.shop_id}; "
                "WooCommerce signs each webhook with the shop's own secret, so store one first",
                marketplace=MARKETPLACE,
            )
        response = self._client.request(
            shop,
            "POST",
            f"{API_PATH}webhooks",
            json_body=mappers.webhook_request(f"{self._app_name} {topic}", topic, address, secret),
            resend_safe=False,
        )
        with _payload_errors(shop, f"webhook {topic}"):
            return mappers.webhook_subscription(
                mappers.expect_object(response.body, what="webhook")
            )

    def enable_webhook(self, shop: ShopContext, subscription_id: str) -> WebhookSubscription:
        """``PUT /webhooks/{id}`` with ``status: active`` (absolute, so safe to resend).
        WooCommerce keeps the failure count, so the next failed delivery disables it again;
        an unknown id (WooCommerce's 400 "ID is invalid.") is ``NotFound``."""
        webhook_id = _numeric_id(shop, subscription_id, "webhook")
        response = self._client.request(
            shop,
            "PUT",
            f"{API_PATH}webhooks/{webhook_id}",
            json_body={"status": "active"},
            tolerate=(INVALID_WEBHOOK_ID,),
        )
        if response.status == INVALID_WEBHOOK_ID[0]:
            raise NotFound(
                f"woocommerce site {shop.external_id}: webhook {webhook_id} does not exist",
                marketplace=MARKETPLACE,
                status=response.status,
            )
        with _payload_errors(shop, f"webhook {webhook_id}"):
            return mappers.webhook_subscription(
                mappers.expect_object(response.body, what="webhook")
            )

    # -- shared -------------------------------------------------------------------------------
    def _get_all(
        self,
        shop: ShopContext,
        path: str,
        params: Mapping[str, Any],
        *,
        per_page: int = PAGE_SIZE,
    ) -> list[Mapping[str, Any]]:
        """Every page of a small collection (variations, refunds, webhooks), by id so pages
        are stable."""
        items: list[Mapping[str, Any]] = []
        for page in range(1, MAX_PAGES + 1):
            query = {"per_page": per_page, "orderby": "id", "order": "asc", **params, "page": page}
            response = self._client.request(shop, "GET", path, params=query)
            with _payload_errors(shop, path):
                batch = mappers.expect_list(response.body, what=path)
            items.extend(batch)
            if not has_next_page(response.headers, page=page, count=len(batch), per_page=per_page):
                return items
        raise PermanentError(
            f"woocommerce site {shop.external_id}: {path} has more than {MAX_PAGES} pages",
            marketplace=MARKETPLACE,
        )

    # -- webhooks and lifecycle ---------------------------------------------------------------
    def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> WebhookEnvelope:
        """Verify with the source site's secrets (``webhook_secrets`` resolver).

        Raises ``WebhookRejected`` (answer 401, store nothing) or ``webhooks.WebhookPing``
        for WooCommerce's unsigned activation ping (answer 200, store nothing).
        """
        return webhooks.verify_webhook(body, headers, self._webhook_secrets)

    def close(self) -> None:
        self._client.close()


def create(config: ConnectorConfig) -> WooCommerceConnector:
    """The ``hub.connectors`` entry point.

    App credentials read: ``requests_per_second`` (per site, default 25) and the per-shop
    webhook secrets, as ``webhook_secret_resolver`` (a callable site -> secrets, current first;
    the site as ``webhooks.normalize_site`` gives it) or ``webhook_secrets`` (a mapping site ->
    secret or (current, previous), for tests and sandboxes). The shared
    limiter comes from the config, else an in-process one.
    """
    credentials = config.app_credentials
    # A typed ``ConnectorConfig.webhook_secrets`` (proposed) wins over the credentials entry.
    resolver = getattr(config, "webhook_secrets", None) or credentials.get(
        "webhook_secret_resolver"
    )
    table = credentials.get("webhook_secrets")
    secrets: webhooks.WebhookSecrets | None = None
    if callable(resolver):
        secrets = resolver
    elif isinstance(table, Mapping):
        secrets = webhooks.secrets_from_mapping(table)
    rate = credentials.get("requests_per_second")
    return WooCommerceConnector(
        config,
        webhook_secrets=secrets,
        requests_per_second=int(rate) if rate else None,
    )


# --------------------------------------------------------------------------------------------
# Helpers: payload checks and error translation
# --------------------------------------------------------------------------------------------


@contextmanager
def _payload_errors(shop: ShopContext, what: str) -> Iterator[None]:
    """A payload that does not have the documented shape is a permanent error, with detail."""
    try:
        yield
    except (mappers.WooCommercePayloadError, InvalidInput, ValueError) as error:
        raise PermanentError(
            f"woocommerce site {shop.external_id}: {what}: {error}",
            marketplace_message=str(error),
            marketplace=MARKETPLACE,
        ) from error


def _rejected(reason: str, *, status: int | None = None) -> AuthorizationRejected:
    return AuthorizationRejected(
        f"woocommerce authorization: {reason}", marketplace=MARKETPLACE, status=status
    )


def _posted_keys(callback: AuthorizationCallback) -> mappers.PostedKeys:
    try:
        return mappers.posted_keys(callback.body)
    except mappers.WooCommercePayloadError as error:
        raise _rejected(str(error)) from error


@contextmanager
def _keys_refused(shop: ShopContext) -> Iterator[None]:
    """The store refusing the keys (401/403: unknown, revoked, read-only) is a rejection."""
    try:
        yield
    except AuthError as error:
        raise _rejected(
            f"site {shop.external_id} refused the keys ({error.message})", status=error.status
        ) from error


def _store_site(start: AuthorizationStart) -> str:
    if not start.shop_hint or not webhooks.normalize_site(start.shop_hint):
        raise InvalidInput(
            "woocommerce authorization: the store URL (shop_hint) is required, e.g. "
            "https://shop.example.com"
        )
    return start.shop_hint


def _with_scheme(url: str) -> str:
    text = url.strip()
    return text if "://" in text else f"https://{text}"


def _batch_endpoint(level: StockLevel) -> Hashable:
    """The batch endpoint a level is written through: None for ``/products/batch``, the parent
    id for its variations' batch, the raw id for a malformed one (never shared with others)."""
    try:
        item = mappers.StockItem.parse(level.item_id)
    except ValueError:
        return ("malformed", level.item_id)
    return item.product_id if item.variation_id is not None else None


def _numeric_id(shop: ShopContext, value: str, kind: str) -> int:
    """WooCommerce ids are positive integers; anything else cannot exist there."""
    number = mappers.resource_id(value.strip() if isinstance(value, str) else value)
    if number is None:
        raise NotFound(
            f"woocommerce site {shop.external_id}: {kind} {value!r} is not a WooCommerce id",
            marketplace=MARKETPLACE,
        )
    return number


def _page_number(shop: ShopContext, cursor: str | None) -> int:
    if cursor is None:
        return 1
    try:
        page = int(cursor)
    except ValueError:
        page = 0
    if page < 1:
        raise PermanentError(
            f"woocommerce site {shop.external_id}: not a listings cursor: {cursor[:40]!r}",
            marketplace=MARKETPLACE,
        )
    return page


def _unique(nodes: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Orders once each, first occurrence kept (re-read pages overlap the current one).

    Only a valid id identifies an order; a node without one is kept as it is, for the mapper
    to refuse with a reason (its id may be any JSON, a list even, which no set could hold).
    """
    seen: set[int] = set()
    kept: list[Mapping[str, Any]] = []
    for node in nodes:
        order_id = mappers.resource_id(node.get("id"))
        if order_id is None or order_id not in seen:
            if order_id is not None:
                seen.add(order_id)
            kept.append(node)
    return kept


def _stock_failures(
    shop: ShopContext, applied: tuple[str, ...], failures: tuple[mappers.BatchFailure, ...]
) -> StockPushFailed:
    detail = "; ".join(str(failure) for failure in failures)
    return StockPushFailed(
        f"woocommerce site {shop.external_id}: {len(failures)} stock item(s) refused "
        f"({len(applied)} applied): {detail}",
        applied=applied,
        failures=failures,
        marketplace_message=detail,
        marketplace=MARKETPLACE,
    )


def _no_id(shop: ShopContext, what: str) -> PermanentError:
    return PermanentError(
        f"woocommerce site {shop.external_id}: {what} was created but no id came back",
        marketplace=MARKETPLACE,
    )
