"""The Shopify sandbox, over real HTTP, against Shopify's documented behaviour.

The sandbox stands in for Shopify in connector and benchmark runs, so each behaviour the
connector relies on is pinned here with plain httpx (not the connector) and the page it follows.
Time is injected (a fake monotonic clock) so bucket restores take no real time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from graphql import parse, validate
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from connectors.sandbox_server import serve_in_thread
from connectors.shopify import queries
from connectors.shopify.sandbox import SCHEMA, ShopifySandbox
from tests.contract.conftest import FakeClock, Switchboard

SINCE = "updated_at:>'2026-01-01T00:00:00Z'"
BASE = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sandbox(clock: FakeClock) -> ShopifySandbox:
    return ShopifySandbox(clock=clock)


@pytest.fixture
def base_url(shopify_server: tuple[Switchboard, str], sandbox: ShopifySandbox) -> Iterator[str]:
    switchboard, url = shopify_server
    switchboard.target = sandbox
    yield url
    switchboard.target = None


@pytest.fixture
def client(base_url: str, sandbox: ShopifySandbox) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=f"{base_url}/admin/api/{sandbox.api_version}",
        headers={"X-Shopify-Access-Token": sandbox.access_token},
        timeout=5.0,
    ) as http:
        yield http


def post(client: httpx.Client, document: str, variables: dict[str, Any] | None = None) -> Any:
    """One GraphQL call that must come back as HTTP 200; returns the JSON body."""
    response = client.post("/graphql.json", json={"query": document, "variables": variables or {}})
    assert response.status_code == 200, response.text
    return response.json()


def data(client: httpx.Client, document: str, variables: dict[str, Any] | None = None) -> Any:
    body = post(client, document, variables)
    assert "errors" not in body, body["errors"]
    return body["data"]


def seed_catalogue(sandbox: ShopifySandbox) -> dict[str, Any]:
    return sandbox.add_product(
        "Orbit tee",
        [
            {"sku": "TEE-S", "price": Decimal("19.99"), "available": 5},
            {"sku": "TEE-M", "price": Decimal("21.50"), "available": 7},
        ],
    )


def quantity(item_id: str, location_id: str, value: int, expected: int | None) -> dict[str, Any]:
    return {
        "inventoryItemId": item_id,
        "locationId": location_id,
        "quantity": value,
        "changeFromQuantity": expected,
    }


def inventory_input(*quantities: dict[str, Any]) -> dict[str, Any]:
    return {"name": "available", "reason": "correction", "quantities": list(quantities)}


# ---------------------------------------------------------------------------------------------
# Schema and HTTP surface
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(queries.ALL_DOCUMENTS))
def test_every_connector_document_validates_against_the_schema(name: str) -> None:
    """The sandbox must accept every document the connector sends, unchanged."""
    assert validate(SCHEMA, parse(queries.ALL_DOCUMENTS[name])) == []


def test_wrong_access_token_is_http_401(base_url: str, sandbox: ShopifySandbox) -> None:
    """https://shopify.dev/docs/api/admin-graphql#authentication: the token header is required;
    an unknown token is answered 401 with the text Shopify uses."""
    response = httpx.post(
        f"{base_url}/admin/api/{sandbox.api_version}/graphql.json",
        json={"query": "{ orders(first: 1) { nodes { id } } }"},
        headers={"X-Shopify-Access-Token": "shpat_wrong"},
    )
    assert response.status_code == 401
    assert response.json() == {
        "errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"
    }


def test_unknown_api_version_is_http_404(base_url: str, sandbox: ShopifySandbox) -> None:
    """https://shopify.dev/docs/api/usage/versioning: the version is part of the path."""
    response = httpx.post(
        f"{base_url}/admin/api/1999-01/graphql.json",
        json={"query": "{ orders(first: 1) { nodes { id } } }"},
        headers={"X-Shopify-Access-Token": sandbox.access_token},
    )
    assert response.status_code == 404


# ---------------------------------------------------------------------------------------------
# Orders
# ---------------------------------------------------------------------------------------------


def scan_orders(client: httpx.Client, query: str, page_size: int) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        variables = {"first": page_size, "after": cursor, "query": query}
        page = data(client, queries.ORDERS_UPDATED_SINCE, variables)["orders"]
        seen.extend(page["nodes"])
        if not page["pageInfo"]["hasNextPage"]:
            return seen
        cursor = page["pageInfo"]["endCursor"]


def test_orders_page_ascending_by_updated_at_across_runs_of_equal_times(
    client: httpx.Client, sandbox: ShopifySandbox
) -> None:
    """https://shopify.dev/docs/api/admin-graphql/latest/queries/orders with sortKey
    UPDATED_AT and https://shopify.dev/docs/api/usage/search-syntax (``>`` is exclusive):
    every changed order once, oldest change first, across page boundaries that fall inside
    runs of equal ``updatedAt``."""
    seed_catalogue(sandbox)
    since = BASE
    sandbox.add_order([{"sku": "TEE-S"}], updated_at=since - timedelta(days=1))
    sandbox.add_order([{"sku": "TEE-S"}], updated_at=since)  # not strictly after
    wanted = [
        sandbox.add_order([{"sku": "TEE-S"}], updated_at=since + timedelta(minutes=1 + n // 3))
        for n in reversed(range(9))  # created newest first: the sort, not insertion, orders
    ]
    query = f"updated_at:>'{since.isoformat().replace('+00:00', 'Z')}'"
    orders = scan_orders(client, query, page_size=2)
    stamps = [(o["updatedAt"], int(o["id"].rsplit("/", 1)[1])) for o in orders]
    assert stamps == sorted(stamps)
    assert sorted(o["id"] for o in orders) == sorted(wanted)
    inclusive = scan_orders(client, query.replace(":>", ":>="), page_size=4)
    assert len(inclusive) == len(wanted) + 1


def test_an_order_updated_mid_scan_comes_again_at_the_end(
    client: httpx.Client, sandbox: ShopifySandbox
) -> None:
    """Cursors hold the sort key (https://shopify.dev/docs/api/usage/pagination-graphql): an
    order updated after it was read moves behind the cursor and is met again."""
    seed_catalogue(sandbox)
    ids = [
        sandbox.add_order([{"sku": "TEE-S"}], updated_at=BASE + timedelta(seconds=n))
        for n in range(4)
    ]
    first = data(client, queries.ORDERS_UPDATED_SINCE, {"first": 2, "query": SINCE})["orders"]
    sandbox.update_order(ids[0], updated_at=BASE + timedelta(days=1))
    rest = data(
        client,
        queries.ORDERS_UPDATED_SINCE,
        {"first": 10, "after": first["pageInfo"]["endCursor"], "query": SINCE},
    )["orders"]
    assert [o["id"] for o in first["nodes"]] == ids[:2]
    assert [o["id"] for o in rest["nodes"]] == [ids[2], ids[3], ids[0]]


def test_order_shape_money_and_refunded_quantities(
    client: httpx.Client, sandbox: ShopifySandbox
) -> None:
    """Order, LineItem and MoneyBag per https://shopify.dev/docs/api/admin-graphql/latest/objects/Order,
    .../objects/LineItem (``currentQuantity`` excludes removed units) and
    .../objects/MoneyBag (``amount`` is a Decimal serialised as a string)."""
    seed_catalogue(sandbox)
    order_id = sandbox.add_order(
        [{"sku": "TEE-S", "quantity": 2}, {"sku": "GIFT-WRAP", "price": Decimal("0.10")}],
        updated_at=BASE,
        customer={"first_name": "Ada", "last_name": "Lovelace"},
        shipping_address={"name": "Ada Lovelace", "city": "London", "country_code": "GB"},
    )
    order = data(client, queries.ORDER_BY_ID, {"id": order_id})["order"]
    assert order["displayFinancialStatus"] == "PAID"
    assert order["displayFulfillmentStatus"] == "UNFULFILLED"
    assert order["currentTotalPriceSet"]["shopMoney"] == {"amount": "40.08", "currencyCode": "EUR"}
    assert order["customer"]["displayName"] == "Ada Lovelace"
    assert order["shippingAddress"]["countryCodeV2"] == "GB"
    tee, wrap = order["lineItems"]["nodes"]
    assert tee["variant"]["id"].startswith("gid://shopify/ProductVariant/")
    assert Decimal(tee["originalUnitPriceSet"]["shopMoney"]["amount"]) == Decimal("19.99")
    assert wrap["variant"] is None
    assert wrap["sku"] == "GIFT-WRAP"

    sandbox.update_order(order_id, refund={tee["id"]: 1})
    after = data(client, queries.ORDER_BY_ID, {"id": order_id})["order"]
    assert after["displayFinancialStatus"] == "PARTIALLY_REFUNDED"
    assert [(ln["quantity"], ln["currentQuantity"]) for ln in after["lineItems"]["nodes"]] == [
        (2, 1),
        (1, 1),
    ]
    assert Decimal(after["currentTotalPriceSet"]["shopMoney"]["amount"]) == Decimal("20.09")
    assert after["updatedAt"] >= order["updatedAt"]


def test_line_items_page_beyond_the_first_ten(
    client: httpx.Client, sandbox: ShopifySandbox
) -> None:
    """A connection nested in an order pages on its own cursor
    (https://shopify.dev/docs/api/usage/pagination-graphql)."""
    order_id = sandbox.add_order(
        [{"sku": f"L{n}", "price": Decimal("1.00")} for n in range(12)], updated_at=BASE
    )
    first = data(client, queries.ORDER_BY_ID, {"id": order_id})["order"]["lineItems"]
    assert len(first["nodes"]) == queries.ORDER_LINES_PER_PAGE
    assert first["pageInfo"]["hasNextPage"] is True
    rest = data(
        client,
        queries.ORDER_LINE_ITEMS,
        {"id": order_id, "first": 100, "after": first["pageInfo"]["endCursor"]},
    )["order"]["lineItems"]
    assert [ln["sku"] for ln in rest["nodes"]] == ["L10", "L11"]
    assert rest["pageInfo"]["hasNextPage"] is False


def test_product_variants_page_with_inventory_items(
    client: httpx.Client, sandbox: ShopifySandbox
) -> None:
    """https://shopify.dev/docs/api/admin-graphql/latest/queries/productVariants."""
    product = seed_catalogue(sandbox)
    page = data(client, queries.PRODUCT_VARIANTS, {"first": 1})["productVariants"]
    assert page["nodes"][0]["price"] == "19.99"
    assert page["nodes"][0]["product"] == {"id": product["id"], "title": "Orbit tee"}
    assert page["nodes"][0]["inventoryItem"]["id"] == product["variants"][0]["inventory_item_id"]
    rest = data(
        client, queries.PRODUCT_VARIANTS, {"first": 5, "after": page["pageInfo"]["endCursor"]}
    )
    assert [v["sku"] for v in rest["productVariants"]["nodes"]] == ["TEE-M"]


# ---------------------------------------------------------------------------------------------
# Query cost and the leaky bucket
# ---------------------------------------------------------------------------------------------


def test_requested_cost_of_an_order_page_fits_and_actual_is_smaller(
    client: httpx.Client, sandbox: ShopifySandbox
) -> None:
    """https://shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits: the requested cost
    is the worst case from ``first``; the actual cost counts what was returned."""
    seed_catalogue(sandbox)
    for n in range(3):
        sandbox.add_order([{"sku": "TEE-S"}], updated_at=BASE + timedelta(seconds=n))
    variables = {"first": queries.ORDERS_PAGE_SIZE, "query": SINCE}
    cost = post(client, queries.ORDERS_UPDATED_SINCE, variables)["extensions"]["cost"]
    assert cost["requestedQueryCost"] == 954 <= queries.MAX_QUERY_COST
    assert 0 < cost["actualQueryCost"] < cost["requestedQueryCost"]
    assert sandbox.cost_spent == cost["actualQueryCost"]


def test_a_query_over_1000_points_is_refused_before_running(
    client: httpx.Client, sandbox: ShopifySandbox
) -> None:
    """https://shopify.dev/docs/api/usage/limits: a single query may not exceed 1,000 points;
    nothing is executed or charged."""
    body = post(client, queries.ORDERS_UPDATED_SINCE, {"first": 20, "query": SINCE})
    assert body["errors"][0]["extensions"]["code"] == "MAX_COST_EXCEEDED"
    assert "data" not in body
    assert sandbox.bucket_state()["currentlyAvailable"] == 1000


def test_bucket_throttles_when_drained_and_restores_over_time(
    client: httpx.Client, sandbox: ShopifySandbox, clock: FakeClock
) -> None:
    """https://shopify.dev/docs/api/usage/limits#the-leaky-bucket-algorithm: a query runs only
    if the bucket holds its requested cost; otherwise HTTP 200 with a THROTTLED error, no data
    and ``actualQueryCost: null``; the bucket refills at the restore rate."""
    sandbox.add_product("Bulk", [{"sku": f"B{n}", "price": Decimal(1)} for n in range(10)])
    for n in range(queries.ORDERS_PAGE_SIZE):
        lines = [{"sku": f"B{k}"} for k in range(queries.ORDER_LINES_PER_PAGE)]
        sandbox.add_order(lines, updated_at=BASE + timedelta(seconds=n))
    variables = {"first": queries.ORDERS_PAGE_SIZE, "query": SINCE}

    full = post(client, queries.ORDERS_UPDATED_SINCE, variables)["extensions"]["cost"]
    assert full["actualQueryCost"] == 954
    assert full["throttleStatus"] == {
        "maximumAvailable": 1000.0,
        "currentlyAvailable": 46,
        "restoreRate": 100.0,
    }
    throttled = post(client, queries.ORDERS_UPDATED_SINCE, variables)
    assert throttled["errors"][0]["extensions"]["code"] == "THROTTLED"
    assert throttled["errors"][0]["message"] == "Throttled"
    assert "data" not in throttled
    assert throttled["extensions"]["cost"]["actualQueryCost"] is None
    assert sandbox.throttled_responses == 1

    clock.advance(9.0)  # 46 + 900 = 946 < 954
    assert "errors" in post(client, queries.ORDERS_UPDATED_SINCE, variables)
    clock.advance(0.1)  # 956
    assert "errors" not in post(client, queries.ORDERS_UPDATED_SINCE, variables)
    assert sandbox.cost_spent == 2 * 954
    assert sandbox.requests == 4


# ---------------------------------------------------------------------------------------------
# Inventory
# ---------------------------------------------------------------------------------------------


def test_stale_change_from_quantity_fails_the_whole_batch(
    client: httpx.Client, sandbox: ShopifySandbox
) -> None:
    """https://shopify.dev/docs/api/admin-graphql/2026-07/input-objects/InventoryQuantityInput:
    a mismatch returns CHANGE_FROM_QUANTITY_STALE, carries no current quantity, and applies
    nothing in the batch."""
    small, medium = (v["inventory_item_id"] for v in seed_catalogue(sandbox)["variants"])
    location = sandbox.location_id
    batch = inventory_input(
        quantity(small, location, 1, expected=5), quantity(medium, location, 2, expected=6)
    )
    result = data(client, queries.INVENTORY_SET_QUANTITIES, {"input": batch, "key": "k-stale"})
    payload = result["inventorySetQuantities"]
    assert payload["inventoryAdjustmentGroup"] is None
    assert payload["userErrors"] == [
        {
            "field": ["input", "quantities", "1", "changeFromQuantity"],
            "message": "The changeFromQuantity value does not match persisted value.",
            "code": "CHANGE_FROM_QUANTITY_STALE",
        }
    ]
    assert (sandbox.stock(small), sandbox.stock(medium)) == (5, 7)

    unchecked = inventory_input(
        quantity(small, location, 1, expected=5), quantity(medium, location, 2, expected=None)
    )
    ok = data(client, queries.INVENTORY_SET_QUANTITIES, {"input": unchecked, "key": "k-ok"})
    assert ok["inventorySetQuantities"]["userErrors"] == []
    levels = data(
        client, queries.INVENTORY_LEVELS, {"ids": [small, medium], "locationId": location}
    )
    assert [n["inventoryLevel"]["quantities"] for n in levels["nodes"]] == [
        [{"name": "available", "quantity": 1}],
        [{"name": "available", "quantity": 2}],
    ]


def test_idempotent_replay_returns_the_first_result_and_applies_once(
    client: httpx.Client, sandbox: ShopifySandbox
) -> None:
    """https://shopify.dev/docs/api/usage/implementing-idempotency: the same key and the same
    variables return the original result; the same key with other variables is refused with
    IDEMPOTENCY_KEY_PARAMETER_MISMATCH."""
    small = seed_catalogue(sandbox)["variants"][0]["inventory_item_id"]
    batch = inventory_input(quantity(small, sandbox.location_id, 3, expected=5))
    variables = {"input": batch, "key": "key-1"}
    first = data(client, queries.INVENTORY_SET_QUANTITIES, variables)
    sandbox.set_stock(small, 2)  # a sale on Shopify between the attempt and its retry
    replay = data(client, queries.INVENTORY_SET_QUANTITIES, variables)
    assert replay == first
    assert sandbox.stock(small) == 2
    assert len(sandbox.inventory_adjustments) == 1

    batch["quantities"][0]["quantity"] = 4
    mismatch = data(client, queries.INVENTORY_SET_QUANTITIES, variables)["inventorySetQuantities"]
    assert mismatch["userErrors"][0]["code"] == "IDEMPOTENCY_KEY_PARAMETER_MISMATCH"
    assert sandbox.stock(small) == 2


def test_inventory_set_without_idempotent_directive_is_an_error(
    client: httpx.Client, sandbox: ShopifySandbox
) -> None:
    """https://shopify.dev/changelog/making-idempotency-mandatory-for-inventory-adjustments-and-refund-mutations:
    from 2026-04 the directive is mandatory at run time."""
    small = seed_catalogue(sandbox)["variants"][0]["inventory_item_id"]
    document = queries.INVENTORY_SET_QUANTITIES.replace(" @idempotent(key: $key)", "").replace(
        ", $key: String!", ""
    )
    body = post(
        client,
        document,
        {"input": inventory_input(quantity(small, sandbox.location_id, 1, expected=None))},
    )
    assert body["data"] == {"inventorySetQuantities": None}
    assert "@idempotent" in body["errors"][0]["message"]
    assert sandbox.stock(small) == 5


def test_unknown_item_and_location_are_user_errors(
    client: httpx.Client, sandbox: ShopifySandbox
) -> None:
    """Codes from https://shopify.dev/docs/api/admin-graphql/latest/enums/InventorySetQuantitiesUserErrorCode."""
    small = seed_catalogue(sandbox)["variants"][0]["inventory_item_id"]
    batch = inventory_input(
        quantity(small, "gid://shopify/Location/999", 1, expected=None),
        quantity("gid://shopify/InventoryItem/999", sandbox.location_id, 1, expected=None),
    )
    result = data(client, queries.INVENTORY_SET_QUANTITIES, {"input": batch, "key": "k"})
    errors = result["inventorySetQuantities"]["userErrors"]
    assert [e["code"] for e in errors] == ["INVALID_LOCATION", "INVALID_INVENTORY_ITEM"]
    assert errors[1]["field"] == ["input", "quantities", "1", "inventoryItemId"]
    assert sandbox.stock(small) == 5


def test_more_than_250_quantities_are_refused(
    client: httpx.Client, sandbox: ShopifySandbox
) -> None:
    """https://shopify.dev/docs/api/usage/limits: "Input arguments that accept an array have a
    maximum size of 250"; the request errors before anything runs."""
    small = seed_catalogue(sandbox)["variants"][0]["inventory_item_id"]
    batch = inventory_input(*[quantity(small, sandbox.location_id, 1, None)] * 251)
    body = post(client, queries.INVENTORY_SET_QUANTITIES, {"input": batch, "key": "big"})
    assert body["errors"][0]["extensions"]["code"] == "MAX_INPUT_SIZE_EXCEEDED"
    assert sandbox.stock(small) == 5


# ---------------------------------------------------------------------------------------------
# Media
# ---------------------------------------------------------------------------------------------


def test_media_are_appended_by_product_update_and_detached_by_file_update(
    client: httpx.Client, sandbox: ShopifySandbox
) -> None:
    """https://shopify.dev/docs/api/admin-graphql/latest/mutations/productUpdate (``media``)
    and .../mutations/fileUpdate (``referencesToRemove``)."""
    product_id = seed_catalogue(sandbox)["id"]
    media = [
        {
            "originalSource": "https://cdn.example/front.png",
            "alt": "front",
            "mediaContentType": "IMAGE",
        },
        {
            "originalSource": "https://cdn.example/back.png",
            "alt": "back",
            "mediaContentType": "IMAGE",
        },
    ]
    added = data(client, queries.PRODUCT_ADD_MEDIA, {"product": {"id": product_id}, "media": media})
    nodes = added["productUpdate"]["product"]["media"]["nodes"]
    assert [(m["alt"], m["mediaContentType"]) for m in nodes] == [
        ("front", "IMAGE"),
        ("back", "IMAGE"),
    ]
    assert [m["original_source"] for m in sandbox.media(product_id)] == [
        "https://cdn.example/front.png",
        "https://cdn.example/back.png",
    ]

    detach = [{"id": nodes[0]["id"], "referencesToRemove": [product_id]}]
    assert data(client, queries.FILE_UPDATE, {"files": detach})["fileUpdate"]["userErrors"] == []
    left = data(client, queries.PRODUCT_MEDIA, {"id": product_id})["product"]["media"]["nodes"]
    assert [m["alt"] for m in left] == ["back"]

    bad = [{"originalSource": "file:///etc/passwd", "mediaContentType": "IMAGE"}]
    refused = data(client, queries.PRODUCT_ADD_MEDIA, {"product": {"id": product_id}, "media": bad})
    assert refused["productUpdate"]["userErrors"][0]["field"] == ["media", "0", "originalSource"]
    assert len(sandbox.media(product_id)) == 1


# ---------------------------------------------------------------------------------------------
# Fulfilment
# ---------------------------------------------------------------------------------------------


def test_fulfillment_create_reduces_remaining_and_is_recorded(
    client: httpx.Client, sandbox: ShopifySandbox
) -> None:
    """https://shopify.dev/docs/api/admin-graphql/latest/mutations/fulfillmentCreate on
    fulfilment orders read from .../objects/Order (``fulfillmentOrders``); quantities above
    what remains are refused."""
    seed_catalogue(sandbox)
    order_id = sandbox.add_order(
        [{"sku": "TEE-S", "quantity": 2}, {"sku": "TEE-M"}], updated_at=BASE
    )
    state = data(client, queries.ORDER_FULFILLMENT_STATE, {"id": order_id})["order"]
    fulfillment_order = state["fulfillmentOrders"]["nodes"][0]
    assert fulfillment_order["status"] == "OPEN"
    tee = fulfillment_order["lineItems"]["nodes"][0]
    assert tee["remainingQuantity"] == 2

    def fulfil(count: int) -> dict[str, Any]:
        request = {
            "lineItemsByFulfillmentOrder": [
                {
                    "fulfillmentOrderId": fulfillment_order["id"],
                    "fulfillmentOrderLineItems": [{"id": tee["id"], "quantity": count}],
                }
            ],
            "trackingInfo": {
                "company": "UPS",
                "number": "1Z999",
                "url": "https://ups.example/1Z999",
            },
            "notifyCustomer": False,
        }
        result = data(client, queries.FULFILLMENT_CREATE, {"fulfillment": request})
        return dict(result["fulfillmentCreate"])

    too_many = fulfil(3)
    assert too_many["fulfillment"] is None
    assert too_many["userErrors"]
    assert sandbox.fulfillment_writes == []

    created = fulfil(1)
    assert created["userErrors"] == []
    assert created["fulfillment"]["status"] == "SUCCESS"
    assert created["fulfillment"]["trackingInfo"] == [
        {"company": "UPS", "number": "1Z999", "url": "https://ups.example/1Z999"}
    ]
    after = data(client, queries.ORDER_FULFILLMENT_STATE, {"id": order_id})["order"]
    assert [f["id"] for f in after["fulfillments"]] == [created["fulfillment"]["id"]]
    assert after["fulfillmentOrders"]["nodes"][0]["status"] == "IN_PROGRESS"
    assert after["fulfillmentOrders"]["nodes"][0]["lineItems"]["nodes"][0]["remainingQuantity"] == 1
    assert len(sandbox.fulfillment_writes) == 1
    assert sandbox.fulfillment_writes[0]["line_items"] == [
        {"line_item_id": tee["lineItem"]["id"], "quantity": 1}
    ]


# ---------------------------------------------------------------------------------------------
# Webhooks
# ---------------------------------------------------------------------------------------------


def test_signed_webhook_verifies_with_the_client_secret(sandbox: ShopifySandbox) -> None:
    """https://shopify.dev/docs/apps/build/webhooks/delivery-structure: the HMAC header is
    base64(HMAC-SHA256(raw body, client secret)), plus topic, shop, version and ids."""
    seed_catalogue(sandbox)
    order_id = sandbox.add_order([{"sku": "TEE-S"}], updated_at=BASE)
    payload = sandbox.order_webhook_payload(order_id)
    body, headers = sandbox.signed_webhook("orders/create", payload, event_id="evt-1")
    digest = hmac.new(sandbox.client_secret.encode(), body, hashlib.sha256).digest()
    assert hmac.compare_digest(headers["X-Shopify-Hmac-Sha256"], base64.b64encode(digest).decode())
    assert headers["X-Shopify-Topic"] == "orders/create"
    assert headers["X-Shopify-Shop-Domain"] == sandbox.shop_domain
    assert headers["X-Shopify-API-Version"] == sandbox.api_version
    assert headers["X-Shopify-Event-Id"] == "evt-1"
    assert headers["X-Shopify-Webhook-Id"]
    assert headers["X-Shopify-Triggered-At"].endswith("Z")
    assert headers["Content-Type"] == "application/json"
    sent = json.loads(body)
    assert sent["admin_graphql_api_id"] == order_id
    assert sent["id"] == int(order_id.rsplit("/", 1)[1])
    assert sent["line_items"][0]["sku"] == "TEE-S"
    assert sent["current_total_price"] == "19.99"
    _, forged = sandbox.signed_webhook("orders/create", payload, secret="other")
    assert forged["X-Shopify-Hmac-Sha256"] != headers["X-Shopify-Hmac-Sha256"]


def test_emitted_webhooks_can_be_duplicated_and_reordered(clock: FakeClock) -> None:
    """Shopify delivers at least once and in no guaranteed order
    (https://shopify.dev/docs/apps/build/webhooks/ignore-duplicates); the switches reproduce
    both: a duplicate is the identical delivery, a reordered one arrives after the next."""
    received: list[tuple[str, str]] = []

    async def receive(request: Request) -> JSONResponse:
        payload = json.loads(await request.body())
        received.append((request.headers["x-shopify-webhook-id"], payload["name"]))
        return JSONResponse({})

    receiver = Starlette(routes=[Route("/hooks", receive, methods=["POST"])])
    with serve_in_thread(receiver) as url:
        sandbox = ShopifySandbox(clock=clock, webhook_url=f"{url}/hooks")
        sandbox.duplicate_webhooks = True
        assert sandbox.emit_webhook("orders/updated", {"name": "#1"}) == [200, 200]
        sandbox.duplicate_webhooks, sandbox.reorder_webhooks = False, True
        assert sandbox.emit_webhook("orders/updated", {"name": "#2"}) == []
        assert sandbox.emit_webhook("orders/updated", {"name": "#3"}) == [200, 200]
        sandbox.reorder_webhooks, sandbox.drop_webhook_rate = False, 1.0
        assert sandbox.emit_webhook("orders/updated", {"name": "#4"}) == []
    assert [name for _id, name in received] == ["#1", "#1", "#3", "#2"]
    assert received[0][0] == received[1][0]
    assert [d.status for d in sandbox.webhook_deliveries][-1] is None


# ---------------------------------------------------------------------------------------------
# Fault switches
# ---------------------------------------------------------------------------------------------


def test_queued_429s_carry_retry_after(client: httpx.Client, sandbox: ShopifySandbox) -> None:
    """https://shopify.dev/docs/api/usage/limits (REST-style limits answer 429 with
    ``Retry-After``)."""
    sandbox.queue_429(2, retry_after=3.0)
    statuses = [
        client.post("/graphql.json", json={"query": "{ orders(first: 1) { nodes { id } } }"})
        for _ in range(3)
    ]
    assert [r.status_code for r in statuses] == [429, 429, 200]
    assert statuses[0].headers["Retry-After"] == "3.0"
    assert statuses[0].json()["errors"]


def test_5xx_switch_answers_bad_gateway_or_unavailable(
    client: httpx.Client, sandbox: ShopifySandbox
) -> None:
    """Shopify's edge occasionally answers 502/503 with a JSON body; the connector must retry."""
    sandbox.error_rate_5xx = 1.0
    failed = client.post("/graphql.json", json={"query": "{ orders(first: 1) { nodes { id } } }"})
    assert failed.status_code in (502, 503)
    assert "errors" in failed.json()
    sandbox.error_rate_5xx = 0.0
    assert "errors" not in post(client, "{ orders(first: 1) { nodes { id } } }")


def test_malformed_request_body_is_http_400(client: httpx.Client) -> None:
    """https://shopify.dev/docs/api/usage/response-codes: a request without a query is a 400."""
    response = client.post("/graphql.json", content=b"[1, 2]")
    assert response.status_code == 400
    assert response.json() == {"errors": {"query": "Required parameter missing or invalid"}}


def test_cancelled_order_reads_as_refunded_with_no_current_quantity(
    client: httpx.Client, sandbox: ShopifySandbox
) -> None:
    """``cancelledAt`` is set, removed units leave ``currentQuantity`` and a paid order is
    refunded (https://shopify.dev/docs/api/admin-graphql/latest/objects/Order); the fulfilment
    order closes."""
    [order_id] = sandbox.bulk_add_orders(1, lines_range=(2, 2), start=BASE, seed=7)
    sandbox.update_order(order_id, cancel=True)
    order = data(client, queries.ORDER_BY_ID, {"id": order_id})["order"]
    assert order["cancelledAt"] is not None
    assert order["displayFinancialStatus"] == "REFUNDED"
    assert [ln["currentQuantity"] for ln in order["lineItems"]["nodes"]] == [0, 0]
    assert order["currentTotalPriceSet"]["shopMoney"]["amount"] == "0.0"
    state = data(client, queries.ORDER_FULFILLMENT_STATE, {"id": order_id})["order"]
    assert state["fulfillmentOrders"]["nodes"][0]["status"] == "CLOSED"
