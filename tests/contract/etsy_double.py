"""The Etsy sandbox behind a fault injector, shaped as the conformance suite's double."""

from __future__ import annotations

import base64
from collections.abc import Hashable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any

from connectors.contract import ConnectorConfig, ShopContext
from connectors.etsy.connector import EtsyConnector
from connectors.etsy.sandbox import EtsySandbox, SandboxShop, order_event_payload
from connectors.ratelimit import InProcessRateLimiter
from connectors.sandbox_server import serve_in_thread
from connectors.testing import Fault, FaultInjector, SeededListing, SeededOrder

KEYSTRING = "conformancekeystring000001"
SHARED_SECRET = "conformance-shared-secret"
CURRENT_SECRET = "whsec_" + base64.b64encode(b"etsy-conformance-current").decode()
PREVIOUS_SECRET = "whsec_" + base64.b64encode(b"etsy-conformance-previous").decode()
CLIENT_TIMEOUT_SECONDS = 0.5
# Conformance is about behaviour, not budgets: a high limit keeps the tests quick.
FAST_PER_SECOND = 10_000
FAST_PER_DAY = 10_000_000


class EtsyDouble:
    current_secret = CURRENT_SECRET
    previous_secret = PREVIOUS_SECRET

    def __init__(self, sandbox: EtsySandbox, base_url: str, faults: FaultInjector) -> None:
        self.sandbox = sandbox
        self.base_url = base_url
        self.faults = faults
        self.seeded: SandboxShop = sandbox.add_shop(shop_name="ConformancePrints")

    def shop(self) -> ShopContext:
        return ShopContext(
            shop_id=1,
            external_id=str(self.seeded.shop_id),
            credentials=self.sandbox.credentials(self.seeded.shop_id),
            api_base_url=self.base_url,
        )

    def add_listing(self, sku: str, price: Decimal, available: int) -> SeededListing:
        listing_id = self.sandbox.add_listing(
            self.seeded.shop_id,
            [{"sku": sku, "price": price, "quantity": available}],
            title=f"Listing {sku}",
        )
        product_id = self.sandbox.product_ids(listing_id)[0]
        return SeededListing(sku, str(listing_id), str(product_id), str(listing_id))

    def add_order(
        self,
        lines: Sequence[tuple[SeededListing, int, Decimal]],
        *,
        updated_at: datetime,
        total: Decimal,
    ) -> SeededOrder:
        receipt_id = self.sandbox.add_receipt(
            self.seeded.shop_id,
            [
                {
                    "listing_id": int(listing.listing_id),
                    "product_id": int(listing.variant_id or 0) or None,
                    "sku": listing.sku,
                    "quantity": quantity,
                    "price": price,
                }
                for listing, quantity, price in lines
            ],
            created=updated_at,
            updated=updated_at,
            total=total,
        )
        line_ids = tuple(str(n) for n in self.sandbox.transaction_ids(receipt_id))
        return SeededOrder(str(receipt_id), line_ids, total, tuple(price for _, _, price in lines))

    def touch_order(self, external_id: str, updated_at: datetime) -> None:
        self.sandbox.update_receipt(int(external_id), updated=updated_at)

    def stock_of(self, listing: SeededListing) -> int:
        return self.sandbox.stock(int(listing.listing_id))

    def fulfillment_writes(self) -> int:
        return len(self.sandbox.tracking_writes)

    def stock_batch_sample(self) -> Sequence[str]:
        """Interleaved: 30 listings of 10 SKUs, five listings addressed whole, and one listing
        of 450 SKUs (two calls at 400 per call)."""
        small = [f"{3_000_000 + n // 10}:SKU-{n % 10}" for n in range(300)]
        large = [f"5000000:BIG-{n:03d}" for n in range(450)]
        mixed = [item for pair in zip(small, large, strict=False) for item in pair]
        for n in range(5):
            mixed.insert(n * 97, str(4_000_000 + n))
        return mixed + large[len(small) :]

    def stock_batch_key(self, item_id: str) -> Hashable:
        """updateListingInventory writes one listing's whole inventory
        (https://developers.etsy.com/documentation/reference#operation/updateListingInventory)."""
        return item_id.partition(":")[0]

    def throttled_fault(self) -> Fault:
        """Etsy's 429: bare, without rate headers or Retry-After
        (https://developers.etsy.com/documentation/essentials/rate-limits)."""
        return Fault(429, b"")

    def signed_webhook(
        self, payload: dict[str, Any], *, secret: str
    ) -> tuple[bytes, dict[str, str]]:
        """The suite's generic payload becomes an Etsy event about receipt ``payload["id"]``
        of this double's shop."""
        event = order_event_payload(self.seeded.shop_id, int(payload["id"]))
        event.pop("event_type")
        return self.sandbox.signed_webhook("order.paid", event, secret=secret)


@contextmanager
def etsy_double(**sandbox_options: Any) -> Iterator[EtsyDouble]:
    options: dict[str, Any] = {
        "keystring": KEYSTRING,
        "shared_secret": SHARED_SECRET,
        "webhook_secret": CURRENT_SECRET,
        "requests_per_second": FAST_PER_SECOND,
        "requests_per_day": FAST_PER_DAY,
        **sandbox_options,
    }
    sandbox = EtsySandbox(**options)
    faults = FaultInjector(sandbox.app)
    with serve_in_thread(faults) as base_url:
        yield EtsyDouble(sandbox, base_url, faults)


def connector_config(**app_credentials: Any) -> ConnectorConfig:
    return ConnectorConfig(
        app_credentials={
            "keystring": KEYSTRING,
            "shared_secret": SHARED_SECRET,
            "webhook_secret": CURRENT_SECRET,
            "webhook_secret_previous": PREVIOUS_SECRET,
            "requests_per_second": FAST_PER_SECOND,
            "requests_per_day": FAST_PER_DAY,
            **app_credentials,
        },
        http_timeout_seconds=CLIENT_TIMEOUT_SECONDS,
    )


def make_connector(**options: Any) -> EtsyConnector:
    return EtsyConnector(
        connector_config(), rate_limiter=InProcessRateLimiter(max_inline_wait=1.0), **options
    )
