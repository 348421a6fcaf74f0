"""A local stand-in for Etsy Open API v3, for contract tests, the demo and benchmarks.

It serves the endpoints the connector uses, on the same paths (``/v3/application/...`` and
``/v3/public/oauth/token``) with the documented shapes
(https://developers.etsy.com/documentation/reference), and reproduces what the connector
must cope with:

- auth: ``Authorization: Bearer`` plus ``x-api-key: keystring:shared_secret``; an expired
  access token is answered 401 ``{"error": "invalid_token"}``; a refresh rotates both tokens
  and the old refresh token stops working;
- onboarding (https://developers.etsy.com/documentation/essentials/authentication): the
  consent page ``GET /oauth/connect`` played by the signed-in seller (``sign_in``), which
  redirects 302 to ``redirect_uri`` with ``code`` and ``state`` (or ``error=access_denied``
  after ``deny_next_consent``); the ``authorization_code`` grant with PKCE (S256 only), codes
  single-use and short-lived; tokens carry the scopes granted, checked per operation as the
  OAS ``security`` blocks list them (seeded shops' tokens hold every scope); ``getMe`` and
  ``getShop``;
- ``{count, results}`` pages with ``limit`` (1..100) and ``offset``; receipts filtered and
  sorted by ``min_last_modified``/``sort_on``/``sort_order``;
- rate limits per app (keystring): a strict rolling one-second window and a rolling day,
  ``x-limit-per-second``, ``x-remaining-this-second``, ``x-limit-per-day``,
  ``x-remaining-today`` on answers, and a bare 429 (no headers, no Retry-After) when spent;
- inventory writes that replace everything, refuse read-only keys and an inventory with no
  offering above 0 ("One offering must have quantity greater than 0"), and renumber
  ``product_id``/``offering_id`` as Etsy does (https://github.com/etsy/open-api/issues/432);
  offering prices are "a float equal to amount divided by divisor"
  (https://developers.etsy.com/documentation/reference#operation/updateListingInventory): read
  from the body as written (a JSON number's own digits, never through a binary float), refused
  unless positive and a whole number of ``1/divisor`` (stricter than Etsy may be, so a
  connector that writes ``19.990000000000002`` for 19.99 is caught), and, where
  ``price_on_property`` is empty, refused unless every product has one price ("The update
  fails if the supplied values for ... price are incompatible with values in
  ``*_on_property`` fields"). A price change applies to new orders only: receipts keep theirs;
- ``updateListing`` state changes (a ``sold_out`` listing set active gets quantity 1);
- multipart image upload (10 per listing) and delete;
- receipts with shipments; every ``createReceiptShipment`` records a buyer e-mail;
- Standard-Webhooks-signed deliveries; fault switches (latency, 5xx rate, 429 bursts).

State lives in memory behind one lock, so tests and benchmarks may seed and inspect from other
threads while the server answers. Seeding and inspection are plain methods (see the class).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import email.parser
import email.policy
import hashlib
import hmac
import itertools
import json
import random
import secrets
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

JSON = dict[str, Any]
API = "/v3/application"
DEFAULT_KEYSTRING = "sandboxkeystring1234567890"
DEFAULT_SHARED_SECRET = "sandboxsharedsecret"  # noqa: S105 - a sandbox's fixed test secret
DEFAULT_WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"etsy-sandbox-webhook-key").decode()
DEFAULT_TOKEN_LIFETIME = 3600  # seconds, Etsy's access token lifetime
FIRST_SHOP_ID = 31_337_001
FIRST_LISTING_ID = 1_100_000_001
MAX_LIMIT = 100
MAX_IMAGES = 10
RECEIPT_STATUSES = frozenset(
    {
        "paid",
        "completed",
        "open",
        "payment processing",
        "canceled",
        "fully refunded",
        "partially refunded",
    }
)
LISTING_STATES = frozenset({"active", "inactive", "sold_out", "draft", "expired"})
PRODUCT_KEYS = frozenset({"sku", "property_values", "offerings"})
PROPERTY_VALUE_KEYS = frozenset({"property_id", "property_name", "scale_id", "value_ids", "values"})
OFFERING_KEYS = frozenset({"price", "quantity", "is_enabled", "readiness_state_id"})
INVENTORY_KEYS = frozenset(
    {
        "products",
        "price_on_property",
        "quantity_on_property",
        "sku_on_property",
        "readiness_state_on_property",
    }
)
ZERO_INVENTORY = "One offering must have quantity greater than 0"
IMAGE_MAGIC = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG", "image/png"), (b"GIF8", "image/gif"))
# The OAuth scopes of the OAS ``securitySchemes.oauth2`` block.
OAUTH_SCOPES = frozenset(
    {
        "address_r",
        "address_w",
        "billing_r",
        "cart_r",
        "cart_w",
        "email_r",
        "favorites_r",
        "favorites_w",
        "feedback_r",
        "listings_d",
        "listings_r",
        "listings_w",
        "profile_r",
        "profile_w",
        "recommend_r",
        "recommend_w",
        "shops_r",
        "shops_w",
        "transactions_r",
        "transactions_w",
    }
)
# Etsy documents no code lifetime; RFC 6749 section 4.1.2 recommends ten minutes at most.
DEFAULT_CODE_LIFETIME = 600
UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
BASE64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


class _Refused(Exception):
    """An answer other than 200, with Etsy's ``ErrorSchema`` body."""

    def __init__(self, status: int, error: str, description: str | None = None) -> None:
        super().__init__(error)
        self.status = status
        self.body: JSON = {"error": error}
        if description:
            self.body["error_description"] = description


# ---------------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------------


@dataclass
class _Offering:
    offering_id: int
    amount: int
    quantity: int
    is_enabled: bool
    readiness_state_id: int | None


@dataclass
class _Product:
    product_id: int
    sku: str
    property_values: list[JSON]
    offerings: list[_Offering]


@dataclass
class _Image:
    listing_image_id: int
    rank: int
    alt_text: str
    content_type: str
    size: int
    created: int


@dataclass
class _Listing:
    listing_id: int
    shop_id: int
    title: str
    state: str
    products: list[_Product]
    price_on_property: list[int]
    quantity_on_property: list[int]
    sku_on_property: list[int]
    readiness_state_on_property: list[int]
    readiness_state_id: int
    created: int
    updated: int
    state_timestamp: int
    images: list[_Image] = field(default_factory=list)


@dataclass
class _Transaction:
    transaction_id: int
    listing_id: int | None
    product_id: int | None
    sku: str
    title: str
    quantity: int
    amount: int


@dataclass
class _Shipment:
    receipt_shipping_id: int
    carrier_name: str
    tracking_code: str
    notified: int


@dataclass
class _Receipt:
    receipt_id: int
    shop_id: int
    status: str
    is_paid: bool
    is_shipped: bool
    created: int
    updated: int
    currency: str
    divisor: int
    grandtotal: int
    transactions: list[_Transaction]
    buyer: JSON
    shipments: list[_Shipment] = field(default_factory=list)
    refunds: list[JSON] = field(default_factory=list)


@dataclass
class _Shop:
    shop_id: int
    shop_name: str
    user_id: int
    currency: str
    divisor: int
    created: int = 0


@dataclass
class _Grant:
    shop_id: int
    expires_at: float
    scopes: frozenset[str] | None = None  # None: every scope (a seeded shop's tokens)


@dataclass(frozen=True)
class _RefreshGrant:
    shop_id: int
    scopes: frozenset[str] | None


@dataclass(frozen=True)
class _AuthorizationCode:
    client_id: str
    redirect_uri: str
    code_challenge: str
    shop_id: int
    scopes: frozenset[str]
    expires_at: float


@dataclass(frozen=True)
class SandboxShop:
    """A seeded shop and the OAuth pair issued for it (rotated by refreshes: read
    ``EtsySandbox.credentials`` for the current one)."""

    shop_id: int
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: int
    listing_ids: tuple[int, ...] = ()

    def credentials(self) -> JSON:
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "expires_at": self.expires_at,
        }


@dataclass(frozen=True)
class TrackingWrite:
    receipt_id: int
    tracking_code: str
    carrier_name: str
    at: int


@dataclass(frozen=True)
class PriceChange:
    """An inventory write that changed a product's offering price (matched by SKU, else by
    position)."""

    listing_id: int
    sku: str
    before: Decimal | None  # None: the product is new
    after: Decimal


@dataclass(frozen=True)
class WebhookDelivery:
    event_type: str
    webhook_id: str
    status: int | None  # None: dropped


class _Windows:
    """Strict rolling windows of accepted requests for one app: per second and per day."""

    def __init__(self, per_second: int, per_day: int) -> None:
        self.per_second = per_second
        self.per_day = per_day
        self.second: deque[float] = deque()
        self.day: deque[float] = deque()

    def admit(self, now: float) -> bool:
        for log, period in ((self.second, 1.0), (self.day, 86_400.0)):
            while log and log[0] <= now - period:
                log.popleft()
        if len(self.second) >= self.per_second or len(self.day) >= self.per_day:
            return False
        self.second.append(now)
        self.day.append(now)
        return True

    def headers(self) -> dict[str, str]:
        return {
            "x-limit-per-second": str(self.per_second),
            "x-remaining-this-second": str(max(0, self.per_second - len(self.second))),
            "x-limit-per-day": str(self.per_day),
            "x-remaining-today": str(max(0, self.per_day - len(self.day))),
        }


# ---------------------------------------------------------------------------------------------
# The sandbox
# ---------------------------------------------------------------------------------------------


class EtsySandbox:
    """Etsy shops of one or more apps behind Open API v3 routes (``.app``, an ASGI app).

    Seeding: ``add_app``, ``add_shop``, ``add_listing``, ``bulk_add_listings``,
    ``seed_benchmark``, ``add_receipt``, ``update_receipt``, ``set_stock``,
    ``expire_access_token``, ``host_image``.
    Onboarding: ``sign_in(shop_id)`` (the seller on the consent page: the first shop added
    unless told), ``deny_next_consent`` (a switch), ``expire_authorization_codes()``.
    Inspection: ``credentials``, ``granted_scopes``, ``stock``, ``offering``, ``price``,
    ``listing_state``, ``product_ids``, ``receipt``, ``transaction_ids``, ``images``,
    ``window_usage``; counters ``requests``,
    ``requests_by_app``, ``http_429``, ``fault_responses``, ``token_refreshes``,
    ``calls_by_listing``, ``inventory_writes`` (``{listing_id, body, raw}``: the parsed body,
    prices as ``Decimal``, and the bytes as sent), ``price_changes``, ``state_changes``,
    ``tracking_writes``,
    ``buyer_emails``, ``image_uploads``, ``image_deletes``, ``webhook_deliveries``,
    ``consents``, ``code_exchanges``; ``reset_counters()``.
    Switches (plain attributes, settable while serving): ``latency_seconds``,
    ``error_rate_5xx``, ``queue_429(n)``. Webhooks: ``signed_webhook``, ``emit_webhook``,
    ``order_event``.
    """

    def __init__(
        self,
        *,
        keystring: str = DEFAULT_KEYSTRING,
        shared_secret: str = DEFAULT_SHARED_SECRET,
        webhook_secret: str = DEFAULT_WEBHOOK_SECRET,
        requests_per_second: int = 10,
        requests_per_day: int = 10_000,
        token_lifetime_seconds: int = DEFAULT_TOKEN_LIFETIME,
        code_lifetime_seconds: int = DEFAULT_CODE_LIFETIME,
        webhook_url: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        seed: int = 0,
    ) -> None:
        self.keystring = keystring
        self.webhook_secret = webhook_secret
        self.webhook_url = webhook_url
        self.requests_per_second = requests_per_second
        self.requests_per_day = requests_per_day
        self.token_lifetime_seconds = token_lifetime_seconds
        self.code_lifetime_seconds = code_lifetime_seconds
        self._clock = clock
        self._wall_clock = wall_clock
        self._lock = threading.RLock()
        self._rng = random.Random(seed)
        self._ids = itertools.count(1)
        self._shop_ids = itertools.count(FIRST_SHOP_ID)
        self._listing_ids = itertools.count(FIRST_LISTING_ID)

        # run-time switches
        self.latency_seconds = 0.0
        self.error_rate_5xx = 0.0
        self._queued_429 = 0
        self.deny_next_consent = False  # the next consent is refused by the seller

        # state
        self._apps: dict[str, str] = {}
        self._windows: dict[str, _Windows] = {}
        self._shops: dict[int, _Shop] = {}
        self._access: dict[str, _Grant] = {}
        self._refresh: dict[str, _RefreshGrant] = {}
        self._current: dict[int, tuple[str, str]] = {}
        self._codes: dict[str, _AuthorizationCode] = {}
        self._signed_in: int | None = None
        self._listings: dict[int, _Listing] = {}
        self._receipts: dict[int, _Receipt] = {}
        self._hosted: dict[str, tuple[bytes, str]] = {}
        self.reset_counters()
        self.add_app(keystring, shared_secret)

        self.app = Starlette(routes=self._routes())

    # =========================================================================================
    # Public: counters and switches
    # =========================================================================================

    def reset_counters(self) -> None:
        """Zero every counter and log (between benchmark phases); state stays."""
        with self._lock:
            self.requests = 0
            self.requests_by_app: Counter[str] = Counter()
            self.http_429 = 0
            self.fault_responses = 0
            self.token_refreshes = 0
            self.calls_by_listing: Counter[int] = Counter()
            self.inventory_writes: list[JSON] = []
            self.price_changes: list[PriceChange] = []
            self.state_changes: list[tuple[int, str, str]] = []  # (listing, before, after)
            self.tracking_writes: list[TrackingWrite] = []
            self.buyer_emails: list[TrackingWrite] = []
            self.image_uploads = 0
            self.image_deletes = 0
            self.webhook_deliveries: list[WebhookDelivery] = []
            self.consents = 0  # authorization codes issued by the consent page
            self.code_exchanges = 0  # authorization_code grants tried (any outcome)

    def queue_429(self, n: int) -> None:
        """Answer the next ``n`` API requests with a bare 429, as a burst from other clients
        of the same app would."""
        with self._lock:
            self._queued_429 += n

    def window_usage(self, keystring: str | None = None) -> JSON:
        """Requests counted in the app's rolling second and day right now."""
        with self._lock:
            windows = self._app_windows(keystring or self.keystring)
            now = self._clock()
            return {
                "second": sum(1 for at in windows.second if at > now - 1.0),
                "day": sum(1 for at in windows.day if at > now - 86_400.0),
            }

    # =========================================================================================
    # Public: seeding
    # =========================================================================================

    def add_app(self, keystring: str, shared_secret: str) -> None:
        """Another app (its own keystring, secret and rate-limit windows)."""
        with self._lock:
            self._apps[keystring] = shared_secret
            self._windows[keystring] = _Windows(self.requests_per_second, self.requests_per_day)

    def add_shop(
        self,
        shop_id: int | None = None,
        *,
        shop_name: str | None = None,
        currency: str = "USD",
        divisor: int = 100,
    ) -> SandboxShop:
        """A shop connected to the sandbox's apps, with a fresh OAuth pair."""
        with self._lock:
            number = shop_id if shop_id is not None else next(self._shop_ids)
            if number in self._shops:
                raise ValueError(f"shop {number} exists")
            self._shops[number] = _Shop(
                number,
                shop_name or f"SandboxShop{number}",
                90_000 + number % 10_000,
                currency,
                divisor,
                self._now(),
            )
            access, refresh, expires = self._issue(number)
            return SandboxShop(number, access, refresh, expires)

    def credentials(self, shop_id: int) -> JSON:
        """The shop's current OAuth pair (after any rotation)."""
        with self._lock:
            access, refresh = self._current[shop_id]
            return {
                "access_token": access,
                "refresh_token": refresh,
                "expires_at": int(self._access[access].expires_at),
            }

    def granted_scopes(self, shop_id: int) -> frozenset[str] | None:
        """The scopes of the shop's current access token (None: every scope, as seeded)."""
        with self._lock:
            access, _ = self._current[shop_id]
            return self._access[access].scopes

    def sign_in(self, shop_id: int) -> None:
        """The seller of ``shop_id`` is the one signed in on the consent page from now on."""
        with self._lock:
            self._require_shop(shop_id)
            self._signed_in = shop_id

    def expire_authorization_codes(self) -> None:
        """Every authorization code issued and not yet exchanged is expired from now on."""
        with self._lock:
            expired = self._wall_clock() - 1
            self._codes = {
                code: _AuthorizationCode(
                    record.client_id,
                    record.redirect_uri,
                    record.code_challenge,
                    record.shop_id,
                    record.scopes,
                    expired,
                )
                for code, record in self._codes.items()
            }

    def expire_access_token(self, shop_id: int) -> None:
        """Make the shop's current access token expired (its refresh token still works)."""
        with self._lock:
            access, _ = self._current[shop_id]
            self._access[access].expires_at = self._wall_clock() - 1

    def add_listing(
        self,
        shop_id: int,
        products: Sequence[Mapping[str, Any]],
        *,
        title: str = "Sandbox listing",
        state: str = "active",
        quantity_on_property: Sequence[int] = (),
        price_on_property: Sequence[int] = (),
        sku_on_property: Sequence[int] = (),
        readiness_state_id: int = 1,
    ) -> int:
        """A listing with products ``{sku, price: Decimal, quantity, is_enabled=True,
        property_values=[]}``; returns its listing id."""
        if state not in LISTING_STATES:
            raise ValueError(f"{state!r} is not a listing state")
        with self._lock:
            shop = self._require_shop(shop_id)
            now = self._now()
            listing = _Listing(
                listing_id=next(self._listing_ids),
                shop_id=shop_id,
                title=title,
                state=state,
                products=[self._seed_product(shop, spec, readiness_state_id) for spec in products],
                price_on_property=list(price_on_property),
                quantity_on_property=list(quantity_on_property),
                sku_on_property=list(sku_on_property),
                readiness_state_on_property=[],
                readiness_state_id=readiness_state_id,
                created=now,
                updated=now,
                state_timestamp=now,
            )
            self._listings[listing.listing_id] = listing
            return listing.listing_id

    def bulk_add_listings(
        self,
        shop_id: int,
        count: int,
        *,
        sku_prefix: str = "BENCH",
        price: Decimal = Decimal("19.99"),
        quantity: int = 10,
    ) -> list[int]:
        """``count`` single-product listings with SKUs ``{prefix}-{shop}-{n:04d}``."""
        return [
            self.add_listing(
                shop_id,
                [{"sku": f"{sku_prefix}-{shop_id}-{n:04d}", "price": price, "quantity": quantity}],
                title=f"{sku_prefix} listing {n}",
            )
            for n in range(count)
        ]

    def seed_benchmark(
        self,
        *,
        shops: int = 3,
        listings: int = 300,
        quantity: int = 10,
        price: Decimal = Decimal("19.99"),
    ) -> list[SandboxShop]:
        """``listings`` single-product listings spread evenly over ``shops`` new shops."""
        seeded = []
        for index in range(shops):
            shop = self.add_shop()
            share = listings // shops + (1 if index < listings % shops else 0)
            ids = self.bulk_add_listings(shop.shop_id, share, quantity=quantity, price=price)
            seeded.append(
                SandboxShop(
                    shop.shop_id, shop.access_token, shop.refresh_token, shop.expires_at, tuple(ids)
                )
            )
        return seeded

    def set_stock(self, listing_id: int, quantity: int, sku: str | None = None) -> None:
        """Set the offering quantity of the listing's product (with ``sku``) as a seller would."""
        with self._lock:
            for product in self._products(listing_id, sku):
                product.offerings[0].quantity = quantity
                product.offerings[0].is_enabled = quantity > 0

    def add_receipt(
        self,
        shop_id: int,
        transactions: Sequence[Mapping[str, Any]],
        *,
        status: str = "paid",
        created: datetime | int | None = None,
        updated: datetime | int | None = None,
        total: Decimal | None = None,
        is_shipped: bool = False,
        refunds: Sequence[Decimal] = (),
        buyer: Mapping[str, Any] | None = None,
        decrement_stock: bool = False,
    ) -> int:
        """A receipt with transactions ``{listing_id, product_id, sku, quantity, price:
        Decimal, title}``; money uses the shop's currency and divisor. ``total`` (grandtotal)
        defaults to the sum of the lines. ``decrement_stock`` sells the units as Etsy does."""
        if status.lower() not in RECEIPT_STATUSES:
            raise ValueError(f"{status!r} is not a receipt status")
        with self._lock:
            shop = self._require_shop(shop_id)
            created_at = _epoch(created) if created is not None else self._now()
            lines = [self._seed_transaction(shop, spec) for spec in transactions]
            sum_of_lines = sum(line.amount * line.quantity for line in lines)
            receipt = _Receipt(
                receipt_id=next(self._ids) + 4_000_000_000,
                shop_id=shop_id,
                status=status,
                is_paid=status.lower() in {"paid", "completed", "partially refunded"},
                is_shipped=is_shipped,
                created=created_at,
                updated=_epoch(updated) if updated is not None else created_at,
                currency=shop.currency,
                divisor=shop.divisor,
                grandtotal=_minor(total, shop.divisor) if total is not None else sum_of_lines,
                transactions=lines,
                buyer=dict(buyer or _default_buyer()),
                refunds=[self._refund(shop, amount) for amount in refunds],
            )
            self._receipts[receipt.receipt_id] = receipt
            if decrement_stock:
                self._sell(lines)
            return receipt.receipt_id

    def update_receipt(
        self,
        receipt_id: int,
        *,
        updated: datetime | int | None = None,
        status: str | None = None,
        is_shipped: bool | None = None,
        refund: Decimal | None = None,
    ) -> None:
        """Change a receipt; its ``update_timestamp`` moves to ``updated`` or, by default, to
        now (at least one second later than before)."""
        with self._lock:
            receipt = self._require_receipt(receipt_id)
            if status is not None:
                if status.lower() not in RECEIPT_STATUSES:
                    raise ValueError(f"{status!r} is not a receipt status")
                receipt.status = status
            if is_shipped is not None:
                receipt.is_shipped = is_shipped
            if refund is not None:
                receipt.refunds.append(self._refund(self._shops[receipt.shop_id], refund))
            receipt.updated = (
                _epoch(updated) if updated is not None else max(self._now(), receipt.updated + 1)
            )

    def host_image(self, name: str, content: bytes, content_type: str = "image/png") -> str:
        """Serve ``content`` at the returned path (join it to the base URL) for uploads."""
        with self._lock:
            self._hosted[name] = (content, content_type)
        return f"/_sandbox/images/{name}"

    # =========================================================================================
    # Public: inspection
    # =========================================================================================

    def stock(self, listing_id: int, sku: str | None = None) -> int:
        """What buyers can buy: the (first) product's enabled offering quantity, 0 when the
        offering is disabled or the listing is not active."""
        with self._lock:
            listing = self._require_listing(listing_id)
            product = self._products(listing_id, sku)[0]
            offering = product.offerings[0]
            if listing.state != "active" or not offering.is_enabled:
                return 0
            return offering.quantity

    def offering(self, listing_id: int, sku: str | None = None) -> JSON:
        """The raw offering of the (first) product: ``{quantity, is_enabled, price}``."""
        with self._lock:
            listing = self._require_listing(listing_id)
            offering = self._products(listing_id, sku)[0].offerings[0]
            return {
                "quantity": offering.quantity,
                "is_enabled": offering.is_enabled,
                "price": _major(offering.amount, self._shops[listing.shop_id].divisor),
            }

    def price(self, listing_id: int, sku: str | None = None) -> Decimal:
        """The offering price of the (first) product with ``sku``, exactly ``amount /
        divisor`` in the shop's currency (1999 of 100 is ``Decimal("19.99")``)."""
        return Decimal(self.offering(listing_id, sku)["price"])

    def listing_state(self, listing_id: int) -> str:
        with self._lock:
            return self._require_listing(listing_id).state

    def product_ids(self, listing_id: int) -> list[int]:
        with self._lock:
            return [p.product_id for p in self._require_listing(listing_id).products]

    def receipt(self, receipt_id: int) -> JSON:
        """The receipt as ``getShopReceipt`` answers it."""
        with self._lock:
            return self._receipt_view(self._require_receipt(receipt_id))

    def transaction_ids(self, receipt_id: int) -> list[int]:
        with self._lock:
            return [t.transaction_id for t in self._require_receipt(receipt_id).transactions]

    def images(self, listing_id: int) -> list[JSON]:
        with self._lock:
            listing = self._require_listing(listing_id)
            return [self._image_view(listing, image) for image in _ranked(listing.images)]

    # =========================================================================================
    # Webhooks (Standard Webhooks, https://developers.etsy.com/documentation/essentials/webhooks)
    # =========================================================================================

    def order_event(self, receipt_id: int, event_type: str = "order.paid") -> JSON:
        """The body Etsy sends about a receipt: ``{event_type, resource_url, shop_id}``."""
        with self._lock:
            receipt = self._require_receipt(receipt_id)
            return order_event_payload(receipt.shop_id, receipt_id, event_type)

    def signed_webhook(
        self,
        event_type: str,
        payload: Mapping[str, Any],
        *,
        secret: str | None = None,
        timestamp: int | None = None,
        webhook_id: str | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        """The exact body and headers of a delivery; ``secret`` overrides the app's."""
        body = json.dumps({"event_type": event_type, **payload}, separators=(",", ":")).encode()
        message_id = webhook_id or f"msg_{uuid.uuid4().hex}"
        stamp = str(timestamp if timestamp is not None else int(self._wall_clock()))
        key = _signing_key(secret if secret is not None else self.webhook_secret)
        content = f"{message_id}.{stamp}.".encode() + body
        mac = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
        headers = {
            "content-type": "application/json",
            "webhook-id": message_id,
            "webhook-timestamp": stamp,
            "webhook-signature": f"v1,{mac}",
        }
        return body, headers

    def emit_webhook(self, event_type: str, payload: Mapping[str, Any]) -> int:
        """POST a signed delivery to ``webhook_url``; returns the status (0: unreachable)."""
        if self.webhook_url is None:
            raise RuntimeError("webhook_url is not set")
        body, headers = self.signed_webhook(event_type, payload)
        try:
            status = httpx.post(self.webhook_url, content=body, headers=headers, timeout=5.0)
            code = status.status_code
        except httpx.HTTPError:
            code = 0
        with self._lock:
            self.webhook_deliveries.append(WebhookDelivery(event_type, headers["webhook-id"], code))
        return code

    # =========================================================================================
    # HTTP surface
    # =========================================================================================

    def _routes(self) -> list[Route]:
        shop = API + "/shops/{shop_id:int}"
        listing = API + "/listings/{listing_id:int}"
        return [
            Route("/oauth/connect", self._consent, methods=["GET"]),
            Route("/v3/public/oauth/token", self._token_endpoint, methods=["POST"]),
            Route("/_sandbox/images/{name}", self._hosted_image, methods=["GET"]),
            self._api(API + "/users/me", "GET", self._get_me, scope="shops_r"),
            self._api(shop, "GET", self._get_shop),
            self._api(shop + "/receipts", "GET", self._list_receipts, scope="transactions_r"),
            self._api(
                shop + "/receipts/{receipt_id:int}",
                "GET",
                self._get_receipt,
                scope="transactions_r",
            ),
            self._api(
                shop + "/receipts/{receipt_id:int}/tracking",
                "POST",
                self._tracking,
                scope="transactions_w",
            ),
            self._api(shop + "/listings", "GET", self._list_listings, scope="listings_r"),
            self._api(
                shop + "/listings/{listing_id:int}",
                "PATCH",
                self._update_listing,
                scope="listings_w",
            ),
            self._api(
                shop + "/listings/{listing_id:int}/images",
                "POST",
                self._upload_image,
                scope="listings_w",
            ),
            self._api(
                shop + "/listings/{listing_id:int}/images/{listing_image_id:int}",
                "DELETE",
                self._delete_image,
                scope="listings_w",
            ),
            self._api(listing, "GET", self._get_listing),
            self._api(listing + "/inventory", "GET", self._get_inventory, scope="listings_r"),
            self._api(listing + "/inventory", "PUT", self._put_inventory, scope="listings_w"),
            self._api(listing + "/images", "GET", self._list_images),
        ]

    def _api(
        self,
        path: str,
        method: str,
        handler: Callable[[int, Request, bytes], tuple[int, Any]],
        *,
        scope: str | None = None,
    ) -> Route:
        """A route behind the edge (latency, faults), the app key, the rate limit and the
        bearer token (holding ``scope``, the operation's OAS ``security`` scope), in that
        order; the handler runs under the lock."""

        async def endpoint(request: Request) -> Response:
            with self._lock:
                self.requests += 1
            if self.latency_seconds > 0:
                await asyncio.sleep(self.latency_seconds)
            body = await request.body()
            return self._answer(request, body, handler, scope)

        return Route(path, endpoint, methods=[method])

    def _answer(
        self,
        request: Request,
        body: bytes,
        handler: Callable[[int, Request, bytes], tuple[int, Any]],
        scope: str | None,
    ) -> Response:
        with self._lock:
            fault = self._take_fault()
            if fault is not None:
                return fault
            try:
                keystring = self._app_key(request)
            except _Refused as refused:
                return JSONResponse(refused.body, status_code=refused.status)
            windows = self._app_windows(keystring)
            if not windows.admit(self._clock()):
                self.http_429 += 1
                return Response(status_code=429)  # bare: no rate headers, no Retry-After
            self.requests_by_app[keystring] += 1
            headers = windows.headers()
            try:
                grant = self._bearer(request)
                if scope is not None and grant.scopes is not None and scope not in grant.scopes:
                    # Etsy's wording for a missing scope is not documented (unconfirmed)
                    raise _Refused(
                        403, "insufficient_scope", f"The access token lacks the {scope} scope"
                    )
                status, payload = handler(grant.shop_id, request, body)
            except _Refused as refused:
                return JSONResponse(refused.body, status_code=refused.status, headers=headers)
        if status == 204:
            return Response(status_code=204, headers=headers)
        return JSONResponse(_jsonable(payload), status_code=status, headers=headers)

    def _take_fault(self) -> Response | None:
        if self._queued_429 > 0:
            self._queued_429 -= 1
            self.http_429 += 1
            self.fault_responses += 1
            return Response(status_code=429)
        if self.error_rate_5xx > 0 and self._rng.random() < self.error_rate_5xx:
            self.fault_responses += 1
            status = self._rng.choice((500, 503))
            return JSONResponse({"error": "Server Error"}, status_code=status)
        return None

    def _app_key(self, request: Request) -> str:
        raw = request.headers.get("x-api-key", "")
        keystring, colon, secret = raw.partition(":")
        if keystring not in self._apps:
            raise _Refused(403, "Invalid API key")
        if not colon or not secret:
            raise _Refused(403, "Shared secret is required in x-api-key header.")
        if not hmac.compare_digest(secret, self._apps[keystring]):
            raise _Refused(403, "Invalid shared secret in x-api-key header.")
        return keystring

    def _app_windows(self, keystring: str) -> _Windows:
        return self._windows.setdefault(
            keystring, _Windows(self.requests_per_second, self.requests_per_day)
        )

    def _bearer(self, request: Request) -> _Grant:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise _Refused(401, "invalid_token", "Missing or malformed Authorization header")
        grant = self._access.get(token.strip())
        if grant is None:
            raise _Refused(401, "invalid_token", "The access token is invalid")
        if self._wall_clock() >= grant.expires_at:
            raise _Refused(401, "invalid_token", "The access token is expired")
        return grant

    # -- OAuth ---------------------------------------------------------------------------------
    async def _consent(self, request: Request) -> Response:
        """``GET /oauth/connect``: the consent page, answered at once by the signed-in seller.

        As RFC 6749 section 4.1.2.1 has it: an unknown ``client_id`` or an unusable
        ``redirect_uri`` is an error page (400, JSON here), never a redirect; every other
        problem, and a refusal, goes back to ``redirect_uri`` as ``error`` and
        ``error_description`` with the ``state``. PKCE is required and only ``S256`` is taken
        (https://developers.etsy.com/documentation/essentials/authentication).
        """
        query = request.query_params
        with self._lock:
            client_id = query.get("client_id", "")
            redirect_uri = query.get("redirect_uri", "")
            if client_id not in self._apps:
                return _error_page("invalid_client", "client_id is not the keystring of an app")
            problem = _redirect_uri_problem(redirect_uri)
            if problem is not None:
                return _error_page("invalid_request", problem)
            state = query.get("state", "")

            def back(**params: str) -> Response:
                if state:
                    params["state"] = state
                return Response(
                    status_code=302, headers={"location": _with_query(redirect_uri, params)}
                )

            refusal = _consent_refusal(query)
            if refusal is not None:
                return back(error=refusal[0], error_description=refusal[1])
            seller = (
                self._signed_in if self._signed_in is not None else next(iter(self._shops), None)
            )
            if seller is None:
                return _error_page("login_required", "no Etsy seller is signed in", status=401)
            if self.deny_next_consent:
                self.deny_next_consent = False
                return back(error="access_denied", error_description="The user denied the request")
            code = secrets.token_urlsafe(48)
            self._codes[code] = _AuthorizationCode(
                client_id=client_id,
                redirect_uri=redirect_uri,
                code_challenge=query["code_challenge"],
                shop_id=seller,
                scopes=frozenset(query.get("scope", "").split()),
                expires_at=self._wall_clock() + self.code_lifetime_seconds,
            )
            self.consents += 1
            return back(code=code)

    async def _token_endpoint(self, request: Request) -> Response:
        """``POST /v3/public/oauth/token`` (form-encoded).

        ``grant_type=refresh_token``: both tokens rotate; the old refresh token is dead from
        now on. ``grant_type=authorization_code`` with ``client_id``, ``redirect_uri``,
        ``code`` and ``code_verifier``: see ``_exchange_code``."""
        form = _form(await request.body())
        with self._lock:
            self.requests += 1
            grant_type = form.get("grant_type")
            if grant_type not in ("refresh_token", "authorization_code"):
                return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
            if form.get("client_id") not in self._apps:
                return JSONResponse({"error": "invalid_client"}, status_code=401)
            if grant_type == "authorization_code":
                return self._exchange_code(form)
            found = self._refresh.pop(form.get("refresh_token", ""), None)
            if found is None:
                return _invalid_grant("Invalid refresh token")
            access, refresh, _ = self._issue(found.shop_id, found.scopes)
            self.token_refreshes += 1
            return self._token_answer(access, refresh)

    def _exchange_code(self, form: Mapping[str, str]) -> Response:
        """The authorization code grant. A code is spent by the first exchange that names it,
        whatever its outcome (a wrong verifier, too, so an intercepted code buys one guess);
        a spent, expired or unknown code, another client's code, a ``redirect_uri`` other
        than the consent's or a verifier whose S256 is not the challenge: 400
        ``invalid_grant``."""
        missing = [name for name in ("redirect_uri", "code", "code_verifier") if not form.get(name)]
        if missing:
            return JSONResponse(
                {"error": "invalid_request", "error_description": f"{missing[0]} is required"},
                status_code=400,
            )
        self.code_exchanges += 1
        record = self._codes.pop(form["code"], None)
        if record is None or record.client_id != form["client_id"]:
            return _invalid_grant("The authorization code is invalid or has already been used")
        if self._wall_clock() >= record.expires_at:
            return _invalid_grant("The authorization code has expired")
        if form["redirect_uri"] != record.redirect_uri:
            return _invalid_grant("redirect_uri does not match the authorization request")
        verifier = form["code_verifier"]
        if not _is_code_verifier(verifier) or not hmac.compare_digest(
            _s256(verifier), record.code_challenge
        ):
            return _invalid_grant("code_verifier is invalid")
        access, refresh, _ = self._issue(record.shop_id, record.scopes)
        return self._token_answer(access, refresh)

    def _token_answer(self, access: str, refresh: str) -> Response:
        return JSONResponse(
            {
                "access_token": access,
                "token_type": "Bearer",
                "expires_in": self.token_lifetime_seconds,
                "refresh_token": refresh,
            }
        )

    def _issue(self, shop_id: int, scopes: frozenset[str] | None = None) -> tuple[str, str, int]:
        user = self._shops[shop_id].user_id
        access = f"{user}.{secrets.token_urlsafe(24)}"
        refresh = f"{user}.{secrets.token_urlsafe(24)}"
        expires = int(self._wall_clock()) + self.token_lifetime_seconds
        self._access[access] = _Grant(shop_id, expires, scopes)
        self._refresh[refresh] = _RefreshGrant(shop_id, scopes)
        self._current[shop_id] = (access, refresh)
        return access, refresh, expires

    # -- users and shops -----------------------------------------------------------------------
    def _get_me(self, token_shop: int, _request: Request, _body: bytes) -> tuple[int, Any]:
        """getMe: the user the token belongs to and the user's shop (``Self``)."""
        shop = self._require_shop(token_shop)
        return 200, {"user_id": shop.user_id, "shop_id": shop.shop_id}

    def _get_shop(self, _token_shop: int, request: Request, _body: bytes) -> tuple[int, Any]:
        """getShop: any shop (a public read: the OAS asks for the api key only)."""
        shop = self._shops.get(int(request.path_params["shop_id"]))
        if shop is None:
            raise _Refused(404, f"Shop {request.path_params['shop_id']} not found")
        return 200, self._shop_view(shop)

    async def _hosted_image(self, request: Request) -> Response:
        with self._lock:
            hosted = self._hosted.get(request.path_params["name"])
        if hosted is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        return Response(hosted[0], media_type=hosted[1])

    # -- receipts ------------------------------------------------------------------------------
    def _list_receipts(self, token_shop: int, request: Request, _body: bytes) -> tuple[int, Any]:
        """getShopReceipts: time and status filters, sort, then limit/offset."""
        shop_id = self._own_shop(token_shop, request)
        query = request.query_params
        limit, offset = _paging(query)
        matches = [
            r
            for r in self._receipts.values()
            if r.shop_id == shop_id and _receipt_matches(r, query)
        ]
        sort_on = query.get("sort_on", "created")
        keys: dict[str, Callable[[_Receipt], tuple[int, int]]] = {
            "created": lambda r: (r.created, r.receipt_id),
            "updated": lambda r: (r.updated, r.receipt_id),
            "receipt_id": lambda r: (r.receipt_id, r.receipt_id),
        }
        if sort_on not in keys:
            raise _Refused(400, f"Invalid sort_on: {sort_on}")
        order = query.get("sort_order", "desc")
        if order not in ("asc", "ascending", "up", "desc", "descending", "down"):
            raise _Refused(400, f"Invalid sort_order: {order}")
        matches.sort(key=keys[sort_on], reverse=order in ("desc", "descending", "down"))
        page = matches[offset : offset + limit]
        return 200, {"count": len(matches), "results": [self._receipt_view(r) for r in page]}

    def _get_receipt(self, token_shop: int, request: Request, _body: bytes) -> tuple[int, Any]:
        return 200, self._receipt_view(self._shop_receipt(token_shop, request))

    def _tracking(self, token_shop: int, request: Request, body: bytes) -> tuple[int, Any]:
        """createReceiptShipment: every successful call records a shipment and a buyer e-mail."""
        receipt = self._shop_receipt(token_shop, request)
        fields = _fields(request, body)
        code = str(fields.get("tracking_code") or "").strip()
        carrier = str(fields.get("carrier_name") or "").strip()
        if bool(code) != bool(carrier):
            raise _Refused(400, "tracking_code and carrier_name must be sent together")
        now = self._now()
        write = TrackingWrite(receipt.receipt_id, code, carrier, now)
        self.tracking_writes.append(write)
        if code:
            receipt.shipments.append(_Shipment(next(self._ids), carrier, code, now))
        self.buyer_emails.append(write)
        receipt.is_shipped = True
        if receipt.status.lower() == "paid":
            receipt.status = "Completed" if receipt.status[0].isupper() else "completed"
        receipt.updated = max(now, receipt.updated + 1)
        return 200, self._receipt_view(receipt)

    # -- listings ------------------------------------------------------------------------------
    def _list_listings(self, token_shop: int, request: Request, _body: bytes) -> tuple[int, Any]:
        """getListingsByShop: ``state`` (default active), limit/offset, ``includes``."""
        shop_id = self._own_shop(token_shop, request)
        query = request.query_params
        limit, offset = _paging(query)
        state = query.get("state", "active")
        if state not in LISTING_STATES:
            raise _Refused(400, f"Invalid state: {state}")
        includes = _includes(request)
        matches = sorted(
            (x for x in self._listings.values() if x.shop_id == shop_id and x.state == state),
            key=lambda x: (-x.created, -x.listing_id),
        )
        page = matches[offset : offset + limit]
        return 200, {
            "count": len(matches),
            "results": [self._listing_view(x, includes) for x in page],
        }

    def _get_listing(self, token_shop: int, request: Request, _body: bytes) -> tuple[int, Any]:
        listing = self._shop_listing(token_shop, request)
        return 200, self._listing_view(listing, _includes(request))

    def _update_listing(self, token_shop: int, request: Request, body: bytes) -> tuple[int, Any]:
        """updateListing: only ``state`` (active or inactive) is honoured here."""
        listing = self._shop_listing(token_shop, request)
        state = _fields(request, body).get("state")
        if state is not None:
            if state not in ("active", "inactive"):
                raise _Refused(400, "state must be one of: active, inactive")
            self._change_state(listing, str(state))
        return 200, self._listing_view(listing, set())

    def _get_inventory(self, token_shop: int, request: Request, _body: bytes) -> tuple[int, Any]:
        listing = self._shop_listing(token_shop, request)
        return 200, self._inventory_view(listing, with_listing="Listing" in _includes(request))

    def _put_inventory(self, token_shop: int, request: Request, body: bytes) -> tuple[int, Any]:
        """updateListingInventory: validate everything, then replace everything."""
        listing = self._shop_listing(token_shop, request)
        document = _json_body(body)
        divisor = self._shops[listing.shop_id].divisor
        products = _validated_inventory(document, divisor)
        for key in ("price_on_property", "quantity_on_property", "sku_on_property"):
            setattr(listing, key, list(document.get(key) or []))
        listing.readiness_state_on_property = list(
            document.get("readiness_state_on_property") or []
        )
        before = listing.products
        listing.products = [self._renumbered(product) for product in products]
        listing.updated = self._now()
        self.price_changes.extend(_price_changes(listing, before, divisor))
        self.inventory_writes.append(
            {
                "listing_id": listing.listing_id,
                "body": document,
                "raw": body.decode("utf-8", "replace"),
            }
        )
        return 200, self._inventory_view(listing, with_listing=False)

    # -- images --------------------------------------------------------------------------------
    def _list_images(self, token_shop: int, request: Request, _body: bytes) -> tuple[int, Any]:
        listing = self._shop_listing(token_shop, request)
        views = [self._image_view(listing, image) for image in _ranked(listing.images)]
        return 200, {"count": len(views), "results": views}

    def _upload_image(self, token_shop: int, request: Request, body: bytes) -> tuple[int, Any]:
        """uploadListingImage: multipart ``image`` file, ``rank``, ``alt_text``."""
        listing = self._shop_listing(token_shop, request)
        parts = _multipart(request.headers.get("content-type", ""), body)
        image = parts.get("image")
        if image is None or not image[0]:
            raise _Refused(400, "An image file or listing_image_id is required")
        kind = next((name for magic, name in IMAGE_MAGIC if image[0].startswith(magic)), None)
        if kind is None:
            raise _Refused(400, "The image must be a jpg, png or gif file")
        if len(listing.images) >= MAX_IMAGES:
            raise _Refused(400, f"Listings are only allowed {MAX_IMAGES} images")
        rank = _int_field(parts.get("rank"), default=len(listing.images) + 1)
        for other in listing.images:
            if other.rank >= rank:
                other.rank += 1
        alt = parts.get("alt_text")
        record = _Image(
            next(self._ids), rank, alt[0].decode() if alt else "", kind, len(image[0]), self._now()
        )
        listing.images.append(record)
        self.image_uploads += 1
        return 201, self._image_view(listing, record)

    def _delete_image(self, token_shop: int, request: Request, _body: bytes) -> tuple[int, Any]:
        listing = self._shop_listing(token_shop, request)
        wanted = request.path_params["listing_image_id"]
        image = next((i for i in listing.images if i.listing_image_id == wanted), None)
        if image is None:
            raise _Refused(404, f"Image {wanted} not found on listing {listing.listing_id}")
        listing.images.remove(image)
        for rank, other in enumerate(_ranked(listing.images), start=1):
            other.rank = rank
        self.image_deletes += 1
        return 204, None

    # -- access checks -------------------------------------------------------------------------
    def _own_shop(self, token_shop: int, request: Request) -> int:
        shop_id = int(request.path_params["shop_id"])
        if shop_id not in self._shops:
            raise _Refused(404, f"Shop {shop_id} not found")
        if shop_id != token_shop:
            raise _Refused(403, "The access token does not grant access to this shop")
        return shop_id

    def _shop_receipt(self, token_shop: int, request: Request) -> _Receipt:
        shop_id = self._own_shop(token_shop, request)
        receipt = self._receipts.get(int(request.path_params["receipt_id"]))
        if receipt is None or receipt.shop_id != shop_id:
            raise _Refused(404, f"Receipt {request.path_params['receipt_id']} not found")
        return receipt

    def _shop_listing(self, token_shop: int, request: Request) -> _Listing:
        if "shop_id" in request.path_params:
            self._own_shop(token_shop, request)
        listing_id = int(request.path_params["listing_id"])
        listing = self._listings.get(listing_id)
        if listing is None:
            raise _Refused(404, f"Listing {listing_id} not found")
        self.calls_by_listing[listing_id] += 1
        if listing.shop_id != token_shop:
            raise _Refused(403, "The access token does not grant access to this listing")
        return listing

    # =========================================================================================
    # Views (the documented response shapes)
    # =========================================================================================

    def _shop_view(self, shop: _Shop) -> JSON:
        """A ``Shop`` (getShop)."""
        active = sum(
            1 for x in self._listings.values() if x.shop_id == shop.shop_id and x.state == "active"
        )
        sold = sum(
            t.quantity
            for r in self._receipts.values()
            if r.shop_id == shop.shop_id and r.is_paid
            for t in r.transactions
        )
        return {
            "shop_id": shop.shop_id,
            "user_id": shop.user_id,
            "shop_name": shop.shop_name,
            "create_date": shop.created,
            "created_timestamp": shop.created,
            "title": None,
            "announcement": None,
            "currency_code": shop.currency,
            "is_vacation": False,
            "vacation_message": None,
            "sale_message": None,
            "digital_sale_message": None,
            "update_date": shop.created,
            "updated_timestamp": shop.created,
            "listing_active_count": active,
            "digital_listing_count": 0,
            "login_name": shop.shop_name.lower(),
            "accepts_custom_requests": False,
            "policy_welcome": None,
            "policy_payment": None,
            "policy_shipping": None,
            "policy_refunds": None,
            "policy_additional": None,
            "policy_seller_info": None,
            "policy_update_date": shop.created,
            "policy_has_private_receipt_info": False,
            "has_unstructured_policies": False,
            "policy_privacy": None,
            "vacation_autoreply": None,
            "url": f"https://www.etsy.com/shop/{shop.shop_name}",
            "image_url_760x100": None,
            "num_favorers": 0,
            "languages": ["en-US"],
            "icon_url_fullxfull": None,
            "is_using_structured_policies": False,
            "has_onboarded_structured_policies": False,
            "include_dispute_form_link": False,
            "is_direct_checkout_onboarded": True,
            "is_etsy_payments_onboarded": True,
            "is_calculated_eligible": False,
            "is_opted_in_to_buyer_promise": False,
            "is_shop_us_based": True,
            "transaction_sold_count": sold,
            "shipping_from_country_iso": "US",
            "shop_location_country_iso": "US",
            "review_count": 0,
            "review_average": None,
        }

    def _money(self, amount: int, shop_id: int) -> JSON:
        shop = self._shops[shop_id]
        return {"amount": amount, "divisor": shop.divisor, "currency_code": shop.currency}

    def _receipt_view(self, receipt: _Receipt) -> JSON:
        """A ``ShopReceipt``."""
        money = self._receipt_money(receipt)
        total_price = sum(t.amount * t.quantity for t in receipt.transactions)
        shipping = max(0, receipt.grandtotal - total_price)
        discount = max(0, total_price - receipt.grandtotal)
        shop = self._shops[receipt.shop_id]
        buyer = receipt.buyer
        return {
            "receipt_id": receipt.receipt_id,
            "receipt_type": 0,
            "seller_user_id": shop.user_id,
            "seller_email": f"owner@{shop.shop_name.lower()}.example",
            "buyer_user_id": buyer.get("user_id", 77_000_001),
            "buyer_email": buyer.get("email"),
            "name": buyer.get("name"),
            "first_line": buyer.get("first_line"),
            "second_line": buyer.get("second_line"),
            "city": buyer.get("city"),
            "state": buyer.get("state"),
            "zip": buyer.get("zip"),
            "status": receipt.status,
            "formatted_address": buyer.get("formatted_address"),
            "country_iso": buyer.get("country_iso"),
            "payment_method": "cc",
            "payment_email": buyer.get("email"),
            "message_from_seller": None,
            "message_from_buyer": None,
            "message_from_payment": None,
            "is_paid": receipt.is_paid,
            "is_shipped": receipt.is_shipped,
            "create_timestamp": receipt.created,
            "created_timestamp": receipt.created,
            "update_timestamp": receipt.updated,
            "updated_timestamp": receipt.updated,
            "is_gift": False,
            "gift_message": "",
            "gift_sender": "",
            "grandtotal": money(receipt.grandtotal),
            "subtotal": money(total_price - discount),
            "total_price": money(total_price),
            "total_shipping_cost": money(shipping),
            "total_tax_cost": money(0),
            "total_vat_cost": money(0),
            "discount_amt": money(discount),
            "gift_wrap_price": money(0),
            "shipments": [
                {
                    "receipt_shipping_id": s.receipt_shipping_id,
                    "shipment_notification_timestamp": s.notified,
                    "carrier_name": s.carrier_name,
                    "tracking_code": s.tracking_code,
                }
                for s in receipt.shipments
            ],
            "transactions": [self._transaction_view(receipt, t) for t in receipt.transactions],
            "refunds": copy.deepcopy(receipt.refunds),
        }

    def _receipt_money(self, receipt: _Receipt) -> Callable[[int], JSON]:
        return lambda amount: {
            "amount": amount,
            "divisor": receipt.divisor,
            "currency_code": receipt.currency,
        }

    def _transaction_view(self, receipt: _Receipt, line: _Transaction) -> JSON:
        """A ``ShopReceiptTransaction``: ``price`` is the unit price."""
        money = self._receipt_money(receipt)
        shop = self._shops[receipt.shop_id]
        return {
            "transaction_id": line.transaction_id,
            "title": line.title,
            "description": line.title,
            "seller_user_id": shop.user_id,
            "buyer_user_id": receipt.buyer.get("user_id", 77_000_001),
            "create_timestamp": receipt.created,
            "created_timestamp": receipt.created,
            "paid_timestamp": receipt.created if receipt.is_paid else None,
            "shipped_timestamp": receipt.updated if receipt.is_shipped else None,
            "quantity": line.quantity,
            "listing_image_id": None,
            "receipt_id": receipt.receipt_id,
            "is_digital": False,
            "file_data": "",
            "listing_id": line.listing_id,
            "transaction_type": "listing",
            "product_id": line.product_id,
            "sku": line.sku,
            "price": money(line.amount),
            "shipping_cost": money(0),
            "variations": [],
            "product_data": [],
            "shipping_profile_id": None,
            "min_processing_days": 1,
            "max_processing_days": 3,
            "shipping_method": None,
            "shipping_upgrade": None,
            "expected_ship_date": receipt.created + 3 * 86_400,
            "buyer_coupon": 0,
            "shop_coupon": 0,
        }

    def _listing_view(self, listing: _Listing, includes: set[str]) -> JSON:
        """A ``ShopListing`` (with the ``inventory`` and ``images`` associations on request)."""
        offerings = [p.offerings[0] for p in listing.products if p.offerings]
        quantity = sum(o.quantity for o in offerings if o.is_enabled)
        cheapest = min((o.amount for o in offerings), default=0)
        view: JSON = {
            "listing_id": listing.listing_id,
            "user_id": self._shops[listing.shop_id].user_id,
            "shop_id": listing.shop_id,
            "title": listing.title,
            "description": f"{listing.title}, printed on demand.",
            "state": listing.state,
            "creation_timestamp": listing.created,
            "created_timestamp": listing.created,
            "ending_timestamp": listing.created + 120 * 86_400,
            "original_creation_timestamp": listing.created,
            "last_modified_timestamp": listing.updated,
            "updated_timestamp": listing.updated,
            "state_timestamp": listing.state_timestamp,
            "quantity": quantity,
            "shop_section_id": None,
            "featured_rank": -1,
            "url": f"https://www.etsy.com/listing/{listing.listing_id}",
            "num_favorers": 0,
            "non_taxable": False,
            "is_taxable": True,
            "is_customizable": False,
            "is_personalizable": False,
            "listing_type": "physical",
            "tags": [],
            "materials": [],
            "shipping_profile_id": 1,
            "return_policy_id": None,
            "processing_min": 1,
            "processing_max": 3,
            "who_made": "i_did",
            "when_made": "made_to_order",
            "is_supply": False,
            "item_weight": None,
            "item_weight_unit": None,
            "item_length": None,
            "item_width": None,
            "item_height": None,
            "item_dimensions_unit": None,
            "is_private": False,
            "style": [],
            "file_data": "",
            "has_variations": len(listing.products) > 1,
            "should_auto_renew": True,
            "language": "en-US",
            "price": self._money(cheapest, listing.shop_id),
            "taxonomy_id": 1,
            "readiness_state_id": listing.readiness_state_id,
            "skus": [p.sku for p in listing.products if p.sku],
        }
        if "Inventory" in includes:
            view["inventory"] = self._inventory_view(listing, with_listing=False)
        if "Images" in includes:
            view["images"] = [self._image_view(listing, i) for i in _ranked(listing.images)]
        return view

    def _inventory_view(self, listing: _Listing, *, with_listing: bool) -> JSON:
        """A ``ListingInventoryWithAssociations``: read-only ids, Money prices."""
        return {
            "products": [
                {
                    "product_id": product.product_id,
                    "sku": product.sku,
                    "is_deleted": False,
                    "offerings": [
                        {
                            "offering_id": o.offering_id,
                            "quantity": o.quantity,
                            "is_enabled": o.is_enabled,
                            "is_deleted": False,
                            "price": self._money(o.amount, listing.shop_id),
                            "readiness_state_id": o.readiness_state_id,
                        }
                        for o in product.offerings
                    ],
                    "property_values": copy.deepcopy(product.property_values),
                }
                for product in listing.products
            ],
            "price_on_property": list(listing.price_on_property),
            "quantity_on_property": list(listing.quantity_on_property),
            "sku_on_property": list(listing.sku_on_property),
            "readiness_state_on_property": list(listing.readiness_state_on_property),
            "listing": self._listing_view(listing, set()) if with_listing else None,
        }

    def _image_view(self, listing: _Listing, image: _Image) -> JSON:
        """A ``ListingImage``; colour fields stay null while Etsy processes the file."""
        base = f"https://i.etsystatic.com/sandbox/{listing.listing_id}/{image.listing_image_id}"
        return {
            "listing_id": listing.listing_id,
            "listing_image_id": image.listing_image_id,
            "hex_code": None,
            "red": None,
            "green": None,
            "blue": None,
            "hue": None,
            "saturation": None,
            "brightness": None,
            "is_black_and_white": None,
            "creation_tsz": image.created,
            "created_timestamp": image.created,
            "rank": image.rank,
            "url_75x75": f"{base}/il_75x75.jpg",
            "url_170x135": f"{base}/il_170x135.jpg",
            "url_443x": f"{base}/il_443xN.jpg",
            "url_570xN": f"{base}/il_570xN.jpg",
            "url_fullxfull": f"{base}/il_fullxfull.jpg",
            "full_height": None,
            "full_width": None,
            "alt_text": image.alt_text,
        }

    # =========================================================================================
    # Internals (called under the lock)
    # =========================================================================================

    def _now(self) -> int:
        return int(self._wall_clock())

    def _require_shop(self, shop_id: int) -> _Shop:
        shop = self._shops.get(shop_id)
        if shop is None:
            raise KeyError(f"unknown shop {shop_id}")
        return shop

    def _require_listing(self, listing_id: int) -> _Listing:
        listing = self._listings.get(listing_id)
        if listing is None:
            raise KeyError(f"unknown listing {listing_id}")
        return listing

    def _require_receipt(self, receipt_id: int) -> _Receipt:
        receipt = self._receipts.get(receipt_id)
        if receipt is None:
            raise KeyError(f"unknown receipt {receipt_id}")
        return receipt

    def _products(self, listing_id: int, sku: str | None) -> list[_Product]:
        listing = self._require_listing(listing_id)
        found = [p for p in listing.products if sku is None or p.sku == sku]
        if not found:
            raise KeyError(f"listing {listing_id} has no product with SKU {sku!r}")
        return found

    def _seed_product(self, shop: _Shop, spec: Mapping[str, Any], readiness: int) -> _Product:
        quantity = int(spec.get("quantity", 1))
        offering = _Offering(
            next(self._ids),
            _minor(Decimal(spec["price"]), shop.divisor),
            quantity,
            bool(spec.get("is_enabled", True)),
            readiness,
        )
        return _Product(
            next(self._ids),
            str(spec.get("sku") or ""),
            [dict(v) for v in spec.get("property_values") or ()],
            [offering],
        )

    def _seed_transaction(self, shop: _Shop, spec: Mapping[str, Any]) -> _Transaction:
        listing_id = spec.get("listing_id")
        return _Transaction(
            transaction_id=next(self._ids) + 3_000_000_000,
            listing_id=int(listing_id) if listing_id is not None else None,
            product_id=int(spec["product_id"]) if spec.get("product_id") is not None else None,
            sku=str(spec.get("sku") or ""),
            title=str(spec.get("title") or f"Listing {listing_id}"),
            quantity=int(spec.get("quantity", 1)),
            amount=_minor(Decimal(spec["price"]), shop.divisor),
        )

    def _refund(self, shop: _Shop, amount: Decimal) -> JSON:
        return {
            "amount": {
                "amount": _minor(amount, shop.divisor),
                "divisor": shop.divisor,
                "currency_code": shop.currency,
            },
            "created_timestamp": self._now(),
            "reason": "Buyer request",
            "note_from_issuer": None,
            "status": "completed",
        }

    def _sell(self, lines: Sequence[_Transaction]) -> None:
        """Take sold units off the offerings, as Etsy does; a listing at 0 is sold_out."""
        for line in lines:
            listing = self._listings.get(line.listing_id or 0)
            if listing is None:
                continue
            for product in listing.products:
                if product.product_id == line.product_id or (line.sku and product.sku == line.sku):
                    offering = product.offerings[0]
                    offering.quantity = max(0, offering.quantity - line.quantity)
                    break
            if listing.state == "active" and not _for_sale(listing.products):
                self._change_state(listing, "sold_out")

    def _change_state(self, listing: _Listing, state: str) -> None:
        """Setting a ``sold_out`` listing active gives it quantity 1 (ShopListing.state)."""
        before = listing.state
        if before == "sold_out" and state == "active" and listing.products:
            first = listing.products[0].offerings[0]
            first.quantity, first.is_enabled = 1, True
        listing.state = state
        listing.state_timestamp = listing.updated = self._now()
        self.state_changes.append((listing.listing_id, before, state))

    def _renumbered(self, product: JSON) -> _Product:
        """A written product with new ids: Etsy renumbers products and offerings on every
        inventory update."""
        return _Product(
            next(self._ids),
            str(product.get("sku") or ""),
            copy.deepcopy(product.get("property_values") or []),
            [
                _Offering(
                    next(self._ids),
                    offering["amount"],
                    offering["quantity"],
                    offering["is_enabled"],
                    offering.get("readiness_state_id"),
                )
                for offering in product["offerings"]
            ],
        )


# ---------------------------------------------------------------------------------------------
# Module-level helpers
# ---------------------------------------------------------------------------------------------


def order_event_payload(shop_id: int, receipt_id: int, event_type: str = "order.paid") -> JSON:
    """An Etsy webhook body: ``event_type``, ``resource_url`` of the receipt, ``shop_id``."""
    return {
        "event_type": event_type,
        "resource_url": f"https://api.etsy.com/v3/application/shops/{shop_id}/receipts/{receipt_id}",
        "shop_id": str(shop_id),
    }


def _error_page(error: str, description: str, *, status: int = 400) -> Response:
    """What the consent page shows instead of redirecting (JSON here, a page at Etsy)."""
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


def _invalid_grant(description: str) -> Response:
    return JSONResponse(
        {"error": "invalid_grant", "error_description": description}, status_code=400
    )


def _redirect_uri_problem(uri: str) -> str | None:
    """Etsy takes ``https://`` redirect URIs only; the sandbox also takes ``http://`` on
    loopback, where the embedded hub listens. No fragment (RFC 6749 section 3.1.2)."""
    if not uri:
        return "redirect_uri is required"
    parsed = urlsplit(uri)
    if parsed.fragment or not parsed.netloc:
        return "redirect_uri must be an absolute URI without a fragment"
    if parsed.scheme == "https" or (
        parsed.scheme == "http" and (parsed.hostname or "") in LOOPBACK_HOSTS
    ):
        return None
    return "redirect_uri must have the https:// prefix"


def _consent_refusal(query: Mapping[str, str]) -> tuple[str, str] | None:
    """The OAuth error a consent request earns before the seller sees it, if any."""
    if query.get("response_type") != "code":
        return "unsupported_response_type", "response_type must be code"
    if not query.get("state"):
        return "invalid_request", "state is required"
    scopes = query.get("scope", "").split()
    if not scopes:
        return "invalid_scope", "scope is required"
    unknown = sorted(set(scopes) - OAUTH_SCOPES)
    if unknown:
        return "invalid_scope", f"unknown scope: {', '.join(unknown)}"
    challenge = query.get("code_challenge", "")
    if not challenge:
        return "invalid_request", "code_challenge is required"
    if query.get("code_challenge_method") != "S256":
        return "invalid_request", "code_challenge_method must be S256"
    if len(challenge) != 43 or not set(challenge) <= BASE64URL:
        return "invalid_request", "code_challenge must be the base64url SHA-256 of the verifier"
    return None


def _with_query(uri: str, params: Mapping[str, str]) -> str:
    """``uri`` with ``params`` added to whatever query it already has."""
    parsed = urlsplit(uri)
    query = "&".join(part for part in (parsed.query, urlencode(params)) if part)
    return urlunsplit((parsed.scheme, parsed.netloc, parsed.path, query, ""))


def _is_code_verifier(value: str) -> bool:
    """RFC 7636 section 4.1: 43 to 128 unreserved characters."""
    return 43 <= len(value) <= 128 and set(value) <= UNRESERVED


def _s256(verifier: str) -> str:
    """RFC 7636 ``S256``: base64url(SHA-256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _signing_key(secret: str) -> bytes:
    """Standard Webhooks: base64 after ``whsec_``; a secret that is not base64 (a forgery
    test's) is used as raw bytes so it still signs, just with the wrong key."""
    encoded = secret.removeprefix("whsec_")
    try:
        return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        return secret.encode()


def _default_buyer() -> JSON:
    return {
        "user_id": 77_000_001,
        "email": "buyer@example.com",
        "name": "Ada Buyer",
        "first_line": "1 Sample Street",
        "second_line": None,
        "city": "Springfield",
        "state": "IL",
        "zip": "62701",
        "country_iso": "US",
        "formatted_address": "Ada Buyer\n1 Sample Street\nSpringfield, IL 62701\nUnited States",
    }


def _epoch(moment: datetime | int) -> int:
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return int(moment.timestamp())
    return int(moment)


def _minor(amount: Decimal, divisor: int) -> int:
    """Money in minor units; an amount finer than the divisor is a seeding mistake."""
    scaled = Decimal(amount) * divisor
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} is not a whole number of 1/{divisor}")
    return int(scaled)


def _major(amount: int, divisor: int) -> Decimal:
    """Exactly ``amount / divisor``; a power-of-ten divisor keeps its places (50/100 is 0.50)."""
    places = len(str(divisor)) - 1
    if divisor == 10**places:
        return Decimal(amount).scaleb(-places)
    return Decimal(amount) / divisor


def _price_changes(
    listing: _Listing, before: Sequence[_Product], divisor: int
) -> list[PriceChange]:
    """The products whose first offering's price a write changed: matched by SKU where every
    SKU is set and unique on both sides, else by position."""
    old_skus = [product.sku for product in before]
    new_skus = [product.sku for product in listing.products]
    by_sku = all(old_skus) and all(new_skus) and len(set(old_skus)) == len(old_skus)
    previous: dict[str | int, _Product] = {
        (product.sku if by_sku else position): product for position, product in enumerate(before)
    }
    changes = []
    for position, product in enumerate(listing.products):
        old = previous.get(product.sku if by_sku else position)
        old_amount = old.offerings[0].amount if old is not None and old.offerings else None
        new_amount = product.offerings[0].amount
        if old_amount != new_amount:
            changes.append(
                PriceChange(
                    listing.listing_id,
                    product.sku,
                    None if old_amount is None else _major(old_amount, divisor),
                    _major(new_amount, divisor),
                )
            )
    return changes


def _for_sale(products: Sequence[_Product]) -> bool:
    return any(o.is_enabled and o.quantity > 0 for p in products for o in p.offerings)


def _ranked(images: Sequence[_Image]) -> list[_Image]:
    return sorted(images, key=lambda image: (image.rank, image.listing_image_id))


def _jsonable(value: Any) -> Any:
    """Decimal-free JSON (views carry ints and strings only; this guards against slips)."""
    return json.loads(json.dumps(value, default=str))


def _paging(query: Mapping[str, str]) -> tuple[int, int]:
    try:
        limit = int(query.get("limit", "25"))
        offset = int(query.get("offset", "0"))
    except ValueError:
        raise _Refused(400, "limit and offset must be integers") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise _Refused(400, f"limit must be between 1 and {MAX_LIMIT}")
    if offset < 0:
        raise _Refused(400, "offset must be 0 or more")
    return limit, offset


def _receipt_matches(receipt: _Receipt, query: Mapping[str, str]) -> bool:
    """getShopReceipts filters: created/modified bounds are inclusive epoch seconds."""
    bounds = (
        ("min_created", receipt.created, 1),
        ("max_created", receipt.created, -1),
        ("min_last_modified", receipt.updated, 1),
        ("max_last_modified", receipt.updated, -1),
    )
    for name, value, sign in bounds:
        if name in query:
            try:
                limit = int(query[name])
            except ValueError:
                raise _Refused(400, f"{name} must be epoch seconds") from None
            if (value - limit) * sign < 0:
                return False
    flags = (
        ("was_paid", receipt.is_paid),
        ("was_shipped", receipt.is_shipped),
        ("was_canceled", receipt.status.lower() == "canceled"),
    )
    return all(query[name].lower() == str(value).lower() for name, value in flags if name in query)


def _includes(request: Request) -> set[str]:
    values = request.query_params.getlist("includes") + request.query_params.getlist("includes[]")
    return {part.strip() for value in values for part in value.split(",") if part.strip()}


def _form(body: bytes) -> dict[str, str]:
    parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {key: values[-1] for key, values in parsed.items()}


def _json_body(body: bytes) -> JSON:
    """A JSON object; numbers with a fraction become ``Decimal`` (their digits as sent)."""
    try:
        document = json.loads(body, parse_float=Decimal)
    except ValueError:
        raise _Refused(400, "The request body is not valid JSON") from None
    if not isinstance(document, dict):
        raise _Refused(400, "The request body must be a JSON object")
    return document


def _fields(request: Request, body: bytes) -> JSON:
    """A JSON or form-encoded body as a dict (Etsy accepts both for these writes)."""
    if request.headers.get("content-type", "").startswith("application/json"):
        return _json_body(body)
    return dict(_form(body))


def _multipart(content_type: str, body: bytes) -> dict[str, tuple[bytes, str | None]]:
    """``multipart/form-data`` fields as ``{name: (bytes, filename)}`` (stdlib parser)."""
    if not content_type.startswith("multipart/form-data"):
        raise _Refused(400, "uploadListingImage takes multipart/form-data")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    fields: dict[str, tuple[bytes, str | None]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields[name] = (payload, part.get_filename())
    return fields


def _int_field(field_value: tuple[bytes, str | None] | None, *, default: int) -> int:
    if field_value is None:
        return default
    try:
        return max(1, int(field_value[0].decode().strip()))
    except ValueError:
        raise _Refused(400, "rank must be an integer") from None


def _validated_inventory(document: Mapping[str, Any], divisor: int) -> list[JSON]:
    """The products of an updateListingInventory body, prices in minor units; refuses what
    Etsy refuses (read-only keys, Money objects as prices, no offering above 0)."""
    unknown = set(document) - INVENTORY_KEYS
    if unknown:
        raise _Refused(400, f"Array contains invalid keys: {', '.join(sorted(unknown))}")
    products = document.get("products")
    if not isinstance(products, list) or not products:
        raise _Refused(400, "Missing input parameter: [products]")
    checked = [_validated_product(product, divisor) for product in products]
    if not any(o["is_enabled"] and o["quantity"] > 0 for p in checked for o in p["offerings"]):
        raise _Refused(400, ZERO_INVENTORY)
    prices = {o["amount"] for p in checked for o in p["offerings"]}
    if len(prices) > 1 and not document.get("price_on_property"):
        raise _Refused(
            400,
            "The products' prices differ but price_on_property is empty: a listing whose "
            "price does not vary by property has one price",
        )
    return checked


def _validated_product(product: Any, divisor: int) -> JSON:
    if not isinstance(product, dict):
        raise _Refused(400, "Each product must be an object")
    _no_extra_keys(product, PRODUCT_KEYS)
    values = product.get("property_values", [])
    if not isinstance(values, list):
        raise _Refused(400, "property_values must be an array")
    for value in values:
        if not isinstance(value, dict):
            raise _Refused(400, "Each property value must be an object")
        _no_extra_keys(value, PROPERTY_VALUE_KEYS)
        if not {"property_id", "value_ids", "values"} <= set(value):
            raise _Refused(400, "A property value needs property_id, value_ids and values")
    offerings = product.get("offerings")
    if not isinstance(offerings, list) or not offerings:
        raise _Refused(400, "Each product needs at least one offering")
    return {
        "sku": product.get("sku"),
        "property_values": values,
        "offerings": [_validated_offering(offering, divisor) for offering in offerings],
    }


def _validated_offering(offering: Any, divisor: int) -> JSON:
    if not isinstance(offering, dict):
        raise _Refused(400, "Each offering must be an object")
    _no_extra_keys(offering, OFFERING_KEYS)
    missing = OFFERING_KEYS - set(offering)
    if missing:
        raise _Refused(400, f"Missing offering fields: {', '.join(sorted(missing))}")
    price, quantity, enabled = offering["price"], offering["quantity"], offering["is_enabled"]
    if (
        isinstance(price, bool)
        or not isinstance(price, int | float | Decimal)
        or not Decimal(price).is_finite()
        or price <= 0
    ):
        raise _Refused(400, "price must be a positive number (amount / divisor)")
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0:
        raise _Refused(400, "quantity must be an integer of 0 or more")
    if not isinstance(enabled, bool):
        raise _Refused(400, "is_enabled must be a boolean")
    readiness = offering["readiness_state_id"]
    if readiness is not None and (isinstance(readiness, bool) or not isinstance(readiness, int)):
        raise _Refused(400, "readiness_state_id must be an integer or null")
    try:
        amount = _minor(
            Decimal(repr(price)) if isinstance(price, float) else Decimal(price), divisor
        )
    except ValueError:
        raise _Refused(
            400, f"price {price} has more decimals than the currency (1/{divisor})"
        ) from None
    return {
        "amount": amount,
        "quantity": quantity,
        "is_enabled": enabled,
        "readiness_state_id": readiness,
    }


def _no_extra_keys(node: Mapping[str, Any], allowed: frozenset[str]) -> None:
    extra = set(node) - allowed
    if extra:
        raise _Refused(400, f"Array contains invalid keys: {', '.join(sorted(extra))}")
