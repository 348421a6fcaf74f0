"""The Etsy connector against recorded responses shaped exactly like Etsy's documentation.

Each payload in ``payloads/etsy/`` follows the documented response of the operation it answers
(https://developers.etsy.com/documentation/reference); each test names the page it follows.
The sandbox is tested elsewhere: these tests keep the sandbox and the client from silently
agreeing on a wrong shape.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx

from connectors.contract import (
    AuthError,
    ConnectorConfig,
    FulfillmentLineRef,
    FulfillmentRequest,
    ImageRef,
    InMemoryCredentialStore,
    MarketplaceConnector,
    NotFound,
    PermanentError,
    RateLimited,
    ShopContext,
    StockLevel,
    TransientError,
    WebhookRejected,
)
from connectors.etsy import mappers, stock
from connectors.etsy.client import request_windows
from connectors.etsy.connector import EtsyConnector, create, order_poll_interval_seconds
from connectors.etsy.paging import OrderCursor
from connectors.etsy.webhooks import signature, signing_key
from connectors.ratelimit import InProcessRateLimiter
from hub.domain.shops import PushKind

PAYLOADS = Path(__file__).parent / "payloads" / "etsy"
BASE_URL = "https://api.etsy.com"
SHOP_ID = "27384951"
KEYSTRING = "1aa2bb33cc44dd55ee66ff77"
SHARED_SECRET = "s3cr3tsharedvalue"
ACCESS_TOKEN = "611004322.AccessTokenFromTheStore000001"
REFRESH_TOKEN = "611004322.RefreshTokenFromTheStore00001"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"etsy-recorded-current-key").decode()
PREVIOUS_WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"etsy-recorded-previous-key").decode()
NOW = 1772445600.0  # 2026-03-02T10:00:00Z
RECEIPTS = f"{BASE_URL}/v3/application/shops/{SHOP_ID}/receipts"
TEE, POSTER = "1487362910", "1487362911"


# --------------------------------------------------------------------------------------------
# Fixtures and helpers
# --------------------------------------------------------------------------------------------


def payload(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((PAYLOADS / f"{name}.json").read_text())
    return document


def respond(
    name: str | dict[str, Any], status: int = 200, headers: Mapping[str, str] | None = None
) -> httpx.Response:
    document = payload(name) if isinstance(name, str) else name
    return httpx.Response(status, json=document, headers=dict(headers or {}))


def logged(calls: list[str], name: str, document: str) -> Callable[[httpx.Request], httpx.Response]:
    """A respx side effect that notes ``name`` in ``calls`` (to check the order of calls)."""

    def answer(_request: httpx.Request) -> httpx.Response:
        calls.append(name)
        return respond(document)

    return answer


def form(request: httpx.Request) -> dict[str, str]:
    return {key: values[-1] for key, values in parse_qs(request.content.decode()).items()}


def sent_json(request: httpx.Request) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(request.content)
    return body


class Sleeps:
    """Records the quick-retry waits instead of sleeping, so tests stay fast."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def shop_context(**credentials: Any) -> ShopContext:
    return ShopContext(
        shop_id=12,
        external_id=SHOP_ID,
        credentials={
            "access_token": ACCESS_TOKEN,
            "refresh_token": REFRESH_TOKEN,
            "expires_at": int(NOW) + 3000,
            **credentials,
        },
    )


def config(**extra: Any) -> ConnectorConfig:
    return ConnectorConfig(
        app_credentials={
            "keystring": KEYSTRING,
            "shared_secret": SHARED_SECRET,
            "webhook_secret": WEBHOOK_SECRET,
            "webhook_secret_previous": PREVIOUS_WEBHOOK_SECRET,
            "requests_per_second": 1000,
            "requests_per_day": 100_000,
            **extra,
        }
    )


@pytest.fixture
def shop() -> ShopContext:
    return shop_context()


@pytest.fixture
def limiter() -> InProcessRateLimiter:
    """No inline waiting and a frozen clock: the windows hold exactly what they were told."""
    return InProcessRateLimiter(max_inline_wait=0, clock=lambda: 0.0)


@pytest.fixture
def store() -> InMemoryCredentialStore:
    return InMemoryCredentialStore()


@pytest.fixture
def monotonic() -> Clock:
    return Clock(1000.0)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def connector(
    limiter: InProcessRateLimiter, store: InMemoryCredentialStore, monotonic: Clock, sleeps: Sleeps
) -> Iterator[EtsyConnector]:
    instance = EtsyConnector(
        config(),
        rate_limiter=limiter,
        credential_store=store,
        sleep=sleeps,
        clock=Clock(NOW),
        monotonic=monotonic,
    )
    yield instance
    instance.close()


@pytest.fixture
def etsy() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        yield router


# --------------------------------------------------------------------------------------------
# Factory and capabilities
# --------------------------------------------------------------------------------------------


def test_factory_builds_a_connector_with_etsy_capabilities() -> None:
    """The entry-point factory; image limits from https://github.com/etsy/open-api/issues/606
    and the ListingImage schema (url_fullxfull up to 3000 px)."""
    connector = create(config())
    try:
        assert isinstance(connector, MarketplaceConnector)
        caps = connector.capabilities
        assert caps.marketplace == "etsy"
        assert caps.push_kinds == (PushKind.LISTING, PushKind.IMAGES)
        assert caps.stock_batch_size == 400  # items of one listing per call
        assert caps.images.max_images == 10
        assert (caps.images.max_width, caps.images.max_height) == (3000, 3000)
        assert caps.images.formats == ("jpeg", "png", "gif")
        assert caps.images.max_pixels is None
        assert caps.images.max_bytes is None
        assert caps.as_dict()["rate_limit"] == "request_window"
        assert caps.as_dict()["webhook_management"] == "manual"
        assert caps.orders_sorted_by_update is True
        for secret in (SHARED_SECRET, WEBHOOK_SECRET, KEYSTRING):
            assert secret not in repr(connector)
    finally:
        connector.close()


def test_request_windows_default_to_etsys_and_follow_the_app() -> None:
    """10 per second and 10,000 per day unless the app was granted more
    (https://developers.etsy.com/documentation/essentials/rate-limits)."""
    assert [limit for limit, _ in request_windows({}).windows] == [10, 10_000]
    raised = request_windows({"requests_per_second": 150, "requests_per_day": 100_000})
    assert [limit for limit, _ in raised.windows] == [150, 100_000]


def test_order_poll_interval_shares_the_daily_budget() -> None:
    assert order_poll_interval_seconds(10, 10_000) == pytest.approx(288.0)
    assert order_poll_interval_seconds(0, 10_000, share=1.0) == pytest.approx(8.64)
    assert order_poll_interval_seconds(3, 100_000, calls_per_poll=2) == pytest.approx(17.28)
    with pytest.raises(ValueError, match="requests_per_day"):
        order_poll_interval_seconds(1, 0)


# --------------------------------------------------------------------------------------------
# Orders
# --------------------------------------------------------------------------------------------


def test_a_receipt_maps_field_by_field(
    connector: EtsyConnector, shop: ShopContext, etsy: respx.MockRouter
) -> None:
    """getShopReceipt (https://developers.etsy.com/documentation/reference#operation/getShopReceipt):
    Money with divisor 100, status "Paid" verbatim, an empty SKU, epoch timestamps; both auth
    headers sent."""
    route = etsy.get(f"{RECEIPTS}/3401928374").mock(return_value=respond("receipt_paid_usd"))
    order = connector.get_order(shop, "3401928374")

    request = route.calls.last.request
    assert request.headers["authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert request.headers["x-api-key"] == f"{KEYSTRING}:{SHARED_SECRET}"
    assert order.shop_id == 12
    assert (order.external_id, order.external_number) == ("3401928374", "3401928374")
    assert order.external_status == "Paid"
    assert (order.paid, order.cancelled, order.refunded, order.fulfilled) == (
        True,
        False,
        False,
        False,
    )
    assert order.currency == "USD"
    assert order.total == Decimal("60.31")
    assert order.placed_at == datetime(2026, 3, 2, 9, 15, tzinfo=UTC)
    assert order.external_updated_at == datetime(2026, 3, 2, 9, 20, tzinfo=UTC)
    assert order.customer_name == "Robin Example"
    assert order.customer_email == "buyer.one@example.com"
    assert order.shipping_address == {
        "name": "Robin Example",
        "line1": "221 Example Road",
        "line2": "Unit 4",
        "city": "Portland",
        "region": "OR",
        "postal_code": "97201",
        "country": "US",
    }
    tee, poster = order.lines
    assert (tee.external_line_id, tee.quantity, tee.unit_price) == (
        "4120938471",
        2,
        Decimal("16.41"),
    )
    assert (tee.sku, tee.external_listing_id, tee.external_variant_id) == (
        "TEE-BLK-M",
        TEE,
        "9870012345",
    )
    assert tee.title == "Orbit Tee - black"
    assert (poster.sku, poster.unit_price, str(poster.unit_price)) == (
        None,
        Decimal("22.50"),
        "22.50",
    )


def test_money_with_divisor_1_is_whole_yen(
    connector: EtsyConnector, shop: ShopContext, etsy: respx.MockRouter
) -> None:
    """Money {amount, divisor: 1, currency_code: JPY}
    (https://developers.etsy.com/documentation/reference, schema Money); a shipped, completed
    receipt is fulfilled."""
    etsy.get(f"{RECEIPTS}/3401928390").mock(return_value=respond("receipt_completed_jpy"))
    order = connector.get_order(shop, "3401928390")
    assert (order.currency, order.total, str(order.total)) == ("JPY", Decimal(3300), "3300")
    assert order.lines[0].unit_price == Decimal(2800)
    assert order.fulfilled
    assert order.paid
    assert order.shipping_address["country"] == "JP"


def test_money_is_exact_for_any_divisor() -> None:
    """amount / divisor exactly, never through a float (schema Money)."""
    assert mappers.money({"amount": 10, "divisor": 100, "currency_code": "EUR"}) == Decimal("0.10")
    assert str(mappers.money({"amount": 10, "divisor": 100, "currency_code": "EUR"})) == "0.10"
    assert mappers.money({"amount": 123456819, "divisor": 100}) == Decimal("1234568.19")
    assert mappers.money({"amount": 1641, "divisor": 1000}) == Decimal("1.641")
    assert mappers.money({"amount": 5, "divisor": 4}) == Decimal("1.25")
    for bad in (
        {"amount": 1, "divisor": 3},
        {"amount": 1.5, "divisor": 100},
        {"amount": 1, "divisor": 0},
        {"amount": True, "divisor": 100},
        None,
    ):
        with pytest.raises(mappers.EtsyPayloadError):
            mappers.money(bad)


@pytest.mark.parametrize(
    ("status", "flags"),
    [
        ("paid", (True, False, False)),
        ("PAID", (True, False, False)),
        (" Completed ", (True, False, False)),
        ("Canceled", (False, True, False)),
        ("payment processing", (False, False, False)),
        ("Open", (False, False, False)),
        ("Partially Refunded", (True, False, True)),
        ("FULLY REFUNDED", (True, False, True)),
    ],
)
def test_statuses_compare_case_insensitively(status: str, flags: tuple[bool, ...]) -> None:
    """ShopReceipt.status enum (https://developers.etsy.com/documentation/reference#operation/getShopReceipts);
    third-party data shows capitalised values, so casing never matters; the raw value stays
    verbatim."""
    receipt = payload("receipt_paid_usd")
    receipt.update(status=status, is_paid=False, is_shipped=False)
    order = mappers.map_receipt(receipt, shop_id=1)
    assert (order.paid, order.cancelled, order.refunded) == flags
    assert order.external_status == status


def test_refunds_flag_the_order_and_a_full_refund_empties_the_lines(
    connector: EtsyConnector, shop: ShopContext, etsy: respx.MockRouter
) -> None:
    """ShopReceipt.refunds (ShopRefund: amount, created_timestamp, reason, status): a partial
    refund cannot be pinned to a transaction, so quantities stay; a full one leaves none."""
    etsy.get(f"{RECEIPTS}/3401928401").mock(return_value=respond("receipt_partially_refunded"))
    order = connector.get_order(shop, "3401928401")
    assert order.refunded
    assert order.paid
    assert [line.quantity for line in order.lines] == [3]

    fully = payload("receipt_partially_refunded")
    fully["status"] = "fully refunded"
    assert [line.quantity for line in mappers.map_receipt(fully, shop_id=1).lines] == [0]
    with_refund_only = payload("receipt_paid_usd")
    with_refund_only["refunds"] = payload("receipt_partially_refunded")["refunds"]
    assert mappers.map_receipt(with_refund_only, shop_id=1).refunded


def test_the_first_page_asks_for_receipts_by_update_time(
    connector: EtsyConnector, shop: ShopContext, etsy: respx.MockRouter
) -> None:
    """getShopReceipts parameters
    (https://developers.etsy.com/documentation/reference#operation/getShopReceipts)."""
    route = etsy.get(RECEIPTS).mock(return_value=respond({"count": 0, "results": []}))
    page = connector.list_orders_changed(shop, since=datetime(2026, 3, 2, 9, 15, 0, 900, UTC))
    assert dict(route.calls.last.request.url.params) == {
        "min_last_modified": "1772442900",
        "sort_on": "updated",
        "sort_order": "asc",
        "limit": "100",
        "offset": "0",
    }
    assert page.orders == ()
    assert page.next_cursor is None
    assert page.high_water_mark is None


def test_a_scan_from_the_beginning_starts_at_etsys_earliest_timestamp(
    connector: EtsyConnector, shop: ShopContext, etsy: respx.MockRouter
) -> None:
    """min_last_modified has "minimum: 946684800" (getShopReceipts): an older ``since`` (a
    first backfill) is raised to it instead of being refused."""
    route = etsy.get(RECEIPTS).mock(return_value=respond({"count": 0, "results": []}))
    connector.list_orders_changed(shop, since=datetime(1970, 1, 1, tzinfo=UTC))
    assert route.calls.last.request.url.params["min_last_modified"] == "946684800"


def test_receipts_are_paged_by_time_and_duplicates_dropped(
    limiter: InProcessRateLimiter, shop: ShopContext, etsy: respx.MockRouter
) -> None:
    """Pages of 3 (getShopReceipts, ``{count, results}``): page 2 starts at the newest
    timestamp of page 1 and re-reads B and C (dropped); its receipts all share that timestamp,
    so page 3 steps by offset, overlapping by one; B changed meanwhile and comes back at its
    new time, and E, which the shift moved, is not skipped."""
    pages = {
        ("1772442900", "0"): "receipts_by_time_page1",
        ("1772443200", "0"): "receipts_by_time_page2",
        ("1772443200", "2"): "receipts_by_time_page3",
    }
    route = etsy.get(RECEIPTS).mock(
        side_effect=lambda request: respond(
            pages[(request.url.params["min_last_modified"], request.url.params["offset"])]
        )
    )
    connector = EtsyConnector(config(), rate_limiter=limiter, clock=Clock(NOW), orders_page_size=3)
    seen: list[list[str]] = []
    cursor: str | None = None
    for _ in range(5):
        page = connector.list_orders_changed(
            shop, since=datetime(2026, 3, 2, 9, 15, tzinfo=UTC), cursor=cursor
        )
        seen.append([order.external_id for order in page.orders])
        if page.orders:
            assert page.high_water_mark == max(o.external_updated_at for o in page.orders)
        cursor = page.next_cursor
        if cursor is None:
            break
    connector.close()
    a, b, c, d, e = (str(3401929001 + n) for n in range(5))
    assert seen == [[a, b, c], [d], [e, b]]
    assert route.call_count == 3
    assert all(call.request.url.params["limit"] == "3" for call in route.calls)


def test_a_foreign_cursor_is_refused(connector: EtsyConnector, shop: ShopContext) -> None:
    with pytest.raises(PermanentError, match="cursor"):
        connector.list_orders_changed(shop, since=datetime(2026, 1, 1, tzinfo=UTC), cursor="x")
    assert OrderCursor.decode(OrderCursor(5, 2, frozenset({9})).encode()) == OrderCursor(
        5, 2, frozenset({9})
    )


def test_a_missing_receipt_is_not_found(
    connector: EtsyConnector, shop: ShopContext, etsy: respx.MockRouter
) -> None:
    """404 with ErrorSchema ``{"error": ...}`` (getShopReceipt responses)."""
    etsy.get(f"{RECEIPTS}/3401928999").mock(return_value=respond("error_not_found", 404))
    with pytest.raises(NotFound):
        connector.get_order(shop, "3401928999")
    with pytest.raises(NotFound):
        connector.get_order(shop, "not-a-receipt")


# --------------------------------------------------------------------------------------------
# Listings
# --------------------------------------------------------------------------------------------


def test_active_listings_come_with_their_products(
    connector: EtsyConnector, shop: ShopContext, etsy: respx.MockRouter
) -> None:
    """getListingsByShop with ``includes=Inventory``
    (https://developers.etsy.com/documentation/reference#operation/getListingsByShop);
    a listing without the association costs one getListingInventory. Deleted products are
    left out; the variant id is the product id."""
    page = etsy.get(f"{BASE_URL}/v3/application/shops/{SHOP_ID}/listings").mock(
        return_value=respond("listings_active_page")
    )
    inventory = etsy.get(f"{BASE_URL}/v3/application/listings/{POSTER}/inventory").mock(
        return_value=respond("listing_inventory_single")
    )
    listed = connector.list_listings(shop)
    assert dict(page.calls.last.request.url.params) == {
        "state": "active",
        "limit": "100",
        "offset": "0",
        "includes": "Inventory",
    }
    assert inventory.call_count == 1
    assert [
        (v.listing_id, v.variant_id, v.inventory_item_id, v.sku, v.title, v.price)
        for v in listed.variants
    ] == [
        (TEE, "9870012344", None, "TEE-BLK-S", "Orbit Tee - black / S", Decimal("16.41")),
        (TEE, "9870012345", None, "TEE-BLK-M", "Orbit Tee - black / M", Decimal("17.50")),
        (POSTER, "9870012399", None, None, "Poster A3", Decimal("22.50")),
    ]
    assert listed.next_cursor is None


# --------------------------------------------------------------------------------------------
# Stock
# --------------------------------------------------------------------------------------------


def inventory_route(
    etsy: respx.MockRouter, listing_id: str, document: str | dict[str, Any]
) -> respx.Route:
    return etsy.get(f"{BASE_URL}/v3/application/listings/{listing_id}/inventory").mock(
        return_value=respond(document)
    )


def put_route(
    etsy: respx.MockRouter, listing_id: str, answer: str = "listing_inventory_updated"
) -> respx.Route:
    return etsy.put(f"{BASE_URL}/v3/application/listings/{listing_id}/inventory").mock(
        return_value=respond(answer)
    )


def state_route(etsy: respx.MockRouter, listing_id: str) -> respx.Route:
    return etsy.patch(f"{BASE_URL}/v3/application/shops/{SHOP_ID}/listings/{listing_id}").mock(
        return_value=respond("listing_updated_inactive")
    )


def test_the_inventory_write_is_the_read_one_with_one_quantity_changed(
    connector: EtsyConnector, shop: ShopContext, etsy: respx.MockRouter
) -> None:
    """getListingInventory?includes=Listing, then updateListingInventory
    (https://developers.etsy.com/documentation/reference#operation/updateListingInventory):
    read-only keys stripped (product_id, offering_id, is_deleted, scale_name, the listing),
    deleted products dropped, prices as the number amount/divisor and untouched,
    readiness_state_id and *_on_property kept."""
    read = inventory_route(etsy, TEE, "listing_inventory_sizes")
    write = put_route(etsy, TEE)
    result = connector.set_stock_levels(
        shop, [StockLevel(f"{TEE}:TEE-BLK-M", 3)], idempotency_key="k1"
    )
    assert result.applied == (f"{TEE}:TEE-BLK-M",)
    assert read.calls.last.request.url.params["includes"] == "Listing"
    body = sent_json(write.calls.last.request)
    size = {
        "property_id": 513,
        "property_name": "Size",
        "scale_id": 17,
        "value_ids": [1175062430],
        "values": ["S"],
    }
    assert body == {
        "price_on_property": [513],
        "quantity_on_property": [513],
        "sku_on_property": [513],
        "readiness_state_on_property": [],
        "products": [
            {
                "sku": "TEE-BLK-S",
                "property_values": [size],
                "offerings": [
                    {
                        "price": 16.41,
                        "quantity": 4,
                        "is_enabled": True,
                        "readiness_state_id": 1402336522,
                    }
                ],
            },
            {
                "sku": "TEE-BLK-M",
                "property_values": [{**size, "value_ids": [1175062431], "values": ["M"]}],
                "offerings": [
                    {
                        "price": 17.5,
                        "quantity": 3,
                        "is_enabled": True,
                        "readiness_state_id": 1402336522,
                    }
                ],
            },
        ],
    }
    assert read.call_count + write.call_count == 2


def test_an_offering_at_zero_is_disabled(
    connector: EtsyConnector, shop: ShopContext, etsy: respx.MockRouter
) -> None:
    """Other products keep stock, so only the offering goes: quantity 0, is_enabled false."""
    inventory_route(etsy, TEE, "listing_inventory_sizes")
    write = put_route(etsy, TEE)
    state = state_route(etsy, TEE)
    connector.set_stock_levels(shop, [StockLevel(f"{TEE}:TEE-BLK-M", 0)], idempotency_key="k")
    offerings = [p["offerings"][0] for p in sent_json(write.calls.last.request)["products"]]
    assert [(o["quantity"], o["is_enabled"]) for o in offerings] == [(4, True), (0, False)]
    assert not state.called


def test_all_zero_deactivates_the_listing_first_and_leaves_quantity_one(
    connector: EtsyConnector, shop: ShopContext, etsy: respx.MockRouter
) -> None:
    """Etsy refuses an inventory without an offering above 0
    (https://github.com/etsy/open-api/issues/560): updateListing state=inactive
    (https://developers.etsy.com/documentation/reference#operation/updateListing, form-encoded),
    then the inventory at 1."""
    inventory_route(etsy, POSTER, "listing_inventory_single")
    order: list[str] = []
    write = etsy.put(f"{BASE_URL}/v3/application/listings/{POSTER}/inventory").mock(
        side_effect=logged(order, "put", "listing_inventory_updated")
    )
    state = etsy.patch(f"{BASE_URL}/v3/application/shops/{SHOP_ID}/listings/{POSTER}").mock(
        side_effect=logged(order, "patch", "listing_updated_inactive")
    )
    connector.set_stock_levels(shop, [StockLevel(POSTER, 0)], idempotency_key="k")
    assert order == ["patch", "put"]
    assert form(state.calls.last.request) == {"state": "inactive"}
    offering = sent_json(write.calls.last.request)["products"][0]["offerings"][0]
    assert (offering["quantity"], offering["is_enabled"], offering["price"]) == (1, True, 22.5)


def test_all_zero_from_one_only_deactivates(
    connector: EtsyConnector, shop: ShopContext, etsy: respx.MockRouter
) -> None:
    """A listing already at quantity 1 needs no inventory write: two calls in all."""
    document = payload("listing_inventory_single")
    document["products"][0]["offerings"][0]["quantity"] = 1
    read = inventory_route(etsy, POSTER, document)
    write = put_route(etsy, POSTER)
    state = state_route(etsy, POSTER)
    connector.set_stock_levels(shop, [StockLevel(POSTER, 0)], idempotency_key="k")
    assert (read.call_count, write.call_count, state.call_count) == (1, 0, 1)


@pytest.mark.parametrize(
    ("state", "order"), [("inactive", ["put", "patch"]), ("sold_out", ["patch", "put"])]
)
def test_restock_reactivates_the_listing(
    connector: EtsyConnector,
    shop: ShopContext,
    etsy: respx.MockRouter,
    state: str,
    order: list[str],
) -> None:
    """ShopListing.state: setting a sold_out listing active sets its quantity to 1, so it is
    activated before the inventory is written; an inactive one after."""
    document = payload("listing_inventory_single")
    document["listing"]["state"] = state
    inventory_route(etsy, POSTER, document)
    calls: list[str] = []
    etsy.put(f"{BASE_URL}/v3/application/listings/{POSTER}/inventory").mock(
        side_effect=logged(calls, "put", "listing_inventory_updated")
    )
    patch = etsy.patch(f"{BASE_URL}/v3/application/shops/{SHOP_ID}/listings/{POSTER}").mock(
        side_effect=logged(calls, "patch", "listing_updated_inactive")
    )
    connector.set_stock_levels(shop, [StockLevel(POSTER, 4)], idempotency_key="k")
    assert calls == order
    assert form(patch.calls.last.request) == {"state": "active"}


def test_zero_for_a_listing_that_cannot_sell_writes_nothing(
    connector: EtsyConnector, shop: ShopContext, etsy: respx.MockRouter
) -> None:
    """ "0" and "inactive" are the same state: nothing to write, and it reads as 0."""
    document = payload("listing_inventory_single")
    document["listing"]["state"] = "inactive"
    read = inventory_route(etsy, POSTER, document)
    write = put_route(etsy, POSTER)
    connector.set_stock_levels(shop, [StockLevel(POSTER, 0)], idempotency_key="k")
    assert (read.call_count, write.call_count) == (1, 0)
    assert connector.read_stock_levels(shop, [POSTER]) == {POSTER: 0}


def test_at_most_two_calls_and_one_with_a_fresh_cache(
    connector: EtsyConnector, shop: ShopContext, etsy: respx.MockRouter, monotonic: Clock
) -> None:
    """The PUT answer (the new inventory) is kept for a minute: the next push only writes."""
    read = inventory_route(etsy, POSTER, "listing_inventory_single")
    write = put_route(etsy, POSTER)
    connector.set_stock_levels(shop, [StockLevel(POSTER, 3)], idempotency_key="a")
    assert (read.call_count, write.call_count) == (1, 1)
    connector.set_stock_levels(shop, [StockLevel(POSTER, 3)], idempotency_key="b")
    assert (read.call_count, write.call_count) == (1, 1)  # already 3: nothing to send
    connector.set_stock_levels(shop, [StockLevel(POSTER, 2)], idempotency_key="c")
    assert (read.call_count, write.call_count) == (1, 2)
    monotonic.now += 61
    connector.set_stock_levels(shop, [StockLevel(POSTER, 2)], idempotency_key="d")
    assert read.call_count == 2


def test_a_4xx_drops_the_cached_inventory(
    connector: EtsyConnector, shop: ShopContext, etsy: respx.MockRouter
) -> None:
    """400 ``{"error": "One offering must have quantity greater than 0"}`` is permanent, and
    the inventory is read afresh next time."""
    read = inventory_route(etsy, POSTER, "listing_inventory_single")
    etsy.put(f"{BASE_URL}/v3/application/listings/{POSTER}/inventory").mock(
        side_effect=[respond("listing_inventory_updated"), respond("error_zero_inventory", 400)]
    )
    connector.set_stock_levels(shop, [StockLevel(POSTER, 3)], idempotency_key="a")
    with pytest.raises(PermanentError, match="One offering must have quantity greater than 0"):
        connector.set_stock_levels(shop, [StockLevel(POSTER, 2)], idempotency_key="b")
    assert read.call_count == 1
    put_route(etsy, POSTER)
    connector.set_stock_levels(shop, [StockLevel(POSTER, 2)], idempotency_key="c")
    assert read.call_count == 2


def test_read_stock_levels_counts_disabled_and_inactive_as_zero(
    connector: EtsyConnector, shop: ShopContext, etsy: respx.MockRouter
) -> None:
    document = payload("listing_inventory_sizes")
    document["products"][1]["offerings"][0]["is_enabled"] = False
    inventory_route(etsy, TEE, document)
    inactive = payload("listing_inventory_single")
    inactive["listing"]["state"] = "inactive"
    inventory_route(etsy, POSTER, inactive)
    etsy.get(f"{BASE_URL}/v3/application/listings/1487369999/inventory").mock(
        return_value=respond({"error": "Listing not found"}, 404)
    )
    items = [f"{TEE}:TEE-BLK-S", f"{TEE}:TEE-BLK-M", f"{TEE}:NOPE", TEE, POSTER, "1487369999"]
    assert connector.read_stock_levels(shop, items) == {
        f"{TEE}:TEE-BLK-S": 4,
        f"{TEE}:TEE-BLK-M": 0,
        POSTER: 0,
    }


def test_stock_items_that_cannot_be_pushed(
    connector: EtsyConnector, shop: ShopContext, etsy: respx.MockRouter
) -> None:
    inventory_route(etsy, TEE, "listing_inventory_sizes")
    with pytest.raises(PermanentError, match="varies by property"):
        connector.set_stock_levels(shop, [StockLevel(TEE, 3)], idempotency_key="k")
    with pytest.raises(NotFound, match="no product with SKU"):
        connector.set_stock_levels(shop, [StockLevel(f"{TEE}:NOPE", 3)], idempotency_key="k")
    with pytest.raises(PermanentError, match="not an Etsy stock item id"):
        connector.set_stock_levels(shop, [StockLevel("gid://x", 3)], idempotency_key="k")
    with pytest.raises(ValueError, match="one listing per call"):
        connector.set_stock_levels(
            shop, [StockLevel(TEE, 1), StockLevel(POSTER, 1)], idempotency_key="k"
        )
    with pytest.raises(ValueError, match="at most 400 items"):
        connector.set_stock_levels(
            shop,
            [StockLevel(f"{TEE}:S{n}", 1) for n in range(401)],
            idempotency_key="k",
        )


def test_several_skus_of_one_listing_are_one_read_and_one_write(
    connector: EtsyConnector, shop: ShopContext, etsy: respx.MockRouter
) -> None:
    """getListingInventory once, then one updateListingInventory carrying every SKU
    (https://developers.etsy.com/documentation/reference#operation/updateListingInventory):
    S at 0 is disabled, M at 6 stays enabled, no updateListing while something sells."""
    read = inventory_route(etsy, TEE, "listing_inventory_sizes")
    write = put_route(etsy, TEE)
    state = state_route(etsy, TEE)
    levels = [StockLevel(f"{TEE}:TEE-BLK-S", 0), StockLevel(f"{TEE}:TEE-BLK-M", 6)]
    result = connector.set_stock_levels(shop, levels, idempotency_key="k")
    assert result.applied == (f"{TEE}:TEE-BLK-S", f"{TEE}:TEE-BLK-M")
    assert (read.call_count, write.call_count, state.call_count) == (1, 1, 0)
    products = sent_json(write.calls.last.request)["products"]
    assert [
        (p["sku"], p["offerings"][0]["quantity"], p["offerings"][0]["is_enabled"]) for p in products
    ] == [
        ("TEE-BLK-S", 0, False),
        ("TEE-BLK-M", 6, True),
    ]


def test_every_sku_of_a_listing_at_zero_is_one_deactivation(
    connector: EtsyConnector, shop: ShopContext, etsy: respx.MockRouter
) -> None:
    """All of a listing's SKUs at 0 in one push: updateListing state=inactive first
    (https://developers.etsy.com/documentation/reference#operation/updateListing), then one
    inventory write with the first offering parked at 1 (https://github.com/etsy/open-api/issues/560)."""
    read = inventory_route(etsy, TEE, "listing_inventory_sizes")
    order: list[str] = []
    write = etsy.put(f"{BASE_URL}/v3/application/listings/{TEE}/inventory").mock(
        side_effect=logged(order, "put", "listing_inventory_updated")
    )
    etsy.patch(f"{BASE_URL}/v3/application/shops/{SHOP_ID}/listings/{TEE}").mock(
        side_effect=logged(order, "patch", "listing_updated_inactive")
    )
    levels = [StockLevel(f"{TEE}:TEE-BLK-S", 0), StockLevel(f"{TEE}:TEE-BLK-M", 0)]
    connector.set_stock_levels(shop, levels, idempotency_key="k")
    assert (read.call_count, order) == (1, ["patch", "put"])
    offerings = [p["offerings"][0] for p in sent_json(write.calls.last.request)["products"]]
    assert [(o["quantity"], o["is_enabled"]) for o in offerings] == [(1, True), (0, False)]


def test_an_unknown_sku_refuses_the_whole_listing_push_before_writing(
    connector: EtsyConnector, shop: ShopContext, etsy: respx.MockRouter
) -> None:
    """The write replaces the whole inventory, so a push naming a SKU the listing lacks is
    refused as a whole (NotFound naming every unknown SKU) and nothing is written."""
    inventory_route(etsy, TEE, "listing_inventory_sizes")
    write = put_route(etsy, TEE)
    levels = [
        StockLevel(f"{TEE}:TEE-BLK-S", 2),
        StockLevel(f"{TEE}:NOPE-1", 3),
        StockLevel(f"{TEE}:NOPE-2", 3),
    ]
    with pytest.raises(NotFound, match=r"'NOPE-1'.*'NOPE-2'"):
        connector.set_stock_levels(shop, levels, idempotency_key="k")
    assert not write.called


def test_stock_batches_group_by_listing(connector: EtsyConnector) -> None:
    """One group per listing (whole-listing and SKU ids together), listings in order of first
    appearance, at most 400 per group; a malformed id is isolated in a group of its own."""
    levels = [
        StockLevel(f"{TEE}:TEE-BLK-S", 1),
        StockLevel(POSTER, 2),
        StockLevel("gid://shopify/InventoryItem/1", 3),
        StockLevel(f"{TEE}:TEE-BLK-M", 4),
        *(StockLevel(f"1487362912:S{n}", n) for n in range(401)),
        StockLevel(f"{POSTER}", 5),
    ]
    groups = connector.stock_batches(levels)
    assert [len(group) for group in groups] == [2, 2, 1, 400, 1]
    assert groups[0] == [levels[0], levels[3]]
    assert groups[1] == [levels[1], levels[-1]]
    assert groups[2] == [levels[2]]
    assert connector.stock_batches(levels) == groups


def test_a_thousand_listings_of_ten_skus_are_a_thousand_calls(connector: EtsyConnector) -> None:
    """So at most 2,000 requests (read + write each), plus state changes where needed."""
    levels = [StockLevel(f"{3_000_000 + n // 10}:SKU-{n % 10}", n % 3) for n in range(10_000)]
    groups = connector.stock_batches(levels)
    assert len(groups) == 1_000
    assert all(len({level.item_id.partition(":")[0] for level in g}) == 1 for g in groups)
    assert all(len(group) == 10 for group in groups)


# --------------------------------------------------------------------------------------------
# Tokens
# --------------------------------------------------------------------------------------------


def test_an_expiring_token_is_refreshed_through_the_store_before_the_call(
    connector: EtsyConnector, store: InMemoryCredentialStore, etsy: respx.MockRouter
) -> None:
    """POST /v3/public/oauth/token grant_type=refresh_token
    (https://developers.etsy.com/documentation/essentials/authentication): the rotated pair is
    stored once and the call goes out with the new token."""
    shop = shop_context(expires_at=int(NOW) + 30)  # within the minute's margin
    token = etsy.post(f"{BASE_URL}/v3/public/oauth/token").mock(
        return_value=respond("oauth_token_refreshed")
    )
    receipt = etsy.get(f"{RECEIPTS}/3401928374").mock(return_value=respond("receipt_paid_usd"))
    connector.get_order(shop, "3401928374")
    connector.get_order(shop, "3401928374")  # the stale context again: no second refresh
    assert form(token.calls.last.request) == {
        "grant_type": "refresh_token",
        "client_id": KEYSTRING,
        "refresh_token": REFRESH_TOKEN,
    }
    fresh = payload("oauth_token_refreshed")
    assert token.call_count == 1
    assert store.refreshes == 1
    assert store.credentials[12] == {
        "access_token": fresh["access_token"],
        "refresh_token": fresh["refresh_token"],
        "expires_at": int(NOW) + 3600,
    }
    assert receipt.calls.last.request.headers["authorization"] == f"Bearer {fresh['access_token']}"


def test_a_401_invalid_token_refreshes_once_and_sends_again(
    connector: EtsyConnector, shop: ShopContext, etsy: respx.MockRouter
) -> None:
    token = etsy.post(f"{BASE_URL}/v3/public/oauth/token").mock(
        return_value=respond("oauth_token_refreshed")
    )
    receipt = etsy.get(f"{RECEIPTS}/3401928374").mock(
        side_effect=[respond("error_invalid_token", 401), respond("receipt_paid_usd")]
    )
    assert connector.get_order(shop, "3401928374").external_id == "3401928374"
    assert (token.call_count, receipt.call_count) == (1, 2)


def test_a_refused_refresh_means_reconnecting_the_shop(
    connector: EtsyConnector, shop: ShopContext, etsy: respx.MockRouter
) -> None:
    """400 invalid_grant from the token endpoint: AuthError, without any token in it."""
    etsy.post(f"{BASE_URL}/v3/public/oauth/token").mock(
        return_value=respond("oauth_invalid_grant", 400)
    )
    etsy.get(f"{RECEIPTS}/3401928374").mock(return_value=respond("error_invalid_token", 401))
    with pytest.raises(AuthError, match="reconnect the shop") as raised:
        connector.get_order(shop, "3401928374")
    assert "invalid_grant" in raised.value.message
    for secret in (REFRESH_TOKEN, ACCESS_TOKEN, SHARED_SECRET):
        assert secret not in raised.value.message


def test_a_refreshed_token_refused_again_is_an_auth_error(
    connector: EtsyConnector, shop: ShopContext, etsy: respx.MockRouter
) -> None:
    token = etsy.post(f"{BASE_URL}/v3/public/oauth/token").mock(
        return_value=respond("oauth_token_refreshed")
    )
    etsy.get(f"{RECEIPTS}/3401928374").mock(return_value=respond("error_invalid_token", 401))
    with pytest.raises(AuthError, match="reconnect"):
        connector.get_order(shop, "3401928374")
    assert token.call_count == 1


# --------------------------------------------------------------------------------------------
# Error classification and rate limits
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "document", "expected"),
    [
        (401, {"error": "Invalid API key"}, AuthError),
        (403, "error_shared_secret_required", AuthError),
        (404, "error_not_found", NotFound),
        (400, "error_zero_inventory", PermanentError),
        (409, "error_conflict", PermanentError),
        (422, {"error": "quantity is invalid"}, PermanentError),
        (500, "error_server", TransientError),
        (503, "error_server", TransientError),
    ],
)
def test_each_failure_arrives_as_its_error_class(
    connector: EtsyConnector,
    shop: ShopContext,
    etsy: respx.MockRouter,
    status: int,
    document: str | dict[str, Any],
    expected: type[Exception],
) -> None:
    """ErrorSchema ``{"error": ...}`` with the documented statuses of getShopReceipts."""
    token = etsy.post(f"{BASE_URL}/v3/public/oauth/token")
    etsy.get(RECEIPTS).mock(return_value=respond(document, status))
    with pytest.raises(expected) as raised:
        connector.list_orders_changed(shop, since=datetime(2026, 3, 1, tzinfo=UTC))
    assert type(raised.value) is expected or expected is PermanentError
    assert not token.called  # only invalid_token is refreshable


def test_5xx_is_retried_quickly_and_timeouts_are_transient(
    connector: EtsyConnector, shop: ShopContext, etsy: respx.MockRouter, sleeps: Sleeps
) -> None:
    route = etsy.get(RECEIPTS).mock(
        side_effect=[respond("error_server", 503), respond({"count": 0, "results": []})]
    )
    connector.list_orders_changed(shop, since=datetime(2026, 3, 1, tzinfo=UTC))
    assert route.call_count == 2
    assert len(sleeps.waits) == 1
    etsy.get(f"{RECEIPTS}/3401928374").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(TransientError, match="timed out"):
        connector.get_order(shop, "3401928374")


def test_a_bare_429_is_rate_limited_for_about_a_second(
    connector: EtsyConnector,
    shop: ShopContext,
    etsy: respx.MockRouter,
    limiter: InProcessRateLimiter,
) -> None:
    """A 429 carries no rate headers and no reliable Retry-After
    (https://developers.etsy.com/documentation/essentials/rate-limits): the error waits out the
    second and the shared window is marked spent meanwhile."""
    etsy.get(RECEIPTS).mock(return_value=httpx.Response(429))
    with pytest.raises(RateLimited) as raised:
        connector.list_orders_changed(shop, since=datetime(2026, 3, 1, tzinfo=UTC))
    assert raised.value.retry_after == 1.0
    with pytest.raises(RateLimited):  # refused by our own limiter, nothing sent
        limiter.acquire(request_windows(config().app_credentials), KEYSTRING)


@pytest.mark.parametrize("header", ["x-remaining-this-second", "x-remaining-today"])
def test_the_windows_follow_etsys_remaining_headers(
    connector: EtsyConnector,
    shop: ShopContext,
    etsy: respx.MockRouter,
    limiter: InProcessRateLimiter,
    header: str,
) -> None:
    """x-limit-per-second, x-remaining-this-second, x-limit-per-day, x-remaining-today
    (https://developers.etsy.com/documentation/essentials/rate-limits): other processes of the
    app spent the budget."""
    headers = {
        "x-limit-per-second": "1000",
        "x-remaining-this-second": "900",
        "x-limit-per-day": "100000",
        "x-remaining-today": "5000",
        header: "0",
    }
    route = etsy.get(RECEIPTS).mock(
        return_value=respond({"count": 0, "results": []}, headers=headers)
    )
    connector.list_orders_changed(shop, since=datetime(2026, 3, 1, tzinfo=UTC))
    with pytest.raises(RateLimited) as raised:
        connector.list_orders_changed(shop, since=datetime(2026, 3, 1, tzinfo=UTC))
    assert route.call_count == 1
    assert raised.value.retry_after is not None
    assert raised.value.retry_after > (1000 if header == "x-remaining-today" else 0)


# --------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n" + b"rendition"


def test_images_are_replaced_by_deleting_then_uploading_in_order(
    connector: EtsyConnector, shop: ShopContext, etsy: respx.MockRouter
) -> None:
    """getListingImages, deleteListingImage, uploadListingImage (multipart ``image`` file with
    ``rank``; https://developers.etsy.com/documentation/reference#operation/uploadListingImage)."""
    images = f"{BASE_URL}/v3/application/shops/{SHOP_ID}/listings/{POSTER}/images"
    etsy.get(f"{BASE_URL}/v3/application/listings/{POSTER}/images").mock(
        return_value=respond("listing_images")
    )
    deleted = etsy.delete(url__regex=rf"{images}/\d+$").mock(return_value=httpx.Response(204))
    uploaded = etsy.post(images).mock(
        side_effect=[
            respond("listing_image_uploaded", 201),
            respond({**payload("listing_image_uploaded"), "listing_image_id": 5102939002}, 201),
        ]
    )
    media = etsy.get(url__regex=r"https://media\.example/r/\d\.png.*").mock(
        return_value=httpx.Response(200, content=PNG, headers={"content-type": "image/png"})
    )
    refs = [ImageRef(f"https://media.example/r/{n}.png?sig=abc", alt=f"view {n}") for n in (1, 2)]
    assert connector.replace_listing_images(shop, POSTER, refs) == ("5102939001", "5102939002")
    assert [c.request.url.path.rsplit("/", 1)[-1] for c in deleted.calls] == [
        "5102938475",
        "5102938476",
    ]
    assert media.call_count == 2
    first = uploaded.calls[0].request
    assert first.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert PNG in first.content
    assert b'name="rank"\r\n\r\n1\r\n' in first.content
    assert b'name="alt_text"\r\n\r\nview 1\r\n' in first.content
    assert b'name="rank"\r\n\r\n2\r\n' in uploaded.calls[1].request.content


def test_images_are_fetched_before_anything_is_deleted(
    connector: EtsyConnector, shop: ShopContext, etsy: respx.MockRouter
) -> None:
    listed = etsy.get(f"{BASE_URL}/v3/application/listings/{POSTER}/images")
    etsy.get("https://media.example/r/gone.png").mock(return_value=httpx.Response(404))
    with pytest.raises(PermanentError, match="cannot be fetched") as raised:
        connector.replace_listing_images(
            shop, POSTER, [ImageRef("https://media.example/r/gone.png")]
        )
    assert not listed.called
    assert "sig=" not in raised.value.message
    with pytest.raises(ValueError, match="10 images"):
        connector.replace_listing_images(shop, POSTER, [ImageRef("https://m.example/a")] * 11)


# --------------------------------------------------------------------------------------------
# Tracking
# --------------------------------------------------------------------------------------------


def fulfillment(tracking: str, carrier: str = "ups") -> FulfillmentRequest:
    return FulfillmentRequest(
        "3401928374", (FulfillmentLineRef("4120938471", 2),), carrier, tracking
    )


def test_a_shipment_already_on_the_receipt_is_not_sent_again(
    connector: EtsyConnector, shop: ShopContext, etsy: respx.MockRouter
) -> None:
    """ShopReceipt.shipments (ShopReceiptShipment: receipt_shipping_id, tracking_code...):
    every createReceiptShipment e-mails the buyer, so the receipt is read first."""
    etsy.get(f"{RECEIPTS}/3401928374").mock(return_value=respond("receipt_shipment_created"))
    tracking = etsy.post(f"{RECEIPTS}/3401928374/tracking")
    result = connector.create_fulfillment(shop, fulfillment("1Z999AA10123456784"))
    assert (result.external_id, result.already_existed) == ("88120077", True)
    assert not tracking.called


def test_a_shipment_is_created_once_and_never_retried_blindly(
    connector: EtsyConnector, shop: ShopContext, etsy: respx.MockRouter
) -> None:
    """createReceiptShipment (https://developers.etsy.com/documentation/reference#operation/createReceiptShipment)
    with tracking_code and carrier_name; a 503 is not re-sent within the call."""
    etsy.get(f"{RECEIPTS}/3401928374").mock(return_value=respond("receipt_paid_usd"))
    tracking = etsy.post(f"{RECEIPTS}/3401928374/tracking").mock(
        side_effect=[respond("error_server", 503), respond("receipt_shipment_created")]
    )
    with pytest.raises(TransientError):
        connector.create_fulfillment(shop, fulfillment("1Z999AA10123456784"))
    assert tracking.call_count == 1
    result = connector.create_fulfillment(shop, fulfillment("1Z999AA10123456784"))
    assert (result.external_id, result.already_existed) == ("88120077", False)
    assert sent_json(tracking.calls.last.request) == {
        "tracking_code": "1Z999AA10123456784",
        "carrier_name": "ups",
    }


# --------------------------------------------------------------------------------------------
# Webhooks
# --------------------------------------------------------------------------------------------


def signed(
    body: bytes, *, secret: str = WEBHOOK_SECRET, at: int = int(NOW), webhook_id: str = "msg_2x"
) -> dict[str, str]:
    mac = signature(signing_key(secret), webhook_id, str(at), body)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(at),
        "webhook-signature": f"v1,{mac}",
    }


def test_the_standard_webhooks_reference_vector_verifies() -> None:
    """The Standard Webhooks test vector (standard-webhooks/standard-webhooks,
    libraries/python/tests/test_webhooks.py ``test_sign_function``) that Etsy's signatures
    follow (https://developers.etsy.com/documentation/essentials/webhooks)."""
    connector = EtsyConnector(
        config(webhook_secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        clock=Clock(1614265330),
    )
    headers = {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }
    envelope = connector.verify_webhook(b'{"test": 2432232314}', headers)
    assert envelope.event_key == "msg_p5jXN8AQM9LWM0D4loKWxJek"
    connector.close()


def test_an_order_paid_event_is_verified_and_read(connector: EtsyConnector) -> None:
    """``{event_type, resource_url, shop_id}``
    (https://developers.etsy.com/documentation/essentials/webhooks): the event key is the
    webhook-id, the shop comes from the verified body, the resource is the receipt."""
    body = (PAYLOADS / "webhook_order_paid.json").read_bytes()
    envelope = connector.verify_webhook(body, signed(body))
    assert envelope.event_key == "msg_2x"
    assert envelope.topic == "order.paid"
    assert envelope.shop_reference == SHOP_ID
    assert envelope.resource_id == "3401928374"
    assert envelope.occurred_at == datetime.fromtimestamp(NOW, UTC)
    assert envelope.payload == json.loads(body)


def test_forged_stale_or_incomplete_deliveries_are_rejected(connector: EtsyConnector) -> None:
    body = (PAYLOADS / "webhook_order_paid.json").read_bytes()
    headers = signed(body)
    cases = {
        "tampered": (body.replace(b"3401928374", b"3401928375"), headers),
        "wrong secret": (body, signed(body, secret="whsec_" + base64.b64encode(b"x").decode())),
        "too old": (body, signed(body, at=int(NOW) - 301)),
        "too far ahead": (body, signed(body, at=int(NOW) + 301)),
        "not a timestamp": (body, {**headers, "webhook-timestamp": "soon"}),
        "other version": (
            body,
            {**headers, "webhook-signature": headers["webhook-signature"].replace("v1,", "v2,")},
        ),
    }
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        cases[f"no {name}"] = (body, {k: v for k, v in headers.items() if k != name})
    for name, (raw, sent) in cases.items():
        with pytest.raises(WebhookRejected) as raised:
            connector.verify_webhook(raw, sent)
        assert WEBHOOK_SECRET not in raised.value.message, name


def test_the_previous_secret_and_multiple_signatures_verify(connector: EtsyConnector) -> None:
    body = (PAYLOADS / "webhook_order_paid.json").read_bytes()
    rotated = signed(body, secret=PREVIOUS_WEBHOOK_SECRET)
    assert connector.verify_webhook(body, rotated).shop_reference == SHOP_ID
    several = {
        **rotated,
        "Webhook-Signature": "v1,AAAA v1a,bad " + signed(body)["webhook-signature"],
    }
    del several["webhook-signature"]
    assert connector.verify_webhook(body, several).event_key == "msg_2x"


def test_a_verified_body_that_is_not_json_is_still_accepted(connector: EtsyConnector) -> None:
    body = b"<html>not json</html>"
    envelope = connector.verify_webhook(body, signed(body))
    assert envelope.payload is None
    assert envelope.shop_reference == ""
    assert envelope.event_key == "msg_2x"


def test_no_configured_secret_rejects_everything() -> None:
    connector = EtsyConnector(config(webhook_secret=None, webhook_secret_previous=None))
    body = (PAYLOADS / "webhook_order_paid.json").read_bytes()
    with pytest.raises(WebhookRejected, match="no webhook secret"):
        connector.verify_webhook(body, signed(body))
    connector.close()


def test_payload_documents_are_unchanged_by_mapping() -> None:
    """Mapping never mutates what it reads (the cache keeps read inventories)."""
    document = payload("listing_inventory_sizes")
    before = copy.deepcopy(document)
    inventory = stock.ListingInventory(TEE, "active", document)
    stock.plan_stock(inventory, stock.parse_item_id(f"{TEE}:TEE-BLK-S"), 0)
    stock.plan_stock_many(
        inventory,
        [
            (stock.parse_item_id(f"{TEE}:TEE-BLK-S"), 0),
            (stock.parse_item_id(f"{TEE}:TEE-BLK-M"), 0),
        ],
    )
    assert document == before


# --------------------------------------------------------------------------------------------
# plan_stock_many: pure, over the documented getListingInventory shape
# (https://developers.etsy.com/documentation/reference#operation/getListingInventory)
# --------------------------------------------------------------------------------------------


def sizes_inventory(state: str = "active") -> stock.ListingInventory:
    document = payload("listing_inventory_sizes")
    document["listing"]["state"] = state
    return stock.ListingInventory(TEE, state, document)


def quantities(plan: stock.StockPlan) -> list[tuple[str, int, bool]]:
    assert plan.inventory is not None
    return [
        (p["sku"], p["offerings"][0]["quantity"], p["offerings"][0]["is_enabled"])
        for p in plan.inventory["products"]
    ]


def sku(name: str) -> stock.ItemRef:
    return stock.ItemRef(TEE, name)


def test_plan_many_sets_every_sku_in_one_body() -> None:
    plan = stock.plan_stock_many(sizes_inventory(), [(sku("TEE-BLK-S"), 0), (sku("TEE-BLK-M"), 9)])
    assert quantities(plan) == [("TEE-BLK-S", 0, False), ("TEE-BLK-M", 9, True)]
    assert (plan.state, plan.state_first) == (None, False)


def test_plan_many_the_later_level_of_a_sku_wins() -> None:
    plan = stock.plan_stock_many(sizes_inventory(), [(sku("TEE-BLK-M"), 1), (sku("TEE-BLK-M"), 5)])
    assert quantities(plan) == [("TEE-BLK-S", 4, True), ("TEE-BLK-M", 5, True)]


def test_plan_many_all_zero_parks_the_first_offering_and_deactivates() -> None:
    plan = stock.plan_stock_many(sizes_inventory(), [(sku("TEE-BLK-S"), 0), (sku("TEE-BLK-M"), 0)])
    assert quantities(plan) == [("TEE-BLK-S", 1, True), ("TEE-BLK-M", 0, False)]
    assert (plan.state, plan.state_first) == ("inactive", True)


def test_plan_many_restocking_an_inactive_listing_reactivates_it_after_the_write() -> None:
    plan = stock.plan_stock_many(
        sizes_inventory("inactive"), [(sku("TEE-BLK-S"), 0), (sku("TEE-BLK-M"), 2)]
    )
    assert quantities(plan) == [("TEE-BLK-S", 0, False), ("TEE-BLK-M", 2, True)]
    assert (plan.state, plan.state_first) == ("active", False)


def test_plan_many_zeros_for_a_listing_that_cannot_sell_write_nothing() -> None:
    plan = stock.plan_stock_many(
        sizes_inventory("inactive"), [(sku("TEE-BLK-S"), 0), (sku("TEE-BLK-M"), 0)]
    )
    assert not plan.writes


def test_plan_many_unchanged_quantities_write_nothing() -> None:
    plan = stock.plan_stock_many(sizes_inventory(), [(sku("TEE-BLK-S"), 4), (sku("TEE-BLK-M"), 8)])
    assert not plan.writes
    assert not stock.plan_stock_many(sizes_inventory(), []).writes


def test_plan_many_refuses_before_planning() -> None:
    inventory = sizes_inventory()
    with pytest.raises(ValueError, match="not of listing"):
        stock.plan_stock_many(inventory, [(sku("TEE-BLK-S"), 1), (stock.ItemRef(POSTER), 1)])
    with pytest.raises(ValueError, match="negative"):
        stock.plan_stock_many(inventory, [(sku("TEE-BLK-S"), -1)])
    with pytest.raises(stock.UnknownStockItem, match=r"'A'.*'B'"):
        stock.plan_stock_many(inventory, [(sku("A"), 1), (sku("TEE-BLK-S"), 1), (sku("B"), 1)])
    with pytest.raises(stock.AmbiguousStockItem, match="varies by property"):
        stock.plan_stock_many(inventory, [(sku("TEE-BLK-S"), 1), (stock.ItemRef(TEE), 1)])
