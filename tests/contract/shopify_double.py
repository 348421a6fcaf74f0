"""The Shopify sandbox behind a fault injector, shaped as the conformance suite's double."""

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
from connectors.shopify.connector import ShopifyConnector
from connectors.shopify.sandbox import ShopifySandbox
from connectors.testing import Fault, FaultInjector, SeededListing, SeededOrder

CURRENT_SECRET = "shpss_current_secret"
PREVIOUS_SECRET = "shpss_previous_secret"
CLIENT_TIMEOUT_SECONDS = 0.5
# Conformance is about behaviour, not budgets: a bucket that restores fast keeps tests quick.
FAST_RESTORE = 100_000.0


class ShopifyDouble:
    current_secret = CURRENT_SECRET
    previous_secret = PREVIOUS_SECRET

    def __init__(self, sandbox: ShopifySandbox, base_url: str, faults: FaultInjector) -> None:
        self.sandbox = sandbox
        self.base_url = base_url
        self.faults = faults

    def shop(self) -> ShopContext:
        return ShopContext(
            shop_id=1,
            external_id=self.sandbox.shop_domain,
            credentials={"access_token": self.sandbox.access_token},
            api_base_url=self.base_url,
            location_id=self.sandbox.location_id,
        )

    def add_listing(self, sku: str, price: Decimal, available: int) -> SeededListing:
        product = self.sandbox.add_product(
            f"Product {sku}", [{"sku": sku, "price": price, "available": available}]
        )
        variant = product["variants"][0]
        return SeededListing(sku, product["id"], variant["id"], variant["inventory_item_id"])

    def add_order(
        self,
        lines: Sequence[tuple[SeededListing, int, Decimal]],
        *,
        updated_at: datetime,
        total: Decimal,
    ) -> SeededOrder:
        order_id = self.sandbox.add_order(
            [
                {"variant_id": listing.variant_id, "quantity": quantity, "price": price}
                for listing, quantity, price in lines
            ],
            currency="USD",
            created_at=updated_at,
            updated_at=updated_at,
            total=total,
        )
        line_ids = tuple(line["id"] for line in self.sandbox.order_lines(order_id))
        return SeededOrder(order_id, line_ids, total, tuple(price for _, _, price in lines))

    def touch_order(self, external_id: str, updated_at: datetime) -> None:
        self.sandbox.update_order(external_id, updated_at=updated_at)

    def stock_of(self, listing: SeededListing) -> int:
        return self.sandbox.stock(listing.stock_item_id)

    def fulfillment_writes(self) -> int:
        return len(self.sandbox.fulfillment_writes)

    def stock_batch_sample(self) -> Sequence[str]:
        """600 inventory items: two full calls of 250 and one of 100."""
        return [f"gid://shopify/InventoryItem/{30_322_695_000 + n}" for n in range(600)]

    def stock_batch_key(self, item_id: str) -> Hashable:
        """inventorySetQuantities takes any inventory items of the location together
        (https://shopify.dev/docs/api/admin-graphql/latest/mutations/inventorySetQuantities)."""
        return "inventorySetQuantities"

    def throttled_fault(self) -> Fault:
        """Shopify's THROTTLED answer: HTTP 200, the reason in the body, the bucket beside it.
        https://shopify.dev/docs/api/usage/rate-limits (GraphQL Admin API)"""
        body = {
            "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
            "extensions": {
                "cost": {
                    "requestedQueryCost": 954,
                    "actualQueryCost": None,
                    "throttleStatus": {
                        "maximumAvailable": 1000.0,
                        "currentlyAvailable": 54,
                        "restoreRate": 100.0,
                    },
                }
            },
        }
        return Fault(200, json.dumps(body).encode())

    def signed_webhook(
        self, payload: dict[str, Any], *, secret: str
    ) -> tuple[bytes, dict[str, str]]:
        return self.sandbox.signed_webhook("orders/updated", payload, secret=secret)


@contextmanager
def shopify_double(**sandbox_options: Any) -> Iterator[ShopifyDouble]:
    sandbox = ShopifySandbox(client_secret=CURRENT_SECRET, **sandbox_options)
    faults = FaultInjector(sandbox.app)
    with serve_in_thread(faults) as base_url:
        yield ShopifyDouble(sandbox, base_url, faults)


def connector_config() -> ConnectorConfig:
    return ConnectorConfig(
        app_credentials={
            "client_secret": CURRENT_SECRET,
            "client_secret_previous": PREVIOUS_SECRET,
        },
        api_version="2026-04",
        http_timeout_seconds=CLIENT_TIMEOUT_SECONDS,
    )


def make_connector(kind: type[ShopifyConnector] = ShopifyConnector) -> ShopifyConnector:
    return kind(connector_config(), rate_limiter=InProcessRateLimiter(max_inline_wait=1.0))
