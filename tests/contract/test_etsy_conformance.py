"""The conformance suite against the Etsy sandbox, plus the sandbox-backed scenarios the suite
does not name: time paging across pages, zero stock, token rotation, the real rate limit,
images and webhooks end to end. Payload shapes follow
https://developers.etsy.com/documentation/reference (the sandbox's); recorded documentation
payloads are exercised in test_etsy_recorded.py."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from connectors.contract import (
    AuthError,
    FulfillmentLineRef,
    FulfillmentRequest,
    ImageRef,
    InMemoryCredentialStore,
    RateLimited,
    StockLevel,
)
from connectors.etsy.connector import EtsyConnector
from connectors.etsy.sandbox import EtsySandbox, SandboxShop
from connectors.etsy.stock import stock_item_id
from connectors.ratelimit import InProcessRateLimiter
from connectors.sandbox_server import serve_in_thread
from connectors.testing import ConnectorConformance, scan_all
from tests.contract.etsy_double import (
    KEYSTRING,
    EtsyDouble,
    connector_config,
    etsy_double,
    make_connector,
)

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


@pytest.fixture
def double() -> Iterator[EtsyDouble]:
    with etsy_double() as built:
        yield built


@pytest.fixture
def connector() -> Iterator[EtsyConnector]:
    built = make_connector()
    yield built
    built.close()


class TestEtsyConformance(ConnectorConformance):
    pass


class TestOrdersAgainstTheSandbox:
    def test_small_pages_by_time_miss_nothing_when_orders_change_mid_scan(
        self, double: EtsyDouble
    ) -> None:
        """Pages of 10 over runs of 12 equal timestamps: offsets step within a timestamp, and
        touching receipts during the scan never hides one."""
        connector = make_connector(orders_page_size=10)
        listing = double.add_listing("PAGE-SMALL", Decimal("3.00"), 100)
        base = datetime(2026, 6, 1, tzinfo=UTC)
        seeded = [
            double.add_order(
                [(listing, 1, Decimal("3.00"))],
                updated_at=base + timedelta(minutes=n // 12),
                total=Decimal("3.00"),
            )
            for n in range(50)
        ]

        def touch(page: int) -> None:
            if page < 4:
                double.touch_order(seeded[page * 3].external_id, base + timedelta(days=1))

        orders = scan_all(connector, double.shop(), base, touch)
        assert {s.external_id for s in seeded} <= {o.external_id for o in orders}
        connector.close()


class TestStockAgainstTheSandbox:
    def test_zero_deactivates_and_restock_reactivates(self, double: EtsyDouble) -> None:
        connector = make_connector()
        listing = double.add_listing("ZERO-1", Decimal("12.50"), 3)
        shop, item = double.shop(), listing.stock_item_id
        listing_id = int(listing.listing_id)

        connector.set_stock_levels(shop, [StockLevel(item, 0)], idempotency_key="z1")
        assert double.sandbox.listing_state(listing_id) == "inactive"
        assert double.sandbox.offering(listing_id)["quantity"] == 1  # Etsy's minimum
        assert connector.read_stock_levels(shop, [item]) == {item: 0}
        assert double.sandbox.offering(listing_id)["price"] == Decimal("12.50")

        connector.set_stock_levels(shop, [StockLevel(item, 7)], idempotency_key="z2")
        assert double.sandbox.listing_state(listing_id) == "active"
        assert double.stock_of(listing) == 7
        assert connector.read_stock_levels(shop, [item]) == {item: 7}
        states = [(before, after) for _, before, after in double.sandbox.state_changes]
        assert states == [("active", "inactive"), ("inactive", "active")]
        connector.close()

    def test_one_sku_of_a_multi_product_listing(self, double: EtsyDouble) -> None:
        """Product ids change on every write; the SKU addresses the product throughout."""
        connector = make_connector()
        sizes = [
            {
                "sku": f"TEE-{size}",
                "price": Decimal("20.00"),
                "quantity": 5,
                "property_values": [
                    {
                        "property_id": 100,
                        "property_name": "Size",
                        "scale_id": 17,
                        "scale_name": "Letter",
                        "value_ids": [1000 + index],
                        "values": [size],
                    }
                ],
            }
            for index, size in enumerate(("S", "M"))
        ]
        listing_id = double.sandbox.add_listing(
            double.seeded.shop_id, sizes, title="Tee", quantity_on_property=[100]
        )
        shop = double.shop()
        small, medium = (stock_item_id(str(listing_id), sku) for sku in ("TEE-S", "TEE-M"))
        before = double.sandbox.product_ids(listing_id)
        connector.set_stock_levels(shop, [StockLevel(small, 0)], idempotency_key="m1")
        connector.set_stock_levels(shop, [StockLevel(medium, 2)], idempotency_key="m2")
        assert double.sandbox.product_ids(listing_id) != before
        assert double.sandbox.offering(listing_id, "TEE-S")["is_enabled"] is False
        assert connector.read_stock_levels(shop, [small, medium]) == {small: 0, medium: 2}
        connector.set_stock_levels(shop, [StockLevel(medium, 0)], idempotency_key="m3")
        assert double.sandbox.listing_state(listing_id) == "inactive"
        assert connector.read_stock_levels(shop, [small, medium]) == {small: 0, medium: 0}
        connector.close()

    def test_two_pushes_to_one_listing_at_once_both_land(self, double: EtsyDouble) -> None:
        """Each push writes the whole inventory as it read it: two at once (two worker
        threads) must not write back each other's SKUs as they were."""
        connector = make_connector()
        listing_id = double.sandbox.add_listing(
            double.seeded.shop_id,
            [
                {
                    "sku": f"DUO-{size}",
                    "price": Decimal("20.00"),
                    "quantity": 5,
                    "property_values": [
                        {
                            "property_id": 100,
                            "property_name": "Size",
                            "scale_id": 17,
                            "value_ids": [2000 + index],
                            "values": [size],
                        }
                    ],
                }
                for index, size in enumerate(("S", "M"))
            ],
            title="Duo",
            quantity_on_property=[100],
        )
        double.sandbox.latency_seconds = 0.2  # both reads happen before either write
        shop = double.shop()
        wanted = {
            stock_item_id(str(listing_id), "DUO-S"): 1,
            stock_item_id(str(listing_id), "DUO-M"): 2,
        }
        pushes = [
            threading.Thread(
                target=connector.set_stock_levels,
                args=(shop, [StockLevel(item, quantity)]),
                kwargs={"idempotency_key": item},
            )
            for item, quantity in wanted.items()
        ]
        for push in pushes:
            push.start()
        for push in pushes:
            push.join(10)
        assert double.sandbox.stock(listing_id, "DUO-S") == 1
        assert double.sandbox.stock(listing_id, "DUO-M") == 2
        connector.close()

    def test_a_fresh_cache_makes_a_push_one_call(self, double: EtsyDouble) -> None:
        connector = make_connector()
        listing = double.add_listing("CACHE-1", Decimal("5.00"), 9)
        shop, listing_id = double.shop(), int(listing.listing_id)
        connector.set_stock_levels(
            shop, [StockLevel(listing.stock_item_id, 8)], idempotency_key="c"
        )
        assert double.sandbox.calls_by_listing[listing_id] == 2  # read + write
        connector.set_stock_levels(
            shop, [StockLevel(listing.stock_item_id, 6)], idempotency_key="d"
        )
        assert double.sandbox.calls_by_listing[listing_id] == 3  # write only
        assert double.stock_of(listing) == 6
        connector.close()


SIZES = ("XS", "S", "M", "L", "XL", "2XL", "3XL", "4XL", "5XL", "6XL")


def ten_sku_listing(double: EtsyDouble, *, state: str = "active", quantity: int = 5) -> int:
    """A tee in ten sizes whose quantity varies by size (``quantity_on_property``), as
    getListingInventory documents it
    (https://developers.etsy.com/documentation/reference#operation/getListingInventory)."""
    products = [
        {
            "sku": f"TEE10-{size}",
            "price": Decimal("21.00"),
            "quantity": quantity,
            "property_values": [
                {
                    "property_id": 100,
                    "property_name": "Size",
                    "scale_id": 17,
                    "scale_name": "Letter",
                    "value_ids": [2000 + index],
                    "values": [size],
                }
            ],
        }
        for index, size in enumerate(SIZES)
    ]
    return double.sandbox.add_listing(
        double.seeded.shop_id,
        products,
        title="Ten-size tee",
        state=state,
        quantity_on_property=[100],
    )


class TestManySkusOfOneListing:
    """Every SKU of a listing travels in one set_stock_levels call: one getListingInventory,
    one updateListingInventory
    (https://developers.etsy.com/documentation/reference#operation/updateListingInventory) and
    an updateListing only when the listing must be (de)activated
    (https://developers.etsy.com/documentation/reference#operation/updateListing)."""

    def test_ten_skus_with_zero_and_non_zero_are_one_read_and_one_write(
        self, double: EtsyDouble
    ) -> None:
        connector = make_connector()
        listing_id = ten_sku_listing(double)
        shop = double.shop()
        wanted = {
            f"TEE10-{size}": (0 if index % 3 == 0 else index) for index, size in enumerate(SIZES)
        }
        levels = [StockLevel(stock_item_id(str(listing_id), s), q) for s, q in wanted.items()]
        groups = connector.stock_batches(levels)
        assert groups == [levels]
        requests_before = double.sandbox.requests_by_app[KEYSTRING]
        result = connector.set_stock_levels(shop, groups[0], idempotency_key="ten")
        assert result.applied == tuple(level.item_id for level in levels)
        assert double.sandbox.requests_by_app[KEYSTRING] - requests_before == 2
        assert double.sandbox.calls_by_listing[listing_id] == 2  # read + write
        assert len(double.sandbox.inventory_writes) == 1
        assert double.sandbox.state_changes == []
        written = double.sandbox.inventory_writes[0]["body"]["products"]
        assert [p["sku"] for p in written] == list(wanted)
        for sku, quantity in wanted.items():
            offering = double.sandbox.offering(listing_id, sku)
            assert (offering["quantity"], offering["is_enabled"]) == (quantity, quantity > 0)
            assert offering["price"] == Decimal("21.00")
        assert double.sandbox.listing_state(listing_id) == "active"
        assert connector.read_stock_levels(shop, [level.item_id for level in levels]) == {
            level.item_id: level.quantity for level in levels
        }
        connector.close()

    def test_ten_skus_at_zero_are_one_read_one_deactivation_one_write(
        self, double: EtsyDouble
    ) -> None:
        connector = make_connector()
        listing_id = ten_sku_listing(double)
        items = [stock_item_id(str(listing_id), f"TEE10-{size}") for size in SIZES]
        connector.set_stock_levels(
            double.shop(), [StockLevel(item, 0) for item in items], idempotency_key="zero"
        )
        assert double.sandbox.calls_by_listing[listing_id] == 3
        assert len(double.sandbox.inventory_writes) == 1
        assert [(b, a) for _, b, a in double.sandbox.state_changes] == [("active", "inactive")]
        assert double.sandbox.offering(listing_id, "TEE10-XS")["quantity"] == 1  # parked
        assert connector.read_stock_levels(double.shop(), items) == dict.fromkeys(items, 0)
        connector.close()

    def test_restocking_an_inactive_listing_is_one_read_one_write_one_activation(
        self, double: EtsyDouble
    ) -> None:
        connector = make_connector()
        listing_id = ten_sku_listing(double, state="inactive")
        levels = [
            StockLevel(stock_item_id(str(listing_id), f"TEE10-{size}"), index % 2 * 4)
            for index, size in enumerate(SIZES)
        ]
        connector.set_stock_levels(double.shop(), levels, idempotency_key="restock")
        assert double.sandbox.calls_by_listing[listing_id] == 3
        assert [(b, a) for _, b, a in double.sandbox.state_changes] == [("inactive", "active")]
        assert connector.read_stock_levels(double.shop(), [lv.item_id for lv in levels]) == {
            level.item_id: level.quantity for level in levels
        }
        connector.close()

    def test_a_shop_push_costs_at_most_two_calls_per_listing(self, double: EtsyDouble) -> None:
        """Twelve ten-SKU listings, levels interleaved across them: twelve calls, 24 requests."""
        connector = make_connector()
        listing_ids = [ten_sku_listing(double) for _ in range(12)]
        levels = [
            StockLevel(stock_item_id(str(listing_id), f"TEE10-{size}"), (n + index) % 4)
            for index, size in enumerate(SIZES)
            for n, listing_id in enumerate(listing_ids)
        ]
        requests_before = double.sandbox.requests_by_app[KEYSTRING]
        groups = connector.stock_batches(levels)
        assert len(groups) == 12
        for number, group in enumerate(groups):
            connector.set_stock_levels(double.shop(), group, idempotency_key=f"shop-{number}")
        assert double.sandbox.requests_by_app[KEYSTRING] - requests_before == 24
        assert all(double.sandbox.calls_by_listing[i] == 2 for i in listing_ids)
        for level in levels[:20]:
            listing, _, sku = level.item_id.partition(":")
            assert double.sandbox.stock(int(listing), sku) == level.quantity
        connector.close()

    def test_levels_of_two_listings_in_one_call_are_refused_before_any_request(
        self, double: EtsyDouble
    ) -> None:
        connector = make_connector()
        first, second = ten_sku_listing(double), ten_sku_listing(double)
        levels = [
            StockLevel(stock_item_id(str(first), "TEE10-S"), 1),
            StockLevel(stock_item_id(str(second), "TEE10-S"), 1),
        ]
        with pytest.raises(ValueError, match="one listing per call"):
            connector.set_stock_levels(double.shop(), levels, idempotency_key="two")
        assert double.sandbox.requests_by_app[KEYSTRING] == 0
        connector.close()


class TestAuthAgainstTheSandbox:
    def test_an_expired_token_is_refreshed_once_and_the_pair_rotates(
        self, double: EtsyDouble
    ) -> None:
        store = InMemoryCredentialStore()
        connector = make_connector(credential_store=store)
        shop = double.shop()
        old = dict(shop.credentials)
        double.sandbox.expire_access_token(double.seeded.shop_id)
        listing = double.add_listing("AUTH-1", Decimal("5.00"), 2)
        assert connector.read_stock_levels(shop, [listing.stock_item_id]) == {
            listing.stock_item_id: 2
        }
        assert store.refreshes == 1
        assert double.sandbox.token_refreshes == 1
        fresh = store.credentials[shop.shop_id]
        assert fresh["refresh_token"] != old["refresh_token"]
        assert fresh == double.sandbox.credentials(double.seeded.shop_id)
        # the stale context again: the connector uses the pair it already has
        assert connector.read_stock_levels(shop, [listing.stock_item_id])
        assert double.sandbox.token_refreshes == 1
        connector.close()

    def test_a_spent_refresh_token_means_reconnect(self, double: EtsyDouble) -> None:
        shop = double.shop()
        first = make_connector()
        double.sandbox.expire_access_token(double.seeded.shop_id)
        first.get_order(
            shop,
            str(double.add_order([], updated_at=datetime.now(UTC), total=Decimal(0)).external_id),
        )
        double.sandbox.expire_access_token(double.seeded.shop_id)
        other = make_connector()  # a process that never saw the rotation
        with pytest.raises(AuthError, match="reconnect the shop"):
            other.list_listings(shop)
        first.close()
        other.close()


class TestRateLimitAgainstTheSandbox:
    def test_the_strict_window_is_respected_and_a_bare_429_is_rate_limited(self) -> None:
        with etsy_double(requests_per_second=5) as double:
            config = connector_config(requests_per_second=5)
            connector = EtsyConnector(
                config, rate_limiter=InProcessRateLimiter(max_inline_wait=2.0)
            )
            listing = double.add_listing("RATE-1", Decimal("5.00"), 9)
            for _ in range(7):  # waits inline for the window instead of hitting 429
                connector.read_stock_levels(double.shop(), [listing.stock_item_id])
            assert double.sandbox.http_429 == 0
            double.sandbox.queue_429(1)
            with pytest.raises(RateLimited) as raised:
                connector.read_stock_levels(double.shop(), [listing.stock_item_id])
            assert raised.value.retry_after == 1.0
            connector.close()


class TestImagesAndTrackingAgainstTheSandbox:
    def test_images_are_replaced_in_order(self, double: EtsyDouble) -> None:
        connector = make_connector()
        listing = double.add_listing("IMG-1", Decimal("5.00"), 9)
        paths = [double.sandbox.host_image(f"r{n}.png", PNG) for n in range(3)]
        refs = [ImageRef(double.base_url + path, alt=f"view {n}") for n, path in enumerate(paths)]
        first = connector.replace_listing_images(double.shop(), listing.listing_id, refs)
        second = connector.replace_listing_images(double.shop(), listing.listing_id, refs[:2])
        images = double.sandbox.images(int(listing.listing_id))
        assert [str(i["listing_image_id"]) for i in images] == list(second)
        assert [i["rank"] for i in images] == [1, 2]
        assert not set(first) & set(second)
        assert double.sandbox.image_deletes == 3
        connector.close()

    def test_a_retried_shipment_never_mails_the_buyer_twice(self, double: EtsyDouble) -> None:
        connector = make_connector()
        listing = double.add_listing("SHIP-1", Decimal("5.00"), 9)
        order = double.add_order(
            [(listing, 1, Decimal("5.00"))], updated_at=datetime.now(UTC), total=Decimal("5")
        )
        request = FulfillmentRequest(
            order.external_id, (FulfillmentLineRef(order.line_ids[0], 1),), "usps", "9400TEST"
        )
        for _ in range(3):
            connector.create_fulfillment(double.shop(), request)
        assert len(double.sandbox.buyer_emails) == 1
        assert connector.get_order(double.shop(), order.external_id).fulfilled
        connector.close()

    def test_a_signed_order_event_names_the_shop_and_the_receipt(self, double: EtsyDouble) -> None:
        connector = make_connector()
        receipt = double.add_order([], updated_at=datetime.now(UTC), total=Decimal(0))
        payload = double.sandbox.order_event(int(receipt.external_id))
        body, headers = double.sandbox.signed_webhook("order.paid", payload)
        envelope = connector.verify_webhook(body, headers)
        assert envelope.shop_reference == double.shop().external_id
        assert envelope.resource_id == receipt.external_id
        assert envelope.topic == "order.paid"
        connector.close()


# --------------------------------------------------------------------------------------------
# The sandbox itself, over HTTP: what the connector relies on it to reproduce.
# --------------------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class TestTheSandboxBehavesLikeEtsy:
    @pytest.fixture
    def served(self) -> Iterator[tuple[EtsySandbox, httpx.Client, SandboxShop, FakeClock]]:
        clock = FakeClock()
        sandbox = EtsySandbox(
            keystring="k1", shared_secret="s1", requests_per_second=2, clock=clock
        )
        shop = sandbox.add_shop(shop_id=555)
        with (
            serve_in_thread(sandbox.app) as base_url,
            httpx.Client(
                base_url=base_url,
                headers={"x-api-key": "k1:s1", "authorization": f"Bearer {shop.access_token}"},
            ) as client,
        ):
            yield sandbox, client, shop, clock

    def test_a_strict_window_and_a_bare_429(
        self, served: tuple[EtsySandbox, httpx.Client, SandboxShop, FakeClock]
    ) -> None:
        sandbox, client, _, clock = served
        first = client.get("/v3/application/shops/555/receipts")
        assert first.status_code == 200
        assert first.headers["x-limit-per-second"] == "2"
        assert first.headers["x-remaining-this-second"] == "1"
        assert first.headers["x-limit-per-day"] == "10000"
        assert first.headers["x-remaining-today"] == "9999"
        assert client.get("/v3/application/shops/555/receipts").status_code == 200
        refused = client.get("/v3/application/shops/555/receipts")
        assert refused.status_code == 429
        assert not [h for h in refused.headers if h.startswith("x-") or h == "retry-after"]
        clock.now += 0.999
        assert client.get("/v3/application/shops/555/receipts").status_code == 429
        clock.now += 0.002
        assert client.get("/v3/application/shops/555/receipts").status_code == 200
        assert sandbox.http_429 == 2
        assert sandbox.requests_by_app["k1"] == 3

    def test_the_app_key_needs_its_shared_secret(
        self, served: tuple[EtsySandbox, httpx.Client, SandboxShop, FakeClock]
    ) -> None:
        _, client, _, _ = served
        answer = client.get("/v3/application/shops/555/receipts", headers={"x-api-key": "k1"})
        assert answer.status_code == 403
        assert answer.json() == {"error": "Shared secret is required in x-api-key header."}

    def test_refresh_rotates_both_tokens(
        self, served: tuple[EtsySandbox, httpx.Client, SandboxShop, FakeClock]
    ) -> None:
        sandbox, client, shop, _ = served
        sandbox.expire_access_token(555)
        expired = client.get("/v3/application/shops/555/receipts")
        assert (expired.status_code, expired.json()["error"]) == (401, "invalid_token")
        grant = {"grant_type": "refresh_token", "client_id": "k1"}
        fresh = client.post(
            "/v3/public/oauth/token", data={**grant, "refresh_token": shop.refresh_token}
        )
        assert fresh.status_code == 200
        assert set(fresh.json()) == {"access_token", "token_type", "expires_in", "refresh_token"}
        again = client.post(
            "/v3/public/oauth/token", data={**grant, "refresh_token": shop.refresh_token}
        )
        assert (again.status_code, again.json()["error"]) == (400, "invalid_grant")
        bearer = {"authorization": f"Bearer {fresh.json()['access_token']}"}
        assert client.get("/v3/application/shops/555/receipts", headers=bearer).status_code == 200

    def test_inventory_writes_are_checked_like_etsys(
        self, served: tuple[EtsySandbox, httpx.Client, SandboxShop, FakeClock]
    ) -> None:
        sandbox, client, _, clock = served
        listing = sandbox.add_listing(555, [{"sku": "A", "price": Decimal("9.99"), "quantity": 2}])
        path = f"/v3/application/listings/{listing}/inventory"
        read = client.get(path).json()
        offering = {"price": 9.99, "quantity": 0, "is_enabled": True, "readiness_state_id": 1}
        product = {"sku": "A", "property_values": [], "offerings": [offering]}
        clock.now += 1
        zero = client.put(path, json={"products": [product]})
        assert (zero.status_code, zero.json()) == (
            400,
            {"error": "One offering must have quantity greater than 0"},
        )
        clock.now += 1
        assert client.put(path, json=read).status_code == 400  # read-only keys and Money
        clock.now += 1
        written = client.put(
            path, json={"products": [{**product, "offerings": [{**offering, "quantity": 3}]}]}
        )
        assert written.status_code == 200
        assert written.json()["products"][0]["product_id"] != read["products"][0]["product_id"]
        assert sandbox.stock(listing) == 3
        assert len(sandbox.inventory_writes) == 1

    def test_every_tracking_call_mails_the_buyer(
        self, served: tuple[EtsySandbox, httpx.Client, SandboxShop, FakeClock]
    ) -> None:
        sandbox, client, _, clock = served
        receipt = sandbox.add_receipt(
            555, [{"listing_id": None, "price": Decimal("1"), "quantity": 1}]
        )
        for _ in range(2):
            clock.now += 1
            answer = client.post(
                f"/v3/application/shops/555/receipts/{receipt}/tracking",
                json={"tracking_code": "T1", "carrier_name": "usps"},
            )
            assert answer.status_code == 200
        assert len(sandbox.buyer_emails) == 2
        assert len(sandbox.receipt(receipt)["shipments"]) == 2

    def test_uploads_take_only_images_and_ten_of_them(
        self, served: tuple[EtsySandbox, httpx.Client, SandboxShop, FakeClock]
    ) -> None:
        sandbox, client, _, clock = served
        listing = sandbox.add_listing(555, [{"sku": "A", "price": Decimal("5"), "quantity": 1}])
        path = f"/v3/application/shops/555/listings/{listing}/images"
        clock.now += 1
        text = client.post(path, files={"image": ("a.txt", b"hello", "text/plain")})
        assert text.status_code == 400
        for rank in range(1, 12):
            clock.now += 1
            answer = client.post(path, data={"rank": str(rank)}, files={"image": ("a.png", PNG)})
            assert answer.status_code == (201 if rank <= 10 else 400)
        assert [image["rank"] for image in sandbox.images(listing)] == list(range(1, 11))
