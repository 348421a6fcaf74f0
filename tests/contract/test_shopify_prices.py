"""Shopify price pushes: ``ShopifyConnector`` as a ``PriceWriter`` against ``ShopifySandbox``
over real HTTP.

Shopify writes variant prices with ``productVariantsBulkUpdate(productId: ID!, variants:
[ProductVariantsBulkInput!]!)``, which "Updates multiple product variants for a single product
in one operation" (https://shopify.dev/docs/api/admin-graphql/latest/mutations/productVariantsBulkUpdate).
Each ``ProductVariantsBulkInput`` names the variant by ``id`` and carries ``price`` as a ``Money``
decimal string (https://shopify.dev/docs/api/admin-graphql/latest/input-objects/ProductVariantsBulkInput).
The payload holds ``productVariants`` ("The updated variants") and ``userErrors``
(https://shopify.dev/docs/api/admin-graphql/latest/payloads/productvariantsbulkupdatepayload),
each error with ``field``, ``message`` and a ``code`` of ``ProductVariantsBulkUpdateUserErrorCode``
(https://shopify.dev/docs/api/admin-graphql/latest/objects/ProductVariantsBulkUpdateUserError,
https://shopify.dev/docs/api/admin-graphql/latest/enums/ProductVariantsBulkUpdateUserErrorCode:
``PRODUCT_DOES_NOT_EXIST``, ``NEGATIVE_PRICE_VALUE``, ...). Without ``allowPartialUpdates``
nothing is applied when any variant is invalid
(https://shopify.dev/changelog/partial-updates-for-bulk-product-variants-mutation). Input arrays
hold at most 250 items (https://shopify.dev/docs/api/usage/limits).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from connectors.contract import (
    ConnectorConfig,
    NotFound,
    PermanentError,
    PriceLevel,
    PriceWriter,
    RateLimited,
    ShopContext,
    StockLevel,
)
from connectors.ratelimit import InProcessRateLimiter
from connectors.shopify import mappers, queries
from connectors.shopify.client import requested_cost
from connectors.shopify.connector import ShopifyConnector
from connectors.shopify.sandbox import ShopifySandbox
from tests.contract.conftest import FakeClock, Switchboard

PRODUCT_A = "gid://shopify/Product/1"
PRODUCT_B = "gid://shopify/Product/2"


class RecordingTransport(httpx.HTTPTransport):
    """The real transport, keeping every request body as sent."""

    def __init__(self) -> None:
        super().__init__()
        self.bodies: list[bytes] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(request.read())
        return super().handle_request(request)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()  # frozen: the sandbox's bucket refills only when a test says so


@pytest.fixture
def sandbox(clock: FakeClock) -> ShopifySandbox:
    return ShopifySandbox(clock=clock, restore_rate=1.0)


@pytest.fixture
def shop(shopify_server: tuple[Switchboard, str], sandbox: ShopifySandbox) -> Iterator[ShopContext]:
    switchboard, url = shopify_server
    switchboard.target = sandbox
    yield shop_for(sandbox, url)
    switchboard.target = None


@pytest.fixture
def transport() -> RecordingTransport:
    return RecordingTransport()


@pytest.fixture
def connector(clock: FakeClock, transport: RecordingTransport) -> Iterator[ShopifyConnector]:
    config = ConnectorConfig(api_version="2026-04", http_timeout_seconds=5.0)
    limiter = InProcessRateLimiter(max_inline_wait=1.0, clock=clock, sleep=lambda _s: None)
    built = ShopifyConnector(config, rate_limiter=limiter, transport=transport)
    yield built
    built.close()


def shop_for(sandbox: ShopifySandbox, url: str) -> ShopContext:
    return ShopContext(
        shop_id=1,
        external_id=sandbox.shop_domain,
        credentials={"access_token": sandbox.access_token},
        api_base_url=url,
        location_id=sandbox.location_id,
    )


def seed(sandbox: ShopifySandbox, title: str, *skus: str, price: str = "10.00") -> dict[str, Any]:
    return sandbox.add_product(
        title, [{"sku": sku, "price": Decimal(price), "available": 5} for sku in skus]
    )


def levels_of(product: dict[str, Any], *prices: str) -> list[PriceLevel]:
    return [
        PriceLevel(variant["id"], product["id"], Decimal(price))
        for variant, price in zip(product["variants"], prices, strict=True)
    ]


def level(variant: int, product: str, price: str = "1.00") -> PriceLevel:
    return PriceLevel(f"gid://shopify/ProductVariant/{variant}", product, Decimal(price))


def sent_variables(transport: RecordingTransport) -> list[dict[str, Any]]:
    """The variables of every SetVariantPrices request, decoded keeping numbers as Decimals."""
    bodies = [json.loads(body, parse_float=Decimal) for body in transport.bodies]
    return [body["variables"] for body in bodies if "productVariantsBulkUpdate" in body["query"]]


# --------------------------------------------------------------------------------------------
# price_batches: pure planning
# --------------------------------------------------------------------------------------------


def test_the_connector_is_a_price_writer(connector: ShopifyConnector) -> None:
    assert isinstance(connector, PriceWriter)


def test_batches_group_by_product_in_first_appearance_order_keeping_input_order(
    connector: ShopifyConnector,
) -> None:
    levels = [level(5, PRODUCT_B), level(1, PRODUCT_A), level(7, PRODUCT_B), level(2, PRODUCT_A)]
    batches = connector.price_batches(levels)
    assert batches == [[levels[0], levels[2]], [levels[1], levels[3]]]


def test_batches_cap_each_product_at_250_variants(connector: ShopifyConnector) -> None:
    many = [level(n, PRODUCT_A) for n in range(1, 601)]
    other = [level(1000 + n, PRODUCT_B) for n in range(3)]
    batches = connector.price_batches([*many[:300], *other, *many[300:]])
    assert [len(batch) for batch in batches] == [250, 250, 100, 3]
    assert [batch[0].listing_id for batch in batches] == [
        PRODUCT_A,
        PRODUCT_A,
        PRODUCT_A,
        PRODUCT_B,
    ]
    assert [item for batch in batches[:3] for item in batch] == many
    assert batches[3] == other


def test_batches_are_stable_and_hold_every_level_exactly_once(
    connector: ShopifyConnector,
) -> None:
    levels = [level(n, f"gid://shopify/Product/{n % 7}") for n in range(1, 900)]
    first = connector.price_batches(levels)
    assert connector.price_batches(list(levels)) == first
    flat = [item for batch in first for item in batch]
    assert sorted(flat, key=lambda x: x.item_id) == sorted(levels, key=lambda x: x.item_id)
    assert len(flat) == len(levels)
    assert all(len({item.listing_id for item in batch}) == 1 for batch in first)
    assert all(len(batch) <= queries.PRICE_BATCH_SIZE for batch in first)
    assert connector.price_batches([]) == []


# --------------------------------------------------------------------------------------------
# set_prices against the sandbox
# --------------------------------------------------------------------------------------------


def test_a_push_sets_exact_prices_readable_from_the_sandbox_and_the_listings(
    connector: ShopifyConnector,
    sandbox: ShopifySandbox,
    shop: ShopContext,
    transport: RecordingTransport,
) -> None:
    tee = seed(sandbox, "Tee", "TEE-S", "TEE-M", "TEE-L")
    mug = seed(sandbox, "Mug", "MUG", price="7.00")
    connector.set_prices(
        shop, levels_of(tee, "19.99", "1000.00", "0.50"), idempotency_key="price-batch-1"
    )

    variants = [variant["id"] for variant in tee["variants"]]
    assert [sandbox.variant_price(v) for v in variants] == [
        Decimal("19.99"),
        Decimal("1000.00"),
        Decimal("0.50"),
    ]
    assert sandbox.variant_price("TEE-M") == Decimal("1000.00")
    assert sandbox.variant_price("MUG") == Decimal("7.00")  # another product: untouched
    assert sandbox.price_writes == [
        {
            "product_id": tee["id"],
            "prices": {variants[0]: "19.99", variants[1]: "1000.00", variants[2]: "0.50"},
        }
    ]
    # Sent as decimal strings, exactly as given, in one call.
    assert sent_variables(transport) == [
        {
            "productId": tee["id"],
            "variants": [
                {"id": variants[0], "price": "19.99"},
                {"id": variants[1], "price": "1000.00"},
                {"id": variants[2], "price": "0.50"},
            ],
        }
    ]
    listed = {v.sku: v.price for v in connector.list_listings(shop).variants}
    assert listed == {
        "TEE-S": Decimal("19.99"),
        "TEE-M": Decimal("1000.00"),
        "TEE-L": Decimal("0.50"),
        "MUG": Decimal("7.00"),
    }
    assert mug["variants"][0]["sku"] == "MUG"


def test_a_full_batch_of_250_variants_is_one_call(
    connector: ShopifyConnector,
    sandbox: ShopifySandbox,
    shop: ShopContext,
    transport: RecordingTransport,
) -> None:
    product = seed(sandbox, "Poster", *(f"P-{n:03d}" for n in range(250)))
    prices = [f"{n}.{n % 100:02d}" for n in range(250)]
    levels = levels_of(product, *prices)
    assert connector.price_batches(levels) == [levels]
    connector.set_prices(shop, levels, idempotency_key="k")
    assert len(sent_variables(transport)) == 1
    assert [sandbox.variant_price(f"P-{n:03d}") for n in range(250)] == [
        Decimal(price) for price in prices
    ]


def test_setting_the_same_prices_again_changes_nothing(
    connector: ShopifyConnector, sandbox: ShopifySandbox, shop: ShopContext
) -> None:
    product = seed(sandbox, "Tee", "A", "B")
    levels = levels_of(product, "12.99", "13.00")
    connector.set_prices(shop, levels, idempotency_key="k")
    connector.set_prices(shop, levels, idempotency_key="k")
    assert [sandbox.variant_price(s) for s in ("A", "B")] == [Decimal("12.99"), Decimal("13.00")]


def test_the_variant_price_moves_in_product_and_order_queries_but_order_lines_keep_theirs(
    connector: ShopifyConnector, sandbox: ShopifySandbox, shop: ShopContext
) -> None:
    product = seed(sandbox, "Tee", "TEE")
    order_id = sandbox.add_order([{"sku": "TEE", "quantity": 1}])
    connector.set_prices(shop, levels_of(product, "24.50"), idempotency_key="k")
    body = sandbox.execute_graphql(
        """query($order: ID!, $product: ID!) {
          product(id: $product) { variants(first: 5) { nodes { price } } }
          order(id: $order) {
            lineItems(first: 5) {
              nodes { variant { price } originalUnitPriceSet { shopMoney { amount } } }
            }
          }
        }""",
        {"order": order_id, "product": product["id"]},
    )
    assert "errors" not in body, body
    assert body["data"]["product"]["variants"]["nodes"] == [{"price": "24.50"}]
    line = body["data"]["order"]["lineItems"]["nodes"][0]
    assert line["variant"] == {"price": "24.50"}
    assert Decimal(line["originalUnitPriceSet"]["shopMoney"]["amount"]) == Decimal("10.00")
    assert connector.get_order(shop, order_id).lines[0].unit_price == Decimal("10.00")


def test_no_levels_send_nothing(
    connector: ShopifyConnector, sandbox: ShopifySandbox, shop: ShopContext
) -> None:
    connector.set_prices(shop, [], idempotency_key="k")
    assert sandbox.requests == 0


def test_variants_of_several_products_in_one_call_are_refused_before_sending(
    connector: ShopifyConnector, sandbox: ShopifySandbox, shop: ShopContext
) -> None:
    tee = seed(sandbox, "Tee", "TEE")
    mug = seed(sandbox, "Mug", "MUG")
    with pytest.raises(ValueError, match="one product per call"):
        connector.set_prices(
            shop, [*levels_of(tee, "1.00"), *levels_of(mug, "2.00")], idempotency_key="k"
        )
    assert sandbox.requests == 0
    assert sandbox.price_writes == []


def test_more_than_250_variants_in_one_call_are_refused_before_sending(
    connector: ShopifyConnector, sandbox: ShopifySandbox, shop: ShopContext
) -> None:
    with pytest.raises(ValueError, match="at most 250"):
        connector.set_prices(shop, [level(n, PRODUCT_A) for n in range(251)], idempotency_key="k")
    assert sandbox.requests == 0


def test_a_non_finite_price_is_refused_before_sending(
    connector: ShopifyConnector, sandbox: ShopifySandbox, shop: ShopContext
) -> None:
    with pytest.raises(ValueError, match="finite"):
        connector.set_prices(
            shop,
            [PriceLevel(level(1, PRODUCT_A).item_id, PRODUCT_A, Decimal("NaN"))],
            idempotency_key="k",
        )
    assert sandbox.requests == 0


def test_prices_are_fixed_point_decimal_strings_as_given() -> None:
    rows = mappers.variants_price_input(
        [
            level(1, PRODUCT_A, "12.99"),
            PriceLevel("v2", PRODUCT_A, Decimal("1E+3")),
            PriceLevel("v3", PRODUCT_A, Decimal("0.500")),
        ]
    )
    assert rows == [
        {"id": "gid://shopify/ProductVariant/1", "price": "12.99"},
        {"id": "v2", "price": "1000"},
        {"id": "v3", "price": "0.500"},
    ]


# --------------------------------------------------------------------------------------------
# Errors: classified, nothing applied
# --------------------------------------------------------------------------------------------


def test_an_unknown_variant_is_not_found_and_nothing_is_applied(
    connector: ShopifyConnector, sandbox: ShopifySandbox, shop: ShopContext
) -> None:
    product = seed(sandbox, "Tee", "TEE")
    levels = [
        *levels_of(product, "11.00"),
        PriceLevel(level(999, "").item_id, product["id"], Decimal(1)),
    ]
    with pytest.raises(NotFound) as raised:
        connector.set_prices(shop, levels, idempotency_key="k")
    assert "Product variant does not exist" in raised.value.marketplace_message
    assert "PRODUCT_VARIANT_DOES_NOT_EXIST" in raised.value.marketplace_message
    assert "variants.1.id" in raised.value.marketplace_message
    assert sandbox.variant_price("TEE") == Decimal("10.00")  # all or nothing
    assert sandbox.price_writes == []


def test_a_variant_of_another_product_is_not_found(
    connector: ShopifyConnector, sandbox: ShopifySandbox, shop: ShopContext
) -> None:
    tee = seed(sandbox, "Tee", "TEE")
    mug = seed(sandbox, "Mug", "MUG")
    stray = PriceLevel(mug["variants"][0]["id"], tee["id"], Decimal("3.00"))
    with pytest.raises(NotFound):
        connector.set_prices(shop, [stray], idempotency_key="k")
    assert sandbox.variant_price("MUG") == Decimal("10.00")


def test_an_unknown_product_is_not_found(
    connector: ShopifyConnector, sandbox: ShopifySandbox, shop: ShopContext
) -> None:
    tee = seed(sandbox, "Tee", "TEE")
    gone = PriceLevel(tee["variants"][0]["id"], "gid://shopify/Product/424242", Decimal("3.00"))
    with pytest.raises(NotFound, match="Product does not exist"):
        connector.set_prices(shop, [gone], idempotency_key="k")


def test_a_negative_price_is_a_permanent_error_carrying_shopifys_message(
    connector: ShopifyConnector, sandbox: ShopifySandbox, shop: ShopContext
) -> None:
    product = seed(sandbox, "Tee", "TEE")
    with pytest.raises(PermanentError) as raised:
        connector.set_prices(shop, levels_of(product, "-1.00"), idempotency_key="k")
    assert not isinstance(raised.value, NotFound)
    assert "NEGATIVE_PRICE_VALUE" in raised.value.marketplace_message
    assert sandbox.variant_price("TEE") == Decimal("10.00")


def test_a_throttled_mutation_raises_rate_limited_and_applies_nothing(
    shopify_server: tuple[Switchboard, str], clock: FakeClock, connector: ShopifyConnector
) -> None:
    """https://shopify.dev/docs/api/usage/limits: THROTTLED in an HTTP 200 when the bucket
    cannot hold the requested cost; the wait is (requested - available) / restore rate."""
    switchboard, url = shopify_server
    tiny = ShopifySandbox(clock=clock, bucket_size=20.0, restore_rate=1.0)
    switchboard.target = tiny
    try:
        product = seed(tiny, "Tee", "TEE")
        shop = shop_for(tiny, url)
        variables = {"productId": product["id"], "variants": [{"id": "x", "price": "1.00"}]}
        cost = requested_cost(queries.PRODUCT_VARIANTS_BULK_UPDATE, variables)
        drained = tiny.execute_graphql(queries.PRODUCT_VARIANTS_BULK_UPDATE, variables)
        assert drained["extensions"]["cost"]["requestedQueryCost"] == cost == 12
        assert tiny.bucket_state()["currentlyAvailable"] == 8

        with pytest.raises(RateLimited) as raised:
            connector.set_prices(shop, levels_of(product, "5.00"), idempotency_key="k")
        assert raised.value.retry_after == pytest.approx(4.0)
        assert tiny.throttled_responses == 1
        assert tiny.variant_price("TEE") == Decimal("10.00")

        # The limiter learnt the bucket: the next call waits before anything is sent.
        sent = tiny.requests
        with pytest.raises(RateLimited):
            connector.set_prices(shop, levels_of(product, "5.00"), idempotency_key="k")
        assert tiny.requests == sent

        clock.now += 4.0  # both buckets refill: the push goes through
        connector.set_prices(shop, levels_of(product, "5.00"), idempotency_key="k")
        assert tiny.variant_price("TEE") == Decimal("5.00")
    finally:
        switchboard.target = None


def test_an_http_429_raises_rate_limited_with_its_retry_after(
    connector: ShopifyConnector, sandbox: ShopifySandbox, shop: ShopContext
) -> None:
    product = seed(sandbox, "Tee", "TEE")
    sandbox.queue_429(1, retry_after=2.0)
    with pytest.raises(RateLimited) as raised:
        connector.set_prices(shop, levels_of(product, "5.00"), idempotency_key="k")
    assert raised.value.retry_after == pytest.approx(2.0)
    assert sandbox.requests == 1  # not retried inline
    assert sandbox.variant_price("TEE") == Decimal("10.00")


# --------------------------------------------------------------------------------------------
# The sandbox's side of the contract, and the stock push leaving prices alone
# --------------------------------------------------------------------------------------------


def test_the_sandbox_refuses_a_json_number_as_price(sandbox: ShopifySandbox) -> None:
    product = seed(sandbox, "Tee", "TEE")
    body = sandbox.execute_graphql(
        queries.PRODUCT_VARIANTS_BULK_UPDATE,
        {
            "productId": product["id"],
            "variants": [{"id": product["variants"][0]["id"], "price": 12.99}],
        },
    )
    payload = body["data"]["productVariantsBulkUpdate"]
    assert payload["productVariants"] is None
    assert payload["userErrors"] == [
        {
            "field": ["variants", "0", "price"],
            "message": "Price is invalid",
            "code": "INVALID_INPUT",
        }
    ]
    assert sandbox.variant_price("TEE") == Decimal("10.00")


def test_the_sandbox_applies_the_valid_variants_when_partial_updates_are_allowed(
    sandbox: ShopifySandbox,
) -> None:
    product = seed(sandbox, "Tee", "A", "B")
    good, _other = (variant["id"] for variant in product["variants"])
    body = sandbox.execute_graphql(
        """mutation($p: ID!, $v: [ProductVariantsBulkInput!]!) {
          productVariantsBulkUpdate(productId: $p, variants: $v, allowPartialUpdates: true) {
            productVariants { id price }
            userErrors { field message code }
          }
        }""",
        {
            "p": product["id"],
            "v": [
                {"id": good, "price": "8.25"},
                {"id": "gid://shopify/ProductVariant/77", "price": "1.00"},
            ],
        },
    )
    payload = body["data"]["productVariantsBulkUpdate"]
    assert payload["productVariants"] == [{"id": good, "price": "8.25"}]
    assert [error["code"] for error in payload["userErrors"]] == ["PRODUCT_VARIANT_DOES_NOT_EXIST"]
    assert sandbox.variant_price("A") == Decimal("8.25")


def test_the_stock_push_ignores_a_stock_levels_price(
    connector: ShopifyConnector, sandbox: ShopifySandbox, shop: ShopContext
) -> None:
    product = seed(sandbox, "Tee", "TEE")
    item = product["variants"][0]["inventory_item_id"]
    connector.set_stock_levels(
        shop,
        [StockLevel(item, 3, expected_quantity=5, price=Decimal("99.99"))],
        idempotency_key="stock-1",
    )
    assert sandbox.stock(item) == 3
    assert sandbox.variant_price("TEE") == Decimal("10.00")
    assert sandbox.price_writes == []
