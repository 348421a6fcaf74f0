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
    check_stock_push_idempotent,
    scan_all,
)
from connectors.woocommerce.connector import StockPushFailed, WooCommerceConnector
from connectors.woocommerce.webhooks import WebhookPing
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
