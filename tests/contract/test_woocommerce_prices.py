"""WooCommerce's listing push: quantity and price in one batch item, against the sandbox.

The REST API documents ``regular_price`` as a *string* on products and on variations, and
``price`` as the read-only "Current product price"
(https://woocommerce.github.io/woocommerce-rest-api-docs/#product-properties,
#product-variation-properties; source ``woocommerce/woocommerce-rest-api-docs``,
``source/includes/wp-api-v3/_products.md`` and ``_product-variations.md``: "`regular_price` |
string | Product regular price." / "Variation regular price."). Both batch endpoints,
``POST /wp-json/wc/v3/products/batch`` (#batch-update-products, whose example sends
``"regular_price": "21.99"``) and ``POST /wp-json/wc/v3/products/<product_id>/variations/batch``
(#batch-update-product-variations), take those properties in their ``update`` items, each item
handled as a single update (``WC_REST_Controller::batch_items``).

So a ``StockLevel`` with a price adds ``"regular_price": "<exact decimal>"`` to the item that
already sets ``manage_stock`` and ``stock_quantity``: no extra request, never a float.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest

from connectors.contract import ListingVariant, StockLevel
from connectors.ratelimit import InProcessRateLimiter
from connectors.woocommerce import mappers
from connectors.woocommerce.connector import StockPushFailed, WooCommerceConnector
from connectors.woocommerce.sandbox import WooCommerceSandbox
from tests.contract.woocommerce_double import (
    CONFORMANCE_PAGE_SIZE,
    CONSUMER_KEY,
    CONSUMER_SECRET,
    FAST_REQUESTS_PER_SECOND,
    SharedServer,
    WooCommerceDouble,
    connector_config,
    shared_server,
)

API = "/wp-json/wc/v3/"


class RecordingTransport(httpx.BaseTransport):
    """Keeps the JSON body of every request the connector sends, as it went on the wire."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()
        self.sent: list[tuple[str, str, Any]] = []  # (method, path, decoded body)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        self.sent.append((request.method, request.url.path, body))
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()

    def batches(self) -> list[tuple[str, list[dict[str, Any]]]]:
        return [(path, body["update"]) for method, path, body in self.sent if method == "POST"]


@dataclass(frozen=True)
class Catalog:
    """Two simple products and two variable ones (two variations and one)."""

    tee: str  # simple, 10.00, 1 in stock
    mug: str  # simple, 5.00, 2 in stock
    hoodie: int  # the variable product's id
    hoodie_s: str
    hoodie_m: str
    cap_one: str  # the only variation of another variable product


@pytest.fixture(scope="module")
def server() -> Iterator[SharedServer]:
    with shared_server() as built:
        yield built


@pytest.fixture
def double(server: SharedServer) -> WooCommerceDouble:
    return server.mount()


@pytest.fixture
def sandbox(double: WooCommerceDouble) -> WooCommerceSandbox:
    return double.sandbox


@pytest.fixture
def wire() -> RecordingTransport:
    return RecordingTransport()


@pytest.fixture
def connector(wire: RecordingTransport) -> Iterator[WooCommerceConnector]:
    built = WooCommerceConnector(
        connector_config(),
        rate_limiter=InProcessRateLimiter(max_inline_wait=1.0),
        requests_per_second=FAST_REQUESTS_PER_SECOND,
        page_size=CONFORMANCE_PAGE_SIZE,
        transport=wire,
    )
    yield built
    built.close()


@pytest.fixture
def catalog(sandbox: WooCommerceSandbox) -> Catalog:
    tee = sandbox.add_product("Tee", sku="TEE", price=Decimal("10.00"), stock=1)
    mug = sandbox.add_product("Mug", sku="MUG", price=Decimal("5.00"), stock=2)
    hoodie = sandbox.add_product(
        "Hoodie",
        variations=[
            {"sku": "HOOD-S", "price": Decimal("20.00"), "stock": 3, "attributes": {"Size": "S"}},
            {"sku": "HOOD-M", "price": Decimal("20.00"), "stock": 3, "attributes": {"Size": "M"}},
        ],
    )
    cap = sandbox.add_product(
        "Cap", variations=[{"sku": "CAP-1", "price": Decimal("8.00"), "stock": 4}]
    )
    small, medium = (v["stock_item_id"] for v in hoodie["variations"])
    return Catalog(
        tee=tee["stock_item_id"],
        mug=mug["stock_item_id"],
        hoodie=hoodie["id"],
        hoodie_s=small,
        hoodie_m=medium,
        cap_one=cap["variations"][0]["stock_item_id"],
    )


def push(
    connector: WooCommerceConnector, double: WooCommerceDouble, levels: list[StockLevel]
) -> list[str]:
    """Push as the sync layer does, one ``set_stock_levels`` call per planned group."""
    applied: list[str] = []
    for group in connector.stock_batches(levels):
        result = connector.set_stock_levels(double.shop(), group, idempotency_key="k")
        applied.extend(result.applied)
    return applied


def batch_requests(sandbox: WooCommerceSandbox) -> list[str]:
    return [path for method, path, _ in sandbox.request_log if path.endswith("/batch")]


def rest(double: WooCommerceDouble) -> httpx.Client:
    return httpx.Client(
        base_url=f"{double.base_url}{API}", auth=(CONSUMER_KEY, CONSUMER_SECRET), timeout=5.0
    )


def item_json(double: WooCommerceDouble, stock_item_id: str) -> dict[str, Any]:
    """The product or variation as the REST API shows it (read over HTTP, not from state)."""
    product, _, variation = stock_item_id.partition(":")
    with rest(double) as client:
        if variation:  # the sandbox lists variations; it has no single-variation route
            params: dict[str, str | int] = {"include": variation, "per_page": 100}
            answer = client.get(f"products/{product}/variations", params=params)
        else:
            answer = client.get(f"products/{product}")
    answer.raise_for_status()
    found = answer.json()
    return dict(found[0] if variation else found)


def listings(connector: WooCommerceConnector, double: WooCommerceDouble) -> list[ListingVariant]:
    variants: list[ListingVariant] = []
    cursor: str | None = None
    while True:
        page = connector.list_listings(double.shop(), cursor=cursor)
        variants.extend(page.variants)
        if page.next_cursor is None:
            return variants
        cursor = page.next_cursor


# --------------------------------------------------------------------------------------------
# The connector's batch items
# --------------------------------------------------------------------------------------------


class TestBatchItems:
    def test_a_price_is_the_exact_decimal_string_never_a_float_or_an_exponent(self) -> None:
        levels = [
            StockLevel("11", 1, price=Decimal("19.99")),
            StockLevel("12", 2, price=Decimal("0.50")),
            StockLevel("13", 3, price=Decimal("1000.00")),
            StockLevel("14", 4, price=Decimal("1E+3")),
            StockLevel("15", 5, price=Decimal("1.5E-7")),
            StockLevel("30:31", 6, price=Decimal("0")),
        ]
        groups = mappers.batch_requests(levels)
        prices = [item["regular_price"] for items in groups.values() for item in items]
        assert prices == ["19.99", "0.50", "1000.00", "1000", "0.00000015", "0"]
        wire = json.dumps(groups[None])
        assert '"regular_price": "19.99"' in wire
        assert "E" not in "".join(prices)

    def test_no_price_sends_no_price_key(self) -> None:
        groups = mappers.batch_requests([StockLevel("11", 7), StockLevel("30:31", 0)])
        assert groups == {
            None: [{"id": 11, "manage_stock": True, "stock_quantity": 7}],
            30: [{"id": 31, "manage_stock": True, "stock_quantity": 0}],
        }


# --------------------------------------------------------------------------------------------
# Against the sandbox
# --------------------------------------------------------------------------------------------


class TestListingPush:
    def test_one_batch_per_endpoint_sets_quantity_and_price_together(
        self,
        connector: WooCommerceConnector,
        double: WooCommerceDouble,
        sandbox: WooCommerceSandbox,
        catalog: Catalog,
        wire: RecordingTransport,
    ) -> None:
        levels = [
            StockLevel(catalog.tee, 7, price=Decimal("19.99")),
            StockLevel(catalog.hoodie_s, 4, price=Decimal("0.50")),
            StockLevel(catalog.mug, 8, price=Decimal("1000.00")),
            StockLevel(catalog.hoodie_m, 5, price=Decimal("21.00")),
            StockLevel(catalog.cap_one, 6, price=Decimal("12.5")),
        ]
        applied = push(connector, double, levels)
        assert sorted(applied) == sorted(level.item_id for level in levels)
        # As many requests as without prices: one per batch endpoint (products, two parents).
        assert batch_requests(sandbox) == [
            f"{API}products/batch",
            f"{API}products/{catalog.hoodie}/variations/batch",
            f"{API}products/{catalog.cap_one.split(':')[0]}/variations/batch",
        ]
        tee, mug = int(catalog.tee), int(catalog.mug)
        assert wire.batches()[0] == (
            f"{API}products/batch",
            [
                {"id": tee, "manage_stock": True, "stock_quantity": 7, "regular_price": "19.99"},
                {"id": mug, "manage_stock": True, "stock_quantity": 8, "regular_price": "1000.00"},
            ],
        )
        for level in levels:
            assert sandbox.stock(level.item_id) == level.quantity
            assert sandbox.price(level.item_id) == level.price

    def test_price_none_leaves_the_remote_price_untouched(
        self,
        connector: WooCommerceConnector,
        double: WooCommerceDouble,
        sandbox: WooCommerceSandbox,
        catalog: Catalog,
        wire: RecordingTransport,
    ) -> None:
        push(
            connector,
            double,
            [
                StockLevel(catalog.tee, 9),
                StockLevel(catalog.mug, 3, price=Decimal("6.00")),
                StockLevel(catalog.hoodie_s, 2),
            ],
        )
        assert [len(items) for _, items in wire.batches()] == [2, 1]
        sent = [item for _, items in wire.batches() for item in items]
        assert ["regular_price" in item for item in sent] == [False, True, False]
        assert (sandbox.stock(catalog.tee), sandbox.price(catalog.tee)) == (9, Decimal("10.00"))
        assert (sandbox.stock(catalog.mug), sandbox.price(catalog.mug)) == (3, Decimal("6.00"))
        assert sandbox.price(catalog.hoodie_s) == Decimal("20.00")
        assert item_json(double, catalog.tee)["regular_price"] == "10.00"

    @pytest.mark.parametrize("text", ["19.99", "0.50", "1000.00"])
    def test_the_exact_string_reads_back_on_products_and_variations(
        self,
        connector: WooCommerceConnector,
        double: WooCommerceDouble,
        catalog: Catalog,
        text: str,
    ) -> None:
        push(
            connector,
            double,
            [
                StockLevel(catalog.tee, 1, price=Decimal(text)),
                StockLevel(catalog.hoodie_s, 1, price=Decimal(text)),
            ],
        )
        for stock_item_id in (catalog.tee, catalog.hoodie_s):
            shown = item_json(double, stock_item_id)
            assert (shown["regular_price"], shown["price"], shown["sale_price"]) == (text, text, "")
            assert shown["purchasable"] is True

    def test_list_listings_reports_the_new_price(
        self,
        connector: WooCommerceConnector,
        double: WooCommerceDouble,
        catalog: Catalog,
    ) -> None:
        push(
            connector,
            double,
            [
                StockLevel(catalog.tee, 1, price=Decimal("19.99")),
                StockLevel(catalog.hoodie_m, 1, price=Decimal("0.50")),
                StockLevel(catalog.cap_one, 1, price=Decimal("1000.00")),
            ],
        )
        prices = {
            f"{v.listing_id}:{v.variant_id}" if v.variant_id else v.listing_id: v.price
            for v in listings(connector, double)
        }
        assert prices == {
            catalog.tee: Decimal("19.99"),
            catalog.mug: Decimal("5.00"),
            catalog.hoodie_s: Decimal("20.00"),
            catalog.hoodie_m: Decimal("0.50"),
            catalog.cap_one: Decimal("1000.00"),
        }
        assert str(prices[catalog.cap_one]) == "1000.00"  # the trailing zeros survived

    def test_a_price_the_site_refuses_is_reported_and_the_item_is_left_whole(
        self,
        connector: WooCommerceConnector,
        double: WooCommerceDouble,
        sandbox: WooCommerceSandbox,
        catalog: Catalog,
    ) -> None:
        levels = [
            StockLevel(catalog.tee, 9, price=Decimal("-1.00")),
            StockLevel(catalog.mug, 3, price=Decimal("2.00")),
        ]
        with pytest.raises(StockPushFailed) as raised:
            connector.set_stock_levels(double.shop(), levels, idempotency_key="k")
        failure = raised.value
        assert failure.applied == (catalog.mug,)
        assert [(f.item_id, f.code) for f in failure.failures] == [
            (catalog.tee, "rest_invalid_param")
        ]
        assert "regular_price" in failure.failures[0].message
        assert catalog.tee in str(failure)
        assert (sandbox.stock(catalog.tee), sandbox.price(catalog.tee)) == (1, Decimal("10.00"))
        assert (sandbox.stock(catalog.mug), sandbox.price(catalog.mug)) == (3, Decimal("2.00"))

        with pytest.raises(StockPushFailed) as again:
            connector.set_stock_levels(
                double.shop(),
                [StockLevel(catalog.hoodie_s, 1, price=Decimal("NaN"))],
                idempotency_key="k",
            )
        assert [f.item_id for f in again.value.failures] == [catalog.hoodie_s]
        assert sandbox.price(catalog.hoodie_s) == Decimal("20.00")


# --------------------------------------------------------------------------------------------
# The sandbox's own fidelity (what the connector's tests above rely on)
# --------------------------------------------------------------------------------------------


class TestSandboxPrices:
    def test_numbers_in_a_batch_are_taken_as_woocommerce_takes_them(
        self, double: WooCommerceDouble, sandbox: WooCommerceSandbox, catalog: Catalog
    ) -> None:
        """``batch_items`` skips schema validation, and ``wc_format_decimal`` prints a float
        and trims it: a float price loses its exact string ("1000.00" comes back "1000")."""
        tee, mug = int(catalog.tee), int(catalog.mug)
        with rest(double) as client:
            answer = client.post(
                "products/batch",
                json={
                    "update": [
                        {"id": tee, "regular_price": 1000.0},
                        {"id": mug, "regular_price": 0.5},
                    ]
                },
            )
        assert answer.status_code == 200
        assert [item["regular_price"] for item in answer.json()["update"]] == ["1000", "0.5"]
        assert sandbox.product_json(tee)["price"] == "1000"

    @pytest.mark.parametrize("bad", ["12abc", "abc", "-5", "1e3", True, [1], {"amount": "1"}])
    def test_garbage_is_a_per_item_error_and_changes_nothing(
        self, double: WooCommerceDouble, sandbox: WooCommerceSandbox, catalog: Catalog, bad: Any
    ) -> None:
        tee, mug = int(catalog.tee), int(catalog.mug)
        with rest(double) as client:
            answer = client.post(
                "products/batch",
                json={
                    "update": [
                        {
                            "id": tee,
                            "manage_stock": True,
                            "stock_quantity": 9,
                            "regular_price": bad,
                        },
                        {"id": mug, "regular_price": "7.25"},
                    ]
                },
            )
        assert answer.status_code == 200
        refused, accepted = answer.json()["update"]
        assert refused["id"] == tee
        assert refused["error"]["code"] == "rest_invalid_param"
        assert refused["error"]["data"] == {"status": 400}
        assert accepted["regular_price"] == "7.25"
        assert (sandbox.stock(catalog.tee), sandbox.price(catalog.tee)) == (1, Decimal("10.00"))

    def test_a_single_put_wants_a_string(
        self, double: WooCommerceDouble, sandbox: WooCommerceSandbox, catalog: Catalog
    ) -> None:
        with rest(double) as client:
            refused = client.put(f"products/{catalog.tee}", json={"regular_price": 12.5})
            accepted = client.put(f"products/{catalog.tee}", json={"regular_price": "12.50"})
        assert (refused.status_code, refused.json()["code"]) == (400, "rest_invalid_param")
        assert accepted.json()["regular_price"] == "12.50"
        assert sandbox.price(catalog.tee) == Decimal("12.50")

    def test_price_follows_the_regular_price_unless_on_sale(
        self, double: WooCommerceDouble, sandbox: WooCommerceSandbox
    ) -> None:
        product = sandbox.add_product(
            "Sale tee", price=Decimal("30.00"), sale_price=Decimal("25.00"), stock=1
        )
        item = product["stock_item_id"]
        assert sandbox.price(item) == Decimal("25.00")
        assert sandbox.product_json(product["id"])["on_sale"] is True

        def set_regular(text: str) -> dict[str, Any]:
            with rest(double) as client:
                answer = client.post(
                    "products/batch",
                    json={"update": [{"id": product["id"], "regular_price": text}]},
                )
            return dict(answer.json()["update"][0])

        shown = set_regular("40.00")  # still on sale: the current price stays the sale price
        assert (shown["regular_price"], shown["sale_price"], shown["price"]) == (
            "40.00",
            "25.00",
            "25.00",
        )
        shown = set_regular("20.00")  # a sale price above the regular one is no sale
        assert (shown["price"], shown["on_sale"]) == ("20.00", False)
        shown = set_regular("")  # no price: not purchasable
        assert (shown["price"], shown["purchasable"]) == ("", False)
        assert sandbox.price(item) is None

    def test_a_variable_product_keeps_no_price_of_its_own(
        self, double: WooCommerceDouble, sandbox: WooCommerceSandbox, catalog: Catalog
    ) -> None:
        before = sandbox.product_json(catalog.hoodie)["regular_price"]
        with rest(double) as client:
            answer = client.post(
                "products/batch",
                json={"update": [{"id": catalog.hoodie, "regular_price": "99.00"}]},
            )
        assert answer.json()["update"][0]["regular_price"] == before

    def test_new_orders_are_priced_at_the_current_price(
        self,
        connector: WooCommerceConnector,
        double: WooCommerceDouble,
        sandbox: WooCommerceSandbox,
        catalog: Catalog,
    ) -> None:
        push(
            connector,
            double,
            [
                StockLevel(catalog.tee, 5, price=Decimal("19.99")),
                StockLevel(catalog.hoodie_m, 5, price=Decimal("0.50")),
            ],
        )
        hoodie_m = int(catalog.hoodie_m.split(":")[1])
        order_id = sandbox.add_order(
            [
                {"product_id": int(catalog.tee), "quantity": 2},
                {"product_id": catalog.hoodie, "variation_id": hoodie_m, "quantity": 3},
            ]
        )
        lines = sandbox.order_json(order_id)["line_items"]
        assert [line["subtotal"] for line in lines] == ["39.98", "1.50"]
        imported = connector.get_order(double.shop(), str(order_id))
        assert [line.unit_price for line in imported.lines] == [Decimal("19.99"), Decimal("0.50")]
