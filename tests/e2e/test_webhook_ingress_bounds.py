"""Webhook ingress at the edges of what the database holds, embedded (SQLite, the generic store)
and on the services (PostgreSQL, the one-statement async store).

* A WooCommerce shop id beyond the id column's range (the path takes any integer) is an unknown
  shop: the same 401 as a bad signature after the same work, nothing stored; a held source gets
  the same 429 for both. Never the 500 of a driver refusing the value.
* Shopify and Etsy take no shop id in the path (their shop comes from the verified event): such a
  path is no route, and an Etsy event naming a huge shop id is a delivery for an unknown shop.
* A verified delivery whose event key, topic or resource id does not fit ``inbound_events``
  (longer than its column, or text the database cannot hold: NUL, a lone surrogate) is stored
  as rejected with the field named and answered 200, so the marketplace stops retrying; its
  redelivery is a duplicate.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import select

from connectors.shopify import webhooks as shopify_webhooks
from connectors.woocommerce import webhooks as woo_webhooks
from hub.api import webhooks
from hub.api.params import MAX_ID
from tests.conftest import Backend
from tests.support.webhook_guard import (
    EVENTS,
    FLOODER,
    SHOPIFY_DOMAIN,
    SHOPIFY_SECRET,
    WOO_SECRET,
    WOO_SITE,
    Hub,
    Spies,
    etsy_delivery,
    etsy_headers,
    running_hub,
    same_work,
    spied_hub,
    woo_delivery,
)

# Each beyond the BIGINT (PostgreSQL) / 64-bit INTEGER (SQLite) id column, either way.
HUGE_IDS = [MAX_ID + 1, 99999999999999999999, -(2**63) - 1, 10**100]
LONG = "x" * 300  # over every inbound_events text column (event_key 255, topic 100, ...)
SOURCE = "198.51.100.20"


@pytest.fixture
def hub(backend: Backend) -> Iterator[Hub]:
    with running_hub(
        backend, webhook_failure_limit=100, webhook_failure_window_seconds=60.0
    ) as hub:
        yield hub


@pytest.fixture
def spied(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Hub, Spies]]:
    with spied_hub(backend, monkeypatch) as both:
        yield both


def stored_rows(hub: Hub) -> list[Any]:
    with hub.container.engine.connect() as db:
        return list(db.execute(select(EVENTS).order_by(EVENTS.c.id)))


# ---------------------------------------------------------------------------------------------
# Shop ids beyond the column
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shop_id", HUGE_IDS)
def test_a_woocommerce_shop_id_beyond_the_column_gets_the_unknown_shop_401(
    hub: Hub, shop_id: int
) -> None:
    """Signed with the real shop's secret, so only the id can fail it."""
    unknown = hub.post(f"/webhooks/woocommerce/{shop_id}", *woo_delivery(), SOURCE)
    forged = hub.post(
        f"/webhooks/woocommerce/{hub.woo_shop_id}", *woo_delivery(secret="forged"), SOURCE
    )
    assert unknown.status_code == forged.status_code == 401
    assert unknown.json() == forged.json()
    assert stored_rows(hub) == []


@pytest.mark.parametrize("marketplace", ["shopify", "etsy"])
def test_app_wide_routes_take_no_shop_id(hub: Hub, marketplace: str) -> None:
    path = f"/webhooks/{marketplace}/{HUGE_IDS[1]}"
    assert hub.post(path, *woo_delivery(), SOURCE).status_code == 404
    assert stored_rows(hub) == []


def test_an_etsy_event_naming_a_huge_shop_id_is_a_delivery_for_an_unknown_shop(
    hub: Hub,
) -> None:
    answer = hub.post("/webhooks/etsy", *etsy_delivery(shop_id=HUGE_IDS[1]), SOURCE)
    assert (answer.status_code, answer.json()["status"]) == (200, "rejected")
    (row,) = stored_rows(hub)
    assert (row.shop_id, row.status) == (None, "rejected")
    assert row.reason == f"unknown shop {str(HUGE_IDS[1])!r}"


def test_a_shop_id_beyond_the_column_does_the_same_work_as_a_bad_signature(
    spied: tuple[Hub, Spies],
) -> None:
    hub, spies = spied
    forged_body, forged_headers = woo_delivery(secret="forged")
    path = f"/webhooks/woocommerce/{hub.woo_shop_id}"
    bad_signature = spies.measure(
        lambda: hub.post(path, forged_body, forged_headers, FLOODER), forged_body
    )
    body, headers = woo_delivery()
    huge_id = spies.measure(
        lambda: hub.post(f"/webhooks/woocommerce/{HUGE_IDS[1]}", body, headers, FLOODER), body
    )
    same_work(bad_signature, huge_id)
    assert huge_id.status == 401
    assert huge_id.decryptions == 1  # the dummy, as for any unknown shop
    assert len([s for s in huge_id.statements if "FROM shops" in s]) == 1

    # Past the budget: verified against the snapshot, the same 429 and no database work.
    assert hub.post(path, forged_body, forged_headers, FLOODER).status_code == 429
    hub.post(path, forged_body, forged_headers, FLOODER)  # the first held one loads the snapshot
    held_forged = spies.measure(
        lambda: hub.post(path, forged_body, forged_headers, FLOODER), forged_body
    )
    held_huge = spies.measure(
        lambda: hub.post(f"/webhooks/woocommerce/{HUGE_IDS[1]}", body, headers, FLOODER), body
    )
    same_work(held_forged, held_huge)
    assert held_huge.status == 429
    assert held_huge.statements == []
    assert stored_rows(hub) == []


# ---------------------------------------------------------------------------------------------
# Envelope fields that do not fit inbound_events
# ---------------------------------------------------------------------------------------------


def shopify_signed(body: bytes, **headers: str) -> tuple[bytes, dict[str, str]]:
    return body, {
        "Content-Type": "application/json",
        "X-Shopify-Topic": "orders/updated",
        "X-Shopify-Shop-Domain": SHOPIFY_DOMAIN,
        "X-Shopify-Event-Id": str(uuid.uuid4()),
        **{name.replace("_", "-"): value for name, value in headers.items()},
        "X-Shopify-Hmac-Sha256": shopify_webhooks.signature(body, SHOPIFY_SECRET),
    }


def etsy_signed(document: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(document).encode()  # ASCII: \u0000 and \ud800 stay JSON escapes
    return body, etsy_headers(body)


def woo_signed(document: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(document).encode()
    return body, {
        "Content-Type": "application/json",
        "X-WC-Webhook-Source": f"https://{WOO_SITE}/",
        "X-WC-Webhook-Topic": "order.updated",
        "X-WC-Webhook-Signature": woo_webhooks.signature(body, WOO_SECRET),
    }


ORDER = {"id": 4501, "admin_graphql_api_id": "gid://shopify/Order/4501"}
UNFIT: dict[str, tuple[str, Callable[[], tuple[bytes, dict[str, str]]], str]] = {
    "shopify-long-topic": (
        "shopify",
        lambda: shopify_signed(json.dumps(ORDER).encode(), X_Shopify_Topic=LONG),
        "topic is 300 characters long",
    ),
    "shopify-long-event-id": (
        "shopify",
        lambda: shopify_signed(json.dumps(ORDER).encode(), X_Shopify_Event_Id=LONG),
        "event_key is 300 characters long",
    ),
    "shopify-long-event-id-unreadable-body": (
        "shopify",
        lambda: shopify_signed(b"not json", X_Shopify_Event_Id=LONG, X_Shopify_Topic=LONG),
        "not a JSON object",
    ),
    "shopify-nul-in-resource-id": (
        "shopify",
        lambda: shopify_signed(
            json.dumps({"admin_graphql_api_id": "gid://shopify/Order/1\x00"}).encode()
        ),
        "resource_id contains a NUL character",
    ),
    "shopify-lone-surrogate-in-resource-id": (
        "shopify",
        lambda: shopify_signed(json.dumps({"admin_graphql_api_id": "gid://\ud800"}).encode()),
        "resource_id contains a lone surrogate",
    ),
    "etsy-long-event-type": (
        "etsy",
        lambda: etsy_signed({"event_type": LONG, "shop_id": 424242}),
        "topic is 300 characters long",
    ),
    "etsy-nul-in-event-type": (
        "etsy",
        lambda: etsy_signed({"event_type": "order.paid\x00", "shop_id": 424242}),
        "topic contains a NUL character",
    ),
    "etsy-lone-surrogate-in-shop-id": (
        "etsy",
        lambda: etsy_signed({"event_type": "order.paid", "shop_id": "\udc00"}),
        "shop reference contains a lone surrogate",
    ),
    "etsy-long-receipt-id": (
        "etsy",
        lambda: etsy_signed({"event_type": "order.paid", "shop_id": 424242, "receipt_id": LONG}),
        "resource_id is 300 characters long",
    ),
    "woocommerce-long-resource-id": (
        "woocommerce",
        lambda: woo_signed({"id": LONG, "status": "processing"}),
        "resource_id is 300 characters long",
    ),
}


@pytest.mark.parametrize(("marketplace", "delivery", "named"), UNFIT.values(), ids=list(UNFIT))
def test_a_delivery_that_does_not_fit_is_kept_as_rejected(
    hub: Hub,
    marketplace: str,
    delivery: Callable[[], tuple[bytes, dict[str, str]]],
    named: str,
) -> None:
    body, headers = delivery()  # signed now: Etsy refuses a timestamp minutes old
    path = (
        f"/webhooks/woocommerce/{hub.woo_shop_id}"
        if marketplace == "woocommerce"
        else f"/webhooks/{marketplace}"
    )
    answer = hub.post(path, body, headers, SOURCE)
    assert (answer.status_code, answer.json()["status"]) == (200, "rejected")
    again = hub.post(path, body, headers, SOURCE)
    assert (again.status_code, again.json()) == (200, {"status": "duplicate"})
    (row,) = stored_rows(hub)
    assert row.id == answer.json()["event_id"]
    assert row.status == "rejected"
    assert named in row.reason
    assert bytes(row.body) == body  # nothing lost: the delivery is there to inspect
    assert len(row.event_key) <= webhooks.EVENT_KEY_CHARS
    assert len(row.topic) <= webhooks.TOPIC_CHARS
    assert row.resource_id is None or len(row.resource_id) <= webhooks.RESOURCE_ID_CHARS
    if "event_key" in row.reason:
        assert row.event_key.startswith(webhooks.HASHED_KEY_PREFIX)
    expected_shop = {"shopify": hub.shopify_shop_id, "woocommerce": hub.woo_shop_id}
    assert row.shop_id == expected_shop.get(marketplace)  # Etsy's 424242 is no shop of ours


def test_a_topic_cut_to_fit_keeps_its_beginning_and_says_it_was_cut(hub: Hub) -> None:
    topic = "orders/" + "y" * 200
    hub.post("/webhooks/shopify", *shopify_signed(b"{}", X_Shopify_Topic=topic), SOURCE)
    (row,) = stored_rows(hub)
    assert len(row.topic) == webhooks.TOPIC_CHARS
    assert row.topic == topic[: webhooks.TOPIC_CHARS - 1] + webhooks.CUT_MARK
