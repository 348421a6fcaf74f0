"""The WooCommerce connector against recorded responses shaped exactly like WooCommerce's docs.

Each payload in ``payloads/woocommerce/`` carries the documented field set of the endpoint it
answers (https://woocommerce.github.io/woocommerce-rest-api-docs/, sources in
woocommerce/woocommerce-rest-api-docs ``source/includes/wp-api-v3/``), with our own values;
each test names the page it follows. The sandbox is exercised elsewhere: these tests keep the
sandbox and the client from silently agreeing on a wrong shape.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from connectors.contract import (
    AuthError,
    ConnectorConfig,
    FulfillmentLineRef,
    FulfillmentRequest,
    ImageRef,
    MarketplaceConnector,
    NotFound,
    PermanentError,
    RateLimited,
    ShopContext,
    StockLevel,
    TransientError,
    WebhookRejected,
)
from connectors.ratelimit import InProcessRateLimiter
from connectors.woocommerce import mappers
from connectors.woocommerce.client import DEFAULT_429_WAIT_SECONDS
from connectors.woocommerce.connector import (
    StockPushFailed,
    WooCommerceConnector,
    create,
)
from connectors.woocommerce.paging import OrderScanCursor
from connectors.woocommerce.webhooks import (
    WebhookPing,
    normalize_site,
    secrets_from_mapping,
    signature,
)
from hub.domain.shops import PushKind

PAYLOADS = Path(__file__).parent / "payloads" / "woocommerce"
SITE = "orbit-prints.example"
BASE_URL = f"https://{SITE}"
API = "/wp-json/wc/v3"
TRACKING_API = "/wp-json/wc-shipment-tracking/v3"
KEY = "ck_4f2a9c0b7d1e3a5c6b8d0e2f4a6c8e0b2d4f6a8c"
SECRET = "cs_9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d"
WEBHOOK_SECRET = "orbit-webhook-secret-current"
WEBHOOK_PREVIOUS = "orbit-webhook-secret-previous"

DOCS = "https://woocommerce.github.io/woocommerce-rest-api-docs"


# --------------------------------------------------------------------------------------------
# Fixtures and helpers
# --------------------------------------------------------------------------------------------


def payload(name: str) -> Any:
    return json.loads((PAYLOADS / f"{name}.json").read_text())


def raw_payload(name: str) -> bytes:
    return (PAYLOADS / f"{name}.json").read_bytes()


def respond(
    name: str, status: int = 200, headers: Mapping[str, str] | None = None
) -> httpx.Response:
    return httpx.Response(
        status,
        content=raw_payload(name),
        headers={"content-type": "application/json; charset=UTF-8", **(headers or {})},
    )


def paged(name: str, *, total: int, pages: int, page: int = 1) -> httpx.Response:
    """A collection page with WordPress's paging headers (#pagination)."""
    links = []
    if page < pages:
        links.append(f'<{BASE_URL}{API}/orders?page={page + 1}>; rel="next"')
    if page > 1:
        links.append(f'<{BASE_URL}{API}/orders?page={page - 1}>; rel="prev"')
    headers = {"X-WP-Total": str(total), "X-WP-TotalPages": str(pages)}
    if links:
        headers["Link"] = ", ".join(links)
    return respond(name, headers=headers)


def sent(request: httpx.Request) -> Any:
    return json.loads(request.content)


class Sleeps:
    """Records the quick-retry waits instead of sleeping, so tests stay fast."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def shop() -> ShopContext:
    return ShopContext(
        shop_id=12,
        external_id=SITE,
        credentials={
            "consumer_key": KEY,
            "consumer_secret": SECRET,
            "webhook_secret": WEBHOOK_SECRET,
        },
    )


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def connector(sleeps: Sleeps) -> Iterator[WooCommerceConnector]:
    instance = WooCommerceConnector(
        ConnectorConfig(),
        rate_limiter=InProcessRateLimiter(max_inline_wait=0, clock=lambda: 0.0),
        webhook_secrets=secrets_from_mapping({SITE: (WEBHOOK_SECRET, WEBHOOK_PREVIOUS)}),
        requests_per_second=1_000,
        sleep=sleeps,
    )
    yield instance
    instance.close()


@pytest.fixture
def woo() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE_URL, assert_all_called=False) as router:
        yield router


def orders_page(connector: WooCommerceConnector, shop: ShopContext) -> Any:
    return connector.list_orders_changed(shop, since=datetime(2026, 3, 1, tzinfo=UTC))


# --------------------------------------------------------------------------------------------
# Factory and capabilities
# --------------------------------------------------------------------------------------------


def test_factory_builds_a_connector_with_woocommerce_capabilities() -> None:
    """The entry-point factory; batch limit 100 per #batch-update-products, image types per
    wc_rest_allowed_image_mime_types, no core rate limit (#introduction)."""
    connector = create(
        ConnectorConfig(
            app_credentials={"requests_per_second": 7, "webhook_secrets": {SITE: WEBHOOK_SECRET}}
        )
    )
    try:
        assert isinstance(connector, MarketplaceConnector)
        caps = connector.capabilities
        assert caps.marketplace == "woocommerce"
        assert caps.push_kinds == (PushKind.LISTING, PushKind.IMAGES)
        assert caps.stock_batch_size == 100
        assert (caps.images.max_width, caps.images.max_height) == (10_000, 10_000)
        assert caps.images.formats == ("jpeg", "png", "gif", "webp")
        assert caps.images.max_images is None
        assert caps.images.max_bytes is None
        assert caps.as_dict()["rate_limit"] == "none"
        assert caps.as_dict()["webhook_management"] == "api"
        assert caps.orders_sorted_by_update is False
        assert connector.client.budget.windows == ((7, 1.0),)
        assert WEBHOOK_SECRET not in repr(connector)
    finally:
        connector.close()


def test_factory_takes_a_webhook_secret_resolver() -> None:
    """The hub resolves a shop's secrets by site; the connector only calls the resolver."""
    asked: list[str] = []

    def resolver(site: str) -> list[str]:
        asked.append(site)
        return [WEBHOOK_SECRET]

    connector = create(ConnectorConfig(app_credentials={"webhook_secret_resolver": resolver}))
    body = raw_payload("webhook_order_updated")
    envelope = connector.verify_webhook(body, webhook_headers(body))
    assert envelope.shop_reference == SITE
    assert asked == [SITE]
    connector.close()


# --------------------------------------------------------------------------------------------
# Orders
# --------------------------------------------------------------------------------------------


def test_order_page_maps_every_field(
    connector: WooCommerceConnector, shop: ShopContext, woo: respx.MockRouter
) -> None:
    """Order fields per {DOCS}#order-properties, lines per #order-line-items-properties
    (``subtotal`` before discounts, ``total`` after, ``price`` a float), GMT dates without a
    zone suffix, ``number`` beside ``id``."""
    woo.get(f"{API}/orders").mock(return_value=paged("orders_page1", total=3, pages=2))
    woo.get(f"{API}/orders/1087/refunds").mock(return_value=respond("order_1087_refunds"))
    page = orders_page(connector, shop)
    first = page.orders[0]

    assert (first.shop_id, first.external_id, first.external_number) == (12, "1101", "WC-2041")
    assert first.external_status == "processing"
    assert (first.paid, first.refunded, first.cancelled, first.fulfilled) == (
        True,
        False,
        False,
        False,
    )
    assert first.currency == "USD"
    assert first.total == Decimal("34.19")
    assert isinstance(first.total, Decimal)
    assert first.placed_at == datetime(2026, 3, 1, 12, 15, 42, tzinfo=UTC)  # the _gmt date
    assert first.external_updated_at == datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    assert first.external_updated_at.utcoffset() == timedelta(0)
    assert first.customer_name == "Ada King"  # the shipping name wins
    assert first.customer_email == "ada.lovelace@example.com"
    assert first.shipping_address == {
        "name": "Ada King",
        "line1": "12 St James's Square",
        "city": "London",
        "postal_code": "SW1Y 4JH",
        "country": "GB",
        "phone": "+44 20 7946 0000",
    }
    tee, sticker = first.lines
    raw_tee = payload("orders_page1")[0]["line_items"][0]
    assert raw_tee["price"] == pytest.approx(9.666666666666666)  # the float trap, ignored
    assert tee.unit_price == Decimal("10.00")  # "30.00" / 3, before the 1.00 discount
    assert str(tee.unit_price) == "10.00"
    assert mappers.line_total(raw_tee, "USD") == Decimal("29.00")  # the discounted amount
    assert (tee.external_line_id, tee.quantity, tee.sku) == ("501", 3, "TEE-WHT-M")
    assert (tee.external_listing_id, tee.external_variant_id) == ("93", "95")
    assert tee.title == "Orbit Tee \N{EN DASH} White, M"  # HTML entities decoded
    assert (sticker.sku, sticker.external_variant_id, sticker.unit_price) == (
        None,
        None,
        Decimal("0.10"),
    )


def test_refunded_lines_are_net_of_refunds(
    connector: WooCommerceConnector, shop: ShopContext, woo: respx.MockRouter
) -> None:
    """An order's ``refunds`` holds only ``{id, reason, total}`` (#order-refunds-properties);
    refund lines with negative quantities and ``_refunded_item_id`` come from
    {DOCS}#list-all-refunds. An amount-only refund moves no quantity."""
    woo.get(f"{API}/orders").mock(return_value=paged("orders_page1", total=3, pages=2))
    refunds = woo.get(f"{API}/orders/1087/refunds").mock(return_value=respond("order_1087_refunds"))
    second = orders_page(connector, shop).orders[1]

    assert refunds.call_count == 1  # only the order with refunds costs a call
    assert refunds.calls[0].request.url.params["per_page"] == "100"
    mug, cap = second.lines
    assert (mug.external_line_id, mug.quantity, mug.unit_price) == ("480", 1, Decimal("12.00"))
    assert (cap.quantity, cap.unit_price, cap.external_variant_id) == (1, Decimal("18.50"), "142")
    assert second.total == Decimal("30.00")  # 42.50 - 12.00 - 0.50: what is still charged
    assert (second.paid, second.refunded, second.fulfilled, second.cancelled) == (
        True,
        True,
        True,
        False,
    )
    assert second.customer_name == "Grace Hopper"  # empty shipping: the billing name
    assert second.shipping_address == {}


def test_order_scan_request_cursor_and_high_water_mark(
    connector: WooCommerceConnector, shop: ShopContext, woo: respx.MockRouter
) -> None:
    """#list-all-orders: ``modified_after`` with ``dates_are_gmt``, ``orderby=id&order=asc``,
    ``per_page`` 100; paging by ``X-WP-TotalPages`` (#pagination). ``modified_after`` is
    exclusive, so it is sent one second early; the cursor keeps it fixed for the whole scan."""
    route = woo.get(f"{API}/orders").mock(
        side_effect=[
            paged("orders_page1", total=3, pages=2),
            paged("orders_page2", total=3, pages=2, page=2),
        ]
    )
    woo.get(f"{API}/orders/1087/refunds").mock(return_value=respond("order_1087_refunds"))
    since = datetime(2026, 3, 1, 7, 30, 15, 999_000, tzinfo=UTC)
    first = connector.list_orders_changed(shop, since=since)

    params = dict(route.calls[0].request.url.params)
    assert params == {
        "modified_after": "2026-03-01T07:30:14",
        "dates_are_gmt": "true",
        "per_page": "100",
        "page": "1",
        "orderby": "id",
        "order": "asc",
    }
    auth = route.calls[0].request.headers["Authorization"]
    assert auth == "Basic " + base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()
    assert "consumer_secret" not in str(route.calls[0].request.url)
    # The newest change of the page, which is not its last order (the list is by id).
    assert first.high_water_mark == datetime(2026, 3, 2, 14, 30, 5, tzinfo=UTC)
    assert first.next_cursor is not None
    assert OrderScanCursor.decode(first.next_cursor) == OrderScanCursor(2, "2026-03-01T07:30:14", 3)

    last = connector.list_orders_changed(shop, since=since, cursor=first.next_cursor)
    assert dict(route.calls[1].request.url.params)["page"] == "2"
    assert dict(route.calls[1].request.url.params)["modified_after"] == "2026-03-01T07:30:14"
    assert last.next_cursor is None
    (yen,) = last.orders
    assert (yen.currency, yen.total, yen.paid) == ("JPY", Decimal("5500"), False)  # on-hold
    tote, pin = yen.lines
    assert tote.unit_price == Decimal("1500")
    assert pin.unit_price == Decimal("333")  # 1000 / 3 at the yen's minor unit


def test_link_header_alone_pages(
    connector: WooCommerceConnector, shop: ShopContext, woo: respx.MockRouter
) -> None:
    """A proxy that strips ``X-WP-*`` still leaves ``Link: rel="next"`` (#pagination)."""
    woo.get(f"{API}/orders").mock(
        return_value=respond(
            "orders_page2", headers={"Link": f'<{BASE_URL}{API}/orders?page=2>; rel="next"'}
        )
    )
    assert orders_page(connector, shop).next_cursor is not None


def test_orders_older_than_the_window_are_dropped(
    connector: WooCommerceConnector, shop: ShopContext, woo: respx.MockRouter
) -> None:
    """A site too old for ``modified_after`` ignores it and lists everything; the window is
    still honoured."""
    woo.get(f"{API}/orders").mock(return_value=paged("orders_page2", total=1, pages=1))
    page = connector.list_orders_changed(shop, since=datetime(2026, 3, 3, tzinfo=UTC))
    assert page.orders == ()
    assert page.high_water_mark is None
    assert page.next_cursor is None


def test_get_order_and_missing_orders(
    connector: WooCommerceConnector, shop: ShopContext, woo: respx.MockRouter
) -> None:
    """#retrieve-an-order; an unknown id answers 404 ``woocommerce_rest_shop_order_invalid_id``."""
    woo.get(f"{API}/orders/1087").mock(return_value=respond("order_1087"))
    woo.get(f"{API}/orders/1087/refunds").mock(return_value=respond("order_1087_refunds"))
    missing = woo.get(f"{API}/orders/5").mock(return_value=respond("error_404_invalid_order", 404))
    assert connector.get_order(shop, "1087").external_number == "1087"
    with pytest.raises(NotFound) as caught:
        connector.get_order(shop, "5")
    assert "woocommerce_rest_shop_order_invalid_id" in caught.value.marketplace_message
    assert missing.call_count == 1
    with pytest.raises(NotFound, match="not a WooCommerce id"):
        connector.get_order(shop, "gid://shopify/Order/1")


@pytest.mark.parametrize(
    ("status", "date_paid", "refunds", "flags"),
    [
        ("pending", None, False, (False, False, False, False)),
        ("processing", None, False, (True, False, False, False)),
        ("on-hold", None, False, (False, False, False, False)),  # awaiting bank transfer
        ("on-hold", "2026-03-01T10:00:00", False, (True, False, False, False)),  # held after paid
        ("completed", None, False, (True, False, False, True)),
        ("cancelled", None, False, (False, True, False, False)),
        ("cancelled", "2026-03-01T10:00:00", False, (True, True, False, False)),
        ("refunded", "2026-03-01T10:00:00", True, (True, False, True, False)),
        ("processing", "2026-03-01T10:00:00", True, (True, False, True, False)),  # partial
        ("failed", None, False, (False, False, False, False)),
        ("trash", None, False, (False, True, False, False)),
        ("shipped", "2026-03-01T10:00:00", False, (True, False, False, False)),  # a plugin's
    ],
)
def test_status_flags(
    status: str, date_paid: str | None, refunds: bool, flags: tuple[bool, ...]
) -> None:
    """Statuses per #order-properties; paid = WooCommerce's paid statuses, or ``date_paid_gmt``
    set on any status that is not awaiting or failing payment."""
    got = mappers.order_flags(status, date_paid_gmt=date_paid, has_refunds=refunds)
    assert (got.paid, got.cancelled, got.refunded, got.fulfilled) == flags


def test_money_is_never_a_float() -> None:
    """Totals are strings (#order-properties); a float is refused instead of rounded."""
    assert mappers.money("19.99") == Decimal("19.99")
    with pytest.raises(mappers.WooCommercePayloadError):
        mappers.money(19.99)
    with pytest.raises(mappers.WooCommercePayloadError):
        mappers.money("nineteen")
    assert mappers.exact_amount(Decimal("1.2345"), "USD") == Decimal("1.2345")  # no rounding
    assert str(mappers.exact_amount(Decimal("2"), "USD")) == "2.00"
    assert str(mappers.exact_amount(Decimal("1.500"), "KWD")) == "1.500"


# --------------------------------------------------------------------------------------------
# Listings and stock
# --------------------------------------------------------------------------------------------


def test_listings_map_products_and_variations(
    connector: WooCommerceConnector, shop: ShopContext, woo: respx.MockRouter
) -> None:
    """#list-all-products and #list-all-product-variations: a variable product lists its
    variations (not itself); grouped products are skipped; prices are strings."""
    products = woo.get(f"{API}/products").mock(
        return_value=respond("products_page1", headers={"X-WP-TotalPages": "2"})
    )
    variations = woo.get(f"{API}/products/93/variations").mock(
        return_value=respond("product_93_variations", headers={"X-WP-TotalPages": "1"})
    )
    page = connector.list_listings(shop, cursor="1")

    sticker, white, black, mug = page.variants
    assert (sticker.listing_id, sticker.variant_id, sticker.sku) == ("120", None, "STK-ORBIT")
    assert (sticker.price, sticker.inventory_item_id) == (Decimal("2.50"), None)
    assert (white.listing_id, white.variant_id, white.sku) == ("93", "95", "TEE-WHT-M")
    assert white.title == "Orbit Tee \N{EN DASH} White, M"
    assert (black.variant_id, black.sku, black.price) == ("96", None, Decimal("21.99"))
    assert (mug.title, mug.sku) == ("Orbit Mug & Coaster", None)
    assert page.next_cursor == "2"
    assert dict(products.calls[0].request.url.params) == {
        "per_page": "100",
        "page": "1",
        "orderby": "id",
        "order": "asc",
    }
    assert variations.call_count == 1


def test_stock_push_splits_per_parent_and_manages_stock(
    connector: WooCommerceConnector, shop: ShopContext, woo: respx.MockRouter
) -> None:
    """#batch-update-products and #batch-update-product-variations: ``{"update": [...]}``,
    ``stock_quantity`` with ``manage_stock: true`` (dropped by WooCommerce otherwise)."""
    products = woo.post(f"{API}/products/batch").mock(return_value=respond("products_batch_update"))
    variations = woo.post(f"{API}/products/93/variations/batch").mock(
        return_value=respond("variations_batch_update")
    )
    levels = [
        StockLevel("93:95", quantity=3, expected_quantity=12),  # no CAS: ignored
        StockLevel("120", quantity=7),
        StockLevel("93:96", quantity=5),
        StockLevel("130", quantity=0),
    ]
    result = connector.set_stock_levels(shop, levels, idempotency_key="push-1")

    assert result.applied == ("93:95", "120", "93:96", "130")
    assert sent(products.calls[0].request) == {
        "update": [
            {"id": 120, "manage_stock": True, "stock_quantity": 7},
            {"id": 130, "manage_stock": True, "stock_quantity": 0},
        ]
    }
    assert sent(variations.calls[0].request) == {
        "update": [
            {"id": 95, "manage_stock": True, "stock_quantity": 3},
            {"id": 96, "manage_stock": True, "stock_quantity": 5},
        ]
    }


def test_stock_push_takes_100_and_refuses_101(
    connector: WooCommerceConnector, shop: ShopContext, woo: respx.MockRouter
) -> None:
    """ "By default it's limited to up to 100 objects" (#batch-update-products)."""
    route = woo.post(f"{API}/products/batch").mock(return_value=respond("products_batch_update"))
    with pytest.raises(ValueError, match="at most 100"):
        connector.set_stock_levels(
            shop, [StockLevel(str(n), 1) for n in range(1, 102)], idempotency_key="k"
        )
    assert route.call_count == 0
    with pytest.raises(StockPushFailed):  # the recorded answer covers two of the hundred
        connector.set_stock_levels(
            shop, [StockLevel(str(n), 1) for n in range(1, 101)], idempotency_key="k"
        )
    assert len(sent(route.calls[0].request)["update"]) == 100


def test_per_item_batch_errors_are_permanent_and_named(
    connector: WooCommerceConnector, shop: ShopContext, woo: respx.MockRouter
) -> None:
    """Per-item failures come back in place, ``{"id", "error": {"code", "message"}}``, in a
    200 (WC_REST_Controller::batch_items)."""
    woo.post(f"{API}/products/batch").mock(
        return_value=respond("products_batch_update_with_errors")
    )
    with pytest.raises(StockPushFailed) as caught:
        connector.set_stock_levels(
            shop, [StockLevel("120", 7), StockLevel("999", 1)], idempotency_key="k"
        )
    assert isinstance(caught.value, PermanentError)
    assert caught.value.applied == ("120",)
    assert "999: woocommerce_rest_product_invalid_id: Invalid ID." in str(caught.value)


def test_batch_over_the_site_limit_is_permanent(
    connector: WooCommerceConnector, shop: ShopContext, woo: respx.MockRouter
) -> None:
    """A site whose ``woocommerce_rest_batch_items_limit`` is lower answers 413."""
    woo.post(f"{API}/products/batch").mock(return_value=respond("error_413_batch_limit", 413))
    with pytest.raises(PermanentError, match="request_entity_too_large"):
        connector.set_stock_levels(shop, [StockLevel("120", 1)], idempotency_key="k")


def test_malformed_stock_item_ids_are_permanent_without_a_request(
    connector: WooCommerceConnector, shop: ShopContext, woo: respx.MockRouter
) -> None:
    route = woo.post(f"{API}/products/batch").mock(return_value=respond("products_batch_update"))
    with pytest.raises(PermanentError, match="not a WooCommerce stock item id"):
        connector.set_stock_levels(shop, [StockLevel("gid://x/1", 1)], idempotency_key="k")
    assert route.call_count == 0


def test_read_stock_levels_reports_only_own_managed_stock(
    connector: WooCommerceConnector, shop: ShopContext, woo: respx.MockRouter
) -> None:
    """``manage_stock`` false has no quantity; ``"parent"`` shows the parent's (#product-
    variation-properties): neither is the item's own, so both are absent."""
    products = woo.get(f"{API}/products").mock(return_value=respond("products_include"))
    woo.get(f"{API}/products/93/variations").mock(return_value=respond("variations_include"))
    levels = connector.read_stock_levels(shop, ["120", "130", "93:95", "93:96", "bogus"])
    assert levels == {"120": 7, "93:95": 12}
    assert dict(products.calls[0].request.url.params) == {
        "include": "120,130",
        "per_page": "100",
        "orderby": "id",
        "order": "asc",
        "page": "1",
    }


# --------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------


def test_images_replace_the_whole_gallery_once(
    connector: WooCommerceConnector, shop: ShopContext, woo: respx.MockRouter
) -> None:
    """#update-a-product with ``images: [{src}]``; sent once: WordPress sideloads inside the
    request, a blind resend would download every image again."""
    route = woo.put(f"{API}/products/93").mock(return_value=respond("product_update_images"))
    images = [
        ImageRef("https://cdn.example/front.png", "Front"),
        ImageRef("https://cdn.example/b.webp"),
    ]
    assert connector.replace_listing_images(shop, "93", images) == ("2001", "2002")
    assert sent(route.calls[0].request) == {
        "images": [
            {"src": "https://cdn.example/front.png", "alt": "Front"},
            {"src": "https://cdn.example/b.webp"},
        ]
    }
    route.mock(return_value=httpx.Response(502, text="Bad Gateway"))
    with pytest.raises(TransientError):
        connector.replace_listing_images(shop, "93", images)
    assert route.call_count == 2  # one per call: never retried inline


# --------------------------------------------------------------------------------------------
# Authentication
# --------------------------------------------------------------------------------------------


def test_dropped_authorization_header_falls_back_to_query_parameters(
    connector: WooCommerceConnector,
    shop: ShopContext,
    woo: respx.MockRouter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """#authentication-over-https: when the server does not pass the Authorization header,
    the key and secret go as ``consumer_key``/``consumer_secret``; WooCommerce answers the
    anonymous call with 401 ``woocommerce_rest_cannot_view``. Remembered per site; the secret
    never reaches httpx's request log."""
    caplog.set_level(logging.INFO, logger="httpx")

    def answer(request: httpx.Request) -> httpx.Response:
        if "consumer_key" in request.url.params:
            return paged("orders_page2", total=1, pages=1)
        return respond("error_401_cannot_view", 401)

    route = woo.get(f"{API}/orders").mock(side_effect=answer)
    assert orders_page(connector, shop).orders[0].external_id == "1130"
    orders_page(connector, shop)

    basic, fallback, remembered = (call.request for call in route.calls)
    assert "Authorization" in basic.headers
    assert "consumer_key" not in basic.url.params
    assert fallback.url.params["consumer_key"] == KEY
    assert fallback.url.params["consumer_secret"] == SECRET
    assert "Authorization" not in fallback.headers
    assert "consumer_key" in remembered.url.params  # no second Basic attempt
    assert connector.client.auth_mode(shop) == "query"
    assert caplog.records, "httpx logged the requests"
    assert all(SECRET not in record.getMessage() for record in caplog.records)


def test_wrong_credentials_are_an_auth_error_without_fallback(
    connector: WooCommerceConnector, shop: ShopContext, woo: respx.MockRouter
) -> None:
    """ "Consumer key is invalid." (woocommerce_rest_authentication_error, 401) is a refusal,
    not a dropped header."""
    route = woo.get(f"{API}/orders").mock(return_value=respond("error_401_invalid_key", 401))
    with pytest.raises(AuthError, match="Consumer key is invalid"):
        orders_page(connector, shop)
    assert route.call_count == 1
    assert connector.client.auth_mode(shop) == "basic"


def test_query_parameters_refused_too_is_an_auth_error(
    connector: WooCommerceConnector, shop: ShopContext, woo: respx.MockRouter
) -> None:
    route = woo.get(f"{API}/orders").mock(return_value=respond("error_401_cannot_view", 401))
    with pytest.raises(AuthError) as caught:
        orders_page(connector, shop)
    assert route.call_count == 2
    assert SECRET not in str(caught.value)
    assert KEY not in str(caught.value)
    assert connector.client.auth_mode(shop) == "basic"  # nothing worked: nothing remembered


def test_missing_credentials_are_an_auth_error_without_a_request(
    connector: WooCommerceConnector, woo: respx.MockRouter
) -> None:
    route = woo.get(f"{API}/orders").mock(return_value=paged("orders_page2", total=1, pages=1))
    keyless = ShopContext(shop_id=13, external_id=SITE, credentials={"consumer_key": KEY})
    with pytest.raises(AuthError, match="no consumer key and secret"):
        orders_page(connector, keyless)
    assert route.call_count == 0


def test_sandbox_base_url_and_subdirectory_installs(connector: WooCommerceConnector) -> None:
    """``shop.api_base_url`` replaces ``https://{external_id}``; a WordPress installed under
    a path keeps it (``example.com/shop/wp-json/...``)."""
    sub = ShopContext(
        shop_id=14,
        external_id="example.com/shop",
        credentials={"consumer_key": KEY, "consumer_secret": SECRET},
    )
    with respx.mock(assert_all_called=False) as router:
        route = router.get("https://example.com/shop/wp-json/wc/v3/orders").mock(
            return_value=paged("orders_page2", total=1, pages=1)
        )
        local = router.get("http://127.0.0.1:8765/wp-json/wc/v3/orders").mock(
            return_value=paged("orders_page2", total=1, pages=1)
        )
        orders_page(connector, sub)
        sandbox = ShopContext(
            shop_id=15,
            external_id=SITE,
            credentials={"consumer_key": KEY, "consumer_secret": SECRET},
            api_base_url="http://127.0.0.1:8765/",
        )
        orders_page(connector, sandbox)
    assert (route.call_count, local.call_count) == (1, 1)


# --------------------------------------------------------------------------------------------
# Tracking
# --------------------------------------------------------------------------------------------


def fulfillment(number: str = "1Z999AA10123456784") -> FulfillmentRequest:
    return FulfillmentRequest(
        order_external_id="1101",
        lines=(FulfillmentLineRef("501", 3),),
        carrier="UPS",
        tracking_number=number,
        tracking_url=f"https://track.example/{number}",
    )


def test_tracking_through_the_shipment_tracking_extension(
    connector: WooCommerceConnector, shop: ShopContext, woo: respx.MockRouter
) -> None:
    """Shipment Tracking REST API (https://woocommerce.com/document/shipment-tracking/
    shipment-tracking-rest-api-create-tracking-item/): a custom provider with our link; then
    the order is completed (#update-an-order) so the customer gets the Completed e-mail."""
    woo.get(f"{API}/orders/1101").mock(
        return_value=httpx.Response(200, json=payload("orders_page1")[0])
    )
    listed = woo.get(f"{TRACKING_API}/orders/1101/shipment-trackings").mock(
        return_value=respond("shipment_trackings")
    )
    notes = woo.get(f"{API}/orders/1101/notes").mock(return_value=respond("order_notes"))
    created = woo.post(f"{TRACKING_API}/orders/1101/shipment-trackings").mock(
        return_value=respond("shipment_tracking_created", 201)
    )
    completed = woo.put(f"{API}/orders/1101").mock(return_value=respond("order_1101_completed"))

    result = connector.create_fulfillment(shop, fulfillment())

    assert result.external_id == "tracking:c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7"
    assert not result.already_existed
    assert (listed.call_count, notes.call_count, created.call_count) == (1, 1, 1)
    assert sent(created.calls[0].request) == {
        "tracking_number": "1Z999AA10123456784",
        "custom_tracking_provider": "UPS",
        "custom_tracking_link": "https://track.example/1Z999AA10123456784",
    }
    assert sent(completed.calls[0].request) == {"status": "completed"}


def test_tracking_already_on_the_order_is_not_written_again(
    connector: WooCommerceConnector, shop: ShopContext, woo: respx.MockRouter
) -> None:
    """The extension's list (GET …/shipment-trackings) already holds the number; the order is
    completed already: nothing is written."""
    woo.get(f"{API}/orders/1101").mock(return_value=respond("order_1101_completed"))
    woo.get(f"{TRACKING_API}/orders/1101/shipment-trackings").mock(
        return_value=respond("shipment_trackings")
    )
    created = woo.post(f"{TRACKING_API}/orders/1101/shipment-trackings")
    completed = woo.put(f"{API}/orders/1101")
    result = connector.create_fulfillment(shop, fulfillment("9400111899223197428490"))
    assert result.external_id == "tracking:7f4978c390ee633c6294ae0f258656f9"
    assert result.already_existed
    assert (created.call_count, completed.call_count) == (0, 0)


def test_without_the_extension_tracking_goes_in_a_customer_note(
    connector: WooCommerceConnector, shop: ShopContext, woo: respx.MockRouter
) -> None:
    """No extension: 404 ``rest_no_route``; #create-an-order-note with ``customer_note``
    (WooCommerce e-mails it), then the status. The absence is remembered for the site."""
    woo.get(f"{API}/orders/1101").mock(
        return_value=httpx.Response(200, json=payload("orders_page1")[0])
    )
    probe = woo.get(f"{TRACKING_API}/orders/1101/shipment-trackings").mock(
        return_value=respond("error_404_no_route", 404)
    )
    woo.get(f"{API}/orders/1101/notes").mock(return_value=respond("order_notes"))
    note = woo.post(f"{API}/orders/1101/notes").mock(
        return_value=respond("order_note_created", 201)
    )
    completed = woo.put(f"{API}/orders/1101").mock(return_value=respond("order_1101_completed"))

    result = connector.create_fulfillment(shop, fulfillment())
    assert result.external_id == "note:295"
    assert not result.already_existed
    assert sent(note.calls[0].request) == {
        "note": "Shipped with UPS. Tracking number: 1Z999AA10123456784. "
        "Track it at https://track.example/1Z999AA10123456784",
        "customer_note": True,
    }
    assert completed.call_count == 1

    connector.create_fulfillment(shop, fulfillment("1ZSECOND"))
    assert probe.call_count == 1  # not asked again within the hour


def test_a_tracking_note_already_there_is_not_written_again(
    connector: WooCommerceConnector, shop: ShopContext, woo: respx.MockRouter
) -> None:
    woo.get(f"{API}/orders/1101").mock(return_value=respond("order_1101_completed"))
    woo.get(f"{TRACKING_API}/orders/1101/shipment-trackings").mock(
        return_value=respond("error_404_no_route", 404)
    )
    woo.get(f"{API}/orders/1101/notes").mock(return_value=respond("order_notes_with_tracking"))
    note = woo.post(f"{API}/orders/1101/notes")
    result = connector.create_fulfillment(shop, fulfillment())
    assert (result.external_id, result.already_existed) == ("note:290", True)
    assert note.call_count == 0


def test_a_tracking_write_that_times_out_is_sent_once(
    connector: WooCommerceConnector, shop: ShopContext, woo: respx.MockRouter
) -> None:
    """A timeout leaves the write's fate unknown: no blind resend; the next attempt reads
    the order's trackings first."""
    woo.get(f"{API}/orders/1101").mock(
        return_value=httpx.Response(200, json=payload("orders_page1")[0])
    )
    woo.get(f"{TRACKING_API}/orders/1101/shipment-trackings").mock(
        return_value=respond("shipment_trackings")
    )
    woo.get(f"{API}/orders/1101/notes").mock(return_value=respond("order_notes"))
    created = woo.post(f"{TRACKING_API}/orders/1101/shipment-trackings").mock(
        side_effect=httpx.ReadTimeout("read timed out")
    )
    with pytest.raises(TransientError, match="timed out"):
        connector.create_fulfillment(shop, fulfillment())
    assert created.call_count == 1


# --------------------------------------------------------------------------------------------
# Error classification and rate limits
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "name", "error"),
    [
        (403, "error_403_cannot_view", AuthError),
        (404, "error_404_invalid_order", NotFound),
        (400, "error_400_invalid_param", PermanentError),
        (422, "error_400_invalid_param", PermanentError),
    ],
)
def test_http_errors_are_classified(
    connector: WooCommerceConnector,
    shop: ShopContext,
    woo: respx.MockRouter,
    status: int,
    name: str,
    error: type[Exception],
) -> None:
    """WordPress REST errors ``{code, message, data: {status}}`` (#errors); the code and
    message travel in the error, the credentials never."""
    route = woo.get(f"{API}/orders").mock(return_value=respond(name, status))
    with pytest.raises(error) as caught:
        orders_page(connector, shop)
    assert getattr(caught.value, "status", None) == status
    assert payload(name)["code"] in str(caught.value)
    assert route.call_count == 1
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(("headers", "wait"), [({"Retry-After": "7"}, 7.0), ({}, None)])
def test_http_429_carries_a_positive_retry_after(
    connector: WooCommerceConnector,
    shop: ShopContext,
    woo: respx.MockRouter,
    headers: dict[str, str],
    wait: float | None,
) -> None:
    """Core has no limiter; hosts and WAFs answer 429, often without ``Retry-After``."""
    route = woo.get(f"{API}/orders").mock(
        return_value=httpx.Response(429, text="Too Many Requests", headers=headers)
    )
    with pytest.raises(RateLimited) as caught:
        orders_page(connector, shop)
    assert caught.value.retry_after == (wait or DEFAULT_429_WAIT_SECONDS)
    assert route.call_count == 1


def test_a_429_spends_the_sites_window_for_everyone(
    shop: ShopContext, woo: respx.MockRouter
) -> None:
    limiter = InProcessRateLimiter(max_inline_wait=0, clock=lambda: 0.0)
    connector = WooCommerceConnector(ConnectorConfig(), rate_limiter=limiter, requests_per_second=5)
    route = woo.get(f"{API}/orders").mock(return_value=httpx.Response(429, text="slow down"))
    with pytest.raises(RateLimited):
        orders_page(connector, shop)
    with pytest.raises(RateLimited, match="budget"):  # refused before sending
        orders_page(connector, shop)
    assert route.call_count == 1
    connector.close()


def test_brief_5xx_is_retried_quickly_then_succeeds(
    connector: WooCommerceConnector, shop: ShopContext, woo: respx.MockRouter, sleeps: Sleeps
) -> None:
    route = woo.get(f"{API}/orders").mock(
        side_effect=[
            httpx.Response(503, text="Service Unavailable"),
            httpx.Response(502, text="<html>Bad Gateway</html>"),
            paged("orders_page2", total=1, pages=1),
        ]
    )
    assert orders_page(connector, shop).orders[0].external_id == "1130"
    assert route.call_count == 3
    assert len(sleeps.waits) == 2
    assert all(wait <= 1.0 for wait in sleeps.waits)


def test_503_asking_for_a_long_wait_leaves_the_thread(
    connector: WooCommerceConnector, shop: ShopContext, woo: respx.MockRouter
) -> None:
    route = woo.get(f"{API}/orders").mock(
        return_value=httpx.Response(503, text="Maintenance", headers={"Retry-After": "30"})
    )
    with pytest.raises(TransientError) as caught:
        orders_page(connector, shop)
    assert caught.value.retry_after == 30.0
    assert route.call_count == 1


def test_timeouts_are_retried_then_transient(
    connector: WooCommerceConnector, shop: ShopContext, woo: respx.MockRouter
) -> None:
    route = woo.get(f"{API}/orders").mock(side_effect=httpx.ReadTimeout("read timed out"))
    with pytest.raises(TransientError, match="timed out"):
        orders_page(connector, shop)
    assert route.call_count == 3


def test_html_instead_of_json_is_permanent(
    connector: WooCommerceConnector, shop: ShopContext, woo: respx.MockRouter
) -> None:
    """Plain permalinks serve the home page at /wp-json/…; a 200 that is not JSON."""
    woo.get(f"{API}/orders").mock(
        return_value=httpx.Response(200, text="<!DOCTYPE html><html>Shop</html>")
    )
    with pytest.raises(PermanentError, match="not JSON"):
        orders_page(connector, shop)


def test_a_redirect_is_permanent_and_never_echoes_the_query(
    connector: WooCommerceConnector, shop: ShopContext, woo: respx.MockRouter
) -> None:
    """A site moved to www answers 301; the Location may carry our query-parameter auth."""
    woo.get(f"{API}/orders").mock(
        return_value=httpx.Response(
            301,
            headers={"Location": f"https://www.{SITE}{API}/orders?consumer_secret={SECRET}"},
        )
    )
    with pytest.raises(PermanentError) as caught:
        orders_page(connector, shop)
    assert f"https://www.{SITE}{API}/orders" in str(caught.value)
    assert SECRET not in str(caught.value)


# --------------------------------------------------------------------------------------------
# Webhooks
# --------------------------------------------------------------------------------------------


def webhook_headers(body: bytes, secret: str = WEBHOOK_SECRET, **extra: str) -> dict[str, str]:
    """The delivery headers of #webhooks ("Delivery/payload") and class-wc-webhook.php."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "WooCommerce/9.8.5 Hookshot (WordPress/6.8.1)",
        "X-WC-Webhook-Source": f"https://{SITE}/",
        "X-WC-Webhook-Topic": "order.updated",
        "X-WC-Webhook-Resource": "order",
        "X-WC-Webhook-Event": "updated",
        "X-WC-Webhook-Signature": signature(body, secret),
        "X-WC-Webhook-ID": "142",
        "X-WC-Webhook-Delivery-ID": "a1b2c3d4e5f60718293a4b5c6d7e8f90",
    }
    headers.update(extra)
    return headers


def test_valid_webhook_is_read(connector: WooCommerceConnector) -> None:
    """The body is the order exactly as the REST API returns it, ``wp_json_encode``d (``\\/``
    escapes kept: the signature covers those bytes)."""
    body = raw_payload("webhook_order_updated")
    assert b"\\/" in body
    envelope = connector.verify_webhook(body, webhook_headers(body))
    assert envelope.topic == "order.updated"
    assert envelope.shop_reference == SITE
    assert envelope.resource_id == "1101"
    assert envelope.occurred_at == datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    assert envelope.payload is not None
    assert envelope.payload["total"] == "34.19"
    assert envelope.event_key.startswith("wc:")


def test_webhook_headers_are_case_insensitive(connector: WooCommerceConnector) -> None:
    body = raw_payload("webhook_order_updated")
    lowered = {name.lower(): value for name, value in webhook_headers(body).items()}
    assert connector.verify_webhook(body, lowered).resource_id == "1101"


def test_tampered_wrong_secret_and_unknown_site_are_rejected(
    connector: WooCommerceConnector,
) -> None:
    body = raw_payload("webhook_order_updated")
    headers = webhook_headers(body)
    with pytest.raises(WebhookRejected) as caught:
        connector.verify_webhook(body.replace(b'"34.19"', b'"3.19"'), headers)
    assert WEBHOOK_SECRET not in str(caught.value)
    assert headers["X-WC-Webhook-Signature"] not in str(caught.value)
    with pytest.raises(WebhookRejected):
        connector.verify_webhook(body, webhook_headers(body, secret="someone-else"))
    elsewhere = webhook_headers(body, **{"X-WC-Webhook-Source": "https://evil.example/"})
    with pytest.raises(WebhookRejected, match="no webhook secret"):
        connector.verify_webhook(body, elsewhere)


@pytest.mark.parametrize("header", ["X-WC-Webhook-Signature", "X-WC-Webhook-Source"])
def test_missing_signature_or_source_is_rejected(
    connector: WooCommerceConnector, header: str
) -> None:
    body = raw_payload("webhook_order_updated")
    headers = webhook_headers(body)
    del headers[header]
    with pytest.raises(WebhookRejected, match="missing"):
        connector.verify_webhook(body, headers)


def test_previous_secret_is_accepted_during_rotation(connector: WooCommerceConnector) -> None:
    body = raw_payload("webhook_order_updated")
    envelope = connector.verify_webhook(body, webhook_headers(body, secret=WEBHOOK_PREVIOUS))
    assert envelope.resource_id == "1101"


def test_activation_ping_is_acknowledged_not_stored(connector: WooCommerceConnector) -> None:
    """WC_Webhook::deliver_ping posts ``webhook_id=<id>`` unsigned and activates the webhook
    only on a 200: ``WebhookPing`` (answer 200, store nothing), never a rejection; any other
    unsigned body is rejected."""
    with pytest.raises(WebhookPing) as caught:
        connector.verify_webhook(
            b"webhook_id=142", {"Content-Type": "application/x-www-form-urlencoded"}
        )
    assert caught.value.webhook_id == "142"
    assert not isinstance(caught.value, WebhookRejected)
    with pytest.raises(WebhookRejected):
        connector.verify_webhook(b"webhook_id=142&x=1", {})


def test_verified_body_that_is_not_json_is_kept_without_payload(
    connector: WooCommerceConnector,
) -> None:
    body = b'{"id":1101,"total":"34.'  # cut short
    envelope = connector.verify_webhook(body, webhook_headers(body))
    assert envelope.payload is None
    assert envelope.resource_id is None
    assert envelope.topic == "order.updated"


def test_only_byte_identical_deliveries_share_an_event_key(
    connector: WooCommerceConnector,
) -> None:
    """``X-WC-Webhook-Delivery-ID`` is ``wp_hash(id . time())``: not an event id. The key is
    over site, resource, event, id, ``date_modified_gmt`` and the body's hash."""
    body = raw_payload("webhook_order_updated")
    first = connector.verify_webhook(body, webhook_headers(body)).event_key
    again = connector.verify_webhook(
        body, webhook_headers(body, **{"X-WC-Webhook-Delivery-ID": "ffffffffffffffff"})
    ).event_key
    assert first == again  # the same bytes delivered twice collapse

    document = json.loads(body)
    reencoded = json.dumps(document).encode()  # same order, other bytes
    assert connector.verify_webhook(reencoded, webhook_headers(reencoded)).event_key != first
    changed = body.replace(b"2026-03-02T10:00:00", b"2026-03-02T10:00:01")
    assert connector.verify_webhook(changed, webhook_headers(changed)).event_key != first
    created = webhook_headers(
        body, **{"X-WC-Webhook-Topic": "order.created", "X-WC-Webhook-Event": "created"}
    )
    assert connector.verify_webhook(body, created).event_key != first


@pytest.mark.parametrize(
    ("url", "site"),
    [
        ("https://Orbit-Prints.example/", "orbit-prints.example"),
        ("orbit-prints.example", "orbit-prints.example"),
        ("http://orbit-prints.example:80", "orbit-prints.example"),
        ("https://example.com:8443/store/", "example.com:8443/store"),
        ("https://example.com/store?x=1#y", "example.com/store"),
    ],
)
def test_sites_normalize_to_one_shop_reference(url: str, site: str) -> None:
    assert normalize_site(url) == site
