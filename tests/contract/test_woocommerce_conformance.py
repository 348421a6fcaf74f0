"""The conformance suite against the WooCommerce sandbox, plus the WooCommerce-only paths the
suite does not reach (query-parameter auth, the Shipment Tracking extension, refunds,
variations, webhook delivery rules). Payload shapes follow
https://woocommerce.github.io/woocommerce-rest-api-docs/ (the sandbox's views); recorded
documentation payloads are exercised in test_woocommerce_recorded.py."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.contract import (
    FulfillmentLineRef,
    FulfillmentRequest,
    ImageRef,
    PermanentError,
    RateLimited,
    StockLevel,
    TransientError,
    WebhookEnvelope,
    WebhookRejected,
)
from connectors.sandbox_server import serve_in_thread
from connectors.testing import (
    ConnectorConformance,
    check_fulfillment_written_once,
    check_pagination_complete,
    check_stock_batches,
    check_stock_push_idempotent,
    scan_all,
)
from connectors.woocommerce.connector import StockPushFailed, WooCommerceConnector
from connectors.woocommerce.webhooks import WebhookPing
from tests.contract.broken_connectors import ChunksAcrossParents
from tests.contract.woocommerce_double import (
    CONSUMER_SECRET,
    SharedServer,
    WooCommerceDouble,
    make_connector,
    shared_server,
)


@pytest.fixture(scope="module")
def server() -> Iterator[SharedServer]:
    with shared_server() as built:
        yield built


@pytest.fixture
def double(server: SharedServer) -> WooCommerceDouble:
    return server.mount()


@pytest.fixture
def connector() -> Iterator[WooCommerceConnector]:
    built = make_connector()
    yield built
    built.close()


class TestWooCommerceConformance(ConnectorConformance):
    pass


class TestBeyondTheSuite:
    def test_a_site_that_drops_the_authorization_header_is_read_with_query_parameters(
        self, connector: WooCommerceConnector, server: SharedServer
    ) -> None:
        """https://woocommerce.github.io/woocommerce-rest-api-docs/#authentication-over-https:
        "if your server is not parsing the Authorization header correctly, you may provide the
        consumer key/secret as query string parameters"."""
        double = server.mount(drop_authorization_header=True)
        check_pagination_complete(connector, double)
        check_stock_push_idempotent(connector, double)
        assert connector.client.auth_mode(double.shop()) == "query"
        kinds = [kind for _, _, kind in double.sandbox.request_log]
        assert kinds[0] == "anonymous"  # Basic was sent once; the site dropped the header
        assert set(kinds[1:]) == {"query"}  # remembered for the site

    def test_fulfillment_through_the_shipment_tracking_extension(
        self, connector: WooCommerceConnector, server: SharedServer
    ) -> None:
        double = server.mount(has_shipment_tracking=True)
        check_fulfillment_written_once(connector, double)
        assert [write["kind"] for write in double.sandbox.tracking_writes] == ["tracking"]

    def test_fulfillment_by_note_completes_the_order_and_mails_the_customer_once(
        self, connector: WooCommerceConnector, double: WooCommerceDouble
    ) -> None:
        listing = double.add_listing("NOTE-1", Decimal("12.00"), 5)
        order = double.add_order(
            [(listing, 1, Decimal("12.00"))],
            updated_at=datetime(2026, 5, 2, tzinfo=UTC),
            total=Decimal("12.00"),
        )
        request = FulfillmentRequest(
            order.external_id,
            (FulfillmentLineRef(order.line_ids[0], 1),),
            carrier="DHL",
            tracking_number="JD0146000031",
            tracking_url="https://track.example/JD0146000031",
        )
        first = connector.create_fulfillment(double.shop(), request)
        again = connector.create_fulfillment(double.shop(), request)
        assert first.external_id.startswith("note:")
        assert not first.already_existed
        assert (again.external_id, again.already_existed) == (first.external_id, True)
        sandbox = double.sandbox
        assert sandbox.order_status(int(order.external_id)) == "completed"
        assert [mail["kind"] for mail in sandbox.customer_emails] == [
            "customer_note",
            "completed_order",
        ]
        assert "JD0146000031" in sandbox.notes(int(order.external_id))[0]["note"]

    def test_refunded_units_leave_the_lines(
        self, connector: WooCommerceConnector, double: WooCommerceDouble
    ) -> None:
        listing = double.add_listing("REFUND-1", Decimal("9.50"), 20)
        order = double.add_order(
            [(listing, 3, Decimal("9.50"))],
            updated_at=datetime(2026, 6, 1, tzinfo=UTC),
            total=Decimal("28.50"),
        )
        double.sandbox.add_refund(int(order.external_id), lines=[(int(order.line_ids[0]), 2)])
        imported = connector.get_order(double.shop(), order.external_id)
        assert imported.lines[0].quantity == 1
        assert imported.lines[0].unit_price == Decimal("9.50")
        assert imported.total == Decimal("9.50")
        assert imported.refunded
        assert imported.paid
        assert not imported.cancelled

    def test_discounted_lines_keep_the_undiscounted_unit_price(
        self, connector: WooCommerceConnector, double: WooCommerceDouble
    ) -> None:
        """The sandbox sends ``price`` as WooCommerce does, a float of the discounted total
        per unit: 9.00 / 3 units after a 1.00 discount is 3.0, 10.00 / 3 is 3.3333333333333335."""
        listing = double.add_listing("DISCOUNT-1", Decimal("3.00"), 20)
        order_id = double.sandbox.add_order(
            [{"product_id": int(listing.listing_id), "quantity": 3, "discount": Decimal("1.00")}]
        )
        payload = double.sandbox.order_json(order_id)
        assert payload["line_items"][0]["price"] == pytest.approx(8 / 3)
        imported = connector.get_order(double.shop(), str(order_id))
        assert imported.lines[0].unit_price == Decimal("3.00")
        assert imported.total == Decimal("8.00")

    def test_variable_products_list_and_stock_by_variation(
        self, connector: WooCommerceConnector, double: WooCommerceDouble
    ) -> None:
        product = double.sandbox.add_product(
            "Orbit Tee",
            variations=[
                {"sku": "TEE-S", "price": Decimal("20"), "stock": 3, "attributes": {"Size": "S"}},
                {"sku": "TEE-M", "price": Decimal("20"), "attributes": {"Size": "M"}},
            ],
            stock=50,  # the parent's stock, shared by TEE-M ("manage_stock": "parent")
        )
        page = connector.list_listings(double.shop())
        assert {(v.sku, v.variant_id) for v in page.variants} == {
            ("TEE-S", str(product["variations"][0]["id"])),
            ("TEE-M", str(product["variations"][1]["id"])),
        }
        small, medium = (v["stock_item_id"] for v in product["variations"])
        assert connector.read_stock_levels(double.shop(), [small, medium]) == {small: 3}
        result = connector.set_stock_levels(
            double.shop(), [StockLevel(small, 1), StockLevel(medium, 7)], idempotency_key="k"
        )
        assert result.applied == (small, medium)
        assert (double.sandbox.stock(small), double.sandbox.stock(medium)) == (1, 7)

    def test_images_replace_the_gallery(
        self, connector: WooCommerceConnector, double: WooCommerceDouble
    ) -> None:
        listing = double.add_listing("IMG-1", Decimal("5.00"), 1)
        images = (
            ImageRef("https://cdn.example/a.png", "front"),
            ImageRef("https://cdn.example/b.webp"),
        )
        ids = connector.replace_listing_images(double.shop(), listing.listing_id, images)
        shown = double.sandbox.product_json(int(listing.listing_id))["images"]
        assert [str(image["id"]) for image in shown] == list(ids)
        assert [image["src"] for image in shown] == [image.url for image in images]
        assert connector.replace_listing_images(double.shop(), listing.listing_id, []) == ()

    def test_an_order_trashed_mid_scan_does_not_hide_the_next_one(
        self, connector: WooCommerceConnector, double: WooCommerceDouble
    ) -> None:
        """Paging by number over a set that shrinks: the scan re-reads the previous page."""
        listing = double.add_listing("SHIFT", Decimal("1.00"), 100)
        base = datetime(2026, 7, 1, tzinfo=UTC)
        seeded = [
            double.add_order([(listing, 1, Decimal("1.00"))], updated_at=base, total=Decimal(1))
            for _ in range(25)
        ]

        def trash_one(page_number: int) -> None:
            if page_number == 0:
                double.sandbox.update_order(int(seeded[0].external_id), status="trash")

        seen = {o.external_id for o in scan_all(connector, double.shop(), base, trash_one)}
        assert {s.external_id for s in seeded[1:]} <= seen

    def test_secrets_never_reach_errors_or_reprs(
        self, connector: WooCommerceConnector, server: SharedServer
    ) -> None:
        double = server.mount(drop_authorization_header=True)
        double.sandbox.queue_429(2, retry_after=3)
        with pytest.raises(RateLimited) as caught:
            connector.list_orders_changed(
                double.shop(), since=datetime.now(UTC) - timedelta(days=1)
            )
        assert CONSUMER_SECRET not in str(caught.value)
        assert CONSUMER_SECRET not in repr(connector)


class WebhookReceiver:
    """The hub's ingress in miniature: verify with the connector; 200 for an event or the
    ping, 401 for a rejection (what WooCommerce counts as a failed delivery)."""

    def __init__(self, connector: WooCommerceConnector) -> None:
        self.connector = connector
        self.envelopes: list[WebhookEnvelope] = []
        self.pings = 0
        self.app = Starlette(
            routes=[Route("/webhooks/woocommerce", self.receive, methods=["POST"])]
        )

    async def receive(self, request: Request) -> Response:
        body = await request.body()
        try:
            self.envelopes.append(self.connector.verify_webhook(body, dict(request.headers)))
        except WebhookPing:
            self.pings += 1
        except WebhookRejected:
            return Response(status_code=401)
        return Response(status_code=200)


@pytest.fixture(scope="module")
def receiver_url() -> Iterator[tuple[WebhookReceiver, str]]:
    receiver = WebhookReceiver(make_connector())
    with serve_in_thread(receiver.app) as base_url:
        yield receiver, f"{base_url}/webhooks/woocommerce"
    receiver.connector.close()


class TestSandboxWebhooks:
    """Delivery rules of class-wc-webhook.php: the unsigned ping needs a 200; deliveries are
    never retried; failures count up and disable the webhook; a success resets the count."""

    def test_ping_then_a_signed_delivery(
        self, server: SharedServer, receiver_url: tuple[WebhookReceiver, str]
    ) -> None:
        receiver, url = receiver_url
        double = server.mount(webhook_url=url)
        listing = double.add_listing("HOOK-1", Decimal("4.00"), 3)
        order = double.add_order(
            [(listing, 1, Decimal("4.00"))],
            updated_at=datetime(2026, 8, 1, tzinfo=UTC),
            total=Decimal("4.00"),
        )
        before = len(receiver.envelopes)
        assert double.sandbox.send_ping()
        assert receiver.pings >= 1
        assert len(receiver.envelopes) == before  # the ping stores nothing
        assert double.sandbox.emit_order_webhook(int(order.external_id)) == 200
        envelope = receiver.envelopes[-1]
        assert (envelope.topic, envelope.resource_id) == ("order.updated", order.external_id)
        assert envelope.shop_reference == double.shop().external_id
        assert envelope.occurred_at == datetime(2026, 8, 1, tzinfo=UTC)

    def test_failures_disable_the_webhook_and_a_success_resets_them(
        self, server: SharedServer, receiver_url: tuple[WebhookReceiver, str]
    ) -> None:
        _, url = receiver_url
        double = server.mount(webhook_url=url)
        sandbox = double.sandbox
        payload = {"id": 1, "date_modified_gmt": "2026-08-01T00:00:00"}
        sandbox.webhook_secret = "rotated-but-the-hub-was-not-told"
        assert [sandbox.emit_webhook("order.updated", payload) for _ in range(3)] == [401] * 3
        assert sandbox.webhook_failure_count == 3
        sandbox.webhook_secret = double.current_secret
        assert sandbox.emit_webhook("order.updated", payload) == 200
        assert sandbox.webhook_failure_count == 0
        sandbox.webhook_secret = "rotated-again"
        statuses = [sandbox.emit_webhook("order.updated", payload) for _ in range(8)]
        assert statuses == [401] * 7 + [None]  # the seventh failure disabled it
        assert sandbox.webhook_status == "disabled"
        assert len(sandbox.webhook_deliveries) == 11  # nothing was retried

    def test_a_ping_that_is_not_answered_200_leaves_the_webhook_disabled(
        self, server: SharedServer
    ) -> None:
        double = server.mount(webhook_url=f"{server.base_url}/nowhere")
        assert not double.sandbox.send_ping()
        assert double.sandbox.ping_status == 404
        assert double.sandbox.webhook_status == "disabled"


class TestStockBatches:
    """One group per batch endpoint: ``POST /products/batch`` for simple products and
    ``POST /products/{id}/variations/batch`` per parent, at most 100 updates each
    (https://woocommerce.github.io/woocommerce-rest-api-docs/#batch-update-products,
    https://woocommerce.github.io/woocommerce-rest-api-docs/#batch-update-product-variations)."""

    def test_a_hundred_variable_products_of_a_hundred_variations_are_a_hundred_calls(
        self, connector: WooCommerceConnector
    ) -> None:
        levels = [
            StockLevel(f"{product}:{product * 1_000 + variation}", variation % 5)
            for variation in range(100)
            for product in range(1, 101)  # interleaved: every parent in every stretch
        ]
        groups = connector.stock_batches(levels)
        assert len(groups) == 100
        for product, group in enumerate(groups, start=1):
            assert {level.item_id.partition(":")[0] for level in group} == {str(product)}
            assert len(group) == 100

    def test_simple_products_share_calls_and_a_malformed_id_is_isolated(
        self, connector: WooCommerceConnector
    ) -> None:
        levels = [StockLevel(str(100 + n), 1) for n in range(150)]
        levels.insert(7, StockLevel("gid://shopify/InventoryItem/1", 1))
        levels.insert(9, StockLevel("12:34", 2))
        groups = connector.stock_batches(levels)
        assert [len(group) for group in groups] == [100, 50, 1, 1]  # a key's chunks in a row
        assert groups[2] == [StockLevel("gid://shopify/InventoryItem/1", 1)]
        assert groups[3] == [StockLevel("12:34", 2)]

    def test_each_group_is_one_request_against_the_sandbox(
        self, connector: WooCommerceConnector, double: WooCommerceDouble
    ) -> None:
        tees = [
            double.sandbox.add_product(
                f"Tee {n}",
                variations=[
                    {"sku": f"T{n}-{size}", "price": Decimal("20"), "stock": 5}
                    for size in ("S", "M", "L")
                ],
            )
            for n in range(3)
        ]
        simple = [double.add_listing(f"MUG-{n}", Decimal("9.00"), 5) for n in range(2)]
        items = [v["stock_item_id"] for tee in tees for v in tee["variations"]]
        items += [listing.stock_item_id for listing in simple]
        levels = [StockLevel(item, n % 4) for n, item in enumerate(sorted(items))]
        groups = connector.stock_batches(levels)
        assert len(groups) == 4
        before = len(double.sandbox.request_log)
        for number, group in enumerate(groups):
            connector.set_stock_levels(double.shop(), group, idempotency_key=f"b{number}")
        sent = double.sandbox.request_log[before:]
        assert len(sent) == 4
        assert all(method == "POST" and path.endswith("/batch") for method, path, _ in sent)
        assert {level.item_id: double.sandbox.stock(level.item_id) for level in levels} == {
            level.item_id: level.quantity for level in levels
        }

    def test_a_connector_mixing_endpoints_in_one_group_is_caught(
        self, double: WooCommerceDouble
    ) -> None:
        broken = make_connector(ChunksAcrossParents)
        with pytest.raises(AssertionError, match="cannot share a call"):
            check_stock_batches(broken, double)
        broken.close()


class TestSandboxFaultsAndLimits:
    def test_5xx_bursts_are_retried_and_batches_over_the_limit_refused(
        self, connector: WooCommerceConnector, double: WooCommerceDouble
    ) -> None:
        listing = double.add_listing("FAULT-1", Decimal("1.00"), 1)
        double.sandbox.error_rate_5xx = 1.0
        with pytest.raises(TransientError):
            connector.read_stock_levels(double.shop(), [listing.stock_item_id])
        assert double.sandbox.fault_responses == 3  # the quick retries, then the error
        double.sandbox.error_rate_5xx = 0.0
        double.sandbox.batch_limit = 1
        levels = [StockLevel(listing.stock_item_id, 2), StockLevel("99999", 1)]
        with pytest.raises(PermanentError, match="request_entity_too_large"):
            connector.set_stock_levels(double.shop(), levels, idempotency_key="k")
        double.sandbox.batch_limit = 100
        with pytest.raises(StockPushFailed) as caught:
            connector.set_stock_levels(double.shop(), levels, idempotency_key="k")
        assert caught.value.applied == (listing.stock_item_id,)
        assert "99999: woocommerce_rest_product_invalid_id" in str(caught.value)
        assert double.stock_of(listing) == 2
