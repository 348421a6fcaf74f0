"""A local stand-in for one WooCommerce site's REST API (``wc/v3``), for tests, demos and benches.

It serves the endpoints ``connectors.woocommerce`` uses, over the same HTTP surface
(https://woocommerce.github.io/woocommerce-rest-api-docs/): orders with ``modified_after`` /
``dates_are_gmt`` filters and ``X-WP-Total``/``X-WP-TotalPages``/``Link`` paging, refunds,
order notes and status changes, products and variations with ``manage_stock``, the batch
endpoints (at most 100 items, per-item errors), product galleries that are replaced as a whole,
the Shipment Tracking extension's routes behind a switch, consumer-key auth by HTTP Basic or
query parameters (``drop_authorization_header`` plays a host that strips the header), signed
webhooks with WooCommerce's delivery rules (never retried, disabled after repeated failures),
the unsigned activation ping, and fault switches (latency, 5xx, 429 bursts, lost webhooks).

Onboarding (https://woocommerce.github.io/woocommerce-rest-api-docs/#rest-api-keys): the app
authentication endpoint ``/wc-auth/v1/authorize`` plays the store admin who approves at once
(``deny_next_authorization`` plays one who refuses): it creates a ``ck_``/``cs_`` key pair with the
requested scope, POSTs ``{key_id, user_id, consumer_key, consumer_secret, key_permissions}`` to
the ``callback_url`` and redirects the browser to ``return_url`` with ``success`` and ``user_id``
(``WC_Auth``, class-wc-auth.php). The REST API accepts every live key beside the fixed one, with
its permissions (a ``read`` key cannot write). Webhooks can be managed through
``/wp-json/wc/v3/webhooks`` (https://woocommerce.github.io/woocommerce-rest-api-docs/#webhooks):
each has its own secret, topic and delivery URL, gets the activation ping when saved, and
follows the same delivery rules (``signed_deliveries``, ``record_delivery``, ``deliver``).

Fidelity points the connector must cope with: totals are strings but a line's ``price`` is a
float computed from the *discounted* total (``3.3333333333333335``); every date has a site-local
and a ``_gmt`` twin (the site runs at ``utc_offset``, UTC-3 by default); WordPress's ``after``
filters are exclusive; a variation whose parent holds the stock reports ``"manage_stock":
"parent"``; ``stock_quantity`` is dropped for an item that does not manage stock.

Prices (https://woocommerce.github.io/woocommerce-rest-api-docs/#product-properties,
#product-variation-properties): ``regular_price`` and ``sale_price`` are decimal strings, kept
as written (``wc_format_decimal`` without rounding: "0.50" stays "0.50", "1000.00" stays
"1000.00"); ``price`` is read-only and follows the sale price while the item is on sale (a sale
price below the regular one), the regular price otherwise
(``WC_Product_Data_Store_CPT::handle_updated_props``). A batch item's fields are not checked
against the schema (``WC_REST_Controller::batch_items`` calls ``update_item`` directly), so a
JSON number is taken as WooCommerce takes it (a float printed and trimmed: ``1000.0`` is stored
as "1000"); a single ``PUT`` refuses it (the schema says string). Where WooCommerce would
silently mangle a value (strip the letters out of "12abc", clear the price on "abc", store
"-5"), the sandbox refuses the item with a per-item ``rest_invalid_param`` error instead, so a
connector bug surfaces; the refused item keeps its quantity and prices (WooCommerce saves an
item whole or not at all). A variable product keeps no price of its own (its
``regular_price``/``sale_price`` in an update are ignored); new orders are priced at the
item's current ``price``.

State lives in memory behind one lock; seeding and inspection are plain Python methods, safe
to call from other threads while the server answers.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import math
import random
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from html import escape
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

JSON = dict[str, Any]
Answer = tuple[int, Any, dict[str, str]]

API = "/wp-json/wc/v3"
TRACKING_API = "/wp-json/wc-shipment-tracking/v3"
MAX_PER_PAGE = 100
DEFAULT_BATCH_LIMIT = 100
WC_ROUNDING_PRECISION = 6  # wc_get_rounding_precision(): at least 6, or decimals + 2
PRICE_TEXT = re.compile(r"\d+(\.\d+)?")  # a non-negative decimal, as the sandbox accepts it
# WC_Webhook::failed_delivery: a failure with failure_count > 5 disables the webhook, so the
# seventh consecutive failure does; any success resets the count.
MAX_WEBHOOK_FAILURES = 5
WEBHOOK_TIMEOUT_SECONDS = 5.0
ORDER_STATUSES = (
    "pending",
    "processing",
    "on-hold",
    "completed",
    "cancelled",
    "refunded",
    "failed",
)
PAID_STATUSES = frozenset({"processing", "completed"})
IMAGE_EXTENSIONS = frozenset(
    {"jpg", "jpeg", "jpe", "gif", "png", "bmp", "tif", "tiff", "ico", "webp"}
)
WOOCOMMERCE_VERSION = "9.9.0"
WORDPRESS_VERSION = "6.8.1"
USER_AGENT = f"WooCommerce/{WOOCOMMERCE_VERSION} Hookshot (WordPress/{WORDPRESS_VERSION})"
INDEX_PATHS = frozenset({"/wp-json", "/wp-json/"})
# WC_Auth: the scopes an app may ask for, and the URL parameters it must send.
AUTH_SCOPES = ("read", "write", "read_write")
AUTH_PARAMS = ("app_name", "user_id", "return_url", "callback_url", "scope")
FIXED_KEY_ID = 1
# WC_REST_Authentication::check_permissions: the methods each key permission allows.
KEY_METHODS = {
    "read": frozenset({"GET", "HEAD"}),
    "write": frozenset({"POST", "PUT", "PATCH", "DELETE", "OPTIONS"}),
    "read_write": frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}),
}
WEBHOOK_STATUSES = ("active", "paused", "disabled")
WEBHOOK_RESOURCES = ("coupon", "customer", "order", "product")
WEBHOOK_EVENTS = ("created", "updated", "deleted", "restored")
# WC_Webhook::get_hooks: the actions each core topic listens to.
WEBHOOK_HOOKS: dict[str, tuple[str, ...]] = {
    "coupon.created": ("woocommerce_process_shop_coupon_meta", "woocommerce_new_coupon"),
    "coupon.updated": ("woocommerce_process_shop_coupon_meta", "woocommerce_update_coupon"),
    "customer.created": ("user_register", "woocommerce_created_customer"),
    "customer.updated": ("profile_update", "woocommerce_update_customer"),
    "customer.deleted": ("delete_user",),
    "order.created": ("woocommerce_new_order",),
    "order.updated": ("woocommerce_update_order", "woocommerce_order_refunded"),
    "product.created": ("woocommerce_process_product_meta", "woocommerce_new_product"),
    "product.updated": ("woocommerce_process_product_meta", "woocommerce_update_product"),
}
FIRST_WEBHOOK_ID = 140  # wc_webhooks has its own id sequence
CURRENCIES = {
    "USD": "United States (US) dollar ($)",
    "EUR": "Euro (&euro;)",
    "GBP": "Pound sterling (&pound;)",
    "JPY": "Japanese yen (&yen;)",
    "BRL": "Brazilian real (&#82;&#36;)",
}


# =============================================================================================
# State
# =============================================================================================


@dataclass
class _Image:
    id: int
    src: str
    name: str
    alt: str
    created: datetime


@dataclass
class _Variation:
    id: int
    parent_id: int
    sku: str
    regular_price: str  # as WooCommerce stores it; "" when the item has no price
    manage_stock: bool
    stock_quantity: int | None
    attributes: list[tuple[str, str]]
    created: datetime
    modified: datetime
    sale_price: str = ""


@dataclass
class _Product:
    id: int
    name: str
    type: str
    sku: str
    regular_price: str  # as WooCommerce stores it; "" when the product has no price
    manage_stock: bool
    stock_quantity: int | None
    status: str
    created: datetime
    modified: datetime
    sale_price: str = ""
    images: list[_Image] = field(default_factory=list)
    variation_ids: list[int] = field(default_factory=list)


@dataclass
class _Line:
    id: int
    name: str
    product_id: int
    variation_id: int
    quantity: int
    subtotal: Decimal
    total: Decimal
    sku: str


@dataclass
class _RefundLine:
    id: int
    refunded_item_id: int
    quantity: int
    subtotal: Decimal
    total: Decimal


@dataclass
class _Refund:
    id: int
    amount: Decimal
    reason: str
    created: datetime
    lines: list[_RefundLine]


@dataclass
class _Note:
    id: int
    note: str
    customer_note: bool
    created: datetime
    author: str


@dataclass
class _Order:
    id: int
    number: str
    status: str
    currency: str
    created: datetime
    modified: datetime
    paid: datetime | None
    completed: datetime | None
    lines: list[_Line]
    shipping_total: Decimal
    total: Decimal
    billing: JSON
    shipping: JSON
    refunds: list[_Refund] = field(default_factory=list)
    notes: list[_Note] = field(default_factory=list)
    trackings: list[JSON] = field(default_factory=list)


@dataclass(frozen=True)
class WebhookDelivery:
    topic: str
    delivery_id: str
    status: int | None  # None: lost (dropped, or a transport failure)
    failure_count: int  # after this delivery
    webhook_id: int | None = None  # a subscription's id; None for the fixed ``webhook_url``


class SignedDelivery(NamedTuple):
    """One delivery WooCommerce would POST for a subscription: signed with its own secret."""

    webhook_id: int
    delivery_url: str
    body: bytes
    headers: dict[str, str]


@dataclass
class _ApiKey:
    """A row of ``woocommerce_api_keys``."""

    key_id: int
    consumer_key: str
    consumer_secret: str
    permissions: str
    description: str
    app_user_id: str | None


@dataclass
class _Webhook:
    """A row of ``wc_webhooks``; ``pending_delivery`` stays set until a ping is answered 200."""

    id: int
    name: str
    status: str
    topic: str
    delivery_url: str
    secret: str
    created: datetime
    modified: datetime
    failure_count: int = 0
    pending_delivery: bool = True


class _AuthPageError(Exception):
    """``WC_Auth::auth_endpoint`` failed: ``wp_die`` shows "Error: …" with HTTP 401."""


@dataclass
class _Ctx:
    """One API request as the handlers see it."""

    method: str
    params: dict[str, str]
    query: Mapping[str, str]
    body: Any
    url: str
    authenticated: bool
    pings: list[int] = field(default_factory=list)  # webhooks to ping once the lock is released


class _HttpError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.answer: Answer = (status, _wp_error(status, code, message), {})


# =============================================================================================
# The sandbox
# =============================================================================================


class WooCommerceSandbox:
    """One in-memory WooCommerce site behind its REST API (``.app``, an ASGI app).

    Seeding: ``add_product``, ``add_order``, ``update_order``, ``add_refund``, ``set_stock``.
    Inspection: ``stock``, ``price``, ``product_json``, ``variation_json``, ``order_json``,
    ``order_status``, ``notes``,
    ``trackings``, ``tracking_writes``, ``customer_emails``, ``image_sideloads``,
    ``webhook_deliveries``, ``requests``, ``request_log``, ``throttled_responses``,
    ``fault_responses``. Switches (plain attributes, settable while serving):
    ``drop_authorization_header``, ``has_shipment_tracking``, ``latency_seconds``,
    ``error_rate_5xx``, ``queue_429()``, ``drop_webhook_rate``, ``batch_limit``.
    Webhooks: ``signed_webhook``, ``emit_webhook``, ``emit_order_webhook``, ``send_ping``,
    ``webhook_status``, ``webhook_failure_count`` (the site's fixed webhook at ``webhook_url``);
    subscriptions made through the REST API: ``signed_deliveries``, ``record_delivery``,
    ``deliver``, ``webhooks``, ``ping_log``.
    Onboarding: ``/wc-auth/v1/authorize``; ``deny_next_authorization``,
    ``require_https_callback`` (switches), ``add_api_key``, ``revoke_api_key``, ``api_keys``,
    ``authorizations`` (inspection).
    """

    def __init__(
        self,
        *,
        site: str = "shop.sandbox.test",
        consumer_key: str = "ck_sandbox_0123456789abcdef",
        consumer_secret: str = "cs_sandbox_0123456789abcdef",  # noqa: S107 - fixed test secret
        webhook_secret: str = "wc-sandbox-webhook-secret",  # noqa: S107 - fixed test secret
        webhook_url: str | None = None,
        webhook_id: int = 7,
        has_shipment_tracking: bool = False,
        drop_authorization_header: bool = False,
        utc_offset: timedelta = timedelta(hours=-3),
        price_decimals: int = 2,
        wall_clock: Callable[[], datetime] | None = None,
        seed: int = 0,
        store_name: str = "Sandbox Store",
        currency: str = "USD",
    ) -> None:
        self.site = site
        self.store_name = store_name
        self.currency = currency
        self.consumer_key = consumer_key
        self.consumer_secret = consumer_secret
        self.webhook_secret = webhook_secret
        self.webhook_url = webhook_url
        self.webhook_id = webhook_id
        self.utc_offset = utc_offset
        self.price_decimals = price_decimals
        self._wall_clock = wall_clock or (lambda: datetime.now(UTC))
        self._lock = threading.RLock()
        self._rng = random.Random(seed)

        # run-time switches
        self.has_shipment_tracking = has_shipment_tracking
        self.drop_authorization_header = drop_authorization_header
        self.latency_seconds = 0.0
        self.error_rate_5xx = 0.0
        self.drop_webhook_rate = 0.0
        self.batch_limit = DEFAULT_BATCH_LIMIT
        self._queued_429: list[float] = []
        # the next /wc-auth/v1/authorize is refused by the admin ("Deny")
        self.deny_next_authorization = False
        # WC_Auth refuses a callback_url that is not https; loopback tests serve plain HTTP
        self.require_https_callback = False

        # counters and inspectable logs
        self.requests = 0
        self.throttled_responses = 0
        self.fault_responses = 0
        self.image_sideloads = 0
        self.request_log: list[tuple[str, str, str]] = []  # (method, path, auth used)
        self.tracking_writes: list[JSON] = []  # tracking items and tracking notes written
        self.customer_emails: list[JSON] = []  # customer notes and "Completed order" mails
        self.webhook_deliveries: list[WebhookDelivery] = []
        self.webhook_status = "active"
        self.webhook_failure_count = 0
        self.ping_status: int | None = None
        self.ping_log: list[tuple[int, int | None]] = []  # (webhook id, status) per ping
        self.authorizations: list[JSON] = []  # one per /wc-auth/v1/authorize, with its outcome

        # state
        self._post_ids = 100  # products, variations, orders, refunds, attachments share one
        self._item_ids = 300  # order items
        self._comment_ids = 500  # order notes
        self._products: dict[int, _Product] = {}
        self._variations: dict[int, _Variation] = {}
        self._images: dict[int, _Image] = {}
        self._orders: dict[int, _Order] = {}
        self._api_keys: dict[str, _ApiKey] = {}  # by consumer key
        self._key_ids = FIXED_KEY_ID
        self._webhooks: dict[int, _Webhook] = {}
        self._webhook_ids = FIRST_WEBHOOK_ID

        self._routes = self._route_table()
        self.app = Starlette(
            routes=[
                Route("/wc-auth/v1/{route:path}", self._wc_auth, methods=["GET", "POST"]),
                Route(
                    "/{path:path}",
                    self._endpoint,
                    methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                ),
            ]
        )

    def __repr__(self) -> str:
        return f"WooCommerceSandbox(site={self.site!r}, orders={len(self._orders)})"

    # =========================================================================================
    # Public: switches
    # =========================================================================================

    def queue_429(self, n: int, retry_after: float = 1.0) -> None:
        """Answer the next ``n`` requests with HTTP 429 and ``Retry-After: retry_after``
        (a host or WAF limiting the site: WooCommerce core has no limiter)."""
        with self._lock:
            self._queued_429.extend([retry_after] * n)

    # =========================================================================================
    # Public: seeding
    # =========================================================================================

    def add_product(
        self,
        name: str,
        *,
        sku: str = "",
        price: Decimal | None = None,
        stock: int | None = None,
        manage_stock: bool | None = None,
        variations: Sequence[Mapping[str, Any]] | None = None,
        images: Sequence[str] = (),
        status: str = "publish",
        sale_price: Decimal | None = None,
    ) -> JSON:
        """A simple product, or a variable one when ``variations`` are given.

        Each variation is ``{"sku", "price", "sale_price"?, "stock"?, "manage_stock"?,
        "attributes"?: {"Size": "M"}}``; prices are the regular (and sale) price, shown with
        the site's decimals; ``stock`` set means the item manages stock unless ``manage_stock``
        says otherwise. A variable product's own ``stock`` is shared by variations that do not
        manage theirs ("parent"). Returns ``{"id", "type", "stock_item_id", "variations":
        [{"id", "sku", "stock_item_id"}]}``.
        """
        with self._lock:
            now = self._now()
            product = _Product(
                id=self._next_post(),
                name=name,
                type="variable" if variations else "simple",
                sku=sku,
                regular_price=self._seed_price(price),
                manage_stock=stock is not None if manage_stock is None else manage_stock,
                stock_quantity=stock,
                status=status,
                created=now,
                modified=now,
                sale_price=self._seed_price(sale_price),
            )
            self._products[product.id] = product
            for url in images:
                product.images.append(self._sideload(url, now))
            for spec in variations or ():
                self._add_variation(product, spec, now)
            return {
                "id": product.id,
                "type": product.type,
                "stock_item_id": str(product.id),
                "variations": [
                    {
                        "id": vid,
                        "sku": self._variations[vid].sku,
                        "stock_item_id": f"{product.id}:{vid}",
                    }
                    for vid in product.variation_ids
                ],
            }

    def add_order(
        self,
        lines: Sequence[Mapping[str, Any]],
        *,
        status: str = "processing",
        currency: str | None = None,
        number: str | None = None,
        date_created_gmt: datetime | None = None,
        date_modified_gmt: datetime | None = None,
        date_paid_gmt: datetime | None = None,
        total: Decimal | None = None,
        shipping_total: Decimal = Decimal(0),
        billing: Mapping[str, Any] | None = None,
        shipping: Mapping[str, Any] | None = None,
    ) -> int:
        """Create an order; return its id.

        Each line is ``{"product_id", "variation_id"?, "quantity"?, "price"?, "discount"?,
        "name"?, "sku"?}``: ``price`` is the unit price before discount (default: the item's
        price), ``discount`` the line's discount amount. ``total`` defaults to the lines'
        discounted totals plus shipping. A paid status (processing, completed) gets a
        ``date_paid`` unless one is given; ``currency`` defaults to the store's.
        """
        with self._lock:
            created = date_created_gmt or self._now()
            order_lines = [self._order_line(spec) for spec in lines]
            computed = sum((line.total for line in order_lines), Decimal(0)) + shipping_total
            order = _Order(
                id=self._next_post(),
                number="",
                status=_valid_status(status),
                currency=currency or self.currency,
                created=_utc(created),
                modified=_utc(date_modified_gmt or created),
                paid=_utc(date_paid_gmt or created) if status in PAID_STATUSES else date_paid_gmt,
                completed=_utc(created) if status == "completed" else None,
                lines=order_lines,
                shipping_total=shipping_total,
                total=total if total is not None else computed,
                billing=_address(billing, email=True),
                shipping=_address(shipping),
            )
            order.number = number or str(order.id)
            self._orders[order.id] = order
            return order.id

    def update_order(
        self,
        order_id: int,
        *,
        status: str | None = None,
        date_modified_gmt: datetime | None = None,
    ) -> None:
        """Change an order as the shop admin would; ``date_modified`` moves (to the given time
        or now)."""
        with self._lock:
            order = self._order(order_id)
            if status is not None:
                self._set_status(order, _valid_status(status))
            order.modified = _utc(date_modified_gmt or self._now())

    def add_refund(
        self,
        order_id: int,
        *,
        lines: Sequence[tuple[int, int]] = (),
        amount: Decimal | None = None,
        reason: str = "",
    ) -> int:
        """Refund ``(line_id, quantity)`` pairs and/or an amount; return the refund id.

        Refund lines carry negative quantities and ``_refunded_item_id``; the order's
        ``refunds`` lists ``{id, reason, total: "-x"}``; a full refund makes it ``refunded``.
        """
        with self._lock:
            order = self._order(order_id)
            now = self._now()
            refund_lines = [self._refund_line(order, line_id, qty) for line_id, qty in lines]
            value = (
                amount if amount is not None else -sum((r.total for r in refund_lines), Decimal(0))
            )
            refund = _Refund(self._next_post(), value, reason, now, refund_lines)
            order.refunds.insert(0, refund)
            if sum((r.amount for r in order.refunds), Decimal(0)) >= order.total:
                self._set_status(order, "refunded")
            order.modified = now
            return refund.id

    def set_stock(self, stock_item_id: str, quantity: int | None) -> None:
        """Set an item's own stock (None: stop managing it)."""
        with self._lock:
            item = self._stock_item(stock_item_id)
            item.manage_stock = quantity is not None
            item.stock_quantity = quantity

    def add_api_key(
        self, permissions: str = "read_write", *, description: str = "Added by hand"
    ) -> JSON:
        """A key the admin creates under WooCommerce > Settings > Advanced > REST API; returns
        ``{"key_id", "consumer_key", "consumer_secret", "key_permissions"}``."""
        if permissions not in AUTH_SCOPES:
            raise ValueError(f"not a key permission: {permissions!r}")
        with self._lock:
            key = self._create_key(permissions, description, app_user_id=None)
            return _key_document(key)

    def revoke_api_key(self, consumer_key: str) -> bool:
        """The admin's "Revoke API key"; False when no such key is live."""
        with self._lock:
            return self._api_keys.pop(consumer_key, None) is not None

    # =========================================================================================
    # Public: inspection
    # =========================================================================================

    def api_keys(self) -> list[JSON]:
        """The live keys besides the fixed one: ``key_id``, keys, permissions, description and
        the app's ``user_id`` for keys made by ``/wc-auth/v1/authorize``."""
        with self._lock:
            return [
                {**_key_document(key), "description": key.description, "user_id": key.app_user_id}
                for key in sorted(self._api_keys.values(), key=lambda key: key.key_id)
            ]

    def webhooks(self) -> list[JSON]:
        """Every subscription as the admin sees it, secret, ``failure_count`` and
        ``pending_delivery`` included (the REST API shows none of them)."""
        with self._lock:
            return [
                {
                    **self._webhook_view(webhook),
                    "secret": webhook.secret,
                    "failure_count": webhook.failure_count,
                    "pending_delivery": webhook.pending_delivery,
                }
                for webhook in sorted(self._webhooks.values(), key=lambda hook: hook.id)
            ]

    def stock(self, stock_item_id: str) -> int | None:
        """The item's own ``stock_quantity`` (None when it does not manage stock)."""
        with self._lock:
            item = self._stock_item(stock_item_id)
            return item.stock_quantity if item.manage_stock else None

    def manages_stock(self, stock_item_id: str) -> bool:
        with self._lock:
            return self._stock_item(stock_item_id).manage_stock

    def price(self, stock_item_id: str) -> Decimal | None:
        """The item's current ``price`` (the sale price while on sale, else the regular one);
        None when it has none. ``product_json``/``variation_json`` show the exact strings."""
        with self._lock:
            text = _active_price(self._stock_item(stock_item_id))
            return Decimal(text) if text else None

    def product_json(self, product_id: int) -> JSON:
        with self._lock:
            return self._product_view(self._product(product_id))

    def variation_json(self, product_id: int, variation_id: int) -> JSON:
        """The variation as ``GET /products/{product_id}/variations`` lists it."""
        with self._lock:
            variation = self._variations.get(variation_id)
            if variation is None or variation.parent_id != product_id:
                raise KeyError(f"no variation {product_id}:{variation_id}")
            return self._variation_view(variation)

    def order_json(self, order_id: int) -> JSON:
        """The order as ``GET /orders/{id}`` (and an ``order.*`` webhook) shows it."""
        with self._lock:
            return self._order_view(self._order(order_id))

    def order_status(self, order_id: int) -> str:
        with self._lock:
            return self._order(order_id).status

    def order_line_ids(self, order_id: int) -> list[int]:
        with self._lock:
            return [line.id for line in self._order(order_id).lines]

    def notes(self, order_id: int) -> list[JSON]:
        with self._lock:
            return [self._note_view(note) for note in self._order(order_id).notes]

    def trackings(self, order_id: int) -> list[JSON]:
        with self._lock:
            return [dict(item) for item in self._order(order_id).trackings]

    # =========================================================================================
    # Webhooks (class-wc-webhook.php: deliver, deliver_ping, failed_delivery)
    # =========================================================================================

    def signed_webhook(
        self,
        topic: str,
        payload: Mapping[str, Any],
        *,
        secret: str | None = None,
        webhook_id: int | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        """The exact body and headers WooCommerce would POST for ``topic`` ("order.updated").

        The body is ``wp_json_encode`` output (compact, ``\\/`` and ``\\uXXXX`` escaped);
        ``X-WC-Webhook-Signature`` is base64(HMAC-SHA256(body, secret)); ``secret`` overrides
        the fixed webhook's (rotation and forgery tests), ``webhook_id`` its id.
        """
        body = wp_json_encode(payload)
        key = secret if secret is not None else self.webhook_secret
        hook_id = self.webhook_id if webhook_id is None else webhook_id
        return body, self._delivery_headers(topic, body, key, hook_id)

    def signed_deliveries(self, topic: str, payload: Mapping[str, Any]) -> list[SignedDelivery]:
        """What WooCommerce would POST for ``topic`` and this resource: one delivery for every
        *active* subscription to the topic (``wc_load_webhooks`` loads no other), each signed
        with that subscription's own secret. Nothing is sent or counted."""
        body = wp_json_encode(payload)
        with self._lock:
            hooks = [
                (hook.id, hook.delivery_url, hook.secret)
                for hook in sorted(self._webhooks.values(), key=lambda hook: hook.id)
                if hook.status == "active" and hook.topic == topic
            ]
        return [
            SignedDelivery(
                webhook_id, url, body, self._delivery_headers(topic, body, secret, webhook_id)
            )
            for webhook_id, url, secret in hooks
        ]

    def record_delivery(self, webhook_id: int, status_code: int | None) -> str:
        """``WC_Webhook::log_delivery`` for one delivery's answer (None: no answer at all);
        returns the subscription's status afterwards.

        A 200-302 resets ``failure_count``; anything else is a failure: with the count already
        above 5 the webhook is disabled, otherwise the count goes up (``failed_delivery``), so
        the seventh failure in a row disables it. Re-enabling does not reset the count.
        (WooCommerce's save after a success would also ping a webhook whose first ping was
        never answered 200; the sandbox pings only from the REST API.)
        """
        with self._lock:
            hook = self._webhooks.get(int(webhook_id))
            if hook is None:
                raise KeyError(f"no webhook {webhook_id}")
            if _delivered(status_code):
                hook.failure_count = 0
            elif hook.failure_count > MAX_WEBHOOK_FAILURES:
                hook.status = "disabled"
                hook.modified = self._now()
            else:
                hook.failure_count += 1
            return hook.status

    def deliver(self, topic: str, payload: Mapping[str, Any]) -> list[tuple[int, int | None]]:
        """POST ``signed_deliveries`` once each (never retried, no lock held while sending) and
        record each outcome; ``drop_webhook_rate`` loses some without a trace. Returns
        ``(webhook id, status received or None)`` per delivery."""
        outcomes: list[tuple[int, int | None]] = []
        for delivery in self.signed_deliveries(topic, payload):
            with self._lock:
                dropped = self._rng.random() < self.drop_webhook_rate
            status = (
                None
                if dropped
                else self._post_to(delivery.delivery_url, delivery.body, delivery.headers)
            )
            if not dropped:
                self.record_delivery(delivery.webhook_id, status)
            with self._lock:
                count = self._webhooks[delivery.webhook_id].failure_count
                self.webhook_deliveries.append(
                    WebhookDelivery(
                        topic,
                        delivery.headers["X-WC-Webhook-Delivery-ID"],
                        status,
                        count,
                        delivery.webhook_id,
                    )
                )
            outcomes.append((delivery.webhook_id, status))
        return outcomes

    def _delivery_headers(
        self, topic: str, body: bytes, secret: str, webhook_id: int
    ) -> dict[str, str]:
        """``WC_Webhook::deliver``'s headers for ``body``."""
        resource, _, event = topic.partition(".")
        delivery = hashlib.sha256(f"{webhook_id}{time.time_ns()}".encode()).hexdigest()
        return {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-WC-Webhook-Source": f"https://{self.site}/",
            "X-WC-Webhook-Topic": topic,
            "X-WC-Webhook-Resource": resource,
            "X-WC-Webhook-Event": event,
            "X-WC-Webhook-Signature": base64.b64encode(
                hmac.new(secret.encode(), body, hashlib.sha256).digest()
            ).decode(),
            "X-WC-Webhook-ID": str(webhook_id),
            "X-WC-Webhook-Delivery-ID": delivery[:32],
        }

    def emit_webhook(self, topic: str, payload: Mapping[str, Any]) -> int | None:
        """POST one signed delivery to ``webhook_url``, as WooCommerce does: once, never
        retried. A non-2xx/3xx answer or a transport error is a failure; the seventh in a row
        disables the webhook (no more deliveries). ``drop_webhook_rate`` loses a delivery
        without anyone noticing. Returns the status received, None when nothing arrived."""
        if self.webhook_url is None:
            raise RuntimeError("webhook_url is not set")
        with self._lock:
            if self.webhook_status != "active":
                return None
            dropped = self._rng.random() < self.drop_webhook_rate
        body, headers = self.signed_webhook(topic, payload)
        if dropped:
            self._record_delivery(topic, headers, None, failed=False)
            return None
        status = self._post(body, headers)
        self._record_delivery(topic, headers, status, failed=not _delivered(status))
        return status

    def emit_order_webhook(self, order_id: int, topic: str = "order.updated") -> int | None:
        return self.emit_webhook(topic, self.order_json(order_id))

    def send_ping(self) -> bool:
        """The activation ping: form body ``webhook_id=<id>``, no signature. Only an exact 200
        activates the webhook."""
        if self.webhook_url is None:
            raise RuntimeError("webhook_url is not set")
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": USER_AGENT,
        }
        status = self._post(f"webhook_id={self.webhook_id}".encode(), headers)
        with self._lock:
            self.ping_status = status
            self.webhook_status = "active" if status == 200 else "disabled"
            return status == 200

    def _post(self, body: bytes, headers: Mapping[str, str]) -> int | None:
        assert self.webhook_url is not None
        return self._post_to(self.webhook_url, body, headers)

    @staticmethod
    def _post_to(url: str, body: bytes, headers: Mapping[str, str]) -> int | None:
        """One blocking POST (``redirection => 0``); None when no answer came."""
        try:
            with httpx.Client(timeout=WEBHOOK_TIMEOUT_SECONDS, follow_redirects=False) as client:
                return client.post(url, content=body, headers=dict(headers)).status_code
        except httpx.HTTPError:
            return None

    async def _ping(self, webhook_id: int) -> None:
        """``WC_Webhook::deliver_ping`` from inside the app: an unsigned form body
        ``webhook_id=<id>``; only an exact 200 clears ``pending_delivery``. The REST API
        ignores the outcome (the webhook keeps its status)."""
        with self._lock:
            hook = self._webhooks.get(webhook_id)
            url = hook.delivery_url if hook else None
        if url is None:
            return
        headers = {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": USER_AGENT}
        status: int | None
        try:
            async with httpx.AsyncClient(
                timeout=WEBHOOK_TIMEOUT_SECONDS, follow_redirects=False
            ) as client:
                response = await client.post(
                    url, content=f"webhook_id={webhook_id}".encode(), headers=headers
                )
                status = response.status_code
        except httpx.HTTPError:
            status = None
        with self._lock:
            self.ping_log.append((webhook_id, status))
            hook = self._webhooks.get(webhook_id)
            if hook is not None and status == 200:
                hook.pending_delivery = False

    def _record_delivery(
        self, topic: str, headers: Mapping[str, str], status: int | None, *, failed: bool
    ) -> None:
        with self._lock:
            if failed:
                if self.webhook_failure_count > MAX_WEBHOOK_FAILURES:
                    self.webhook_status = "disabled"
                else:
                    self.webhook_failure_count += 1
            elif status is not None:
                self.webhook_failure_count = 0
            self.webhook_deliveries.append(
                WebhookDelivery(
                    topic, headers["X-WC-Webhook-Delivery-ID"], status, self.webhook_failure_count
                )
            )

    # =========================================================================================
    # HTTP
    # =========================================================================================

    async def _endpoint(self, request: Request) -> Response:
        raw = await request.body()
        if self.latency_seconds:
            await asyncio.sleep(self.latency_seconds)
        pings: list[int] = []
        with self._lock:
            status, body, headers = self._handle(request, raw, pings)
        for webhook_id in pings:  # PHP pings before it answers, and so does the sandbox
            await self._ping(webhook_id)
        content = b"" if body is None else wp_json_encode(body)
        return Response(
            content,
            status_code=status,
            headers=headers,
            media_type="application/json; charset=UTF-8",
        )

    def _handle(self, request: Request, raw: bytes, pings: list[int]) -> Answer:
        """Faults first (as a host in front of WordPress would), then auth, then the route.

        The index (``/wp-json/``) is WordPress's, outside WooCommerce's authentication."""
        self.requests += 1
        path = "/" + request.path_params.get("path", "")
        auth, authenticated = (
            ("anonymous", False) if path in INDEX_PATHS else self._authenticate(request)
        )
        self.request_log.append((request.method, path, auth))
        if self._queued_429:
            self.throttled_responses += 1
            wait = self._queued_429.pop(0)
            body = {"code": "too_many_requests", "message": "Too Many Requests", "data": {}}
            return 429, body, {"Retry-After": _seconds(wait)}
        if self.error_rate_5xx and self._rng.random() < self.error_rate_5xx:
            self.fault_responses += 1
            return 503, _wp_error(503, "service_unavailable", "Service Unavailable"), {}
        if isinstance(authenticated, tuple):
            return authenticated
        try:
            handler, params = self._route(request.method, path)
            ctx = _Ctx(
                request.method,
                params,
                request.query_params,
                _json_body(raw),
                str(request.url),
                authenticated,
                pings,
            )
            return _only_fields(handler(ctx), request.query_params.get("_fields"))
        except _HttpError as error:
            return error.answer

    def _authenticate(self, request: Request) -> tuple[str, bool | Answer]:
        """``(auth used, True | False | an error answer)``; False is anonymous, which each
        route refuses with its own permission error (WC_REST_Authentication)."""
        key, secret, kind = None, None, "anonymous"
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic ") and not self.drop_authorization_header:
            key, secret, kind = *_basic(header), "basic"
        elif "consumer_key" in request.query_params:
            key = request.query_params.get("consumer_key")
            secret = request.query_params.get("consumer_secret", "")
            kind = "query"
        if key is None:
            return kind, False
        found = self._key(key or "")
        if found is None:
            return kind, _auth_error("Consumer key is invalid.")
        if not hmac.compare_digest(secret or "", found.consumer_secret):
            return kind, _auth_error("Consumer secret is invalid.")
        if request.method not in KEY_METHODS.get(found.permissions, frozenset()):
            wanted = "write" if found.permissions == "read" else "read"
            return kind, _auth_error(f"The API key provided does not have {wanted} permissions.")
        return kind, True

    def _key(self, consumer_key: str) -> _ApiKey | None:
        """The live key, the fixed one included (``wc_api_hash`` lookup)."""
        if hmac.compare_digest(consumer_key, self.consumer_key):
            return _ApiKey(
                FIXED_KEY_ID, self.consumer_key, self.consumer_secret, "read_write", "", None
            )
        return self._api_keys.get(consumer_key)

    def _create_key(
        self, permissions: str, description: str, *, app_user_id: str | None
    ) -> _ApiKey:
        """``WC_Auth::create_keys``: ``ck_``/``cs_`` and ``wc_rand_hash()`` (40 hex digits)."""
        self._key_ids += 1
        key = _ApiKey(
            key_id=self._key_ids,
            consumer_key="ck_" + secrets.token_hex(20),
            consumer_secret="cs_" + secrets.token_hex(20),
            permissions=permissions,
            description=description,
            app_user_id=app_user_id,
        )
        self._api_keys[key.consumer_key] = key
        return key

    def _route_table(self) -> list[tuple[str, re.Pattern[str], Callable[[_Ctx], Answer]]]:
        routes: list[tuple[str, str, Callable[[_Ctx], Answer]]] = [
            ("GET", r"/wp-json", self._index),
            ("GET", rf"{API}/settings/(?P<group>[\w-]+)", self._list_settings),
            ("GET", rf"{API}/settings/(?P<group>[\w-]+)/(?P<id>[\w-]+)", self._get_setting),
            ("GET", rf"{API}/webhooks", self._list_webhooks),
            ("POST", rf"{API}/webhooks", self._create_webhook),
            ("GET", rf"{API}/webhooks/(?P<id>\d+)", self._get_webhook),
            ("PUT|POST|PATCH", rf"{API}/webhooks/(?P<id>\d+)", self._update_webhook),
            ("DELETE", rf"{API}/webhooks/(?P<id>\d+)", self._delete_webhook),
            ("GET", rf"{API}/orders", self._list_orders),
            ("GET", rf"{API}/orders/(?P<id>\d+)", self._get_order),
            ("PUT|POST|PATCH", rf"{API}/orders/(?P<id>\d+)", self._edit_order),
            ("GET", rf"{API}/orders/(?P<id>\d+)/refunds", self._list_refunds),
            ("GET", rf"{API}/orders/(?P<id>\d+)/notes", self._list_notes),
            ("POST", rf"{API}/orders/(?P<id>\d+)/notes", self._create_note),
            ("GET", rf"{API}/products", self._list_products),
            ("POST|PUT|PATCH", rf"{API}/products/batch", self._product_batch),
            ("GET", rf"{API}/products/(?P<id>\d+)", self._get_product),
            ("PUT|POST|PATCH", rf"{API}/products/(?P<id>\d+)", self._edit_product),
            ("GET", rf"{API}/products/(?P<id>\d+)/variations", self._list_variations),
            (
                "POST|PUT|PATCH",
                rf"{API}/products/(?P<id>\d+)/variations/batch",
                self._variation_batch,
            ),
            (
                "GET",
                rf"{TRACKING_API}/orders/(?P<id>\d+)/shipment-trackings",
                self._list_trackings,
            ),
            (
                "POST",
                rf"{TRACKING_API}/orders/(?P<id>\d+)/shipment-trackings",
                self._create_tracking,
            ),
        ]
        return [
            (methods, re.compile(pattern + "/?"), handler) for methods, pattern, handler in routes
        ]

    def _route(self, method: str, path: str) -> tuple[Callable[[_Ctx], Answer], dict[str, str]]:
        for methods, pattern, handler in self._routes:
            match = pattern.fullmatch(path)
            if match and method in methods.split("|"):
                tracking = path.startswith(TRACKING_API)
                if tracking and not self.has_shipment_tracking:
                    break
                return handler, match.groupdict()
        raise _HttpError(
            404, "rest_no_route", "No route was found matching the URL and request method."
        )

    # =========================================================================================
    # The app authentication endpoint (class-wc-auth.php)
    # =========================================================================================

    async def _wc_auth(self, request: Request) -> Response:
        """``/wc-auth/v1/authorize`` as a store admin who is logged in and approves at once.

        The steps of ``WC_Auth::auth_endpoint`` (login, the grant-access form, then
        ``access_granted``) collapse into this one request: validation, new keys, the POST of
        the keys to ``callback_url`` (answered exactly 200, or the keys are deleted and the
        admin sees an error), then a 302 to ``return_url`` with ``success=1&user_id=…``.
        ``deny_next_authorization`` plays the admin's "Deny" link: ``success=0``, nothing
        created or posted.
        """
        if request.path_params.get("route", "").strip("/").lower() != "authorize":
            return _auth_page_error("You do not have permission to access this page")
        query = request.query_params
        record: JSON = {"user_id": query.get("user_id"), "app_name": query.get("app_name")}
        try:
            data = _auth_request(query, require_https=self.require_https_callback)
        except _AuthPageError as error:
            with self._lock:
                self.authorizations.append({**record, "outcome": "invalid", "error": str(error)})
            return _auth_page_error(str(error))
        with self._lock:
            if self.deny_next_authorization:
                self.deny_next_authorization = False
                self.authorizations.append({**record, "outcome": "denied"})
                return _redirect(data["return_url"], success=0, user_id=data["user_id"])
            key = self._create_key(
                data["scope"],
                f"{data['app_name'][:170]} - API ({self._now().strftime('%Y-%m-%d %H:%M:%S')})",
                app_user_id=data["user_id"],
            )
            consumer_data = {**_key_document(key), "user_id": data["user_id"]}
        status = await self._post_consumer_data(data["callback_url"], consumer_data)
        if status != 200:  # WC_Auth::post_consumer_data wants exactly 200
            with self._lock:
                self._api_keys.pop(key.consumer_key, None)  # maybe_delete_key
                self.authorizations.append(
                    {**record, "outcome": "callback_failed", "callback_status": status}
                )
            return _auth_page_error(
                "An error occurred in the request and at the time were unable to send the "
                "consumer data"
            )
        with self._lock:
            self.authorizations.append(
                {**record, "outcome": "granted", "callback_status": status, "key_id": key.key_id}
            )
        return _redirect(data["return_url"], success=1, user_id=data["user_id"])

    async def _post_consumer_data(self, url: str, consumer_data: JSON) -> int | None:
        """``wp_json_encode`` of the keys, POSTed as JSON; None when nothing answered."""
        headers = {
            "Content-Type": "application/json;charset=UTF-8",
            "User-Agent": f"WordPress/{WORDPRESS_VERSION}; https://{self.site}",
        }
        try:
            async with httpx.AsyncClient(
                timeout=WEBHOOK_TIMEOUT_SECONDS, follow_redirects=False
            ) as client:
                response = await client.post(
                    url, content=wp_json_encode(consumer_data), headers=headers
                )
                return response.status_code
        except httpx.HTTPError:
            return None

    # =========================================================================================
    # The WordPress index and setting options
    # =========================================================================================

    def _index(self, ctx: _Ctx) -> Answer:
        """``GET /wp-json/`` (WP_REST_Server::get_index), without the long ``routes`` map."""
        namespaces = ["wc/v1", "wc/v2", "wc/v3"]
        if self.has_shipment_tracking:
            namespaces.append("wc-shipment-tracking/v3")
        return (
            200,
            {
                "name": self.store_name,
                "description": "Just another WordPress site",
                "url": f"https://{self.site}",
                "home": f"https://{self.site}",
                "gmt_offset": str(self.utc_offset.total_seconds() / 3600).removesuffix(".0"),
                "timezone_string": "",
                "namespaces": namespaces,
                "authentication": [],
                "routes": {},
            },
            {},
        )

    def _settings(self, group: str) -> list[JSON]:
        """https://woocommerce.github.io/woocommerce-rest-api-docs/#setting-option-properties;
        only the general options the sandbox knows."""
        if group != "general":
            raise _HttpError(404, "rest_setting_setting_group_invalid", "Invalid setting group.")
        base = f"https://{self.site}{API}/settings/general"
        options: list[JSON] = [
            {
                "id": "woocommerce_currency",
                "label": "Currency",
                "description": "This controls what currency prices are listed at in the "
                "catalog and which currency gateways will take payments in.",
                "type": "select",
                "default": "USD",
                "options": dict(CURRENCIES),
                "tip": "This controls what currency prices are listed at in the catalog and "
                "which currency gateways will take payments in.",
                "value": self.currency,
            },
            {
                "id": "woocommerce_price_num_decimals",
                "label": "Number of decimals",
                "description": "This sets the number of decimal points shown in displayed prices.",
                "type": "number",
                "default": "2",
                "tip": "This sets the number of decimal points shown in displayed prices.",
                "value": str(self.price_decimals),
            },
        ]
        return [
            {
                **option,
                "_links": {
                    "self": [{"href": f"{base}/{option['id']}"}],
                    "collection": [{"href": base}],
                },
            }
            for option in options
        ]

    def _list_settings(self, ctx: _Ctx) -> Answer:
        _permission(ctx, "view")
        return 200, self._settings(ctx.params["group"]), {}

    def _get_setting(self, ctx: _Ctx) -> Answer:
        _permission(ctx, "view")
        for option in self._settings(ctx.params["group"]):
            if option["id"] == ctx.params["id"]:
                return 200, option, {}
        raise _HttpError(404, "rest_setting_setting_invalid", "Invalid setting.")

    # =========================================================================================
    # Webhooks (WC_REST_Webhooks_V1_Controller and its v2/v3 subclasses)
    # =========================================================================================

    def _list_webhooks(self, ctx: _Ctx) -> Answer:
        """``status`` (all, active, paused, disabled), ``include``, ``orderby`` (date, id,
        title), ``order`` (desc by default), and the usual paging headers."""
        _permission(ctx, "view")
        status = ctx.query.get("status", "all")
        if status not in ("all", *WEBHOOK_STATUSES):
            raise _HttpError(
                400,
                "rest_invalid_param",
                "Invalid parameter(s): status (status is not one of all, active, paused, "
                "disabled.)",
            )
        include = _ids(ctx.query.get("include"))
        hooks = [
            hook
            for hook in self._webhooks.values()
            if (status == "all" or hook.status == status) and (not include or hook.id in include)
        ]
        orderby = ctx.query.get("orderby", "date")
        if orderby == "id":
            hooks.sort(key=lambda hook: hook.id)
        elif orderby == "title":
            hooks.sort(key=lambda hook: (hook.name, hook.id))
        else:
            hooks.sort(key=lambda hook: (hook.created, hook.id))
        if ctx.query.get("order", "desc").lower() != "asc":
            hooks.reverse()
        return self._page(ctx, [self._webhook_view(hook) for hook in hooks])

    def _create_webhook(self, ctx: _Ctx) -> Answer:
        """201 with the webhook (never its secret) and ``Location``, then the ping, whatever
        its outcome (``create_item`` ignores it)."""
        _permission(ctx, "create")
        body = ctx.body if isinstance(ctx.body, Mapping) else {}
        if body.get("id"):
            raise _HttpError(
                400, "woocommerce_rest_webhook_exists", "Cannot create existing webhook."
            )
        topic = str(body.get("topic") or "").lower()
        if not _valid_topic(topic):
            raise _HttpError(
                400,
                "woocommerce_rest_webhook_invalid_topic",
                "Webhook topic is required and must be valid.",
            )
        url = str(body.get("delivery_url") or "")
        if not _valid_delivery_url(url):
            raise _HttpError(
                400,
                "woocommerce_rest_webhook_invalid_delivery_url",
                "Webhook delivery URL must be a valid URL starting with http:// or https://.",
            )
        status = _webhook_status(body.get("status") or "active")
        now = self._now()
        self._webhook_ids += 1
        name = str(body.get("name") or "") or (
            f"Webhook created on {(now + self.utc_offset).strftime('%b %d, %Y @ %I:%M %p')}"
        )
        secret = str(body.get("secret") or "") or secrets.token_urlsafe(37)[:50]
        hook = _Webhook(self._webhook_ids, name, status, topic, url, secret, now, now)
        self._webhooks[hook.id] = hook
        ctx.pings.append(hook.id)
        location = f"https://{self.site}{API}/webhooks/{hook.id}"
        return 201, self._webhook_view(hook), {"Location": location}

    def _get_webhook(self, ctx: _Ctx) -> Answer:
        _permission(ctx, "view")
        return 200, self._webhook_view(self._webhook_or_400(ctx)), {}

    def _update_webhook(self, ctx: _Ctx) -> Answer:
        """``update_item``: name, topic, delivery URL, secret, status; saving an active webhook
        pings when its URL changed or no ping was answered 200 yet (the data store's
        ``update``)."""
        _permission(ctx, "edit")
        hook = self._webhook_or_400(ctx)
        body = ctx.body if isinstance(ctx.body, Mapping) else {}
        topic = str(body.get("topic") or "").lower()
        if topic and not _valid_topic(topic):
            raise _HttpError(
                400, "woocommerce_rest_webhook_invalid_topic", "Webhook topic must be valid."
            )
        url = str(body.get("delivery_url") or "")
        if url and not _valid_delivery_url(url):
            raise _HttpError(
                400,
                "woocommerce_rest_webhook_invalid_delivery_url",
                "Webhook delivery URL must be a valid URL starting with http:// or https://.",
            )
        status = str(body.get("status") or "").lower()
        if status and status not in WEBHOOK_STATUSES:
            raise _HttpError(
                400, "woocommerce_rest_webhook_invalid_status", "Webhook status must be valid."
            )
        url_changed = bool(url) and url != hook.delivery_url
        hook.topic = topic or hook.topic
        hook.delivery_url = url or hook.delivery_url
        hook.secret = str(body.get("secret") or "") or hook.secret
        hook.status = status or hook.status
        hook.name = str(body.get("name") or "") or hook.name
        hook.modified = self._now()
        if hook.status == "active" and (url_changed or hook.pending_delivery):
            ctx.pings.append(hook.id)
        return 200, self._webhook_view(hook), {}

    def _delete_webhook(self, ctx: _Ctx) -> Answer:
        _permission(ctx, "delete")
        if ctx.query.get("force", "").lower() not in ("1", "true", "yes"):
            raise _HttpError(
                501, "woocommerce_rest_trash_not_supported", "Webhooks do not support trashing."
            )
        hook = self._webhooks.pop(int(ctx.params["id"]), None)
        if hook is None:
            raise _HttpError(404, "woocommerce_rest_webhook_invalid_id", "Invalid ID.")
        return 200, self._webhook_view(hook), {}

    def _webhook_or_400(self, ctx: _Ctx) -> _Webhook:
        """An unknown id is a 400 "ID is invalid." (``prepare_item_for_response``)."""
        hook = self._webhooks.get(int(ctx.params["id"]))
        if hook is None:
            raise _HttpError(400, "woocommerce_rest_webhook_invalid_id", "ID is invalid.")
        return hook

    def _webhook_view(self, hook: _Webhook) -> JSON:
        """https://woocommerce.github.io/woocommerce-rest-api-docs/#webhook-properties: the
        secret is write-only and never shown."""
        resource, _, event = hook.topic.partition(".")
        base = f"https://{self.site}{API}"
        return {
            "id": hook.id,
            "name": hook.name,
            "status": hook.status,
            "topic": hook.topic,
            "resource": resource,
            "event": event,
            "hooks": _topic_hooks(hook.topic),
            "delivery_url": hook.delivery_url,
            **self._dates("date_created", hook.created),
            **self._dates("date_modified", hook.modified),
            "_links": {
                "self": [{"href": f"{base}/webhooks/{hook.id}"}],
                "collection": [{"href": f"{base}/webhooks"}],
            },
        }

    # =========================================================================================
    # Orders
    # =========================================================================================

    def _list_orders(self, ctx: _Ctx) -> Answer:
        _permission(ctx, "view")
        orders = [o for o in self._orders.values() if self._order_matches(o, ctx.query)]
        orders.sort(key=_order_sort_key(ctx.query.get("orderby", "date")))
        if ctx.query.get("order", "desc").lower() != "asc":
            orders.reverse()
        return self._page(ctx, [self._order_view(o) for o in orders])

    def _order_matches(self, order: _Order, query: Mapping[str, str]) -> bool:
        gmt = query.get("dates_are_gmt", "false").lower() in ("1", "true")
        shift = timedelta(0) if gmt else self.utc_offset
        checks = (
            ("after", order.created, True),
            ("before", order.created, False),
            ("modified_after", order.modified, True),
            ("modified_before", order.modified, False),
        )
        for name, moment, after in checks:
            bound = _query_time(query, name)
            if bound is None:
                continue
            seen = (moment + shift).replace(tzinfo=None)
            if (after and not seen > bound) or (not after and not seen < bound):
                return False
        statuses = set(query.get("status", "any").split(","))
        if "any" not in statuses and order.status not in statuses:
            return False
        if "any" in statuses and order.status == "trash":
            return False
        include = _ids(query.get("include"))
        return not include or order.id in include

    def _get_order(self, ctx: _Ctx) -> Answer:
        _permission(ctx, "view")
        return 200, self._order_view(self._order_or_404(ctx)), {}

    def _edit_order(self, ctx: _Ctx) -> Answer:
        _permission(ctx, "edit")
        order = self._order_or_404(ctx)
        body = ctx.body if isinstance(ctx.body, Mapping) else {}
        status = body.get("status")
        if status is not None:
            if status not in ORDER_STATUSES:
                raise _HttpError(
                    400,
                    "rest_invalid_param",
                    "Invalid parameter(s): status (status is not one of "
                    f"{', '.join(ORDER_STATUSES)}.)",
                )
            self._set_status(order, str(status))
        order.modified = self._now()
        return 200, self._order_view(order), {}

    def _set_status(self, order: _Order, status: str) -> None:
        """WooCommerce's side effects of a status transition that matter here."""
        if status == order.status:
            return
        now = self._now()
        if status in PAID_STATUSES and order.paid is None:
            order.paid = now
        if status == "completed":
            order.completed = now
            self.customer_emails.append(
                {"order_id": order.id, "kind": "completed_order", "to": order.billing.get("email")}
            )
        order.status = status

    def _list_refunds(self, ctx: _Ctx) -> Answer:
        _permission(ctx, "view")
        order = self._order_or_404(ctx)
        return self._page(ctx, [self._refund_view(order, r) for r in order.refunds])

    def _list_notes(self, ctx: _Ctx) -> Answer:
        _permission(ctx, "view")
        order = self._order_or_404(ctx)
        kind = ctx.query.get("type", "any")
        notes = [
            note
            for note in reversed(order.notes)
            if kind == "any" or (kind == "customer") == note.customer_note
        ]
        return 200, [self._note_view(note) for note in notes], {}

    def _create_note(self, ctx: _Ctx) -> Answer:
        _permission(ctx, "create")
        order = self._order_or_404(ctx)
        body = ctx.body if isinstance(ctx.body, Mapping) else {}
        text = body.get("note")
        if not isinstance(text, str) or not text:
            raise _HttpError(400, "rest_missing_callback_param", "Missing parameter(s): note")
        note = _Note(
            self._next_comment(),
            text,
            bool(body.get("customer_note")),
            self._now(),
            "admin" if body.get("added_by_user") else "WooCommerce",
        )
        order.notes.append(note)
        if note.customer_note:
            self.customer_emails.append(
                {"order_id": order.id, "kind": "customer_note", "text": text}
            )
        self.tracking_writes.append({"order_id": order.id, "kind": "note", "text": text})
        return 201, self._note_view(note), {}

    # =========================================================================================
    # Shipment Tracking extension
    # =========================================================================================

    def _list_trackings(self, ctx: _Ctx) -> Answer:
        _permission(ctx, "view")
        return 200, [dict(item) for item in self._order_or_404(ctx).trackings], {}

    def _create_tracking(self, ctx: _Ctx) -> Answer:
        _permission(ctx, "create")
        order = self._order_or_404(ctx)
        body = ctx.body if isinstance(ctx.body, Mapping) else {}
        number = body.get("tracking_number")
        if not isinstance(number, str) or not number:
            raise _HttpError(
                400, "rest_missing_callback_param", "Missing parameter(s): tracking_number"
            )
        custom = str(body.get("custom_tracking_provider") or "")
        item = {
            "tracking_id": hashlib.md5(  # noqa: S324 - an id, as the extension makes it
                f"{order.id}{number}{time.time_ns()}".encode()
            ).hexdigest(),
            "tracking_provider": "" if custom else str(body.get("tracking_provider") or ""),
            "custom_tracking_provider": custom,
            "custom_tracking_link": str(body.get("custom_tracking_link") or ""),
            "tracking_number": number,
            "date_shipped": str(body.get("date_shipped") or self._now().date().isoformat()),
        }
        order.trackings.append(item)
        self.tracking_writes.append({"order_id": order.id, "kind": "tracking", **item})
        return 201, dict(item), {}

    # =========================================================================================
    # Products, variations, batches
    # =========================================================================================

    def _list_products(self, ctx: _Ctx) -> Answer:
        _permission(ctx, "view")
        include = _ids(ctx.query.get("include"))
        sku = ctx.query.get("sku")
        products = [
            p
            for p in self._products.values()
            if (not include or p.id in include) and (sku is None or p.sku == sku)
        ]
        products.sort(
            key=lambda p: (p.created, p.id) if ctx.query.get("orderby") == "date" else p.id
        )
        if ctx.query.get("order", "desc").lower() != "asc":
            products.reverse()
        return self._page(ctx, [self._product_view(p) for p in products])

    def _get_product(self, ctx: _Ctx) -> Answer:
        _permission(ctx, "view")
        return 200, self._product_view(self._product_or_404(ctx)), {}

    def _edit_product(self, ctx: _Ctx) -> Answer:
        _permission(ctx, "edit")
        product = self._product_or_404(ctx)
        body = ctx.body if isinstance(ctx.body, Mapping) else {}
        if "images" in body:
            product.images = self._replace_images(body["images"])
        self._apply_update(product, body, batch=False)
        product.modified = self._now()
        return 200, self._product_view(product), {}

    def _list_variations(self, ctx: _Ctx) -> Answer:
        _permission(ctx, "view")
        product = self._product_or_404(ctx)
        include = _ids(ctx.query.get("include"))
        variations = [
            self._variations[vid]
            for vid in sorted(product.variation_ids)
            if not include or vid in include
        ]
        if ctx.query.get("order", "desc").lower() != "asc":
            variations.reverse()
        return self._page(ctx, [self._variation_view(v) for v in variations])

    def _product_batch(self, ctx: _Ctx) -> Answer:
        _permission(ctx, "batch")
        return self._batch(ctx, self._update_product_item)

    def _variation_batch(self, ctx: _Ctx) -> Answer:
        _permission(ctx, "batch")
        parent = self._product_or_404(ctx)

        def update(item: Mapping[str, Any]) -> JSON:
            variation = self._variations.get(_int(item.get("id")))
            if variation is None or variation.parent_id != parent.id:
                raise _HttpError(
                    400, "woocommerce_rest_product_variation_invalid_id", "Invalid ID."
                )
            self._apply_update(variation, item, batch=True)
            variation.modified = self._now()
            return self._variation_view(variation)

        return self._batch(ctx, update)

    def _batch(self, ctx: _Ctx, update: Callable[[Mapping[str, Any]], JSON]) -> Answer:
        """``WC_REST_Controller::batch_items``: the limit over all three arrays, then each
        item on its own, a failure reported in place as ``{"id", "error"}``."""
        body = ctx.body if isinstance(ctx.body, Mapping) else {}
        count = sum(len(body.get(kind) or ()) for kind in ("create", "update", "delete"))
        if count > self.batch_limit:
            raise _HttpError(
                413,
                "woocommerce_rest_request_entity_too_large",
                f"Unable to accept more than {self.batch_limit} items for this request.",
            )
        answer: JSON = {}
        for kind in ("create", "update", "delete"):
            if kind not in body:
                continue
            answer[kind] = [
                self._batch_item(update, item)
                if kind == "update"
                else _item_error(item, "woocommerce_rest_sandbox_unsupported", "Not sandboxed.")
                for item in body.get(kind) or ()
            ]
        return 200, answer, {}

    @staticmethod
    def _batch_item(update: Callable[[Mapping[str, Any]], JSON], item: Any) -> JSON:
        if not isinstance(item, Mapping):
            return _item_error({}, "rest_invalid_param", "Invalid item.")
        try:
            return update(item)
        except _HttpError as error:
            _, body, _ = error.answer
            return _item_error(item, body["code"], body["message"], status=body["data"]["status"])

    def _update_product_item(self, item: Mapping[str, Any]) -> JSON:
        product = self._products.get(_int(item.get("id")))
        if product is None:
            raise _HttpError(400, "woocommerce_rest_product_invalid_id", "Invalid ID.")
        self._apply_update(product, item, batch=True)
        product.modified = self._now()
        return self._product_view(product)

    def _apply_update(
        self, item: _Product | _Variation, body: Mapping[str, Any], *, batch: bool
    ) -> None:
        """``prepare_object_for_database``: ``manage_stock`` first; ``stock_quantity`` is kept
        only while the item manages stock, and cleared otherwise; ``regular_price`` and
        ``sale_price`` when present (not on a variable product). Every field is checked
        before any is applied, so a refused item keeps its old state."""
        quantity = body.get("stock_quantity")
        if quantity is not None and (isinstance(quantity, bool) or not _is_int(quantity)):
            raise _HttpError(
                400,
                "rest_invalid_param",
                "Invalid parameter(s): stock_quantity (stock_quantity is not of type integer.)",
            )
        priced = not (isinstance(item, _Product) and item.type == "variable")
        prices = {
            name: self._price_field(name, body[name], batch=batch)
            for name in ("regular_price", "sale_price")
            if priced and body.get(name) is not None  # PHP isset(): null is absent
        }
        if "manage_stock" in body:
            flag = body["manage_stock"]
            item.manage_stock = flag is True or str(flag).lower() in ("1", "true", "yes")
        if not item.manage_stock:
            item.stock_quantity = None
        elif quantity is not None:
            item.stock_quantity = int(quantity)
        if "regular_price" in prices:
            item.regular_price = prices["regular_price"]
        if "sale_price" in prices:
            item.sale_price = prices["sale_price"]

    def _price_field(self, name: str, value: Any, *, batch: bool) -> str:
        """A price as WooCommerce stores it (``wc_format_decimal`` without rounding): a
        string's digits as written, "" to clear; a JSON number only in a batch item (the
        single ``PUT`` validates against the schema, type string), a float printed at the
        rounding precision and trimmed. Anything that is not a non-negative decimal is refused
        (see the module docstring)."""
        text: str | None = None
        if isinstance(value, str):
            text = value.strip()
        elif batch and isinstance(value, int) and not isinstance(value, bool):
            text = str(value)
        elif batch and isinstance(value, float) and math.isfinite(value):
            precision = max(self.price_decimals + 2, WC_ROUNDING_PRECISION)
            text = f"{value:.{precision}f}"
            text = text.rstrip("0").rstrip(".") if "." in text else text
        elif not batch and not isinstance(value, str):
            raise _HttpError(
                400,
                "rest_invalid_param",
                f"Invalid parameter(s): {name} ({name} is not of type string.)",
            )
        if text is None or (text and not PRICE_TEXT.fullmatch(text)):
            raise _HttpError(
                400,
                "rest_invalid_param",
                f"Invalid parameter(s): {name} ({value!r} is not a non-negative decimal string.)",
            )
        return text

    def _replace_images(self, images: Any) -> list[_Image]:
        """``set_product_images``: the list replaces the gallery; each ``src`` is downloaded
        into the media library (a new attachment every time), an ``id`` reuses one."""
        if not isinstance(images, list):
            raise _HttpError(400, "rest_invalid_param", "Invalid parameter(s): images")
        now = self._now()
        result: list[_Image] = []
        for spec in images:
            if not isinstance(spec, Mapping):
                continue
            image_id = _int(spec.get("id"))
            if image_id:
                if image_id not in self._images:
                    raise _HttpError(
                        400,
                        "woocommerce_product_invalid_image_id",
                        f"#{image_id} is an invalid image ID.",
                    )
                result.append(self._images[image_id])
                continue
            src = str(spec.get("src") or "")
            if not _image_url(src):
                raise _HttpError(
                    400,
                    "woocommerce_product_image_upload_error",
                    "Invalid image: Sorry, you are not allowed to upload this file type.",
                )
            image = self._sideload(src, now)
            if spec.get("alt"):
                image.alt = str(spec["alt"])
            result.append(image)
        return result

    # =========================================================================================
    # Views: the documented JSON shapes
    # =========================================================================================

    def _order_view(self, order: _Order) -> JSON:
        """https://woocommerce.github.io/woocommerce-rest-api-docs/#order-properties"""
        base = f"https://{self.site}{API}"
        discount = sum((line.subtotal - line.total for line in order.lines), Decimal(0))
        return {
            "id": order.id,
            "parent_id": 0,
            "number": order.number,
            "order_key": f"wc_order_{hashlib.sha1(str(order.id).encode()).hexdigest()[:13]}",  # noqa: S324
            "created_via": "checkout",
            "version": WOOCOMMERCE_VERSION,
            "status": order.status,
            "currency": order.currency,
            **self._dates("date_created", order.created),
            **self._dates("date_modified", order.modified),
            "discount_total": self._money(discount),
            "discount_tax": self._money(Decimal(0)),
            "shipping_total": self._money(order.shipping_total),
            "shipping_tax": self._money(Decimal(0)),
            "cart_tax": self._money(Decimal(0)),
            "total": self._money(order.total),
            "total_tax": self._money(Decimal(0)),
            "prices_include_tax": False,
            "customer_id": 0,
            "customer_ip_address": "",
            "customer_user_agent": "",
            "customer_note": "",
            "billing": dict(order.billing),
            "shipping": dict(order.shipping),
            "payment_method": "bacs",
            "payment_method_title": "Direct bank transfer",
            "transaction_id": "",
            **self._dates("date_paid", order.paid),
            **self._dates("date_completed", order.completed),
            "cart_hash": "",
            "meta_data": [],
            "line_items": [self._line_view(line) for line in order.lines],
            "tax_lines": [],
            "shipping_lines": self._shipping_lines(order),
            "fee_lines": [],
            "coupon_lines": []
            if discount == 0
            else [{"id": order.id + 1, "code": "sandbox", "discount": self._money(discount)}],
            "refunds": [
                {"id": r.id, "reason": r.reason, "total": self._money(-r.amount)}
                for r in order.refunds
            ],
            "_links": {
                "self": [{"href": f"{base}/orders/{order.id}"}],
                "collection": [{"href": f"{base}/orders"}],
            },
        }

    def _line_view(self, line: _Line) -> JSON:
        """``price`` is what WooCommerce sends: a float of the discounted total per unit."""
        return {
            "id": line.id,
            "name": line.name,
            "product_id": line.product_id,
            "variation_id": line.variation_id,
            "quantity": line.quantity,
            "tax_class": "",
            "subtotal": self._money(line.subtotal),
            "subtotal_tax": self._money(Decimal(0)),
            "total": self._money(line.total),
            "total_tax": self._money(Decimal(0)),
            "taxes": [],
            "meta_data": [],
            "sku": line.sku,
            "price": _php_float(float(line.total) / max(1, line.quantity)),
        }

    def _shipping_lines(self, order: _Order) -> list[JSON]:
        if not order.shipping_total:
            return []
        return [
            {
                "id": order.id + 2,
                "method_title": "Flat rate",
                "method_id": "flat_rate",
                "total": self._money(order.shipping_total),
                "total_tax": self._money(Decimal(0)),
                "taxes": [],
                "meta_data": [],
            }
        ]

    def _refund_view(self, order: _Order, refund: _Refund) -> JSON:
        """https://woocommerce.github.io/woocommerce-rest-api-docs/#order-refund-properties"""
        lines_by_id = {line.id: line for line in order.lines}
        return {
            "id": refund.id,
            **self._dates("date_created", refund.created),
            "amount": self._money(refund.amount),
            "reason": refund.reason,
            "refunded_by": 1,
            "refunded_payment": False,
            "meta_data": [],
            "line_items": [
                self._refund_line_view(item, lines_by_id[item.refunded_item_id])
                for item in refund.lines
            ],
        }

    def _refund_line_view(self, item: _RefundLine, line: _Line) -> JSON:
        return {
            "id": item.id,
            "name": line.name,
            "product_id": line.product_id,
            "variation_id": line.variation_id,
            "quantity": item.quantity,
            "tax_class": "",
            "subtotal": self._money(item.subtotal),
            "subtotal_tax": self._money(Decimal(0)),
            "total": self._money(item.total),
            "total_tax": self._money(Decimal(0)),
            "taxes": [],
            "meta_data": [{"id": item.id + 1, "key": "_refunded_item_id", "value": str(line.id)}],
            "sku": line.sku,
            "price": _php_float(float(item.total) / max(1, abs(item.quantity))),
        }

    def _note_view(self, note: _Note) -> JSON:
        return {
            "id": note.id,
            "author": note.author,
            **self._dates("date_created", note.created),
            "note": note.note,
            "customer_note": note.customer_note,
        }

    def _product_view(self, product: _Product) -> JSON:
        """https://woocommerce.github.io/woocommerce-rest-api-docs/#product-properties"""
        price = _active_price(product)
        return {
            "id": product.id,
            "name": product.name,
            "slug": re.sub(r"[^a-z0-9]+", "-", product.name.lower()).strip("-"),
            "permalink": f"https://{self.site}/product/{product.id}/",
            **self._dates("date_created", product.created),
            **self._dates("date_modified", product.modified),
            "type": product.type,
            "status": product.status,
            "sku": product.sku,
            "price": price,
            "regular_price": product.regular_price,
            "sale_price": product.sale_price,
            "on_sale": _on_sale(product),
            "purchasable": price != "",
            "manage_stock": product.manage_stock,
            "stock_quantity": product.stock_quantity if product.manage_stock else None,
            "stock_status": _stock_status(product.manage_stock, product.stock_quantity),
            "images": [
                self._image_view(image, index) for index, image in enumerate(product.images)
            ],
            "attributes": [],
            "variations": list(product.variation_ids),
        }

    def _variation_view(self, variation: _Variation) -> JSON:
        """https://woocommerce.github.io/woocommerce-rest-api-docs/#product-variation-properties;
        ``manage_stock`` is ``"parent"`` with the parent's quantity when the parent holds it."""
        parent = self._products[variation.parent_id]
        manage: bool | str = variation.manage_stock
        quantity = variation.stock_quantity if variation.manage_stock else None
        if not variation.manage_stock and parent.manage_stock:
            manage, quantity = "parent", parent.stock_quantity
        price = _active_price(variation)
        return {
            "id": variation.id,
            **self._dates("date_created", variation.created),
            **self._dates("date_modified", variation.modified),
            "description": "",
            "permalink": f"https://{self.site}/product/{parent.id}/?variation={variation.id}",
            "sku": variation.sku,
            "price": price,
            "regular_price": variation.regular_price,
            "sale_price": variation.sale_price,
            "on_sale": _on_sale(variation),
            "status": "publish",
            "purchasable": price != "",
            "manage_stock": manage,
            "stock_quantity": quantity,
            "stock_status": _stock_status(bool(manage), quantity),
            "image": None,
            "attributes": [
                {"id": 0, "name": name, "option": option} for name, option in variation.attributes
            ],
            "menu_order": 0,
            "meta_data": [],
        }

    def _image_view(self, image: _Image, position: int) -> JSON:
        return {
            "id": image.id,
            **self._dates("date_created", image.created),
            **self._dates("date_modified", image.created),
            "src": image.src,
            "name": image.name,
            "alt": image.alt,
            "position": position,
        }

    # =========================================================================================
    # Internals (called under the lock)
    # =========================================================================================

    def _page(self, ctx: _Ctx, items: list[JSON]) -> Answer:
        """WordPress collection paging: ``per_page`` 1..100, ``X-WP-*`` and ``Link``."""
        per_page = _int(ctx.query.get("per_page", "10"))
        if not 1 <= per_page <= MAX_PER_PAGE:
            raise _HttpError(
                400,
                "rest_invalid_param",
                "Invalid parameter(s): per_page (per_page must be between 1 (inclusive) "
                f"and {MAX_PER_PAGE} (inclusive))",
            )
        page = max(1, _int(ctx.query.get("page", "1")) or 1)
        offset = _int(ctx.query.get("offset", "0"))
        start = offset if "offset" in ctx.query else (page - 1) * per_page
        total = len(items)
        pages = math.ceil(total / per_page)
        headers = {"X-WP-Total": str(total), "X-WP-TotalPages": str(pages)}
        links = []
        if page > 1:
            links.append(f'<{_with_page(ctx.url, page - 1)}>; rel="prev"')
        if page < pages:
            links.append(f'<{_with_page(ctx.url, page + 1)}>; rel="next"')
        if links:
            headers["Link"] = ", ".join(links)
        return 200, items[start : start + per_page], headers

    def _order_line(self, spec: Mapping[str, Any]) -> _Line:
        product_id = int(spec.get("product_id") or 0)
        variation_id = int(spec.get("variation_id") or 0)
        product = self._products.get(product_id)
        variation = self._variations.get(variation_id)
        item = variation or product
        price = spec.get("price")
        if price is None:  # WooCommerce adds a line at the item's current price
            current = _active_price(item) if item is not None else ""
            price = Decimal(current) if current else Decimal(0)
        quantity = int(spec.get("quantity", 1))
        subtotal = Decimal(price) * quantity
        name = str(spec.get("name") or self._line_name(product, variation))
        sku = str(spec.get("sku") if spec.get("sku") is not None else (item.sku if item else ""))
        return _Line(
            id=self._next_item(),
            name=name,
            product_id=product_id,
            variation_id=variation_id,
            quantity=quantity,
            subtotal=subtotal,
            total=subtotal - Decimal(spec.get("discount", 0)),
            sku=sku,
        )

    @staticmethod
    def _line_name(product: _Product | None, variation: _Variation | None) -> str:
        if product is None:
            return "Deleted product"
        if variation is None or not variation.attributes:
            return product.name
        return f"{product.name} &ndash; {', '.join(o for _, o in variation.attributes)}"

    def _refund_line(self, order: _Order, line_id: int, quantity: int) -> _RefundLine:
        line = next((line for line in order.lines if line.id == line_id), None)
        if line is None:
            raise KeyError(f"order {order.id} has no line {line_id}")
        share = Decimal(quantity) / line.quantity
        return _RefundLine(
            id=self._next_item(),
            refunded_item_id=line.id,
            quantity=-quantity,
            subtotal=-(line.subtotal * share).quantize(Decimal("0.01"), ROUND_HALF_UP),
            total=-(line.total * share).quantize(Decimal("0.01"), ROUND_HALF_UP),
        )

    def _add_variation(self, product: _Product, spec: Mapping[str, Any], now: datetime) -> None:
        stock = spec.get("stock")
        manage = spec.get("manage_stock")
        attributes = spec.get("attributes") or {}
        variation = _Variation(
            id=self._next_post(),
            parent_id=product.id,
            sku=str(spec.get("sku") or ""),
            regular_price=self._seed_price(spec.get("price")),
            manage_stock=stock is not None if manage is None else bool(manage),
            stock_quantity=None if stock is None else int(stock),
            attributes=[(str(k), str(v)) for k, v in dict(attributes).items()],
            created=now,
            modified=now,
            sale_price=self._seed_price(spec.get("sale_price")),
        )
        self._variations[variation.id] = variation
        product.variation_ids.append(variation.id)

    def _sideload(self, src: str, now: datetime) -> _Image:
        self.image_sideloads += 1
        name = urlsplit(src).path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        image = _Image(self._next_post(), src, name, "", now)
        self._images[image.id] = image
        return image

    def _stock_item(self, stock_item_id: str) -> _Product | _Variation:
        head, _, tail = stock_item_id.partition(":")
        if tail:
            variation = self._variations.get(int(tail))
            if variation is None or variation.parent_id != int(head):
                raise KeyError(f"no variation {stock_item_id}")
            return variation
        return self._product(int(head))

    def _product(self, product_id: int) -> _Product:
        product = self._products.get(product_id)
        if product is None:
            raise KeyError(f"no product {product_id}")
        return product

    def _order(self, order_id: int) -> _Order:
        order = self._orders.get(int(order_id))
        if order is None:
            raise KeyError(f"no order {order_id}")
        return order

    def _order_or_404(self, ctx: _Ctx) -> _Order:
        order = self._orders.get(int(ctx.params["id"]))
        if order is None:
            raise _HttpError(404, "woocommerce_rest_shop_order_invalid_id", "Invalid ID.")
        return order

    def _product_or_404(self, ctx: _Ctx) -> _Product:
        product = self._products.get(int(ctx.params["id"]))
        if product is None:
            raise _HttpError(404, "woocommerce_rest_product_invalid_id", "Invalid ID.")
        return product

    def _dates(self, name: str, moment: datetime | None) -> JSON:
        """``name`` in the site's time zone and ``name_gmt``, both without a zone suffix."""
        if moment is None:
            return {name: None, f"{name}_gmt": None}
        gmt = _utc(moment).replace(tzinfo=None, microsecond=0)
        return {name: (gmt + self.utc_offset).isoformat(), f"{name}_gmt": gmt.isoformat()}

    def _money(self, value: Decimal) -> str:
        return f"{value.quantize(Decimal(1).scaleb(-self.price_decimals), ROUND_HALF_UP):f}"

    def _seed_price(self, value: Any) -> str:
        """A seeded price as stored text, with the site's decimals; "" for None."""
        return "" if value is None else self._money(Decimal(str(value)))

    def _now(self) -> datetime:
        return _utc(self._wall_clock())

    def _next_post(self) -> int:
        self._post_ids += 1
        return self._post_ids

    def _next_item(self) -> int:
        self._item_ids += 1
        return self._item_ids

    def _next_comment(self) -> int:
        self._comment_ids += 1
        return self._comment_ids


# =============================================================================================
# Helpers
# =============================================================================================


def wp_json_encode(value: Any) -> bytes:
    """PHP's ``json_encode`` defaults, as ``wp_json_encode`` uses them: compact, non-ASCII as
    ``\\uXXXX``, ``/`` as ``\\/``; Decimals as plain numbers."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=True, default=_json_default)
    return text.replace("/", "\\/").encode("ascii")


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _php_float(value: float) -> float | int:
    """PHP prints a float with an integral value without a fraction (``"price": 3``)."""
    return int(value) if value.is_integer() else value


def _wp_error(status: int, code: str, message: str) -> JSON:
    return {"code": code, "message": message, "data": {"status": status}}


def _on_sale(item: _Product | _Variation) -> bool:
    """``WC_Product::is_on_sale`` without sale dates: a sale price below the regular one."""
    return (
        item.sale_price != ""
        and item.regular_price != ""
        and Decimal(item.regular_price) > Decimal(item.sale_price)
    )


def _active_price(item: _Product | _Variation) -> str:
    """``_price``: the sale price while on sale, else the regular price (may be "")."""
    return item.sale_price if _on_sale(item) else item.regular_price


def _auth_error(message: str) -> Answer:
    return 401, _wp_error(401, "woocommerce_rest_authentication_error", message), {}


_PERMISSION_ERRORS = {
    "view": ("woocommerce_rest_cannot_view", "Sorry, you cannot list resources."),
    "create": ("woocommerce_rest_cannot_create", "Sorry, you are not allowed to create resources."),
    "edit": ("woocommerce_rest_cannot_edit", "Sorry, you are not allowed to edit this resource."),
    "batch": (
        "woocommerce_rest_cannot_batch",
        "Sorry, you are not allowed to batch manipulate this resource.",
    ),
    "delete": (
        "woocommerce_rest_cannot_delete",
        "Sorry, you are not allowed to delete this resource.",
    ),
}


def _permission(ctx: _Ctx, action: str) -> None:
    """An anonymous call fails the route's permission check with 401 (nobody logged in)."""
    if not ctx.authenticated:
        code, message = _PERMISSION_ERRORS[action]
        raise _HttpError(401, code, message)


def _item_error(item: Mapping[str, Any], code: str, message: str, *, status: int = 400) -> JSON:
    return {
        "id": _int(item.get("id")),
        "error": {"code": code, "message": message, "data": {"status": status}},
    }


def _basic(header: str) -> tuple[str | None, str | None]:
    try:
        decoded = base64.b64decode(header.split(" ", 1)[1].strip()).decode()
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None, None
    key, _, secret = decoded.partition(":")
    return key, secret


def _json_body(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _int(value: Any) -> int:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return 0


def _is_int(value: Any) -> bool:
    return isinstance(value, int) or (isinstance(value, str) and value.lstrip("-").isdigit())


def _ids(value: str | None) -> set[int]:
    return {_int(part) for part in (value or "").split(",") if _int(part)}


def _query_time(query: Mapping[str, str], name: str) -> datetime | None:
    value = query.get(name)
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as error:
        raise _HttpError(
            400, "rest_invalid_param", f"Invalid parameter(s): {name} (Invalid date.)"
        ) from error
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


def _order_sort_key(orderby: str) -> Callable[[_Order], Any]:
    if orderby == "id":
        return lambda order: order.id
    if orderby == "modified":
        return lambda order: (order.modified, order.id)
    return lambda order: (order.created, order.id)


def _with_page(url: str, page: int) -> str:
    parts = urlsplit(url)
    query = [
        (k, v)
        for k, v in (pair.partition("=")[::2] for pair in parts.query.split("&") if pair)
        if k not in ("page", "consumer_key", "consumer_secret")
    ]
    query.append(("page", str(page)))
    return f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(query, safe=':,')}"


def _stock_status(managed: bool, quantity: int | None) -> str:
    if managed and quantity is not None and quantity <= 0:
        return "outofstock"
    return "instock"


def _image_url(src: str) -> bool:
    parts = urlsplit(src)
    extension = parts.path.rsplit(".", 1)[-1].lower() if "." in parts.path else ""
    return (
        parts.scheme in ("http", "https") and bool(parts.netloc) and extension in IMAGE_EXTENSIONS
    )


def _address(values: Mapping[str, Any] | None, *, email: bool = False) -> JSON:
    fields = ["first_name", "last_name", "company", "address_1", "address_2", "city"]
    fields += ["state", "postcode", "country", "phone"] + (["email"] if email else [])
    given = dict(values or {})
    return {name: str(given.get(name, "")) for name in fields}


def _valid_status(status: str) -> str:
    if status not in (*ORDER_STATUSES, "trash"):
        raise ValueError(f"not a WooCommerce order status: {status!r}")
    return status


def _delivered(status: int | None) -> bool:
    """WC_Webhook::deliver: a response code from 200 to 302 is a success."""
    return status is not None and 200 <= status <= 302


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _key_document(key: _ApiKey) -> JSON:
    """The keys as ``WC_Auth::create_keys`` returns them (``user_id`` added by the caller)."""
    return {
        "key_id": key.key_id,
        "consumer_key": key.consumer_key,
        "consumer_secret": key.consumer_secret,
        "key_permissions": key.permissions,
    }


def _auth_request(query: Mapping[str, str], *, require_https: bool) -> dict[str, str]:
    """``WC_Auth::make_validation``: every parameter present, a known scope, URLs that parse
    (``get_formatted_url`` adds ``https://`` where the scheme is missing)."""
    data: dict[str, str] = {}
    for name in AUTH_PARAMS:
        value = query.get(name)
        if not value:
            raise _AuthPageError(f"Missing parameter {name}")
        data[name] = value
    if data["scope"] not in AUTH_SCOPES:
        raise _AuthPageError(f"Invalid scope {data['scope']}")
    for name in ("return_url", "callback_url"):
        url = _formatted_url(data[name])
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise _AuthPageError(f"The {url} is not a valid URL")
        data[name] = url
    if require_https and not data["callback_url"].lower().startswith("https://"):
        raise _AuthPageError("The callback_url needs to be over SSL")
    return data


def _formatted_url(url: str) -> str:
    text = unquote(url)
    return text if "://" in text else f"https://{text}"


def _auth_page_error(message: str) -> Response:
    """``wp_die`` as ``auth_endpoint`` calls it: "Error: …." under "Access denied", 401."""
    page = (
        "<!DOCTYPE html><html><head><title>Access denied</title></head>"
        f'<body id="error-page"><p>Error: {escape(message)}.</p></body></html>'
    )
    return HTMLResponse(page, status_code=401)


def _redirect(url: str, **params: Any) -> Response:
    """``wp_redirect(add_query_arg(params, url))``: a 302, the parameters replacing any of the
    same name already in the URL."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query.extend((k, str(v)) for k, v in params.items())
    return RedirectResponse(urlunsplit(parts._replace(query=urlencode(query))), status_code=302)


def _only_fields(answer: Answer, fields: str | None) -> Answer:
    """WordPress's ``_fields`` filter (``rest_filter_response_fields``), top-level keys only."""
    status, body, headers = answer
    if not fields or status >= 400:
        return answer
    wanted = {name.strip() for name in fields.split(",") if name.strip()}

    def keep(item: Any) -> Any:
        return {k: v for k, v in item.items() if k in wanted} if isinstance(item, dict) else item

    return status, [keep(item) for item in body] if isinstance(body, list) else keep(body), headers


def _valid_topic(topic: str) -> bool:
    """``wc_is_webhook_valid_topic``: ``action.<hook>``, or a core resource and event."""
    resource, _, event = topic.partition(".")
    if resource == "action":
        return bool(event)
    return resource in WEBHOOK_RESOURCES and event in WEBHOOK_EVENTS


def _topic_hooks(topic: str) -> list[str]:
    resource, _, event = topic.partition(".")
    if resource == "action":
        return [event]
    if topic in WEBHOOK_HOOKS:
        return list(WEBHOOK_HOOKS[topic])
    return {"deleted": ["wp_trash_post"], "restored": ["untrashed_post"]}.get(event, [])


def _valid_delivery_url(url: str) -> bool:
    """``wc_is_valid_url``: http or https with a host."""
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _webhook_status(value: Any) -> str:
    status = str(value).lower()
    if status not in WEBHOOK_STATUSES:
        raise _HttpError(
            400,
            "rest_invalid_param",
            "Invalid parameter(s): status (status is not one of active, paused, disabled.)",
        )
    return status
