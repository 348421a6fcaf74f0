"""The WooCommerce sandbox behind a fault injector, shaped as the conformance suite's double."""

from __future__ import annotations

import json
from collections.abc import Hashable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any

from connectors.contract import ConnectorConfig, ShopContext
from connectors.ratelimit import InProcessRateLimiter
from connectors.sandbox_server import serve_in_thread
from connectors.testing import Fault, FaultInjector, SeededListing, SeededOrder
from connectors.woocommerce.connector import WooCommerceConnector
from connectors.woocommerce.sandbox import WooCommerceSandbox
from connectors.woocommerce.webhooks import secrets_from_mapping

SITE = "conformance.woo.test"  # the shops' external_id, as normalize_site leaves it
CONSUMER_KEY = "ck_conformance_0123456789"
CONSUMER_SECRET = "cs_conformance_0123456789"
CURRENT_SECRET = "wc-webhook-current"
PREVIOUS_SECRET = "wc-webhook-previous"
CLIENT_TIMEOUT_SECONDS = 0.5
# Small pages, so 45 seeded orders span five pages and the suite exercises paging for real.
CONFORMANCE_PAGE_SIZE = 10
# Conformance is about behaviour, not budgets: a generous per-site window keeps tests quick.
FAST_REQUESTS_PER_SECOND = 1_000


class WooCommerceDouble:
    current_secret = CURRENT_SECRET
    previous_secret = PREVIOUS_SECRET

    def __init__(self, sandbox: WooCommerceSandbox, base_url: str, faults: FaultInjector) -> None:
        self.sandbox = sandbox
        self.base_url = base_url
        self.faults = faults

    def shop(self) -> ShopContext:
        return ShopContext(
            shop_id=1,
            external_id=SITE,
            credentials={
                "consumer_key": CONSUMER_KEY,
                "consumer_secret": CONSUMER_SECRET,
                "webhook_secret": CURRENT_SECRET,
                "webhook_secret_previous": PREVIOUS_SECRET,
            },
            api_base_url=self.base_url,
        )

    def add_listing(self, sku: str, price: Decimal, available: int) -> SeededListing:
        product = self.sandbox.add_product(f"Product {sku}", sku=sku, price=price, stock=available)
        return SeededListing(sku, str(product["id"]), None, product["stock_item_id"])

    def add_order(
        self,
        lines: Sequence[tuple[SeededListing, int, Decimal]],
        *,
        updated_at: datetime,
        total: Decimal,
    ) -> SeededOrder:
        order_id = self.sandbox.add_order(
            [
                {"product_id": int(listing.listing_id), "quantity": quantity, "price": price}
                for listing, quantity, price in lines
            ],
            date_created_gmt=updated_at,
            date_modified_gmt=updated_at,
            total=total,
        )
        line_ids = tuple(str(line) for line in self.sandbox.order_line_ids(order_id))
        return SeededOrder(str(order_id), line_ids, total, tuple(price for _, _, price in lines))

    def touch_order(self, external_id: str, updated_at: datetime) -> None:
        self.sandbox.update_order(int(external_id), date_modified_gmt=updated_at)

    def stock_of(self, listing: SeededListing) -> int:
        quantity = self.sandbox.stock(listing.stock_item_id)
        assert quantity is not None, f"{listing.stock_item_id} does not manage stock"
        return quantity

    def fulfillment_writes(self) -> int:
        return len(self.sandbox.tracking_writes)

    def stock_batch_sample(self) -> Sequence[str]:
        """Interleaved: 120 simple products, 150 variations of product 500, 100 of 600 and one
        of 700 (2 + 2 + 1 + 1 calls at 100 per call)."""
        simple = [str(1_000 + n) for n in range(120)]
        variations = [
            *(f"500:{5_000 + n}" for n in range(150)),
            *(f"600:{6_000 + n}" for n in range(100)),
            "700:7000",
        ]
        mixed = [item for pair in zip(simple, variations, strict=False) for item in pair]
        return mixed + variations[len(simple) :]

    def stock_batch_key(self, item_id: str) -> Hashable:
        """POST /products/batch for products, POST /products/{id}/variations/batch per parent
        (https://woocommerce.github.io/woocommerce-rest-api-docs/#batch-update-products,
        #batch-update-product-variations)."""
        product, _, variation = item_id.partition(":")
        return ("variations", product) if variation else "products"

    def throttled_fault(self) -> Fault:
        """WooCommerce core has no limiter; a host or WAF in front of the site answers 429."""
        body = {"code": "too_many_requests", "message": "Too Many Requests", "data": {}}
        return Fault(429, json.dumps(body).encode(), {"Retry-After": "2"})

    def signed_webhook(
        self, payload: dict[str, Any], *, secret: str
    ) -> tuple[bytes, dict[str, str]]:
        return self.sandbox.signed_webhook("order.updated", payload, secret=secret)


def new_sandbox(**sandbox_options: Any) -> WooCommerceSandbox:
    return WooCommerceSandbox(
        site=SITE,
        consumer_key=CONSUMER_KEY,
        consumer_secret=CONSUMER_SECRET,
        webhook_secret=CURRENT_SECRET,
        **sandbox_options,
    )


@contextmanager
def woocommerce_double(**sandbox_options: Any) -> Iterator[WooCommerceDouble]:
    """A sandbox on a server of its own."""
    sandbox = new_sandbox(**sandbox_options)
    faults = FaultInjector(sandbox.app)
    with serve_in_thread(faults) as base_url:
        yield WooCommerceDouble(sandbox, base_url, faults)


class SharedServer:
    """One uvicorn for many tests: each ``mount`` puts a fresh sandbox behind the same fault
    injector, so a test costs no server start and stop (and no wait for hung faults)."""

    def __init__(self, faults: FaultInjector, base_url: str) -> None:
        self.faults = faults
        self.base_url = base_url

    def mount(self, **sandbox_options: Any) -> WooCommerceDouble:
        sandbox = new_sandbox(**sandbox_options)
        self.faults.queue.clear()
        self.faults.app = sandbox.app
        return WooCommerceDouble(sandbox, self.base_url, self.faults)


@contextmanager
def shared_server() -> Iterator[SharedServer]:
    faults = FaultInjector(new_sandbox().app)
    with serve_in_thread(faults) as base_url:
        yield SharedServer(faults, base_url)


def connector_config() -> ConnectorConfig:
    return ConnectorConfig(http_timeout_seconds=CLIENT_TIMEOUT_SECONDS)


def make_connector(
    kind: type[WooCommerceConnector] = WooCommerceConnector,
) -> WooCommerceConnector:
    """The connector as ``create`` builds it, with the double's site secrets and small pages;
    in production the resolver looks the shop up by site."""
    return kind(
        connector_config(),
        rate_limiter=InProcessRateLimiter(max_inline_wait=1.0),
        webhook_secrets=secrets_from_mapping({SITE: (CURRENT_SECRET, PREVIOUS_SECRET)}),
        requests_per_second=FAST_REQUESTS_PER_SECOND,
        page_size=CONFORMANCE_PAGE_SIZE,
    )
