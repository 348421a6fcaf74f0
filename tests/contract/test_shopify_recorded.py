"""The Shopify connector against recorded responses shaped exactly like Shopify's documentation.

Each payload in ``payloads/shopify/`` follows the documented response of the query or mutation
in ``connectors/shopify/queries.py`` it answers; each test names the page it follows. The
sandbox is tested elsewhere: these tests keep the sandbox and the client from silently agreeing
on a wrong shape.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime
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
    StaleStock,
    StockLevel,
    TransientError,
    WebhookRejected,
)
from connectors.ratelimit import InProcessRateLimiter
from connectors.shopify import mappers, queries
from connectors.shopify.client import COST_BUCKET, requested_cost
from connectors.shopify.connector import ShopifyConnector, create
from connectors.shopify.webhooks import signature
from hub.domain.shops import PushKind

PAYLOADS = Path(__file__).parent / "payloads" / "shopify"
SHOP_DOMAIN = "orbit-prints.myshopify.com"
BASE_URL = f"https://{SHOP_DOMAIN}"
GRAPHQL_PATH = "/admin/api/2026-04/graphql.json"
TOKEN = "shpat_0123456789abcdef0123456789abcdef"
LOCATION = "gid://shopify/Location/76543210002"
SECRET = "current-client-secret"
PREVIOUS_SECRET = "previous-client-secret"

DOCS = "https://shopify.dev/docs/api/admin-graphql/latest"
RATE_LIMITS_DOC = "https://shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits"
RESPONSE_CODES_DOC = "https://shopify.dev/docs/api/usage/response-codes"


# --------------------------------------------------------------------------------------------
# Fixtures and helpers
# --------------------------------------------------------------------------------------------


def payload(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((PAYLOADS / f"{name}.json").read_text())
    return document


def raw_payload(name: str) -> bytes:
    return (PAYLOADS / f"{name}.json").read_bytes()


def respond(
    name: str, status: int = 200, headers: Mapping[str, str] | None = None
) -> httpx.Response:
    return httpx.Response(
        status,
        content=raw_payload(name),
        headers={"content-type": "application/json", **(headers or {})},
    )


def sent(request: httpx.Request) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(request.content)
    return body


def operation(request: httpx.Request) -> str:
    """The operation name of a sent document (``query OrdersUpdatedSince(...)`` → its name)."""
    head: str = sent(request)["query"].strip().split("(", 1)[0]
    return head.split()[-1]


def by_operation(answers: Mapping[str, str]) -> Callable[[httpx.Request], httpx.Response]:
    """A respx side effect that answers each operation with its recorded payload."""

    def answer(request: httpx.Request) -> httpx.Response:
        return respond(answers[operation(request)])

    return answer


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
        external_id=SHOP_DOMAIN,
        credentials={"access_token": TOKEN},
        location_id=LOCATION,
    )


@pytest.fixture
def limiter() -> InProcessRateLimiter:
    """No inline waiting and a frozen clock: the bucket holds exactly what it was told."""
    return InProcessRateLimiter(max_inline_wait=0, clock=lambda: 0.0)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def connector(limiter: InProcessRateLimiter, sleeps: Sleeps) -> Iterator[ShopifyConnector]:
    config = ConnectorConfig(
        app_credentials={"client_secret": SECRET, "client_secret_previous": PREVIOUS_SECRET}
    )
    instance = ShopifyConnector(config, rate_limiter=limiter, sleep=sleeps)
    yield instance
    instance.close()


@pytest.fixture
def shopify() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE_URL, assert_all_called=False) as router:
        yield router


# --------------------------------------------------------------------------------------------
# Factory and capabilities
# --------------------------------------------------------------------------------------------


def test_factory_builds_a_connector_with_shopify_capabilities() -> None:
    """The entry-point factory; image limits from
    https://shopify.dev/docs/apps/build/online-store/product-media."""
    connector = create(ConnectorConfig(app_credentials={"client_secret": SECRET}))
    try:
        assert isinstance(connector, MarketplaceConnector)
        caps = connector.capabilities
        assert caps.marketplace == "shopify"
        assert caps.push_kinds == (PushKind.STOCK, PushKind.PRICE, PushKind.IMAGES)
        assert caps.stock_batch_size == 250
        assert (caps.images.max_width, caps.images.max_height) == (4472, 4472)
        assert caps.images.max_pixels == 20_000_000
        assert caps.images.formats == ("png", "jpeg", "gif")
        assert caps.images.max_images is None
        assert caps.images.max_bytes is None
        assert caps.as_dict()["rate_limit"] == "cost_bucket"
        assert caps.as_dict()["webhook_management"] == "api"
        assert caps.orders_sorted_by_update is True
        assert SECRET not in repr(connector)
    finally:
        connector.close()


def test_requested_cost_follows_shopifys_rules() -> None:
    """Cost rules of https://shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits:
    connection 2 + first x node, object 1, scalar 0, mutation 10; queries.py budgets 954."""
    variables: dict[str, dict[str, Any]] = {
        "OrdersUpdatedSince": {"first": queries.ORDERS_PAGE_SIZE, "after": None, "query": "x"},
        "OrderLineItems": {"id": "x", "first": queries.LINE_ITEMS_PAGE_SIZE},
        "ProductVariants": {"first": queries.VARIANTS_PAGE_SIZE},
        "InventoryLevels": {"ids": ["gid"] * 250, "locationId": LOCATION},
    }
    assert requested_cost(queries.ORDERS_UPDATED_SINCE, variables["OrdersUpdatedSince"]) == 954
    assert requested_cost(queries.ORDER_BY_ID, {"id": "x"}) == 68
    assert requested_cost(queries.INVENTORY_LEVELS, variables["InventoryLevels"]) == 750
    assert requested_cost(queries.INVENTORY_SET_QUANTITIES, {}) >= 10
    for name, document in queries.ALL_DOCUMENTS.items():
        cost = requested_cost(document, variables.get(name, {}))
        assert cost <= queries.MAX_QUERY_COST, name


# --------------------------------------------------------------------------------------------
# Orders
# --------------------------------------------------------------------------------------------


def test_order_page_maps_every_field(
    connector: ShopifyConnector, shop: ShopContext, shopify: respx.MockRouter
) -> None:
    """Order fields per https://shopify.dev/docs/api/admin-graphql/latest/objects/Order, lines per
    https://shopify.dev/docs/api/admin-graphql/latest/objects/LineItem (currentQuantity), money per
    https://shopify.dev/docs/api/admin-graphql/latest/objects/MoneyBag (amount is a string)."""
    shopify.post(GRAPHQL_PATH).mock(
        side_effect=by_operation(
            {
                "OrdersUpdatedSince": "orders_updated_since_page1",
                "OrderLineItems": "order_line_items_page2",
            }
        )
    )
    page = connector.list_orders_changed(shop, since=datetime(2026, 3, 1, tzinfo=UTC))
    first = page.orders[0]

    assert first.shop_id == 12
    assert first.external_id == "gid://shopify/Order/5766689095442"
    assert first.external_number == "#1001"
    assert first.external_status == "PAID/UNFULFILLED"
    assert (first.paid, first.refunded, first.cancelled, first.fulfilled) == (
        True,
        False,
        False,
        False,
    )
    assert first.total == Decimal("59.97")
    assert isinstance(first.total, Decimal)
    assert first.currency == "USD"
    assert (first.total_presentment, first.presentment_currency) == (Decimal("55.18"), "EUR")
    assert first.placed_at == datetime(2026, 2, 28, 9, 15, 42, tzinfo=UTC)
    assert first.external_updated_at == datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert first.external_updated_at.utcoffset() == timedelta(0)
    assert first.customer_name == "Ada King"  # the shipping address name wins
    assert first.customer_email == "ada.lovelace@example.com"
    assert first.shipping_address == {
        "name": "Ada King",
        "line1": "12 St James's Square",
        "city": "London",
        "region": "England",
        "postal_code": "SW1Y 4JH",
        "country": "GB",
        "phone": "+44 20 7946 0000",
    }
    tee, wrap = first.lines
    assert tee.external_line_id == "gid://shopify/LineItem/14466445934610"
    assert tee.quantity == 2  # currentQuantity, not the original 3
    assert tee.unit_price == Decimal("19.99")
    assert str(tee.unit_price) == "19.99"
    assert tee.unit_price_presentment == Decimal("18.39")
    assert tee.sku == "TEE-WHT-M-ORBIT"
    assert tee.external_variant_id == "gid://shopify/ProductVariant/44012345678098"
    assert tee.external_listing_id == "gid://shopify/Product/8021234567186"
    assert tee.title == "Orbit Tee - White / M"
    assert (wrap.sku, wrap.external_variant_id, wrap.external_listing_id) == (None, None, None)
    assert tee.unit_price + wrap.unit_price + tee.unit_price == Decimal("59.97")  # exact, no float

    second = page.orders[1]
    assert second.external_status == "REFUNDED/FULFILLED"
    assert (second.paid, second.refunded, second.cancelled, second.fulfilled) == (
        True,
        True,
        True,
        True,
    )
    assert second.customer_name == "Grace Hopper"  # no shipping address: the customer's name
    assert second.shipping_address == {}


def test_order_page_cursor_high_water_mark_and_query(
    connector: ShopifyConnector, shop: ShopContext, shopify: respx.MockRouter
) -> None:
    """Cursor paging per https://shopify.dev/docs/api/usage/pagination-graphql and search syntax
    per https://shopify.dev/docs/api/usage/search-syntax (quoted date values)."""
    route = shopify.post(GRAPHQL_PATH).mock(
        side_effect=by_operation(
            {
                "OrdersUpdatedSince": "orders_updated_since_page1",
                "OrderLineItems": "order_line_items_page2",
            }
        )
    )
    since = datetime(2026, 3, 1, 7, 30, 15, 999_000, tzinfo=UTC)
    page = connector.list_orders_changed(shop, since=since, cursor="previous-cursor")

    assert (
        page.next_cursor
        == payload("orders_updated_since_page1")["data"]["orders"]["pageInfo"]["endCursor"]
    )
    assert page.high_water_mark == datetime(2026, 3, 2, 10, tzinfo=UTC)
    variables = sent(route.calls[0].request)["variables"]
    assert variables == {
        "first": queries.ORDERS_PAGE_SIZE,
        "after": "previous-cursor",
        "query": "updated_at:>='2026-03-01T07:30:15Z'",
    }
    assert route.calls[0].request.headers["X-Shopify-Access-Token"] == TOKEN


def test_last_order_page_has_no_cursor(
    connector: ShopifyConnector, shop: ShopContext, shopify: respx.MockRouter
) -> None:
    """An empty last page: ``hasNextPage`` false and a null ``endCursor``, per
    https://shopify.dev/docs/api/admin-graphql/latest/objects/PageInfo."""
    shopify.post(GRAPHQL_PATH).mock(return_value=respond("orders_updated_since_last_page"))
    page = connector.list_orders_changed(shop, since=datetime(2026, 3, 1, tzinfo=UTC))
    assert page.orders == ()
    assert page.next_cursor is None
    assert page.high_water_mark is None


def test_order_with_more_lines_fetches_the_next_line_pages(
    connector: ShopifyConnector, shop: ShopContext, shopify: respx.MockRouter
) -> None:
    """``Order.lineItems`` is a connection (https://shopify.dev/docs/api/admin-graphql/latest/objects/Order#field-Order.fields.lineItems):
    an order whose first line page says ``hasNextPage`` is completed with ORDER_LINE_ITEMS."""
    route = shopify.post(GRAPHQL_PATH).mock(
        side_effect=by_operation(
            {
                "OrdersUpdatedSince": "orders_updated_since_page1",
                "OrderLineItems": "order_line_items_page2",
            }
        )
    )
    page = connector.list_orders_changed(shop, since=datetime(2026, 3, 1, tzinfo=UTC))

    assert [operation(call.request) for call in route.calls] == [
        "OrdersUpdatedSince",
        "OrderLineItems",
    ]
    assert sent(route.calls[1].request)["variables"] == {
        "id": "gid://shopify/Order/5766689127210",
        "first": queries.LINE_ITEMS_PAGE_SIZE,
        "after": "eyJsYXN0X2lkIjoxNDQ2NjQ0NjAwMDE0Nn0=",
    }
    mug, cap = page.orders[1].lines
    assert (mug.external_line_id, mug.quantity) == ("gid://shopify/LineItem/14466446000146", 0)
    assert (cap.external_line_id, cap.quantity, cap.unit_price) == (
        "gid://shopify/LineItem/14466446032914",
        2,
        Decimal("24.00"),
    )


def test_get_order_that_does_not_exist_is_not_found(
    connector: ShopifyConnector, shop: ShopContext, shopify: respx.MockRouter
) -> None:
    """``order(id:)`` returns null for an unknown id
    (https://shopify.dev/docs/api/admin-graphql/latest/queries/order)."""
    shopify.post(GRAPHQL_PATH).mock(return_value=respond("order_by_id_missing"))
    with pytest.raises(NotFound, match="gid://shopify/Order/1"):
        connector.get_order(shop, "gid://shopify/Order/1")


def test_money_is_never_a_float() -> None:
    """Decimal amounts are strings (https://shopify.dev/docs/api/admin-graphql/latest/scalars/Decimal):
    a float is refused instead of rounded."""
    assert mappers.money("19.99") == Decimal("19.99")
    with pytest.raises(mappers.ShopifyPayloadError):
        mappers.money(19.99)
    with pytest.raises(mappers.ShopifyPayloadError):
        mappers.money("nineteen")


# --------------------------------------------------------------------------------------------
# Listings and stock
# --------------------------------------------------------------------------------------------


def test_listings_map_variants_and_page(
    connector: ShopifyConnector, shop: ShopContext, shopify: respx.MockRouter
) -> None:
    """``productVariants`` per https://shopify.dev/docs/api/admin-graphql/latest/queries/productVariants
    (``price`` is a Money string, ``inventoryItem`` the stock handle)."""
    route = shopify.post(GRAPHQL_PATH).mock(return_value=respond("product_variants"))
    page = connector.list_listings(shop, cursor="c1")

    tee, mug = page.variants
    assert tee.listing_id == "gid://shopify/Product/8021234567186"
    assert tee.variant_id == "gid://shopify/ProductVariant/44012345678098"
    assert tee.inventory_item_id == "gid://shopify/InventoryItem/46098765432082"
    assert (tee.sku, tee.title, tee.price) == (
        "TEE-WHT-M-ORBIT",
        "Orbit Tee / White / M",
        Decimal("19.99"),
    )
    assert (mug.sku, mug.title, mug.price) == (None, "Orbit Mug", Decimal("12.50"))
    assert page.next_cursor == "eyJsYXN0X2lkIjo0NDAxMjM0NTcxMDg2Nn0="
    assert sent(route.calls[0].request)["variables"] == {"first": 100, "after": "c1"}


def test_stock_push_sends_key_and_compare_and_swap(
    connector: ShopifyConnector, shop: ShopContext, shopify: respx.MockRouter
) -> None:
    """``inventorySetQuantities`` per https://shopify.dev/docs/api/admin-graphql/latest/mutations/inventorySetQuantities
    and ``InventoryQuantityInput.changeFromQuantity`` (null skips the check) per
    https://shopify.dev/docs/api/admin-graphql/latest/input-objects/InventoryQuantityInput."""
    route = shopify.post(GRAPHQL_PATH).mock(return_value=respond("inventory_set_quantities"))
    levels = [
        StockLevel("gid://shopify/InventoryItem/46098765432082", quantity=5, expected_quantity=7),
        StockLevel("gid://shopify/InventoryItem/46098765464850", quantity=0),
    ]
    result = connector.set_stock_levels(shop, levels, idempotency_key="push-3f2a9c")

    assert result.applied == tuple(level.item_id for level in levels)
    body = sent(route.calls[0].request)
    assert "@idempotent(key: $key)" in body["query"]
    assert body["variables"]["key"] == "push-3f2a9c"
    assert body["variables"]["input"] == {
        "name": "available",
        "reason": "correction",
        "quantities": [
            {
                "inventoryItemId": "gid://shopify/InventoryItem/46098765432082",
                "locationId": LOCATION,
                "quantity": 5,
                "changeFromQuantity": 7,
            },
            {
                "inventoryItemId": "gid://shopify/InventoryItem/46098765464850",
                "locationId": LOCATION,
                "quantity": 0,
                "changeFromQuantity": None,
            },
        ],
    }


def test_stock_push_takes_250_and_refuses_251(
    connector: ShopifyConnector, shop: ShopContext, shopify: respx.MockRouter
) -> None:
    """Input arrays hold at most 250 items (https://shopify.dev/docs/api/usage/limits)."""
    route = shopify.post(GRAPHQL_PATH).mock(return_value=respond("inventory_set_quantities"))
    levels = [StockLevel(f"gid://shopify/InventoryItem/{n}", quantity=1) for n in range(251)]
    with pytest.raises(ValueError, match="at most 250"):
        connector.set_stock_levels(shop, levels, idempotency_key="too-many")
    assert route.call_count == 0

    connector.set_stock_levels(shop, levels[:250], idempotency_key="just-right")
    assert len(sent(route.calls[0].request)["variables"]["input"]["quantities"]) == 250


def test_stale_compare_and_swap_raises_stale_stock(
    connector: ShopifyConnector, shop: ShopContext, shopify: respx.MockRouter
) -> None:
    """CHANGE_FROM_QUANTITY_STALE per
    https://shopify.dev/docs/api/admin-graphql/latest/enums/InventorySetQuantitiesUserErrorCode."""
    shopify.post(GRAPHQL_PATH).mock(return_value=respond("inventory_set_quantities_stale"))
    level = StockLevel(
        "gid://shopify/InventoryItem/46098765432082", quantity=5, expected_quantity=7
    )
    with pytest.raises(StaleStock, match="nothing was applied"):
        connector.set_stock_levels(shop, [level], idempotency_key="k1")


def test_other_stock_user_errors_are_permanent_with_shopifys_message(
    connector: ShopifyConnector, shop: ShopContext, shopify: respx.MockRouter
) -> None:
    """INVALID_INVENTORY_ITEM per
    https://shopify.dev/docs/api/admin-graphql/latest/objects/InventorySetQuantitiesUserError."""
    shopify.post(GRAPHQL_PATH).mock(return_value=respond("inventory_set_quantities_invalid_item"))
    level = StockLevel("gid://shopify/InventoryItem/1", quantity=5)
    with pytest.raises(PermanentError) as caught:
        connector.set_stock_levels(shop, [level], idempotency_key="k2")
    assert "The specified inventory item could not be found." in caught.value.marketplace_message
    assert not isinstance(caught.value, StaleStock)


def test_read_stock_levels(
    connector: ShopifyConnector, shop: ShopContext, shopify: respx.MockRouter
) -> None:
    """``nodes(ids:)`` (https://shopify.dev/docs/api/admin-graphql/latest/queries/nodes) with
    ``InventoryItem.inventoryLevel(locationId:).quantities(names:)``
    (https://shopify.dev/docs/api/admin-graphql/latest/objects/InventoryLevel); an item not
    stocked at the location has a null level and is left out."""
    route = shopify.post(GRAPHQL_PATH).mock(return_value=respond("inventory_levels"))
    ids = [
        "gid://shopify/InventoryItem/46098765432082",
        "gid://shopify/InventoryItem/46098765464850",
        "gid://shopify/InventoryItem/404",
    ]
    assert connector.read_stock_levels(shop, ids) == {
        "gid://shopify/InventoryItem/46098765432082": 7
    }
    assert sent(route.calls[0].request)["variables"] == {"ids": ids, "locationId": LOCATION}


# --------------------------------------------------------------------------------------------
# Images and fulfillment
# --------------------------------------------------------------------------------------------


def test_image_replacement_reads_detaches_then_adds(
    connector: ShopifyConnector, shop: ShopContext, shopify: respx.MockRouter
) -> None:
    """``fileUpdate`` with ``referencesToRemove``
    (https://shopify.dev/docs/api/admin-graphql/latest/mutations/fileUpdate), then ``productUpdate``
    with ``media: [CreateMediaInput]``
    (https://shopify.dev/docs/api/admin-graphql/latest/mutations/productUpdate)."""
    route = shopify.post(GRAPHQL_PATH).mock(
        side_effect=by_operation(
            {
                "ProductMedia": "product_media",
                "DetachMedia": "file_update",
                "AddProductMedia": "product_update_media",
            }
        )
    )
    product = "gid://shopify/Product/8021234567186"
    images = [
        ImageRef("https://hub.example/r/a1b2.png?sig=x", alt="Orbit Tee, white, front"),
        ImageRef("https://hub.example/r/c3d4.png?sig=y", alt="Orbit Tee, white, on model"),
    ]
    new_ids = connector.replace_listing_images(shop, product, images)

    assert [operation(call.request) for call in route.calls] == [
        "ProductMedia",
        "DetachMedia",
        "AddProductMedia",
    ]
    assert sent(route.calls[1].request)["variables"] == {
        "files": [
            {"id": "gid://shopify/MediaImage/30712345678098", "referencesToRemove": [product]},
            {"id": "gid://shopify/MediaImage/30712345710866", "referencesToRemove": [product]},
        ]
    }
    assert sent(route.calls[2].request)["variables"] == {
        "product": {"id": product},
        "media": [
            {"originalSource": image.url, "alt": image.alt, "mediaContentType": "IMAGE"}
            for image in images
        ],
    }
    assert new_ids == (
        "gid://shopify/MediaImage/30712399999762",
        "gid://shopify/MediaImage/30712400032530",
    )


def test_fulfillment_with_existing_tracking_number_is_not_written_twice(
    connector: ShopifyConnector, shop: ShopContext, shopify: respx.MockRouter
) -> None:
    """``Order.fulfillments`` with ``trackingInfo`` per
    https://shopify.dev/docs/api/admin-graphql/latest/objects/Fulfillment; a cancelled one does
    not count."""
    route = shopify.post(GRAPHQL_PATH).mock(
        side_effect=by_operation(
            {
                "OrderFulfillmentState": "order_fulfillment_state_shipped",
                "FulfillmentCreate": "fulfillment_create",
            }
        )
    )
    request = FulfillmentRequest(
        order_external_id="gid://shopify/Order/5766689095442",
        lines=(FulfillmentLineRef("gid://shopify/LineItem/14466445934610", 2),),
        carrier="UPS",
        tracking_number="1Z999AA10123456784",
    )
    result = connector.create_fulfillment(shop, request)

    assert result.external_id == "gid://shopify/Fulfillment/5371234599954"
    assert result.already_existed is True
    assert [operation(call.request) for call in route.calls] == ["OrderFulfillmentState"]


def test_fulfillment_is_created_for_open_fulfillment_order_lines(
    connector: ShopifyConnector, shop: ShopContext, shopify: respx.MockRouter
) -> None:
    """``fulfillmentCreate(fulfillment: FulfillmentInput!)`` per
    https://shopify.dev/docs/api/admin-graphql/latest/mutations/fulfillmentCreate with
    ``lineItemsByFulfillmentOrder`` per
    https://shopify.dev/docs/api/admin-graphql/latest/input-objects/FulfillmentOrderLineItemsInput."""
    route = shopify.post(GRAPHQL_PATH).mock(
        side_effect=by_operation(
            {
                "OrderFulfillmentState": "order_fulfillment_state_open",
                "FulfillmentCreate": "fulfillment_create",
            }
        )
    )
    request = FulfillmentRequest(
        order_external_id="gid://shopify/Order/5766689095442",
        lines=(FulfillmentLineRef("gid://shopify/LineItem/14466445934610", 2),),
        carrier="UPS",
        tracking_number="1Z999AA10123456784",
        tracking_url="https://www.ups.com/track?tracknum=1Z999AA10123456784",
        notify_customer=False,
    )
    result = connector.create_fulfillment(shop, request)

    assert (result.external_id, result.already_existed) == (
        "gid://shopify/Fulfillment/5371234632722",
        False,
    )
    assert sent(route.calls[1].request)["variables"] == {
        "fulfillment": {
            "lineItemsByFulfillmentOrder": [
                {
                    "fulfillmentOrderId": "gid://shopify/FulfillmentOrder/6881234567186",
                    "fulfillmentOrderLineItems": [
                        {
                            "id": "gid://shopify/FulfillmentOrderLineItem/14891234567186",
                            "quantity": 2,
                        }
                    ],
                }
            ],
            "trackingInfo": {
                "company": "UPS",
                "number": "1Z999AA10123456784",
                "url": "https://www.ups.com/track?tracknum=1Z999AA10123456784",
            },
            "notifyCustomer": False,
        }
    }


def test_fulfillment_write_that_times_out_is_not_resent(
    connector: ShopifyConnector, shop: ShopContext, shopify: respx.MockRouter
) -> None:
    """``fulfillmentCreate`` documents no idempotency key
    (https://shopify.dev/docs/api/admin-graphql/latest/mutations/fulfillmentCreate): after a
    timeout it is not re-sent inline; the next attempt reads the order's fulfillments first."""
    calls: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(operation(request))
        if calls[-1] == "FulfillmentCreate":
            raise httpx.ReadTimeout("read timed out")
        return respond("order_fulfillment_state_open")

    shopify.post(GRAPHQL_PATH).mock(side_effect=answer)
    request = FulfillmentRequest(
        order_external_id="gid://shopify/Order/5766689095442",
        lines=(FulfillmentLineRef("gid://shopify/LineItem/14466445934610", 1),),
        carrier="UPS",
        tracking_number="1Z999AA10123456784",
    )
    with pytest.raises(TransientError, match="timed out"):
        connector.create_fulfillment(shop, request)
    assert calls == ["OrderFulfillmentState", "FulfillmentCreate"]


def test_fulfillment_of_more_than_remains_is_permanent(
    connector: ShopifyConnector, shop: ShopContext, shopify: respx.MockRouter
) -> None:
    """``FulfillmentOrderLineItem.remainingQuantity`` per
    https://shopify.dev/docs/api/admin-graphql/latest/objects/FulfillmentOrderLineItem."""
    route = shopify.post(GRAPHQL_PATH).mock(return_value=respond("order_fulfillment_state_open"))
    request = FulfillmentRequest(
        order_external_id="gid://shopify/Order/5766689095442",
        lines=(FulfillmentLineRef("gid://shopify/LineItem/14466445934610", 3),),
        carrier="UPS",
        tracking_number="1Z-new",
    )
    with pytest.raises(PermanentError, match="too little left to fulfil"):
        connector.create_fulfillment(shop, request)
    assert route.call_count == 1


# --------------------------------------------------------------------------------------------
# Error classification and rate limits
# --------------------------------------------------------------------------------------------


def _orders(connector: ShopifyConnector, shop: ShopContext) -> Any:
    return connector.list_orders_changed(shop, since=datetime(2026, 3, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    ("status", "name", "error"),
    [
        (401, "http_401", AuthError),
        (403, "http_403", AuthError),
        (404, "http_404", NotFound),
        (422, "http_422", PermanentError),
    ],
)
def test_http_errors_are_classified(
    connector: ShopifyConnector,
    shop: ShopContext,
    shopify: respx.MockRouter,
    status: int,
    name: str,
    error: type[Exception],
) -> None:
    """Status codes per https://shopify.dev/docs/api/usage/response-codes, bodies as sent."""
    route = shopify.post(GRAPHQL_PATH).mock(return_value=respond(name, status))
    with pytest.raises(error) as caught:
        _orders(connector, shop)
    assert getattr(caught.value, "status", None) == status
    assert route.call_count == 1  # never retried
    assert TOKEN not in str(caught.value)


@pytest.mark.parametrize(
    ("retry_after", "low", "high"),
    [("7", 7.0, 7.0), ("in 120 s, as an HTTP date", 100.0, 121.0)],
)
def test_http_429_carries_retry_after(
    connector: ShopifyConnector,
    shop: ShopContext,
    shopify: respx.MockRouter,
    retry_after: str,
    low: float,
    high: float,
) -> None:
    """429 with ``Retry-After`` in seconds or as an HTTP date
    (https://shopify.dev/docs/api/usage/response-codes)."""
    if not retry_after.isdigit():  # built now, not at collection: the date must lie ahead
        retry_after = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    route = shopify.post(GRAPHQL_PATH).mock(
        return_value=respond("http_429", 429, {"Retry-After": retry_after})
    )
    with pytest.raises(RateLimited) as caught:
        _orders(connector, shop)
    assert caught.value.retry_after is not None
    assert low <= caught.value.retry_after <= high
    assert route.call_count == 1


def test_brief_5xx_is_retried_quickly_then_succeeds(
    connector: ShopifyConnector, shop: ShopContext, shopify: respx.MockRouter, sleeps: Sleeps
) -> None:
    """503 and 502 are transient (https://shopify.dev/docs/api/usage/response-codes)."""
    route = shopify.post(GRAPHQL_PATH).mock(
        side_effect=[
            httpx.Response(503, text="Service Unavailable"),
            httpx.Response(502, text="<html>Bad Gateway</html>"),
            respond("orders_updated_since_last_page"),
        ]
    )
    assert _orders(connector, shop).orders == ()
    assert route.call_count == 3
    assert len(sleeps.waits) == 2
    assert all(wait <= 1.0 for wait in sleeps.waits)


def test_persistent_5xx_becomes_transient_error(
    connector: ShopifyConnector, shop: ShopContext, shopify: respx.MockRouter
) -> None:
    """502 on every attempt (https://shopify.dev/docs/api/usage/response-codes)."""
    route = shopify.post(GRAPHQL_PATH).mock(return_value=httpx.Response(502, text="Bad Gateway"))
    with pytest.raises(TransientError) as caught:
        _orders(connector, shop)
    assert not isinstance(caught.value, RateLimited)
    assert caught.value.status == 502
    assert route.call_count == 3


def test_503_asking_for_a_long_wait_leaves_the_thread(
    connector: ShopifyConnector, shop: ShopContext, shopify: respx.MockRouter
) -> None:
    """A 503 whose Retry-After exceeds a second is not retried inline
    (https://shopify.dev/docs/api/usage/response-codes)."""
    route = shopify.post(GRAPHQL_PATH).mock(
        return_value=httpx.Response(503, text="Service Unavailable", headers={"Retry-After": "30"})
    )
    with pytest.raises(TransientError) as caught:
        _orders(connector, shop)
    assert caught.value.retry_after == 30.0
    assert route.call_count == 1


def test_timeouts_are_retried_then_transient(
    connector: ShopifyConnector, shop: ShopContext, shopify: respx.MockRouter
) -> None:
    """A read timeout is a transport failure: quick retries, then TransientError
    (https://www.python-httpx.org/exceptions/, ReadTimeout)."""
    route = shopify.post(GRAPHQL_PATH).mock(side_effect=httpx.ReadTimeout("read timed out"))
    with pytest.raises(TransientError, match="timed out"):
        _orders(connector, shop)
    assert route.call_count == 3


def test_throttled_in_a_200_body_is_rate_limited(
    connector: ShopifyConnector,
    shop: ShopContext,
    shopify: respx.MockRouter,
    limiter: InProcessRateLimiter,
) -> None:
    """THROTTLED with ``extensions.cost.throttleStatus`` per
    https://shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits: wait for
    (requested - currentlyAvailable) / restoreRate = (954 - 154) / 100 seconds."""
    route = shopify.post(GRAPHQL_PATH).mock(return_value=respond("throttled"))
    with pytest.raises(RateLimited) as caught:
        _orders(connector, shop)
    assert caught.value.retry_after == pytest.approx(8.0)
    assert route.call_count == 1
    assert limiter.available(COST_BUCKET, SHOP_DOMAIN) == 154


def test_throttle_status_is_fed_back_to_the_limiter(
    connector: ShopifyConnector,
    shop: ShopContext,
    shopify: respx.MockRouter,
    limiter: InProcessRateLimiter,
) -> None:
    """Every response's ``extensions.cost.throttleStatus`` becomes the limiter's view of the
    bucket (https://shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits)."""
    shopify.post(GRAPHQL_PATH).mock(return_value=respond("product_variants"))
    connector.list_listings(shop)
    assert limiter.available(COST_BUCKET, SHOP_DOMAIN) == 1992


def test_spent_bucket_raises_before_sending(
    connector: ShopifyConnector,
    shop: ShopContext,
    shopify: respx.MockRouter,
    limiter: InProcessRateLimiter,
) -> None:
    """The requested cost must fit the bucket before the query runs
    (https://shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits)."""
    route = shopify.post(GRAPHQL_PATH).mock(return_value=respond("orders_updated_since_last_page"))
    limiter.feedback(COST_BUCKET, SHOP_DOMAIN, available=100, capacity=1000, restore_per_second=100)
    with pytest.raises(RateLimited) as caught:
        _orders(connector, shop)
    assert caught.value.retry_after == pytest.approx((954 - 100) / 100)
    assert route.call_count == 0


@pytest.mark.parametrize(
    ("name", "error", "calls"),
    [
        ("access_denied", AuthError, 1),
        ("max_cost_exceeded", PermanentError, 1),
        ("internal_server_error", TransientError, 3),
    ],
)
def test_graphql_errors_in_a_200_body_are_classified(
    connector: ShopifyConnector,
    shop: ShopContext,
    shopify: respx.MockRouter,
    name: str,
    error: type[Exception],
    calls: int,
) -> None:
    """Top-level ``errors[].extensions.code`` in a 200 per the GraphQL Admin API's status and
    error codes (https://shopify.dev/docs/api/admin-graphql/latest#status_and_error_codes)."""
    route = shopify.post(GRAPHQL_PATH).mock(return_value=respond(name))
    with pytest.raises(error) as caught:
        _orders(connector, shop)
    message = payload(name)["errors"][0]["message"]
    assert message[:40] in str(caught.value)
    assert route.call_count == calls


def test_missing_access_token_is_an_auth_error_without_a_request(
    connector: ShopifyConnector, shopify: respx.MockRouter
) -> None:
    """Every Admin API call needs ``X-Shopify-Access-Token`` (https://shopify.dev/docs/api/admin-graphql)."""
    route = shopify.post(GRAPHQL_PATH).mock(return_value=respond("orders_updated_since_last_page"))
    tokenless = ShopContext(shop_id=13, external_id=SHOP_DOMAIN, credentials={})
    with pytest.raises(AuthError, match="no access token"):
        _orders(connector, tokenless)
    assert route.call_count == 0


def test_sandbox_base_url_is_used_when_set(connector: ShopifyConnector) -> None:
    """``shop.api_base_url`` replaces ``https://{shop}`` (sandboxes, recorded tests)."""
    sandbox = ShopContext(
        shop_id=14,
        external_id=SHOP_DOMAIN,
        credentials={"access_token": TOKEN},
        api_base_url="http://127.0.0.1:8765/",
    )
    with respx.mock(base_url="http://127.0.0.1:8765") as router:
        route = router.post(GRAPHQL_PATH).mock(
            return_value=respond("orders_updated_since_last_page")
        )
        _orders(connector, sandbox)
    assert route.call_count == 1


# --------------------------------------------------------------------------------------------
# Webhooks
# --------------------------------------------------------------------------------------------


def webhook_headers(body: bytes, secret: str = SECRET, **extra: str) -> dict[str, str]:
    headers = {
        "X-Shopify-Hmac-Sha256": signature(body, secret),
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Shop-Domain": SHOP_DOMAIN,
        "X-Shopify-API-Version": "2026-04",
        "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        "X-Shopify-Event-Id": "98880550-7158-44d4-b7cd-2c97c8a091b5",
        "X-Shopify-Triggered-At": "2026-03-02T10:00:01.123456789Z",
    }
    headers.update(extra)
    return headers


def test_valid_webhook_is_read(connector: ShopifyConnector) -> None:
    """Signature per https://shopify.dev/docs/apps/build/webhooks/verify-deliveries, headers per
    https://shopify.dev/docs/apps/build/webhooks/delivery-structure, payload per the orders/create
    example of https://shopify.dev/docs/api/webhooks/latest?reference=toml#list-of-topics-orders/create."""
    body = raw_payload("webhook_orders_create")
    envelope = connector.verify_webhook(body, webhook_headers(body))

    assert envelope.event_key == "98880550-7158-44d4-b7cd-2c97c8a091b5"
    assert envelope.topic == "orders/create"
    assert envelope.shop_reference == SHOP_DOMAIN
    assert envelope.resource_id == "gid://shopify/Order/820982911946154508"
    assert envelope.occurred_at == datetime(2026, 3, 2, 10, 0, 1, 123456, tzinfo=UTC)
    assert envelope.payload is not None
    assert envelope.payload["total_price"] == "403.00"
    assert envelope.payload["id"] == 820982911946154508


def test_webhook_headers_are_case_insensitive(connector: ShopifyConnector) -> None:
    """ "Treat header names as case-insensitive" (https://shopify.dev/docs/apps/build/webhooks/delivery-structure)."""
    body = raw_payload("webhook_orders_create")
    lowered = {name.lower(): value for name, value in webhook_headers(body).items()}
    assert connector.verify_webhook(body, lowered).topic == "orders/create"


def test_tampered_body_is_rejected(connector: ShopifyConnector) -> None:
    """The HMAC covers the raw body (https://shopify.dev/docs/apps/build/webhooks/verify-deliveries)."""
    body = raw_payload("webhook_orders_create")
    headers = webhook_headers(body)
    with pytest.raises(WebhookRejected) as caught:
        connector.verify_webhook(body.replace(b"403.00", b"4.03"), headers)
    assert SECRET not in str(caught.value)
    assert headers["X-Shopify-Hmac-Sha256"] not in str(caught.value)


def test_wrong_secret_is_rejected(connector: ShopifyConnector) -> None:
    """Signed with another app's secret (https://shopify.dev/docs/apps/build/webhooks/verify-deliveries)."""
    body = raw_payload("webhook_orders_create")
    with pytest.raises(WebhookRejected):
        connector.verify_webhook(body, webhook_headers(body, secret="someone-else"))


def test_missing_signature_is_rejected(connector: ShopifyConnector) -> None:
    """Every HTTPS delivery carries X-Shopify-Hmac-Sha256
    (https://shopify.dev/docs/apps/build/webhooks/delivery-structure)."""
    body = raw_payload("webhook_orders_create")
    headers = webhook_headers(body)
    del headers["X-Shopify-Hmac-Sha256"]
    with pytest.raises(WebhookRejected, match="missing"):
        connector.verify_webhook(body, headers)


def test_previous_secret_is_accepted_during_rotation(connector: ShopifyConnector) -> None:
    """ "If you rotate your app's client secret, it can take up to an hour" before the new one is
    used (https://shopify.dev/docs/apps/build/webhooks/verify-deliveries)."""
    body = raw_payload("webhook_orders_create")
    envelope = connector.verify_webhook(body, webhook_headers(body, secret=PREVIOUS_SECRET))
    assert envelope.event_key == "98880550-7158-44d4-b7cd-2c97c8a091b5"


def test_verified_body_that_is_not_json_is_kept_without_payload(
    connector: ShopifyConnector,
) -> None:
    """A signed but unparseable body is Shopify's delivery, not a forgery: the envelope keeps
    the event id header (https://shopify.dev/docs/apps/build/webhooks/ignore-duplicates)."""
    body = b'{"id": 820982911946154508, "total_price": "403.'  # cut short
    envelope = connector.verify_webhook(body, webhook_headers(body))
    assert envelope.payload is None
    assert envelope.resource_id is None
    assert envelope.event_key == "98880550-7158-44d4-b7cd-2c97c8a091b5"
    assert envelope.topic == "orders/create"


def test_event_key_falls_back_to_the_webhook_id(connector: ShopifyConnector) -> None:
    """X-Shopify-Webhook-Id when no X-Shopify-Event-Id is sent
    (https://shopify.dev/docs/apps/build/webhooks/delivery-structure)."""
    body = raw_payload("webhook_orders_create")
    headers = webhook_headers(body)
    del headers["X-Shopify-Event-Id"]
    assert (
        connector.verify_webhook(body, headers).event_key == "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
    )


def test_app_uninstalled_names_the_shop(connector: ShopifyConnector) -> None:
    """app/uninstalled sends the shop resource (https://shopify.dev/docs/api/webhooks/latest?reference=toml#list-of-topics-app/uninstalled)."""
    body = raw_payload("webhook_app_uninstalled")
    envelope = connector.verify_webhook(
        body, webhook_headers(body, **{"X-Shopify-Topic": "app/uninstalled"})
    )
    assert envelope.topic == "app/uninstalled"
    assert envelope.resource_id == SHOP_DOMAIN
    assert envelope.shop_reference == SHOP_DOMAIN
