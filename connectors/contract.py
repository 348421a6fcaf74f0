"""The one interface between the hub and any marketplace, its DTOs and its error taxonomy.

Connectors transport and translate; they decide nothing. They never touch the database and hold
no business rules: the sync layer decides retries, budgets and dead letters from the error class.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from hub.domain.orders import ImportOrder
from hub.domain.shops import PushKind

# --------------------------------------------------------------------------------------------
# Errors: classified once, from the body first (Shopify answers THROTTLED with HTTP 200), then
# the status.
# --------------------------------------------------------------------------------------------


class ConnectorError(Exception):
    """Base of every failure a connector reports."""

    def __init__(self, message: str, *, marketplace: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.marketplace = marketplace
        self.status = status


class TransientError(ConnectorError):
    """Worth trying again later (5xx, timeouts, resets)."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class RateLimited(TransientError):
    """The marketplace's (or our own shared) budget is spent; nothing was sent or it was refused."""


class AuthError(ConnectorError):
    """The shop's credentials are refused; the shop needs reconnecting."""


class PermanentError(ConnectorError):
    """The marketplace refused the request for its content; retrying cannot help."""

    def __init__(self, message: str, *, marketplace_message: str = "", **kw: Any) -> None:
        super().__init__(message, **kw)
        self.marketplace_message = marketplace_message


class NotFound(PermanentError):
    """The resource does not exist (any more) on the marketplace."""


class StaleStock(ConnectorError):
    """A compare-and-swap stock write found other quantities than expected; nothing was applied."""


class WebhookRejected(ConnectorError):
    """The webhook's signature (or required headers) did not verify: answer 401, store nothing."""


class WebhookPing(ConnectorError):
    """A subscription's activation ping (WooCommerce): answer 200 and store nothing.

    Not a ``WebhookRejected``: a 401 would keep the subscription from activating.
    """

    def __init__(self, message: str, *, webhook_id: str = "", **kw: Any) -> None:
        super().__init__(message, **kw)
        self.webhook_id = webhook_id


# --------------------------------------------------------------------------------------------
# Capabilities
# --------------------------------------------------------------------------------------------


class RateLimitModel(StrEnum):
    COST_BUCKET = "cost_bucket"  # Shopify GraphQL: points, leaky bucket per shop
    REQUEST_WINDOW = "request_window"  # Etsy: per second and per day, per app
    NONE = "none"  # WooCommerce: host-dependent, configured per site


class WebhookManagement(StrEnum):
    API = "api"
    MANUAL = "manual"


@dataclass(frozen=True)
class ImageLimits:
    max_images: int | None
    max_width: int
    max_height: int
    max_pixels: int | None
    max_bytes: int | None
    formats: tuple[str, ...]


@dataclass(frozen=True)
class Capabilities:
    """What a marketplace can take, so the sync layer plans without knowing the marketplace.

    ``stock_batch_size`` is the most ``StockLevel`` values one ``set_stock_levels`` call takes.
    Which levels may share a call is the connector's to say (``stock_batches``): Shopify any,
    WooCommerce those of one batch endpoint (the simple products, or one parent's variations),
    Etsy those of one listing. So the size bounds a group; it never promises that unrelated
    items can be packed together.
    """

    marketplace: str
    push_kinds: tuple[PushKind, ...]
    stock_batch_size: int
    images: ImageLimits
    rate_limit: RateLimitModel
    webhook_management: WebhookManagement
    orders_sorted_by_update: bool  # whether the order stream is ascending by update time

    def as_dict(self) -> dict[str, Any]:
        return {
            "marketplace": self.marketplace,
            "push_kinds": [kind.value for kind in self.push_kinds],
            "stock_batch_size": self.stock_batch_size,
            "images": {
                "max_images": self.images.max_images,
                "max_width": self.images.max_width,
                "max_height": self.images.max_height,
                "max_pixels": self.images.max_pixels,
                "max_bytes": self.images.max_bytes,
                "formats": list(self.images.formats),
            },
            "rate_limit": self.rate_limit.value,
            "webhook_management": self.webhook_management.value,
            "orders_sorted_by_update": self.orders_sorted_by_update,
        }


# --------------------------------------------------------------------------------------------
# DTOs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShopContext:
    """What a connector needs to reach one shop. Credentials stay out of reprs."""

    shop_id: int
    external_id: str  # Shopify: the myshopify domain; Etsy: shop id; WooCommerce: site URL
    credentials: Mapping[str, Any] = field(default_factory=dict, repr=False)
    api_base_url: str | None = None  # sandboxes and tests
    location_id: str | None = None


@dataclass(frozen=True)
class OrderPage:
    orders: tuple[ImportOrder, ...]
    next_cursor: str | None  # None: the scan is complete
    high_water_mark: datetime | None  # the newest external_updated_at seen on this page


@dataclass(frozen=True)
class ListingVariant:
    listing_id: str
    variant_id: str | None
    inventory_item_id: str | None
    sku: str | None
    title: str
    price: Decimal | None


@dataclass(frozen=True)
class ListingPage:
    variants: tuple[ListingVariant, ...]
    next_cursor: str | None


@dataclass(frozen=True)
class StockLevel:
    """An absolute quantity for one marketplace item, with what we believe it is now."""

    # Shopify: inventory item GID; Etsy: "<listing_id>" or "<listing_id>:<sku>";
    # WooCommerce: "<product_id>" or "<product_id>:<variation_id>"
    item_id: str
    quantity: int
    expected_quantity: int | None = None  # compare-and-swap where the marketplace has it
    # The listing kind (Etsy, WooCommerce) writes the price in the same call; None: untouched.
    price: Decimal | None = None


@dataclass(frozen=True)
class PriceLevel:
    """A listing price where the marketplace sets prices apart from quantities (Shopify)."""

    item_id: str  # Shopify: the variant GID
    listing_id: str  # Shopify: the product GID (prices are written per product)
    price: Decimal  # in the shop's currency, quantized to its minor unit


@runtime_checkable
class PriceWriter(Protocol):
    """Marketplaces with a push kind for price alone (``PushKind.PRICE``)."""

    def price_batches(self, levels: Sequence[PriceLevel]) -> list[list[PriceLevel]]:
        """The groups one ``set_prices`` call takes, stable and pure (see ``stock_batches``)."""
        ...

    def set_prices(
        self, shop: ShopContext, levels: Sequence[PriceLevel], *, idempotency_key: str
    ) -> None: ...


@dataclass(frozen=True)
class StockPushResult:
    applied: tuple[str, ...]


@dataclass(frozen=True)
class ImageRef:
    url: str
    alt: str = ""


@dataclass(frozen=True)
class FulfillmentLineRef:
    external_line_id: str
    quantity: int


@dataclass(frozen=True)
class FulfillmentRequest:
    order_external_id: str
    lines: tuple[FulfillmentLineRef, ...]
    carrier: str
    tracking_number: str
    tracking_url: str | None = None
    notify_customer: bool = True


@dataclass(frozen=True)
class FulfillmentResult:
    external_id: str
    already_existed: bool  # found on the marketplace, so nothing was written


@dataclass(frozen=True)
class WebhookEnvelope:
    event_key: str  # unique per marketplace: the inbound idempotency key
    topic: str
    shop_reference: str  # matched against shops.external_id by the caller
    resource_id: str | None
    occurred_at: datetime | None
    payload: Mapping[str, Any] | None  # None when the body is only a hint


# --------------------------------------------------------------------------------------------
# Onboarding: a seller's own authorization, and the webhook subscriptions that keep a shop live
# --------------------------------------------------------------------------------------------


class AuthorizationRejected(ConnectorError):
    """An authorization callback that does not prove itself (a bad Shopify ``hmac``, a missing
    code or state, keys for another site): answer 401 and store nothing."""


@dataclass(frozen=True)
class AuthorizationStart:
    """One authorization the hub started: what the marketplace's consent page is sent, and
    what the callback is checked and exchanged against. Kept server-side under ``state``."""

    state: str  # single-use, ours; Shopify/Etsy echo it, WooCommerce returns it as ``user_id``
    redirect_uri: str  # our callback for this marketplace, from HUB_PUBLIC_BASE_URL
    shop_hint: str | None = None  # Shopify: the myshopify domain; WooCommerce: the site URL
    code_verifier: str | None = field(default=None, repr=False)  # Etsy PKCE (S256 derived)
    api_base_url: str | None = None  # sandboxes: where the marketplace's pages and API live
    return_url: str | None = None  # WooCommerce: where the seller's browser lands afterwards


@dataclass(frozen=True)
class AuthorizationCallback:
    """A callback request as it arrived: the query string and the raw body."""

    query: Mapping[str, str]
    body: bytes = b""
    content_type: str = ""


@dataclass(frozen=True)
class ConnectedShop:
    """What a completed authorization gives: enough to store and reach the shop."""

    external_id: str  # as ``shops.external_id`` holds it (WooCommerce: ``normalize_site``)
    name: str
    credentials: Mapping[str, Any] = field(repr=False)
    api_base_url: str | None = None
    location_id: str | None = None  # Shopify: the location stock is set at
    scopes: tuple[str, ...] = ()
    access_expires_at: datetime | None = None  # rotating tokens (Etsy)
    currency: str | None = None


@runtime_checkable
class ShopAuthorization(Protocol):
    """The marketplace's own authorization flow (Shopify OAuth install, Etsy OAuth 2 + PKCE,
    WooCommerce ``/wc-auth/v1/authorize``). The hub stores the ``AuthorizationStart`` under its
    state, sends the seller to ``authorization_url`` and, when the callback comes, asks
    ``callback_state`` which start it belongs to (single use is the hub's to enforce), then
    ``complete_authorization`` for the shop."""

    def authorization_url(self, start: AuthorizationStart) -> str: ...

    def callback_state(self, callback: AuthorizationCallback) -> str:
        """The state the callback names, after every check that needs no stored start (the
        Shopify ``hmac`` over the query). Raises ``AuthorizationRejected``. No I/O."""
        ...

    def complete_authorization(
        self, callback: AuthorizationCallback, start: AuthorizationStart
    ) -> ConnectedShop:
        """Exchange the code (Shopify, Etsy with the PKCE verifier) or take the posted keys
        (WooCommerce), then read the shop's identity. Raises ``AuthorizationRejected`` for a
        callback that does not match ``start``, other ``ConnectorError``s for transport."""
        ...


@dataclass(frozen=True)
class WebhookSubscription:
    id: str
    topic: str  # the marketplace's own topic name: "orders/create", "order.updated"
    address: str
    active: bool  # WooCommerce disables a webhook after repeated failed deliveries


@runtime_checkable
class WebhookRegistry(Protocol):
    """Subscriptions the hub registers through the API (Shopify, WooCommerce; Etsy's live in
    its developer portal). The sync layer lists them, creates what is missing and re-enables
    what the marketplace disabled; the connector only transports."""

    webhook_topics: tuple[str, ...]  # the topics the hub needs, in the marketplace's names

    def list_webhooks(self, shop: ShopContext) -> list[WebhookSubscription]: ...

    def create_webhook(
        self, shop: ShopContext, topic: str, address: str, *, secret: str | None
    ) -> WebhookSubscription:
        """``secret`` signs deliveries where the marketplace takes one per subscription
        (WooCommerce); Shopify signs with the app's client secret and ignores it."""
        ...

    def enable_webhook(self, shop: ShopContext, subscription_id: str) -> WebhookSubscription: ...


# --------------------------------------------------------------------------------------------
# The protocol
# --------------------------------------------------------------------------------------------


@runtime_checkable
class MarketplaceConnector(Protocol):
    capabilities: Capabilities

    def list_orders_changed(
        self, shop: ShopContext, *, since: datetime, cursor: str | None = None
    ) -> OrderPage: ...

    def get_order(self, shop: ShopContext, external_id: str) -> ImportOrder: ...

    def list_listings(self, shop: ShopContext, *, cursor: str | None = None) -> ListingPage: ...

    def stock_item_id(
        self,
        *,
        listing_id: str | None,
        variant_id: str | None,
        inventory_item_id: str | None,
        sku: str | None,
    ) -> str | None:
        """The ``StockLevel.item_id`` of a bound variant, from the ids its binding holds and our
        SKU; ``None`` when the binding lacks what this marketplace needs. Pure."""
        ...

    def stock_batches(self, levels: Sequence[StockLevel]) -> list[list[StockLevel]]:
        """Split levels into the groups one ``set_stock_levels`` call takes, in a stable order
        (the same input gives the same groups), each at most ``capabilities.stock_batch_size``.

        Every level lands in exactly one group, and a group keeps its levels in input order.
        Pure: no I/O and no shop needed, so the sync layer can plan a push (and count its
        calls) before sending anything."""
        ...

    def set_stock_levels(
        self, shop: ShopContext, levels: Sequence[StockLevel], *, idempotency_key: str
    ) -> StockPushResult:
        """Absolute quantities: one group from ``stock_batches`` per call (at most
        ``capabilities.stock_batch_size`` levels, and only levels that may share a call).

        Raises ``StaleStock`` when a compare-and-swap fails (nothing applied)."""
        ...

    def read_stock_levels(self, shop: ShopContext, item_ids: Sequence[str]) -> dict[str, int]: ...

    def replace_listing_images(
        self, shop: ShopContext, listing_id: str, images: Sequence[ImageRef]
    ) -> tuple[str, ...]: ...

    def create_fulfillment(
        self, shop: ShopContext, request: FulfillmentRequest
    ) -> FulfillmentResult:
        """Reads the order's existing fulfillments first: never writes the same one twice."""
        ...

    def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> WebhookEnvelope:
        """Raises ``WebhookRejected`` unless the signature verifies over exactly ``body``."""
        ...

    def close(self) -> None: ...


def group_stock_levels(
    levels: Sequence[StockLevel],
    size: int,
    key: Callable[[StockLevel], Hashable] | None = None,
) -> list[list[StockLevel]]:
    """The shared half of every ``stock_batches``: levels with equal ``key`` together (every
    level in one group when ``key`` is None), each group cut into chunks of at most ``size``.

    Deterministic without sorting: groups come in the order their key first appears and keep
    the input order inside, so the same input always gives the same calls, and a caller that
    orders its levels (say by item id) gets its order back. A key needs only be hashable.
    """
    if size < 1:
        raise ValueError(f"a stock batch holds at least one level, got size {size}")
    grouped: dict[Hashable, list[StockLevel]] = {}
    for level in levels:
        grouped.setdefault(None if key is None else key(level), []).append(level)
    return [
        group[start : start + size]
        for group in grouped.values()
        for start in range(0, len(group), size)
    ]


class CredentialStore(Protocol):
    """Where a connector gets a shop's rotated OAuth tokens, refreshed exactly once.

    Etsy rotates the refresh token on every refresh: two workers refreshing at once, or a
    refresh lost to a rollback, lock the shop out. The hub's implementation takes a per-shop
    lock, re-reads the stored credentials (another worker may have refreshed already: then it
    returns those without calling ``exchange``), calls ``exchange`` with the stored pair and
    commits the new pair in a transaction of its own. An ``AuthError`` from ``exchange`` marks
    the shop ``auth_failed``.
    """

    def refresh(
        self,
        shop: ShopContext,
        stale_access_token: str | None,
        exchange: Callable[[Mapping[str, Any]], Mapping[str, Any]],
    ) -> Mapping[str, Any]: ...


class InMemoryCredentialStore:
    """The store for tests, sandboxes and benchmarks: one process, one lock per shop."""

    def __init__(self, initial: Mapping[int, Mapping[str, Any]] | None = None) -> None:
        self._lock = threading.Lock()
        self.credentials: dict[int, dict[str, Any]] = {
            shop_id: dict(value) for shop_id, value in (initial or {}).items()
        }
        self.refreshes = 0

    def __repr__(self) -> str:
        return f"InMemoryCredentialStore(shops={sorted(self.credentials)})"

    def refresh(
        self,
        shop: ShopContext,
        stale_access_token: str | None,
        exchange: Callable[[Mapping[str, Any]], Mapping[str, Any]],
    ) -> Mapping[str, Any]:
        with self._lock:
            stored = self.credentials.get(shop.shop_id, dict(shop.credentials))
            if stored.get("access_token") != stale_access_token:
                return dict(stored)  # refreshed by someone else meanwhile
            fresh = {**stored, **exchange(stored)}
            self.credentials[shop.shop_id] = fresh
            self.refreshes += 1
            return dict(fresh)


@dataclass(frozen=True)
class ConnectorConfig:
    """What the registry hands a connector factory: app credentials and shared machinery."""

    app_credentials: Mapping[str, Any] = field(default_factory=dict, repr=False)
    api_version: str | None = None
    rate_limiter: Any = None  # connectors.ratelimit.RateLimiter
    credential_store: Any = None  # CredentialStore, for marketplaces with rotating tokens
    # Per-shop webhook secrets (WooCommerce): site -> secrets, current first.
    webhook_secrets: Callable[[str], Sequence[str | None]] | None = None
    http_timeout_seconds: float = 10.0
    user_agent: str = "marketplace-hub/0.1"
    # Outbound guard (connectors.url_guard). Allowed here, for tests and tools that build a
    # config by hand against local sandboxes; the hub's registry.config_from_settings sets it
    # from HUB_ALLOW_PRIVATE_URLS, which refuses by default.
    allow_private_addresses: bool = True
    max_response_bytes: int = 20 * 1024 * 1024  # a longer body is cut off while it streams
