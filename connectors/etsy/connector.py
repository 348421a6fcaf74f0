"""The Etsy connector: the hub's ``MarketplaceConnector`` over Etsy Open API v3.

It transports and translates, nothing more: translations are in ``mappers.py``, receipt paging
in ``paging.py``, the stock rules (item ids, zero stock) in ``stock.py``, auth, rate limits and
error classes in ``client.py``. Reference: https://developers.etsy.com/documentation/reference.

Calls per operation (Etsy counts every call against one per-app budget, 10,000 a day by
default): an order page 1; a listing page 1 (inventories come along with
``includes=Inventory``; a listing without them costs one ``getListingInventory`` more); a stock
push of any number of one listing's items 2 (read, then one write carrying them all, prices
included; 1 when the listing's inventory was read in the last minute) plus one
``updateListing`` when the listing is deactivated or reactivated, so 1,000 listings of 10 SKUs
each cost at most 2,000 calls plus the state changes; a fulfillment 2 (read the receipt's
shipments, then write); images 1 + deletes + uploads; a completed authorization 3 (the token
exchange, getMe, getShop).
"""

from __future__ import annotations

import hmac
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from connectors.contract import (
    AuthorizationCallback,
    AuthorizationRejected,
    AuthorizationStart,
    Capabilities,
    ConnectedShop,
    ConnectorConfig,
    ConnectorError,
    CredentialStore,
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
    StockLevel,
    StockPushResult,
    TransientError,
    WebhookEnvelope,
    WebhookManagement,
    group_stock_levels,
)
from connectors.etsy import mappers, paging, stock, webhooks
from connectors.etsy.client import MARKETPLACE, EtsyClient, pkce_challenge
from connectors.http import build_client, send
from connectors.ratelimit import InProcessRateLimiter, RateLimiter
from hub.domain.errors import InvalidInput
from hub.domain.orders import ImportOrder
from hub.domain.shops import PushKind

ORDERS_PAGE_SIZE = 100  # getShopReceipts limit: 1..100
LISTINGS_PAGE_SIZE = 100  # getListingsByShop limit: 1..100
INVENTORY_CACHE_SECONDS = 60.0
EARLIEST_TIMESTAMP = 946_684_800  # getShopReceipts: min_last_modified "minimum: 946684800"
MAX_IMAGES = (
    10  # "Listings are only allowed 10 images" (https://github.com/etsy/open-api/issues/606)
)
# Items of ONE listing per set_stock_levels call (updateListingInventory writes one listing).
# No documented cap on a listing's products was found: only 70 values per variation property
# (https://github.com/etsy/open-api/issues/567) and at most three properties
# (https://developers.etsy.com/documentation/tutorials/third-variation/); print-on-demand
# listings hold tens to a few hundred products. 400 covers them in one write of moderate size;
# a larger listing is pushed in several calls, the later ones reading its inventory from the
# one-minute cache (so the later calls only write).
STOCK_BATCH_SIZE = 400
# Onboarding (https://developers.etsy.com/documentation/essentials/authentication): the consent
# page lives on www.etsy.com, the token endpoint under the API's host (client.py).
CONSENT_BASE_URL = "https://www.etsy.com"
CONSENT_PATH = "/oauth/connect"
# What the connector calls needs: transactions_r (getShopReceipts), transactions_w
# (createReceiptShipment), listings_r (getListingsByShop, getListingInventory), listings_w
# (updateListingInventory, updateListing, images). shops_r because getMe, which names the shop
# that granted access, lists it in its OAS security block.
SCOPES = ("transactions_r", "transactions_w", "listings_r", "listings_w", "shops_r")
# RFC 7636 section 4.1: a verifier is 43 to 128 unreserved characters.
VERIFIER_CHARACTERS = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
)

CAPABILITIES = Capabilities(
    marketplace=MARKETPLACE,
    push_kinds=(PushKind.LISTING, PushKind.IMAGES),
    stock_batch_size=STOCK_BATCH_SIZE,  # items of one listing per call (stock_batches)
    images=ImageLimits(
        max_images=MAX_IMAGES,
        max_width=3000,  # url_fullxfull is stored up to 3000 px (ListingImage schema)
        max_height=3000,
        max_pixels=None,
        max_bytes=None,
        formats=("jpeg", "png", "gif"),
    ),
    rate_limit=RateLimitModel.REQUEST_WINDOW,
    webhook_management=WebhookManagement.MANUAL,  # the Developer Portal's webhook portal
    orders_sorted_by_update=True,
)


def order_poll_interval_seconds(
    active_shops: int, requests_per_day: int, share: float = 0.3, calls_per_poll: int = 1
) -> float:
    """Seconds between two order polls of one shop so that polling every active shop spends
    at most ``share`` of the app's daily budget (Etsy's limit is per app, shared by all shops).

    86,400 x shops x calls per poll / (requests per day x share): 10 shops on the default
    10,000 a day with 30 % for polling poll each shop every 288 s. Fewer than one shop counts
    as one.
    """
    if requests_per_day <= 0:
        raise ValueError(f"requests_per_day must be positive, got {requests_per_day}")
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], got {share}")
    if calls_per_poll <= 0:
        raise ValueError(f"calls_per_poll must be positive, got {calls_per_poll}")
    return 86_400.0 * max(1, active_shops) * calls_per_poll / (requests_per_day * share)


@dataclass
class _Cached:
    read_at: float
    inventory: stock.ListingInventory


class EtsyConnector:
    """One instance serves every Etsy shop of one app; it holds the app's settings, the HTTP
    clients and a one-minute cache of listing inventories read or written."""

    def __init__(
        self,
        config: ConnectorConfig,
        *,
        rate_limiter: RateLimiter | None = None,
        credential_store: CredentialStore | None = None,
        sleep: Callable[[float], None] | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        orders_page_size: int = ORDERS_PAGE_SIZE,
        listings_page_size: int = LISTINGS_PAGE_SIZE,
    ) -> None:
        self.capabilities: Capabilities = CAPABILITIES
        self._secrets = (
            config.app_credentials.get("webhook_secret"),
            config.app_credentials.get("webhook_secret_previous"),
        )
        self._client = EtsyClient(
            config,
            rate_limiter=rate_limiter or config.rate_limiter or InProcessRateLimiter(),
            credential_store=credential_store,
            sleep=sleep,
            transport=transport,
            clock=clock,
        )
        self._images = build_client(config, base_url="", transport=transport)
        self._sleep = sleep
        self._clock = clock
        self._monotonic = monotonic
        self._orders_page_size = orders_page_size
        self._listings_page_size = listings_page_size
        self._inventories: dict[tuple[str, str], _Cached] = {}
        # One read-modify-write of a listing's inventory at a time: two at once would each
        # write back the other's SKUs as they read them, undoing the first write.
        self._writing: dict[tuple[str, str], threading.Lock] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"EtsyConnector({self._client!r})"

    # -- orders -------------------------------------------------------------------------------
    def list_orders_changed(
        self, shop: ShopContext, *, since: datetime, cursor: str | None = None
    ) -> OrderPage:
        """One page of receipts updated at or after ``since``, oldest change first, paged by
        time (``paging.py``); a receipt seen twice in one scan is returned once."""
        position = self._order_cursor(shop, since, cursor)
        body = self._client.call(
            shop,
            "GET",
            f"/shops/{_shop_id(shop)}/receipts",
            params={
                "min_last_modified": position.since,
                "sort_on": "updated",
                "sort_order": "asc",
                "limit": self._orders_page_size,
                "offset": position.offset,
            },
        )
        with _payload_errors(shop, "receipts page"):
            _, receipts = mappers.page_results(body, what="receipts")
            orders = tuple(
                mappers.map_receipt(receipt, shop_id=shop.shop_id)
                for receipt in paging.unseen(position, receipts)
            )
            following = paging.advance(position, receipts, self._orders_page_size)
        return OrderPage(
            orders=orders,
            next_cursor=following.encode() if following else None,
            high_water_mark=max((order.external_updated_at for order in orders), default=None),
        )

    def get_order(self, shop: ShopContext, external_id: str) -> ImportOrder:
        receipt = self._receipt(shop, external_id)
        with _payload_errors(shop, f"receipt {external_id}"):
            return mappers.map_receipt(receipt, shop_id=shop.shop_id)

    def _order_cursor(
        self, shop: ShopContext, since: datetime, cursor: str | None
    ) -> paging.OrderCursor:
        if cursor is None:
            return paging.OrderCursor(max(EARLIEST_TIMESTAMP, mappers.epoch_seconds(since)))
        try:
            return paging.OrderCursor.decode(cursor)
        except ValueError as error:
            raise PermanentError(
                f"{_label(shop)}: {error}; restart the scan without a cursor",
                marketplace=MARKETPLACE,
            ) from error

    def _receipt(self, shop: ShopContext, external_id: str) -> Mapping[str, Any]:
        if not external_id.strip().isdigit():
            raise NotFound(
                f"{_label(shop)}: {external_id!r} is not a receipt id", marketplace=MARKETPLACE
            )
        body = self._client.call(shop, "GET", f"/shops/{_shop_id(shop)}/receipts/{external_id}")
        if not isinstance(body, Mapping):
            raise PermanentError(
                f"{_label(shop)}: receipt {external_id} is not an object", marketplace=MARKETPLACE
            )
        return body

    # -- listings -----------------------------------------------------------------------------
    def list_listings(self, shop: ShopContext, *, cursor: str | None = None) -> ListingPage:
        """Active listings with one variant per product; the cursor is the next offset."""
        offset = _offset(shop, cursor)
        body = self._client.call(
            shop,
            "GET",
            f"/shops/{_shop_id(shop)}/listings",
            params={
                "state": stock.ACTIVE,
                "limit": self._listings_page_size,
                "offset": offset,
                "includes": "Inventory",
            },
        )
        with _payload_errors(shop, "listings page"):
            count, listings = mappers.page_results(body, what="listings")
        variants = []
        for listing in listings:
            with _payload_errors(shop, f"listing {listing.get('listing_id')}"):
                inventory = mappers.listing_inventory(listing) or self._listing_inventory(
                    shop, listing
                )
                variants.extend(mappers.map_listing_variants(listing, inventory))
        following = offset + len(listings)
        more = bool(listings) and following < count
        return ListingPage(variants=tuple(variants), next_cursor=str(following) if more else None)

    def _listing_inventory(
        self, shop: ShopContext, listing: Mapping[str, Any]
    ) -> Mapping[str, Any] | None:
        listing_id = mappers.required_id(listing, "listing_id", what="listing")
        try:
            return self._read_inventory(shop, listing_id).body
        except NotFound:
            return None  # "Listings you did not edit using the inventory tools have no records"

    # -- stock --------------------------------------------------------------------------------
    def stock_item_id(
        self,
        *,
        listing_id: str | None,
        variant_id: str | None,
        inventory_item_id: str | None,
        sku: str | None,
    ) -> str | None:
        """``"<listing>:<sku>"``: Etsy renumbers product ids on every inventory write, the
        seller's SKU survives (see ``stock.py``); a listing alone when we know no SKU."""
        if not listing_id:
            return None
        return f"{listing_id}:{sku}" if sku else listing_id

    def stock_batches(self, levels: Sequence[StockLevel]) -> list[list[StockLevel]]:
        """One group per listing (every SKU of a listing together, at most 400): Etsy writes a
        listing's whole inventory at once, so its items cost one read and one write together.

        A malformed item id gets a group of its own: its push fails with a ``PermanentError``
        without taking the shop's well-formed items down with it.
        """
        return group_stock_levels(levels, self.capabilities.stock_batch_size, _listing_of)

    def set_stock_levels(
        self, shop: ShopContext, levels: Sequence[StockLevel], *, idempotency_key: str
    ) -> StockPushResult:
        """Absolute quantities for items of ONE listing (the listing, or SKUs of it), see
        ``stock.py``: one read (none when cached), at most one inventory write carrying every
        item, and an ``updateListing`` only when the listing must be deactivated or reactivated.

        A level with a ``price`` sets its products' offering price in that same write (its own
        digits as the JSON number; None leaves the remote price as it is); a write that only
        changes a price is sent too. A price that is not positive is refused before any call;
        one finer than the currency's divisor (the listing's Money prices tell it), or that
        gives a listing whose price does not vary by property two prices, before any write:
        both are ``PermanentError``.

        Read-modify-write of the whole inventory (Etsy has no compare-and-swap or idempotency
        key, and the write replaces everything: it is idempotent by construction, so the key is
        not sent). Nothing is written when the listing already shows the quantities. Raises
        ``ValueError`` for more than ``stock_batch_size`` levels or levels of several listings
        (split them with ``stock_batches``); ``NotFound`` naming every unknown SKU and
        ``PermanentError`` for an ambiguous item, before anything is written.
        """
        if len(levels) > self.capabilities.stock_batch_size:
            raise ValueError(
                f"etsy takes at most {self.capabilities.stock_batch_size} items of one listing "
                f"per call, got {len(levels)}; split them with stock_batches"
            )
        if not levels:
            return StockPushResult(applied=())
        wanted = [
            (_item(shop, level.item_id), level.quantity, _price(shop, level)) for level in levels
        ]
        listings = list(dict.fromkeys(item.listing_id for item, _, _ in wanted))
        if len(listings) > 1:
            raise ValueError(
                f"etsy takes the items of one listing per call, got listings "
                f"{', '.join(listings)}; split them with stock_batches"
            )
        listing_id = listings[0]
        with self._writing_lock(shop, listing_id), self._listing_calls(shop, listing_id):
            inventory = self._inventory(shop, listing_id)
            try:
                plan = stock.plan_stock_many(inventory, wanted)
            except stock.UnknownStockItem as error:
                raise NotFound(f"{_label(shop)}: {error}", marketplace=MARKETPLACE) from error
            except (
                stock.AmbiguousStockItem,
                stock.InvalidPrice,
                mappers.EtsyPayloadError,
            ) as error:
                raise _permanent(shop, f"listing {listing_id} inventory", error) from error
            self._apply(shop, inventory, plan)
        return StockPushResult(applied=tuple(level.item_id for level in levels))

    def read_stock_levels(self, shop: ShopContext, item_ids: Sequence[str]) -> dict[str, int]:
        """What buyers can buy now, read afresh (one call per listing): 0 for a disabled
        offering or a listing that is not active; unknown items are left out."""
        items = {item_id: _item(shop, item_id) for item_id in item_ids}
        levels: dict[str, int] = {}
        for listing_id in dict.fromkeys(item.listing_id for item in items.values()):
            try:
                with self._listing_calls(shop, listing_id):
                    inventory = self._read_inventory(shop, listing_id)
            except NotFound:
                continue
            for item_id, item in items.items():
                if item.listing_id == listing_id:
                    with _payload_errors(shop, f"listing {listing_id} inventory"):
                        quantity = stock.read_quantity(inventory, item)
                    if quantity is not None:
                        levels[item_id] = quantity
        return levels

    def _apply(
        self, shop: ShopContext, inventory: stock.ListingInventory, plan: stock.StockPlan
    ) -> None:
        if plan.state is not None and plan.state_first:
            inventory = self._set_state(shop, inventory, plan.state)
        if plan.inventory is not None:
            inventory = self._write_inventory(shop, inventory, plan.inventory)
        if plan.state is not None and not plan.state_first:
            self._set_state(shop, inventory, plan.state)

    def _inventory(self, shop: ShopContext, listing_id: str) -> stock.ListingInventory:
        """The listing's inventory: from the cache when read or written in the last minute."""
        key = (shop.external_id, listing_id)
        with self._lock:
            cached = self._inventories.get(key)
        if cached is not None and self._monotonic() - cached.read_at < INVENTORY_CACHE_SECONDS:
            return cached.inventory
        return self._read_inventory(shop, listing_id)

    def _read_inventory(self, shop: ShopContext, listing_id: str) -> stock.ListingInventory:
        body = self._client.call(
            shop, "GET", f"/listings/{listing_id}/inventory", params={"includes": "Listing"}
        )
        with _payload_errors(shop, f"listing {listing_id} inventory"):
            if not isinstance(body, Mapping):
                raise mappers.EtsyPayloadError("the inventory is not an object")
            mappers.live_products(body)
            listing = body.get("listing")
            state = listing.get("state") if isinstance(listing, Mapping) else None
        inventory = stock.ListingInventory(
            listing_id, state if isinstance(state, str) else None, body
        )
        self._remember(shop, inventory)
        return inventory

    def _write_inventory(
        self, shop: ShopContext, before: stock.ListingInventory, body: dict[str, Any]
    ) -> stock.ListingInventory:
        answer = self._client.call(
            shop, "PUT", f"/listings/{before.listing_id}/inventory", json=body
        )
        written = stock.ListingInventory(
            before.listing_id,
            before.state,
            answer if isinstance(answer, Mapping) and "products" in answer else {},
        )
        if written.body:
            self._remember(shop, written)
        else:
            self._forget(shop, before.listing_id)
        return written

    def _set_state(
        self, shop: ShopContext, before: stock.ListingInventory, state: str
    ) -> stock.ListingInventory:
        """``updateListing`` with only ``state`` (form-encoded, as the operation documents)."""
        self._client.call(
            shop,
            "PATCH",
            f"/shops/{_shop_id(shop)}/listings/{before.listing_id}",
            data={"state": state},
        )
        after = stock.ListingInventory(before.listing_id, state, before.body)
        if after.body:
            self._remember(shop, after)
        return after

    def _writing_lock(self, shop: ShopContext, listing_id: str) -> threading.Lock:
        with self._lock:
            return self._writing.setdefault((shop.external_id, listing_id), threading.Lock())

    def _remember(self, shop: ShopContext, inventory: stock.ListingInventory) -> None:
        with self._lock:
            self._inventories[(shop.external_id, inventory.listing_id)] = _Cached(
                self._monotonic(), inventory
            )

    def _forget(self, shop: ShopContext, listing_id: str) -> None:
        with self._lock:
            self._inventories.pop((shop.external_id, listing_id), None)

    @contextmanager
    def _listing_calls(self, shop: ShopContext, listing_id: str) -> Iterator[None]:
        """Any 4xx about a listing drops its cached inventory: it may be what was refused."""
        try:
            yield
        except ConnectorError as error:
            if error.status is not None and 400 <= error.status < 500:
                self._forget(shop, listing_id)
            raise

    # -- images -------------------------------------------------------------------------------
    def replace_listing_images(
        self, shop: ShopContext, listing_id: str, images: Sequence[ImageRef]
    ) -> tuple[str, ...]:
        """Delete the listing's images, then upload ``images`` in order (rank 1 first).

        Every file is fetched before anything is deleted, so an unreachable rendition never
        leaves a listing bare; Etsy takes the file itself (multipart ``image``). Uploads are
        sent once (not idempotent); a retry of the whole replacement converges. Returns the
        new ``listing_image_id`` values.
        """
        if len(images) > MAX_IMAGES:
            raise ValueError(f"etsy allows {MAX_IMAGES} images per listing, got {len(images)}")
        _item(shop, listing_id)
        files = [self._fetch_image(shop, image) for image in images]
        listed = self._client.call(shop, "GET", f"/listings/{listing_id}/images")
        with _payload_errors(shop, f"listing {listing_id} images"):
            old = mappers.image_ids(listed)
        path = f"/shops/{_shop_id(shop)}/listings/{listing_id}/images"
        for image_id in old:
            try:
                self._client.call(shop, "DELETE", f"{path}/{image_id}")
            except NotFound:
                continue  # gone already: a retried replacement
        return tuple(
            self._upload_image(shop, path, rank, image, content)
            for rank, (image, content) in enumerate(zip(images, files, strict=True), start=1)
        )

    def _fetch_image(self, shop: ShopContext, image: ImageRef) -> tuple[str, bytes, str]:
        """The rendition's bytes from our own (signed) URL; a failure names the image, never
        the URL's signature."""
        try:
            response = send(
                self._images, "GET", image.url, marketplace=MARKETPLACE, sleep=self._sleep
            )
        except TransientError as error:
            raise TransientError(
                f"{_label(shop)}: fetching image {httpx.URL(image.url).path} failed: "
                f"{error.message}",
                retry_after=error.retry_after,
                marketplace=MARKETPLACE,
                status=error.status,
            ) from None
        except ConnectorError as error:
            raise PermanentError(
                f"{_label(shop)}: image {httpx.URL(image.url).path} cannot be fetched "
                f"({error.status or error.message}); render it again",
                marketplace=MARKETPLACE,
                status=error.status,
            ) from None
        content_type = response.headers.get("content-type", "application/octet-stream")
        name = image.url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] or "image"
        return name, response.content, content_type.split(";", 1)[0].strip()

    def _upload_image(
        self,
        shop: ShopContext,
        path: str,
        rank: int,
        image: ImageRef,
        content: tuple[str, bytes, str],
    ) -> str:
        fields = {"rank": str(rank)}
        if image.alt:
            fields["alt_text"] = image.alt[:250]
        answer = self._client.call(
            shop, "POST", path, resend_safe=False, data=fields, files={"image": content}
        )
        image_id = answer.get("listing_image_id") if isinstance(answer, Mapping) else None
        if isinstance(image_id, bool) or not isinstance(image_id, int | str):
            raise PermanentError(
                f"{_label(shop)}: the upload of image {rank} returned no listing_image_id",
                marketplace=MARKETPLACE,
            )
        return str(image_id)

    # -- fulfillment --------------------------------------------------------------------------
    def create_fulfillment(
        self, shop: ShopContext, request: FulfillmentRequest
    ) -> FulfillmentResult:
        """Read the receipt's shipments first: a tracking code already there is not sent
        again, because every ``createReceiptShipment`` e-mails the buyer. The write is sent
        once (no transient retry); a timeout is answered by reading again next time.

        Etsy ships whole receipts: the request's lines are not sent, and the buyer is always
        notified (``notify_customer`` cannot turn that off).
        """
        receipt = self._receipt(shop, request.order_external_id)
        existing = mappers.shipment_with_tracking(receipt, request.tracking_number)
        if existing is not None:
            return FulfillmentResult(external_id=existing, already_existed=True)
        answer = self._client.call(
            shop,
            "POST",
            f"/shops/{_shop_id(shop)}/receipts/{request.order_external_id}/tracking",
            resend_safe=False,
            json={"tracking_code": request.tracking_number, "carrier_name": request.carrier},
        )
        created = (
            mappers.shipment_with_tracking(answer, request.tracking_number)
            if isinstance(answer, Mapping)
            else None
        )
        return FulfillmentResult(
            external_id=created or f"{request.order_external_id}:{request.tracking_number}",
            already_existed=False,
        )

    # -- onboarding: OAuth 2 authorization code with PKCE --------------------------------------
    def authorization_url(self, start: AuthorizationStart) -> str:
        """The consent page the seller is sent to: ``/oauth/connect`` on www.etsy.com (or
        ``start.api_base_url``) with ``response_type=code``, the keystring as ``client_id``,
        ``redirect_uri``, the space-separated ``SCOPES``, ``state`` and the S256
        ``code_challenge`` of ``start.code_verifier`` (required: ``ValueError`` without it)."""
        challenge = pkce_challenge(_code_verifier(start))
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self._client.client_id(),
                "redirect_uri": start.redirect_uri,
                "scope": " ".join(SCOPES),
                "state": start.state,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            },
            quote_via=quote,  # spaces as %20, as the documentation's example has them
        )
        base = (start.api_base_url or CONSENT_BASE_URL).rstrip("/")
        return f"{base}{CONSENT_PATH}?{query}"

    def callback_state(self, callback: AuthorizationCallback) -> str:
        """The ``state`` of a callback carrying a ``code``; a callback with ``error`` (the
        seller refused: ``access_denied``) or without state or code is
        ``AuthorizationRejected``, with Etsy's ``error_description``. No I/O."""
        query = callback.query
        error = query.get("error")
        if error:
            description = query.get("error_description") or "no description"
            raise AuthorizationRejected(
                f"etsy: the authorization was not granted ({error}: {description})",
                marketplace=MARKETPLACE,
            )
        state = query.get("state")
        if not state:
            raise AuthorizationRejected(
                "etsy: the authorization callback carries no state", marketplace=MARKETPLACE
            )
        if not query.get("code"):
            raise AuthorizationRejected(
                "etsy: the authorization callback carries no code", marketplace=MARKETPLACE
            )
        return state

    def complete_authorization(
        self, callback: AuthorizationCallback, start: AuthorizationStart
    ) -> ConnectedShop:
        """Exchange the code with the PKCE verifier, then getMe (the shop that granted access)
        and getShop (its name and currency). A refused code (spent, expired, a verifier or
        redirect URI that does not match) or a state other than ``start``'s is
        ``AuthorizationRejected``, as is an Etsy account without a shop.

        The credentials are the keys the client refreshes and the sandbox issues:
        ``access_token``, ``refresh_token``, ``expires_at`` (epoch seconds)."""
        state = self.callback_state(callback)
        if not hmac.compare_digest(state.encode(), start.state.encode()):
            raise AuthorizationRejected(
                "etsy: the callback's state is not the authorization's", marketplace=MARKETPLACE
            )
        credentials = self._client.exchange_authorization_code(
            start.api_base_url,
            code=callback.query["code"],
            code_verifier=_code_verifier(start),
            redirect_uri=start.redirect_uri,
        )
        token = credentials["access_token"]
        me = self._client.call_with_token(start.api_base_url, token, "GET", "/users/me")
        with _onboarding_payload("getMe"):
            shop_id = mappers.self_shop_id(me)
        if shop_id is None:
            raise AuthorizationRejected(
                "etsy: the Etsy account that granted access has no shop", marketplace=MARKETPLACE
            )
        shop = self._client.call_with_token(start.api_base_url, token, "GET", f"/shops/{shop_id}")
        with _onboarding_payload("getShop"):
            name, currency = mappers.shop_identity(shop, shop_id=shop_id)
        return ConnectedShop(
            external_id=shop_id,
            name=name,
            credentials=credentials,
            api_base_url=start.api_base_url,
            scopes=SCOPES,
            access_expires_at=datetime.fromtimestamp(credentials["expires_at"], UTC),
            currency=currency,
        )

    # -- webhooks and lifecycle ---------------------------------------------------------------
    def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> WebhookEnvelope:
        return webhooks.verify_webhook(body, headers, self._secrets, clock=self._clock)

    def close(self) -> None:
        self._client.close()
        self._images.close()


def create(config: ConnectorConfig) -> EtsyConnector:
    """The ``hub.connectors`` entry point: app credentials ``keystring``, ``shared_secret``,
    ``webhook_secret`` and ``webhook_secret_previous`` (optionally ``requests_per_second`` and
    ``requests_per_day``); the shared limiter and the credential store from the config, else
    in-process ones."""
    return EtsyConnector(config)


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _label(shop: ShopContext) -> str:
    return f"etsy shop {shop.external_id} (id {shop.shop_id})"


def _shop_id(shop: ShopContext) -> str:
    if not shop.external_id.strip().isdigit():
        raise PermanentError(
            f"{_label(shop)}: the external id must be Etsy's numeric shop_id",
            marketplace=MARKETPLACE,
        )
    return shop.external_id.strip()


def _code_verifier(start: AuthorizationStart) -> str:
    """The start's PKCE verifier, checked against RFC 7636 before anything is sent."""
    verifier = start.code_verifier
    if not verifier:
        raise ValueError(
            "etsy authorization needs AuthorizationStart.code_verifier (PKCE is required)"
        )
    if not 43 <= len(verifier) <= 128 or not set(verifier) <= VERIFIER_CHARACTERS:
        raise ValueError(
            "etsy authorization: code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~"
        )
    return verifier


@contextmanager
def _onboarding_payload(operation: str) -> Iterator[None]:
    try:
        yield
    except mappers.EtsyPayloadError as error:
        raise PermanentError(
            f"etsy: {operation} answered without the documented shape: {error}",
            marketplace_message=str(error),
            marketplace=MARKETPLACE,
        ) from error


def _item(shop: ShopContext, item_id: str) -> stock.ItemRef:
    try:
        return stock.parse_item_id(item_id)
    except ValueError as error:
        raise PermanentError(f"{_label(shop)}: {error}", marketplace=MARKETPLACE) from error


def _price(shop: ShopContext, level: StockLevel) -> Decimal | None:
    """The level's price, refused before any call unless a finite positive ``Decimal``."""
    if level.price is None:
        return None
    try:
        return stock.check_price(level.price, what=f"item {level.item_id!r}")
    except stock.InvalidPrice as error:
        raise _permanent(shop, "stock level", error) from error


def _listing_of(level: StockLevel) -> Hashable:
    """The listing a level writes; the raw id for a malformed one (never shared with others)."""
    try:
        return stock.parse_item_id(level.item_id).listing_id
    except ValueError:
        return ("malformed", level.item_id)


def _offset(shop: ShopContext, cursor: str | None) -> int:
    if cursor is None:
        return 0
    if not (cursor.isascii() and cursor.isdigit()):
        raise PermanentError(
            f"{_label(shop)}: {cursor!r} is not a listings cursor; restart without one",
            marketplace=MARKETPLACE,
        )
    return int(cursor)


def _permanent(shop: ShopContext, what: str, error: Exception) -> PermanentError:
    return PermanentError(
        f"{_label(shop)}: {what}: {error}",
        marketplace_message=str(error),
        marketplace=MARKETPLACE,
    )


@contextmanager
def _payload_errors(shop: ShopContext, what: str) -> Iterator[None]:
    """A payload that does not have the documented shape is a permanent error, with detail."""
    try:
        yield
    except (mappers.EtsyPayloadError, InvalidInput) as error:
        raise _permanent(shop, what, error) from error
