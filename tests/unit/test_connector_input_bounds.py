"""What connectors and the order import do with marketplace input past the documented shape.

Each answer here once crashed a worker or failed an INSERT on every retry: JSON nested past
the decoder's limit or carrying ``NaN``, Shopify ``extensions`` of any JSON type, a Retry-After
of ``1e400``, WooCommerce ids that cannot go into a URL path, and order text longer than its
column. Each must now become a classified error (or be made to fit) instead.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from connectors.contract import ConnectorConfig, PermanentError, RateLimited, ShopContext
from connectors.etsy.connector import EtsyConnector
from connectors.http import MAX_RETRY_AFTER_SECONDS, decode_json, parse_retry_after
from connectors.ratelimit import InProcessRateLimiter
from connectors.shopify.client import COST_BUCKET, ShopifyGraphQLClient
from connectors.woocommerce import mappers as woo
from connectors.woocommerce.connector import WooCommerceConnector
from connectors.woocommerce.paging import OrderScanCursor
from hub.domain.errors import InvalidInput
from hub.domain.orders import (
    EXTERNAL_ID_CHARS,
    EXTERNAL_NUMBER_CHARS,
    LINE_TITLE_CHARS,
    MAX_LINE_QUANTITY,
    ImportLine,
    ImportOrder,
)
from tests.fuzz.payload_strategies import json_bytes, load_payload

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


# --------------------------------------------------------------------------------------------
# connectors/http.py
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [b"[" * 5000 + b"]" * 5000, b'{"a": NaN}', b"[Infinity]", b'{"q": -Infinity}'],
    ids=["nested", "nan", "infinity", "minus-infinity"],
)
def test_decode_json_refuses_what_json_would_let_through_as_value_error(body: bytes) -> None:
    with pytest.raises(ValueError, match=r"nested deeper|non-standard constant"):
        decode_json(body)


def test_decode_json_still_reads_large_exponents_as_decimals() -> None:
    """``1e999`` is standard JSON: a finite Decimal, refused later by the money checks."""
    assert decode_json(b"[1e999]") == [Decimal("1e999")]


@pytest.mark.parametrize("header", ["1e400", "inf", "nan", "-inf"])
def test_retry_after_that_is_not_a_finite_number_is_absent(header: str) -> None:
    assert parse_retry_after(header) is None


def test_retry_after_is_capped_so_the_due_date_stays_in_range() -> None:
    assert parse_retry_after("99999999999") == MAX_RETRY_AFTER_SECONDS
    far = parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now=T0)
    assert far == MAX_RETRY_AFTER_SECONDS


# --------------------------------------------------------------------------------------------
# connectors/shopify/client.py: extensions.cost of any JSON type
# --------------------------------------------------------------------------------------------

SHOPIFY_SHOP = ShopContext(
    shop_id=1, external_id="orbit-prints.myshopify.com", credentials={"access_token": "shpat_x"}
)
THROTTLED = [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}]
SHOP_QUERY = "query shopName { shop { name } }"


def shopify_client(answer: dict[str, Any]) -> tuple[ShopifyGraphQLClient, InProcessRateLimiter]:
    limiter = InProcessRateLimiter(max_inline_wait=0, clock=lambda: 0.0)
    body = json_bytes(answer)
    client = ShopifyGraphQLClient(
        ConnectorConfig(),
        api_version="2025-01",
        rate_limiter=limiter,
        sleep=lambda _seconds: None,
        transport=httpx.MockTransport(lambda _request: httpx.Response(200, content=body)),
    )
    return client, limiter


@pytest.mark.parametrize(
    "status",
    [
        {"currentlyAvailable": 10**300, "maximumAvailable": 1000, "restoreRate": 100},
        {"currentlyAvailable": 500, "maximumAvailable": -1000, "restoreRate": 100},
        {"currentlyAvailable": 500, "maximumAvailable": 1000, "restoreRate": 0},
        {"currentlyAvailable": "500", "maximumAvailable": 1000, "restoreRate": 100},
        {"currentlyAvailable": True, "maximumAvailable": 1000, "restoreRate": 100},
        {"currentlyAvailable": 500, "maximumAvailable": [1000], "restoreRate": 100},
        {"currentlyAvailable": 1500, "maximumAvailable": 1000, "restoreRate": 100},
    ],
    ids=["huge", "negative", "zero-rate", "string", "bool", "list", "above-maximum"],
)
def test_an_implausible_throttle_status_is_not_adopted(status: dict[str, Any]) -> None:
    answer = {"data": {"shop": {"name": "x"}}, "extensions": {"cost": {"throttleStatus": status}}}
    client, limiter = shopify_client(answer)
    try:
        assert client.execute(SHOPIFY_SHOP, SHOP_QUERY) == {"shop": {"name": "x"}}
    finally:
        client.close()
    assert limiter.available(COST_BUCKET, SHOPIFY_SHOP.external_id) == COST_BUCKET.capacity


def test_a_plausible_throttle_status_is_adopted() -> None:
    status = {"currentlyAvailable": 420.0, "maximumAvailable": 2000.0, "restoreRate": 100.0}
    answer = {"data": {"shop": {"name": "x"}}, "extensions": {"cost": {"throttleStatus": status}}}
    client, limiter = shopify_client(answer)
    try:
        client.execute(SHOPIFY_SHOP, SHOP_QUERY)
    finally:
        client.close()
    assert limiter.available(COST_BUCKET, SHOPIFY_SHOP.external_id) == 420.0


@pytest.mark.parametrize(
    "extensions",
    [
        [1],
        {"cost": "cheap"},
        {"cost": {"requestedQueryCost": [5]}},
        {"cost": {"requestedQueryCost": 10**300}},
        {"cost": {"requestedQueryCost": 5, "throttleStatus": {"restoreRate": 1e-300}}},
        {
            "cost": {
                "requestedQueryCost": 10**6,
                "throttleStatus": {
                    "currentlyAvailable": 0,
                    "maximumAvailable": 1000,
                    "restoreRate": Decimal("0.000001"),
                },
            }
        },
    ],
    ids=["list", "cost-text", "cost-list", "cost-huge", "tiny-rate", "slow-bucket"],
)
def test_a_throttled_answer_waits_a_finite_bounded_time(extensions: Any) -> None:
    client, _ = shopify_client({"errors": THROTTLED, "extensions": extensions})
    try:
        with pytest.raises(RateLimited) as caught:
            client.execute(SHOPIFY_SHOP, SHOP_QUERY)
    finally:
        client.close()
    assert caught.value.retry_after is not None
    assert 0 < caught.value.retry_after <= MAX_RETRY_AFTER_SECONDS


# --------------------------------------------------------------------------------------------
# connectors/woocommerce: ids from answers in URL paths
# --------------------------------------------------------------------------------------------

WOO_SHOP = ShopContext(
    shop_id=1,
    external_id="orbit-prints.example",
    credentials={"consumer_key": "ck_unitunitunit", "consumer_secret": "cs_unitunitunit"},
    api_base_url="https://orbit-prints.example",
)
WOO_ORDER = load_payload("woocommerce", "order_1087")
WOO_REFUNDS = load_payload("woocommerce", "order_1087_refunds")
WOO_VARIATIONS = load_payload("woocommerce", "product_93_variations")


def woo_connector(
    answer: Callable[[str], Any], paths: list[str], headers: dict[bytes, bytes] | None = None
) -> WooCommerceConnector:
    """Answers 200 with ``answer(path)`` and ``headers``, recording each path asked for."""

    def handle(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        content = json_bytes(answer(request.url.path))
        return httpx.Response(200, content=content, headers=headers)

    return WooCommerceConnector(
        ConnectorConfig(),
        rate_limiter=InProcessRateLimiter(max_inline_wait=0, clock=lambda: 0.0),
        requests_per_second=1_000,
        sleep=lambda _seconds: None,
        transport=httpx.MockTransport(handle),
    )


def order_with(**changes: Any) -> dict[str, Any]:
    return {**copy.deepcopy(WOO_ORDER), **changes}


def order_answer(order: dict[str, Any]) -> Callable[[str], Any]:
    return lambda path: WOO_REFUNDS if path.endswith("/refunds") else order


@pytest.mark.parametrize("bad_id", ["10\x1f87", "-1087", 0, -5, 2**63, "1" * 30, [1087], 1.5])
def test_an_order_id_that_cannot_go_into_a_path_is_a_permanent_error(bad_id: Any) -> None:
    paths: list[str] = []
    connector = woo_connector(order_answer(order_with(id=bad_id)), paths)
    try:
        with pytest.raises(PermanentError, match="'id' must be a positive integer"):
            connector.get_order(WOO_SHOP, "1087")
    finally:
        connector.close()
    assert not any(path.endswith("/refunds") for path in paths)


def test_a_valid_order_id_reads_the_refunds() -> None:
    paths: list[str] = []
    connector = woo_connector(order_answer(order_with()), paths)
    try:
        order = connector.get_order(WOO_SHOP, "1087")
    finally:
        connector.close()
    assert order.external_id == "1087"
    assert any(path.endswith("/orders/1087/refunds") for path in paths)


def products_answer(product_id: Any) -> Callable[[str], Any]:
    product = {"id": product_id, "type": "variable", "name": "Orbit Tee"}
    return lambda path: WOO_VARIATIONS if path.endswith("/variations") else [product]


def test_a_product_id_that_cannot_go_into_a_path_is_a_permanent_error() -> None:
    paths: list[str] = []
    connector = woo_connector(products_answer("9\x1f3"), paths)
    try:
        with pytest.raises(PermanentError, match="product: 'id' must be a positive integer"):
            connector.list_listings(WOO_SHOP)
    finally:
        connector.close()
    assert not any(path.endswith("/variations") for path in paths)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (93, 93),
        ("93", 93),
        (2**63 - 1, 2**63 - 1),
        (2**63, None),
        ("9" * 19, None),
        ("9" * 5000, None),
        (True, None),
        ("\u0669\u0663", None),  # Arabic-Indic digits: str.isdigit() passes them
        ("\u00b2", None),  # superscript two: str.isdigit() passes it, int() refuses it
        (" 93", None),
        (None, None),
    ],
)
def test_woocommerce_resource_ids(value: Any, expected: int | None) -> None:
    assert woo.resource_id(value) == expected


def shrunk_scan(page: list[dict[str, Any]], total: str) -> tuple[WooCommerceConnector, str]:
    """A connector answering ``page`` with ``X-WP-Total: total``, and a cursor for page 2 of
    a scan that saw 10 orders: a smaller total makes it re-read page 1 and merge the two."""
    connector = woo_connector(
        lambda path: WOO_REFUNDS if path.endswith("/refunds") else page,
        [],
        headers={b"x-wp-total": total.encode("latin-1"), b"x-wp-totalpages": b"2"},
    )
    return connector, OrderScanCursor(2, "2026-02-01T00:00:00", 10).encode()


def test_merging_re_read_pages_survives_ids_of_any_json_type() -> None:
    """``_unique`` merges by id: a list id (unhashable) is left for the mapper to refuse."""
    connector, cursor = shrunk_scan([order_with(id=[1]), order_with(id={"a": 1})], "5")
    try:
        with pytest.raises(PermanentError, match="'id' must be"):
            connector.list_orders_changed(WOO_SHOP, since=T0, cursor=cursor)
    finally:
        connector.close()


def test_merging_re_read_pages_keeps_each_order_once() -> None:
    connector, cursor = shrunk_scan([order_with(), order_with(refunds=[])], "5")
    try:
        page = connector.list_orders_changed(WOO_SHOP, since=T0, cursor=cursor)
    finally:
        connector.close()
    assert [order.external_id for order in page.orders] == ["1087"]


@pytest.mark.parametrize("total", ["\u00b2", "-" + "9" * 400, "9" * 4000, "1e3"])
def test_a_count_header_that_is_no_count_is_ignored(total: str) -> None:
    connector, cursor = shrunk_scan([order_with()], total)
    try:
        page = connector.list_orders_changed(WOO_SHOP, since=T0, cursor=cursor)
    finally:
        connector.close()
    assert [order.external_id for order in page.orders] == ["1087"]


# --------------------------------------------------------------------------------------------
# connectors/etsy/client.py: the x-remaining-* headers
# --------------------------------------------------------------------------------------------

NOW = T0.timestamp()
ETSY_SHOP = ShopContext(
    shop_id=1,
    external_id="27384951",
    credentials={
        "access_token": "611004322.unit",
        "refresh_token": "611004322.unit-refresh",
        "expires_at": int(NOW) + 3000,
    },
)


@pytest.mark.parametrize("remaining", [b"\xb2", b"-" + b"9" * 5000, b"9" * 5000, b"1e3"])
def test_an_etsy_remaining_header_that_is_no_count_is_ignored(remaining: bytes) -> None:
    receipt = json_bytes(load_payload("etsy", "receipt_paid_usd"))
    headers = {b"x-remaining-this-second": remaining, b"x-remaining-today": remaining}
    connector = EtsyConnector(
        ConnectorConfig(
            app_credentials={"keystring": "1aa2bb33cc44dd55ee66ff77", "shared_secret": "s"}
        ),
        rate_limiter=InProcessRateLimiter(max_inline_wait=0, clock=lambda: 0.0),
        sleep=lambda _seconds: None,
        transport=httpx.MockTransport(
            lambda _request: httpx.Response(200, content=receipt, headers=headers)
        ),
        clock=lambda: NOW,
    )
    try:
        assert connector.get_order(ETSY_SHOP, "3401928374").external_id == "3401928374"
    finally:
        connector.close()


# --------------------------------------------------------------------------------------------
# hub/domain/orders.py: what the order columns hold
# --------------------------------------------------------------------------------------------


def line(**changes: Any) -> ImportLine:
    fields: dict[str, Any] = {
        "external_line_id": "L1",
        "quantity": 1,
        "unit_price": Decimal("12.00"),
        "sku": "TEE-M",
        "title": "Orbit Tee",
        **changes,
    }
    return ImportLine(**fields)


def order(*lines: ImportLine, **changes: Any) -> ImportOrder:
    fields: dict[str, Any] = {
        "shop_id": 1,
        "external_id": "1001",
        "external_number": "#1001",
        "external_status": "paid",
        "external_updated_at": T0,
        "placed_at": T0,
        "currency": "USD",
        "total": Decimal("12.00"),
        "lines": lines or (line(),),
        **changes,
    }
    return ImportOrder(**fields)


def test_an_over_long_order_id_is_refused_not_cut() -> None:
    with pytest.raises(InvalidInput, match="at most 255 can be stored"):
        order(external_id="9" * (EXTERNAL_ID_CHARS + 1))


def test_an_over_long_line_id_is_refused_not_cut() -> None:
    with pytest.raises(InvalidInput, match="the line id is 256 characters"):
        order(line(external_line_id="L" * (EXTERNAL_ID_CHARS + 1)))


def test_display_text_is_clipped_with_an_ellipsis() -> None:
    imported = order(
        line(title="Orbit Tee " * 60),
        external_number="#" + "1" * 300,
        external_status="s" * 300,
        customer_name="n" * 300,
    )
    title = imported.lines[0].title
    assert len(title) == LINE_TITLE_CHARS
    assert title.endswith("\u2026")
    assert title.startswith("Orbit Tee Orbit Tee")
    assert len(imported.external_number) == EXTERNAL_NUMBER_CHARS
    assert len(imported.external_status) == EXTERNAL_NUMBER_CHARS
    assert imported.customer_name is not None
    assert len(imported.customer_name) == EXTERNAL_NUMBER_CHARS


def test_text_that_fits_is_kept_exactly() -> None:
    imported = order(line(title="t" * LINE_TITLE_CHARS), external_number="#" * 255)
    assert imported.lines[0].title == "t" * LINE_TITLE_CHARS
    assert imported.external_number == "#" * 255


def test_over_long_references_are_dropped_so_the_line_imports_unmatched() -> None:
    long = "X" * 256
    imported = order(
        line(sku=long, external_listing_id=long, external_variant_id=long),
        customer_email="a" * 250 + "@example.com",
    )
    assert imported.lines[0].sku is None
    assert imported.lines[0].external_listing_id is None
    assert imported.lines[0].external_variant_id is None
    assert imported.customer_email is None


@pytest.mark.parametrize("field", ["currency", "presentment_currency"])
def test_a_currency_that_is_no_code_is_refused(field: str) -> None:
    with pytest.raises(InvalidInput, match="is not a currency code"):
        order(**{field: "EURO"})


@pytest.mark.parametrize("quantity", [MAX_LINE_QUANTITY + 1, 10**4000, -1, True, Decimal(2)])
def test_quantities_outside_the_column_are_refused(quantity: Any) -> None:
    with pytest.raises(InvalidInput, match="quantity"):
        order(line(quantity=quantity))


@pytest.mark.parametrize("quantity", [0, MAX_LINE_QUANTITY])
def test_a_fully_refunded_line_and_the_largest_quantity_are_kept(quantity: int) -> None:
    assert order(line(quantity=quantity)).lines[0].quantity == quantity


def test_a_mapped_order_beyond_the_columns_is_a_permanent_error() -> None:
    """Through the connector, the domain's refusal is the bad-answer error, with its reason."""
    lines = copy.deepcopy(WOO_ORDER["line_items"])
    lines[0]["quantity"] = 2**40
    paths: list[str] = []
    connector = woo_connector(order_answer(order_with(line_items=lines)), paths)
    try:
        with pytest.raises(PermanentError, match="beyond any order"):
            connector.get_order(WOO_SHOP, "1087")
    finally:
        connector.close()


def test_text_postgresql_cannot_hold_is_cleaned_or_refused() -> None:
    """NUL is refused by PostgreSQL in text and jsonb, lone surrogates by every encoder: the
    JSON escapes ``\\u0000`` and ``\\ud800`` put them in any field of a marketplace answer."""
    line = ImportLine(
        external_line_id="1",
        quantity=1,
        unit_price=Decimal("1.00"),
        sku="TEE\x00-S",
        title="Orbit\x00 Tee \ud800",
    )
    assert line.sku is None  # a changed SKU could match another item: unmatched instead
    assert line.title == "Orbit Tee \ufffd"
    order = ImportOrder(
        shop_id=1,
        external_id="1001",
        external_number="#10\x0001",
        external_status="paid",
        external_updated_at=datetime(2026, 1, 1, tzinfo=UTC),
        placed_at=datetime(2026, 1, 1, tzinfo=UTC),
        currency="USD",
        total=Decimal("1.00"),
        lines=(line,),
        shipping_address={"city": "Lyon\x00", "lines": ["1 rue\ud800"]},
    )
    assert order.external_number == "#1001"
    assert order.shipping_address == {"city": "Lyon", "lines": ["1 rue\ufffd"]}
    with pytest.raises(InvalidInput, match="NUL"):
        ImportOrder(**{**order.__dict__, "external_id": "10\x0001"})
    with pytest.raises(InvalidInput, match="NUL"):
        ImportOrder(**{**order.__dict__, "lines": (ImportLine("1\ud800", 1, Decimal("1.00")),)})
