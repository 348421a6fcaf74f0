"""The three marketplace simulators (Shopify, Etsy, WooCommerce) on loopback, for ``hub sandbox``
and ``hub demo``: one shop each with the demo catalog listed, their credentials, and where each
SKU lives in each of them.

Each sandbox is served behind a ``FaultInjector`` (5xx bursts, hangs) besides its own switches
(``error_rate_5xx``, ``queue_429``), so the demo's chaos reaches the hub as the marketplaces'
answers.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import SecretStr

from cli.demo_catalog import PRODUCTS, ProductDef
from connectors.etsy.sandbox import EtsySandbox
from connectors.sandbox_server import serve_in_thread
from connectors.shopify.sandbox import ShopifySandbox
from connectors.testing import FaultInjector
from connectors.woocommerce.sandbox import WooCommerceSandbox

MARKETPLACES = ("shopify", "etsy", "woocommerce")
SHOPIFY_CLIENT_ID = "demo-hub-client-id"
SHOPIFY_CLIENT_SECRET = "shpss_demo_client_secret"  # noqa: S105 - the simulators' own secrets
SHOPIFY_ACCESS_TOKEN = "shpat_demo_access_token"  # noqa: S105
ETSY_KEYSTRING = "demoetsykeystring0123456789"
ETSY_SHARED_SECRET = "demo-etsy-shared-secret"  # noqa: S105
ETSY_WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"demo-etsy-webhook-signing-key").decode()
WOO_CONSUMER_KEY = "ck_demo_0123456789abcdef"
WOO_CONSUMER_SECRET = "cs_demo_0123456789abcdef"  # noqa: S105
WOO_WEBHOOK_SECRET = "wc-demo-webhook-secret"  # noqa: S105
# A Shopify Plus shop's GraphQL budget (https://shopify.dev/docs/api/usage/rate-limits).
SHOPIFY_BUCKET, SHOPIFY_RESTORE_RATE = 10_000.0, 1_000.0
# What each marketplace shows before the hub's first push: different everywhere, so that
# push has work to do in every shop.
START_STOCK = {"shopify": 5, "etsy": 3, "woocommerce": 8}
SIZE_PROPERTY = 100  # Etsy's "Size" property: a tee's quantity varies by it
SIZE_VALUE_IDS = {"S": 1101, "M": 1102, "L": 1103}


@dataclass(frozen=True)
class Location:
    """Where one SKU is listed in each sandbox, and what a buyer's order line names."""

    sku: str
    title: str
    price: Decimal
    shopify_product: str
    shopify_item: str  # the inventory item: Shopify's stock belongs to it
    woo_product: int
    woo_variation: int | None  # None: a simple product
    etsy_listing: int

    @property
    def woo_item(self) -> str:
        return (
            f"{self.woo_product}:{self.woo_variation}"
            if self.woo_variation
            else str(self.woo_product)
        )


class Marketplaces:
    """One Shopify shop, one Etsy shop and one WooCommerce site, named after ``run_id`` so
    several runs can share one hub database."""

    def __init__(self, run_id: str, *, seed: int = 0) -> None:
        self.run_id = run_id
        self.shopify = ShopifySandbox(
            shop_domain=f"demo-prints-{run_id}.myshopify.com",
            access_token=SHOPIFY_ACCESS_TOKEN,
            client_id=SHOPIFY_CLIENT_ID,
            currency="USD",
            client_secret=SHOPIFY_CLIENT_SECRET,
            bucket_size=SHOPIFY_BUCKET,
            restore_rate=SHOPIFY_RESTORE_RATE,
            seed=seed,
        )
        self.etsy = EtsySandbox(
            keystring=ETSY_KEYSTRING,
            shared_secret=ETSY_SHARED_SECRET,
            webhook_secret=ETSY_WEBHOOK_SECRET,
            seed=seed,
        )
        self.etsy_shop_id = self.etsy.add_shop(
            40_000_000 + int(run_id, 16) % 9_000_000,
            shop_name=f"DemoPrints{run_id}",
            currency="EUR",
        ).shop_id
        self.woo = WooCommerceSandbox(
            site=f"https://demo-prints-{run_id}.example.com",
            consumer_key=WOO_CONSUMER_KEY,
            consumer_secret=WOO_CONSUMER_SECRET,
            webhook_secret=WOO_WEBHOOK_SECRET,
            has_shipment_tracking=True,
            seed=seed,
        )
        self.faults = {
            "shopify": FaultInjector(self.shopify.app),
            "etsy": FaultInjector(self.etsy.app),
            "woocommerce": FaultInjector(self.woo.app),
        }
        self.answers = {name: StatusCounts(self.faults[name]) for name in MARKETPLACES}
        self.locations: dict[str, Location] = {}
        self.urls: dict[str, str] = {}

    # --- seeding -------------------------------------------------------------------------------

    def list_catalog(self, products: Sequence[ProductDef] = PRODUCTS) -> None:
        """List every product in every sandbox, each at its marketplace's starting stock."""
        for product in products:
            self._list(product)

    def _list(self, product: ProductDef) -> None:
        shopify = self.shopify.add_product(
            product.title,
            [
                {"sku": v.sku, "price": v.price, "available": START_STOCK["shopify"]}
                for v in product.variants
            ],
        )
        sized = len(product.variants) > 1
        if sized:
            woo = self.woo.add_product(
                product.title,
                variations=[
                    {
                        "sku": v.sku,
                        "price": v.price,
                        "stock": START_STOCK["woocommerce"],
                        "attributes": {"Size": v.options["size"]},
                    }
                    for v in product.variants
                ],
            )
            woo_variations: list[int | None] = [int(v["id"]) for v in woo["variations"]]
        else:
            only = product.variants[0]
            woo = self.woo.add_product(
                product.title, sku=only.sku, price=only.price, stock=START_STOCK["woocommerce"]
            )
            woo_variations = [None]
        etsy = self.etsy.add_listing(
            self.etsy_shop_id,
            [
                {
                    "sku": v.sku,
                    "price": v.price,
                    "quantity": START_STOCK["etsy"],
                    "property_values": _etsy_size(v.options["size"]) if sized else [],
                }
                for v in product.variants
            ],
            title=product.title,
            quantity_on_property=[SIZE_PROPERTY] if sized else [],
            price_on_property=[SIZE_PROPERTY] if sized else [],
            sku_on_property=[SIZE_PROPERTY] if sized else [],
        )
        for variant, shopify_variant, woo_variation in zip(
            product.variants, shopify["variants"], woo_variations, strict=True
        ):
            self.locations[variant.sku] = Location(
                sku=variant.sku,
                title=product.title,
                price=variant.price,
                shopify_product=shopify["id"],
                shopify_item=shopify_variant["inventory_item_id"],
                woo_product=int(woo["id"]),
                woo_variation=woo_variation,
                etsy_listing=etsy,
            )

    # --- reading -------------------------------------------------------------------------------

    def stock(self, marketplace: str, item_id: str) -> int | None:
        """What buyers can buy of a stock item (ids as the hub's connectors name them); Etsy
        answers 0 for a disabled offering or an inactive listing."""
        if marketplace == "shopify":
            return self.shopify.stock(item_id)
        if marketplace == "woocommerce":
            return self.woo.stock(item_id)
        listing, _, sku = item_id.partition(":")
        return self.etsy.stock(int(listing), sku or None)

    def price(self, marketplace: str, item_id: str, sku: str) -> Decimal | None:
        """What buyers pay for a bound item now, in the shop's currency."""
        if marketplace == "shopify":
            return self.shopify.variant_price(sku)
        if marketplace == "woocommerce":
            return self.woo.price(item_id)
        listing, _, _ = item_id.partition(":")
        return self.etsy.price(int(listing), sku)

    def location_stock(self, marketplace: str, location: Location) -> int:
        if marketplace == "shopify":
            return self.shopify.stock(location.shopify_item)
        if marketplace == "woocommerce":
            return self.woo.stock(location.woo_item) or 0
        return self.etsy.stock(location.etsy_listing, location.sku)

    def lock(self, marketplace: str) -> threading.RLock:
        """The sandbox's own lock: held around "look at the stock, then buy", a checkout is
        one step, as on the marketplace (its public methods take it again: it is re-entrant)."""
        if marketplace == "shopify":
            return self.shopify._lock
        return self.etsy._lock if marketplace == "etsy" else self.woo._lock

    # --- serving -------------------------------------------------------------------------------

    @contextmanager
    def serve(
        self, host: str = "127.0.0.1", ports: Mapping[str, int] | None = None
    ) -> Iterator[dict[str, str]]:
        """Serve the three (behind their fault injectors) until the block ends; yields the
        base URL of each."""
        with ExitStack() as stack:
            for name in MARKETPLACES:
                port = (ports or {}).get(name, 0)
                self.urls[name] = stack.enter_context(
                    serve_in_thread(self.answers[name], host=host, port=port)
                )
            yield dict(self.urls)

    def connect_requests(self, seller_id: int) -> dict[str, dict[str, Any]]:
        """The ``POST /shops/connect`` body starting each sandbox shop's authorization, as a
        seller would (served: ``serve``); the seller signed in to each is its shop's owner."""
        return {
            "shopify": {
                "marketplace": "shopify",
                "seller_id": seller_id,
                "shop": self.shopify.shop_domain,
                "name": "Demo Prints (Shopify)",
                "api_base_url": self.urls["shopify"],
            },
            "etsy": {
                "marketplace": "etsy",
                "seller_id": seller_id,
                "name": "Demo Prints (Etsy)",
                "stock_buffer": 1,
                "api_base_url": self.urls["etsy"],
            },
            "woocommerce": {
                "marketplace": "woocommerce",
                "seller_id": seller_id,
                "shop": self.woo.site,
                "name": "Demo Prints (WooCommerce)",
                "stock_buffer": 2,
                "api_base_url": self.urls["woocommerce"],
            },
        }

    def shop_connections(self, seller_id: int) -> dict[str, dict[str, Any]]:
        """The ``POST /shops`` body connecting each sandbox's shop (served: ``serve``)."""
        return {
            "shopify": {
                "seller_id": seller_id,
                "marketplace": "shopify",
                "external_id": self.shopify.shop_domain,
                "name": "Demo Prints (Shopify)",
                "api_base_url": self.urls["shopify"],
                "location_id": self.shopify.location_id,
                "credentials": {"access_token": self.shopify.access_token},
            },
            "etsy": {
                "seller_id": seller_id,
                "marketplace": "etsy",
                "external_id": str(self.etsy_shop_id),
                "name": "Demo Prints (Etsy)",
                "stock_buffer": 1,
                "api_base_url": self.urls["etsy"],
                "credentials": dict(self.etsy.credentials(self.etsy_shop_id)),
            },
            "woocommerce": {
                "seller_id": seller_id,
                "marketplace": "woocommerce",
                "external_id": self.woo.site,
                "name": "Demo Prints (WooCommerce)",
                "stock_buffer": 2,
                "api_base_url": self.urls["woocommerce"],
                "credentials": {
                    "consumer_key": WOO_CONSUMER_KEY,
                    "consumer_secret": WOO_CONSUMER_SECRET,
                    "webhook_secret": WOO_WEBHOOK_SECRET,
                },
            },
        }


class StatusCounts:
    """The HTTP statuses a sandbox answered, whoever decided them (the sandbox, its rate
    limit, the fault injector): an ASGI wrapper."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app
        self.counts: Counter[int] = Counter()
        self._lock = threading.Lock()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def counted(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                with self._lock:
                    self.counts[int(message["status"])] += 1
            await send(message)

        await self.app(scope, receive, counted)

    def errors(self) -> dict[str, int]:
        with self._lock:
            return {
                "429": self.counts[429],
                "5xx": sum(n for status, n in self.counts.items() if status >= 500),
            }


def hub_secrets() -> dict[str, Any]:
    """The app-wide secrets the hub needs for these simulators (``Settings`` fields)."""
    return {
        "shopify_client_id": SHOPIFY_CLIENT_ID,
        "shopify_client_secret": SecretStr(SHOPIFY_CLIENT_SECRET),
        "etsy_keystring": ETSY_KEYSTRING,
        "etsy_shared_secret": SecretStr(ETSY_SHARED_SECRET),
        "etsy_webhook_secret": SecretStr(ETSY_WEBHOOK_SECRET),
    }


def hub_environment() -> dict[str, str]:
    """The same as ``HUB_*`` variables, for a hub run apart (``hub run``)."""
    return {
        "HUB_ALLOW_PRIVATE_URLS": "true",  # the simulators listen on loopback, over plain http
        "HUB_SHOPIFY_CLIENT_ID": SHOPIFY_CLIENT_ID,
        "HUB_SHOPIFY_CLIENT_SECRET": SHOPIFY_CLIENT_SECRET,
        "HUB_ETSY_KEYSTRING": ETSY_KEYSTRING,
        "HUB_ETSY_SHARED_SECRET": ETSY_SHARED_SECRET,
        "HUB_ETSY_WEBHOOK_SECRET": ETSY_WEBHOOK_SECRET,
    }


def _etsy_size(size: str) -> list[dict[str, Any]]:
    return [
        {
            "property_id": SIZE_PROPERTY,
            "property_name": "Size",
            "scale_id": 17,
            "value_ids": [SIZE_VALUE_IDS[size]],
            "values": [size],
        }
    ]


def new_run_id() -> str:
    """Six hex digits naming one set of shops (a demo run, a `hub sandbox` session)."""
    return secrets.token_hex(3)


def describe(world: Marketplaces) -> str:
    """Where the served sandboxes are, their credentials, and how to connect a hub to them."""
    shops = world.shop_connections(seller_id=0)
    lines = ["marketplace sandboxes (Ctrl-C stops them)", ""]
    for name in MARKETPLACES:
        body = shops[name]
        lines.append(f"  {name:<12} {world.urls[name]}  shop {body['external_id']}")
        lines.append(f"  {'':<12} credentials {json.dumps(body['credentials'])}")
    lines.append(f"  {'':<12} woocommerce webhook secret (per shop): {WOO_WEBHOOK_SECRET}")
    lines += [
        "",
        f"  {len(world.locations)} SKUs listed in each: " + ", ".join(sorted(world.locations)),
        "",
        "  the hub's app secrets for them:",
        *(f"    {key}={value}" for key, value in hub_environment().items()),
        "",
        "  connect a shop as a seller does: POST /shops/connect with one of these bodies (your",
        "  seller's id for seller_id), then open the authorization_url it returns:",
        *(f"    {json.dumps(body)}" for body in world.connect_requests(seller_id=0).values()),
        "  or with pasted credentials: POST /shops with one of these bodies:",
        *(f"    {json.dumps(body)}" for body in shops.values()),
    ]
    return "\n".join(lines)
