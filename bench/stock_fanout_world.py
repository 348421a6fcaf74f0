"""The marketplaces and the catalog of ``bench/stock_fanout.py``.

Three sandboxes (Shopify, WooCommerce, Etsy) holding the same SKUs, each request they answer
logged by endpoint (``CallLog``), and the hub's side of it: a seller, blanks, our variants and
their bindings in one shop per marketplace. Two shapes: a few SKUs, each backed by a blank of
its own (latency), and many SKUs all backed by one blank (fan-out).
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, insert, select

from connectors.etsy.sandbox import EtsySandbox
from connectors.sandbox_server import serve_in_thread
from connectors.shopify.sandbox import ShopifySandbox
from connectors.woocommerce.sandbox import WooCommerceSandbox
from hub.application import shops
from hub.application.bindings import BindingSpec, put_bindings
from hub.application.catalog import ProductSpec, VariantSpec, create_product
from hub.application.sellers import create_seller
from hub.application.stock import create_blank
from hub.bootstrap import Container
from hub.domain.catalog import BlankUsage
from hub.domain.sellers import Principal
from hub.domain.shops import PUSH_KINDS, QUANTITY_KINDS, Marketplace
from hub.infrastructure.bindings import BINDINGS, STATES
from hub.infrastructure.outbound import pushable, trigger_pushes

ADMIN = Principal(seller_id=None, is_admin=True)
MARKETPLACES = ("shopify", "woocommerce", "etsy")
SHOPIFY_SECRET = "shpss_bench_stock_fanout"
ETSY_KEYSTRING = "bench-stock-fanout-keystring"
ETSY_SECRET = "bench-stock-fanout-shared-secret"
WOO_SITE = "https://bench-fanout.example.com"
WOO_KEY, WOO_SECRET = "ck_bench_fanout", "cs_bench_fanout"
PRICE = Decimal("20.00")
SIZE_PROPERTY = 100  # Etsy's "Size" property: the quantity varies by it (quantity_on_property)
# The requests a stock push makes, by endpoint label (see ``CallLog.label``); anything else in
# a measured window (an order pull of the scheduler) is counted apart.
STOCK_ENDPOINTS: dict[str, tuple[str, ...]] = {
    "shopify": ("graphql InventorySet", "graphql InventoryLevels"),
    "woocommerce": (
        "POST /wp-json/wc/v3/products/batch",
        "POST /wp-json/wc/v3/products/{id}/variations/batch",
    ),
    "etsy": (
        "GET /v3/application/listings/{id}/inventory",
        "PUT /v3/application/listings/{id}/inventory",
        "PATCH /v3/application/shops/{id}/listings/{id}",
    ),
}
_NUMBER_SEGMENT = re.compile(r"(?<=/)\d+(?=/|$)")
_OPERATION = re.compile(rb"(?:query|mutation)\s+(\w+)")

ASGIApp = Callable[..., Awaitable[None]]


@dataclass(frozen=True)
class Shape:
    """How many SKUs, and how each marketplace groups them into listings."""

    skus: int
    shopify_per_product: int
    woo_per_product: int
    etsy_per_listing: int
    sku_prefix: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "skus": self.skus,
            "shopify": f"{self.skus // self.shopify_per_product} products of "
            f"{self.shopify_per_product} variants",
            "woocommerce": f"{self.skus // self.woo_per_product} variable products of "
            f"{self.woo_per_product} variations",
            "etsy": f"{self.skus // self.etsy_per_listing} listings of "
            f"{self.etsy_per_listing} SKUs (quantity on the Size property)",
        }


@dataclass(frozen=True)
class Item:
    """Where one of our SKUs lives on each marketplace."""

    sku: str
    shopify_product: str
    shopify_variant: str
    shopify_item: str  # inventory item GID: what Shopify's stock belongs to
    woo_product: str
    woo_variation: str
    etsy_listing: int


class CallLog:
    """Every request one sandbox answered, counted by endpoint, as an ASGI wrapper.

    The label is the method and the path with numeric segments as ``{id}``; for Shopify's one
    GraphQL endpoint it is the operation's name (``graphql InventorySet``). Counting here,
    outside the sandbox, sees every request the sandbox's own counter sees, with what it was
    for.
    """

    def __init__(self, marketplace: str) -> None:
        self.marketplace = marketplace
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.first_at: float | None = None  # time.time() of the first request since reset
        self.last_at: float | None = None

    def reset(self) -> None:
        with self._lock:
            self.calls = Counter()
            self.statuses = Counter()
            self.first_at = self.last_at = None

    def wrap(self, app: ASGIApp) -> ASGIApp:
        async def logged(
            scope: MutableMapping[str, Any],
            receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
            send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
        ) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            body: list[bytes] = []
            status = [0]

            async def spy_receive() -> MutableMapping[str, Any]:
                message = await receive()
                if message["type"] == "http.request" and len(body) < 1:
                    body.append(bytes(message.get("body", b""))[:4096])
                return message

            async def spy_send(message: MutableMapping[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    status[0] = int(message["status"])
                await send(message)

            await app(scope, spy_receive, spy_send)
            self._record(self.label(scope["method"], scope["path"], b"".join(body)), status[0])

        return logged

    def label(self, method: str, path: str, body: bytes) -> str:
        if self.marketplace == "shopify" and path.endswith("/graphql.json"):
            found = _OPERATION.search(body)
            return f"graphql {found.group(1).decode() if found else 'anonymous'}"
        return f"{method} {_NUMBER_SEGMENT.sub('{id}', path)}"

    def _record(self, label: str, status: int) -> None:
        now = time.time()
        with self._lock:
            self.calls[label] += 1
            self.statuses[status] += 1
            if self.first_at is None:
                self.first_at = now
            self.last_at = now

    def summary(self) -> dict[str, Any]:
        with self._lock:
            stock = sum(self.calls[label] for label in STOCK_ENDPOINTS[self.marketplace])
            return {
                "requests": sum(self.calls.values()),
                "stock_push_requests": stock,
                "other_requests": sum(self.calls.values()) - stock,
                "by_endpoint": dict(sorted(self.calls.items())),
                "statuses": {str(code): n for code, n in sorted(self.statuses.items())},
                "first_at": self.first_at,
                "last_at": self.last_at,
            }


class Marketplaces:
    """The three sandboxes with ``shape``'s SKUs at ``quantity``, served from this process."""

    def __init__(
        self,
        shape: Shape,
        *,
        quantity: int,
        etsy_requests_per_second: int = 10,
        etsy_requests_per_day: int = 10_000,
    ) -> None:
        self.shape = shape
        self.shopify = ShopifySandbox(client_secret=SHOPIFY_SECRET)
        self.woo = WooCommerceSandbox(
            site=WOO_SITE, consumer_key=WOO_KEY, consumer_secret=WOO_SECRET
        )
        self.etsy = EtsySandbox(
            keystring=ETSY_KEYSTRING,
            shared_secret=ETSY_SECRET,
            requests_per_second=etsy_requests_per_second,
            requests_per_day=etsy_requests_per_day,
        )
        self.etsy_shop = self.etsy.add_shop()
        self.logs = {name: CallLog(name) for name in MARKETPLACES}
        self.items = self._seed(quantity)
        self._baseline: dict[str, int] = {}
        self.reset_counters()

    def _seed(self, quantity: int) -> list[Item]:
        shape = self.shape
        skus = [f"{shape.sku_prefix}-{n:05d}" for n in range(shape.skus)]
        shopify: list[tuple[str, dict[str, Any]]] = []
        for start in range(0, shape.skus, shape.shopify_per_product):
            chunk = skus[start : start + shape.shopify_per_product]
            product = self.shopify.add_product(
                f"Bench tee {start // shape.shopify_per_product}",
                [{"sku": sku, "price": PRICE, "available": quantity} for sku in chunk],
            )
            shopify += [(product["id"], variant) for variant in product["variants"]]
        woo: list[tuple[str, str]] = []
        for start in range(0, shape.skus, shape.woo_per_product):
            chunk = skus[start : start + shape.woo_per_product]
            product = self.woo.add_product(
                f"Bench tee {start // shape.woo_per_product}",
                variations=[
                    {"sku": sku, "price": PRICE, "stock": quantity, "attributes": {"Size": sku}}
                    for sku in chunk
                ],
            )
            woo += [(str(product["id"]), str(v["id"])) for v in product["variations"]]
        etsy: list[int] = []
        for start in range(0, shape.skus, shape.etsy_per_listing):
            chunk = skus[start : start + shape.etsy_per_listing]
            listing = self.etsy.add_listing(
                self.etsy_shop.shop_id,
                [
                    {
                        "sku": sku,
                        "price": PRICE,
                        "quantity": quantity,
                        "property_values": [
                            {
                                "property_id": SIZE_PROPERTY,
                                "property_name": "Size",
                                "scale_id": 17,
                                "value_ids": [5000 + index],
                                "values": [f"S{index}"],
                            }
                        ],
                    }
                    for index, sku in enumerate(chunk)
                ],
                title=f"Bench tee {start // shape.etsy_per_listing}",
                quantity_on_property=[SIZE_PROPERTY],
                sku_on_property=[SIZE_PROPERTY],
            )
            etsy += [listing] * len(chunk)
        return [
            Item(
                sku=sku,
                shopify_product=shopify[n][0],
                shopify_variant=shopify[n][1]["id"],
                shopify_item=shopify[n][1]["inventory_item_id"],
                woo_product=woo[n][0],
                woo_variation=woo[n][1],
                etsy_listing=etsy[n],
            )
            for n, sku in enumerate(skus)
        ]

    @contextmanager
    def serving(self) -> Iterator[dict[str, str]]:
        """Each sandbox on a loopback port of its own (uvicorn in a thread of this process)."""
        apps = {"shopify": self.shopify.app, "woocommerce": self.woo.app, "etsy": self.etsy.app}
        with ExitStack() as stack:
            yield {
                name: stack.enter_context(serve_in_thread(self.logs[name].wrap(app)))
                for name, app in apps.items()
            }

    def stock(self, marketplace: str, item: Item) -> int | None:
        """What the marketplace shows for the SKU right now (its in-process state)."""
        if marketplace == "shopify":
            return self.shopify.stock(item.shopify_item)
        if marketplace == "woocommerce":
            return self.woo.stock(f"{item.woo_product}:{item.woo_variation}")
        return self.etsy.stock(item.etsy_listing, item.sku)

    def wrong(self, quantity: int) -> dict[str, int]:
        """How many SKUs per marketplace do not show ``quantity``."""
        return {
            name: sum(1 for item in self.items if self.stock(name, item) != quantity)
            for name in MARKETPLACES
        }

    def _counters(self) -> dict[str, int]:
        return {
            "shopify": self.shopify.requests,
            "woocommerce": self.woo.requests,
            "etsy": self.etsy.requests,
        }

    def reset_counters(self) -> None:
        for log in self.logs.values():
            log.reset()
        self._baseline = self._counters()
        self.etsy_calls_by_listing_before = Counter(self.etsy.calls_by_listing)
        self.shopify_throttled_before = self.shopify.throttled_responses
        self.etsy_429_before = self.etsy.http_429
        self.woo_throttled_before = self.woo.throttled_responses

    def calls(self) -> dict[str, Any]:
        """Requests since the last reset: the sandboxes' own counters and the endpoint log."""
        now = self._counters()
        per_listing = Counter(self.etsy.calls_by_listing)
        per_listing.subtract(self.etsy_calls_by_listing_before)
        touched = [n for n in per_listing.values() if n > 0]
        found: dict[str, Any] = {}
        for name in MARKETPLACES:
            found[name] = {
                "sandbox_requests": now[name] - self._baseline[name],
                **self.logs[name].summary(),
            }
        found["shopify"]["throttled_responses"] = (
            self.shopify.throttled_responses - self.shopify_throttled_before
        )
        found["woocommerce"]["throttled_responses"] = (
            self.woo.throttled_responses - self.woo_throttled_before
        )
        found["etsy"]["http_429"] = self.etsy.http_429 - self.etsy_429_before
        found["etsy"]["listings_touched"] = len(touched)
        found["etsy"]["max_calls_for_one_listing"] = max(touched, default=0)
        return found


@dataclass
class Catalog:
    """The hub's side: ids of the blanks, shops and bindings the benchmark drives and reads."""

    seller_id: int
    blank_ids: list[int]  # one per SKU (latency) or one for all (fan-out)
    shop_ids: dict[str, int]
    variant_ids: list[int]  # ours, in item order
    binding_ids: dict[str, list[int]] = field(default_factory=dict)  # per marketplace, item order


def connect_shops(
    container: Container, world: Marketplaces, urls: dict[str, str], seller_id: int
) -> dict[str, int]:
    etsy_shop = world.etsy_shop.shop_id
    specs: dict[str, tuple[Marketplace, str, dict[str, Any], str | None]] = {
        "shopify": (
            Marketplace.SHOPIFY,
            world.shopify.shop_domain,
            {"access_token": world.shopify.access_token},
            world.shopify.location_id,
        ),
        "woocommerce": (
            Marketplace.WOOCOMMERCE,
            WOO_SITE,
            {"consumer_key": WOO_KEY, "consumer_secret": WOO_SECRET},
            None,
        ),
        "etsy": (Marketplace.ETSY, str(etsy_shop), dict(world.etsy.credentials(etsy_shop)), None),
    }
    ids: dict[str, int] = {}
    owner = Principal(seller_id=seller_id)
    with container.uow() as uow:
        for name, (marketplace, external, credentials, location) in specs.items():
            shop = shops.create_shop(
                uow,
                shops.CreateShop(
                    seller_id=seller_id,
                    marketplace=marketplace,
                    external_id=external,
                    name=f"Bench {name} shop",
                    api_base_url=urls[name],
                    location_id=location,
                    credentials=credentials,
                ),
                owner,
            )
            assert shop.id is not None
            ids[name] = shop.id
        uow.commit()
    return ids


def binding_spec(marketplace: str, variant_id: int, item: Item) -> BindingSpec:
    """What the hub stores per marketplace (see tests/e2e/test_stock_and_tracking_out.py)."""
    if marketplace == "shopify":
        return BindingSpec(
            variant_id, item.shopify_product, item.shopify_variant, item.shopify_item
        )
    if marketplace == "woocommerce":
        return BindingSpec(variant_id, item.woo_product, item.woo_variation)
    return BindingSpec(variant_id, str(item.etsy_listing))  # Etsy: the listing; the SKU is ours


def create_variants(
    container: Container, seller_id: int, world: Marketplaces, blank_for: Callable[[int], int]
) -> list[int]:
    """Our products, one per Shopify product of the shape, through the application layer."""
    per_product = world.shape.shopify_per_product
    ids: list[int] = []
    owner = Principal(seller_id=seller_id)
    for start in range(0, len(world.items), per_product):
        chunk = world.items[start : start + per_product]
        with container.uow() as uow:
            product = create_product(
                uow,
                ProductSpec(
                    seller_id=seller_id,
                    title=f"Bench tee {start // per_product}",
                    variants=tuple(
                        VariantSpec(
                            sku=item.sku,
                            price=PRICE,
                            blanks=(BlankUsage(blank_for(start + n), 1),),
                        )
                        for n, item in enumerate(chunk)
                    ),
                ),
                owner,
            )
            uow.commit()
        ids += [variant.id or 0 for variant in product.variants]
    return ids


def seed_latency_catalog(
    container: Container, world: Marketplaces, urls: dict[str, str], on_hand: int
) -> Catalog:
    """A blank per SKU and every SKU bound in the three shops with ``put_bindings``."""
    with container.uow() as uow:
        seller, _ = create_seller(uow, "Bench stock seller")
        assert seller.id is not None
        blanks = [
            create_blank(uow, ADMIN, code=f"BLANK-{item.sku}", name=item.sku, on_hand=on_hand).id
            or 0
            for item in world.items
        ]
        uow.commit()
    variants = create_variants(container, seller.id, world, lambda n: blanks[n])
    shop_ids = connect_shops(container, world, urls, seller.id)
    catalog = Catalog(seller.id, blanks, shop_ids, variants)
    owner = Principal(seller_id=seller.id)
    with container.uow() as uow:
        for name in MARKETPLACES:
            bound = put_bindings(
                uow,
                shop_ids[name],
                [
                    binding_spec(name, v, item)
                    for v, item in zip(variants, world.items, strict=True)
                ],
                owner,
            )
            catalog.binding_ids[name] = [binding.id or 0 for binding in bound]
        uow.commit()
    return catalog


def seed_fanout_catalog(
    container: Container, world: Marketplaces, urls: dict[str, str], on_hand: int
) -> Catalog:
    """One blank behind every SKU; bindings written with SQL in bulk.

    The rows are what ``put_bindings`` writes (a binding, a push state per kind of the
    marketplace at desired 1 / pushed 0, one push trigger per (kind, shop) with its delayed
    message), minus its per-row statements, which would take minutes for 30,000 bindings.
    """
    with container.uow() as uow:
        seller, _ = create_seller(uow, "Bench fan-out seller")
        assert seller.id is not None
        blank = create_blank(uow, ADMIN, code="BLANK-FANOUT", name="Fan-out tee", on_hand=on_hand)
        assert blank.id is not None
        uow.commit()
    blank_id = blank.id
    variants = create_variants(container, seller.id, world, lambda _n: blank_id)
    shop_ids = connect_shops(container, world, urls, seller.id)
    catalog = Catalog(seller.id, [blank_id], shop_ids, variants)
    now = datetime.now(UTC)
    with container.engine.begin() as db:
        for name in MARKETPLACES:
            shop_id = shop_ids[name]
            rows = []
            for variant_id, item in zip(variants, world.items, strict=True):
                spec = binding_spec(name, variant_id, item)
                rows.append(
                    {
                        "shop_id": shop_id,
                        "variant_id": variant_id,
                        "external_listing_id": spec.external_listing_id,
                        "external_variant_id": spec.external_variant_id,
                        "external_inventory_item_id": spec.external_inventory_item_id,
                        "created_at": now,
                    }
                )
            db.execute(insert(BINDINGS), rows)
            catalog.binding_ids[name] = _binding_ids(db, shop_id, variants)
            kinds = [kind.value for kind in PUSH_KINDS[Marketplace(name)]]
            db.execute(
                insert(STATES),
                [
                    {"binding_id": b, "kind": k, "desired_version": 1, "pushed_version": 0}
                    for b in catalog.binding_ids[name]
                    for k in kinds
                ],
            )
        pairs = (
            select(STATES.c.kind, BINDINGS.c.shop_id)
            .join(BINDINGS, BINDINGS.c.id == STATES.c.binding_id)
            .where(STATES.c.kind.in_(pushable(QUANTITY_KINDS)))
        )
        trigger_pushes(db, pairs, debounce_ms=container.settings.push_debounce_ms)
    return catalog


def _binding_ids(db: Connection, shop_id: int, variants: list[int]) -> list[int]:
    found = dict(
        db.execute(
            select(BINDINGS.c.variant_id, BINDINGS.c.id).where(BINDINGS.c.shop_id == shop_id)
        ).all()
    )
    return [int(found[variant]) for variant in variants]
