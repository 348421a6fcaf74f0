"""Orders in, end to end: webhooks delivered twice, late or never still give each order once,
with its newest data. The Shopify sandbox plays Shopify; the hub runs its API, the outbox relay
and the worker on the StubBroker (embedded) or on PostgreSQL and Redis (services).

Webhook shapes follow https://shopify.dev/docs/apps/build/webhooks (headers) and the REST order
payload of https://shopify.dev/docs/api/admin-rest/latest/resources/webhook.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from connectors.sandbox_server import serve_in_thread
from connectors.shopify.sandbox import ShopifySandbox
from hub.api.app import create_app
from hub.bootstrap import bootstrap
from hub.infrastructure.tables import OrderRow, table_of
from sync.infrastructure.tables import InboundEventRow
from sync.worker.engine import SyncEngine
from sync.worker.scheduler import Scheduler
from tests.conftest import ADMIN_KEY, Backend
from tests.e2e.conftest import (
    SHOPIFY_SECRET,
    ShopifyHub,
    add_shopify_shop,
    shopify_settings,
    wait_until,
)

ORDERS = table_of(OrderRow)
EVENTS = table_of(InboundEventRow)


class Hub(ShopifyHub):
    def deliver(self, order_gid: str, event_id: str) -> int:
        body, headers = self.sandbox.signed_webhook(
            "orders/updated", self.sandbox.order_webhook_payload(order_gid), event_id=event_id
        )
        return self.client.post("/webhooks/shopify", content=body, headers=headers).status_code

    def orders(self) -> list[dict[str, object]]:
        with self.engine.container.engine.connect() as db:
            rows = db.execute(select(ORDERS).order_by(ORDERS.c.id)).all()
        return [dict(row._mapping) for row in rows]

    def event_statuses(self) -> list[str]:
        with self.engine.container.engine.connect() as db:
            return [r.status for r in db.execute(select(EVENTS.c.status).order_by(EVENTS.c.id))]


@pytest.fixture
def hub(shopify_hub: ShopifyHub) -> Hub:
    return Hub(**vars(shopify_hub))


def test_a_webhook_delivered_three_times_out_of_order_gives_one_order_with_the_newest_data(
    hub: Hub,
) -> None:
    product = hub.sandbox.add_product(
        "Tee", [{"sku": "TEE-1", "price": Decimal("20.00"), "available": 5}]
    )
    gid = hub.sandbox.add_order([{"sku": "TEE-1", "quantity": 3}], currency="USD")
    hub.sandbox.update_order(gid, refund={"TEE-1": 1})  # the newest state: 2 left
    assert product["variants"]
    # The newer event first, the older one late, then the newer one again.
    assert [hub.deliver(gid, "evt-2"), hub.deliver(gid, "evt-1"), hub.deliver(gid, "evt-2")] == [
        200,
        200,
        200,
    ]
    wait_until(lambda: hub.event_statuses() == ["handled", "handled"])
    orders = hub.orders()
    assert len(orders) == 1
    assert orders[0]["external_id"] == gid
    detail = hub.client.get(
        f"/orders/{orders[0]['id']}", headers={"Authorization": f"Bearer {ADMIN_KEY}"}
    ).json()
    assert [line["quantity"] for line in detail["lines"]] == [2]


def test_a_dropped_webhooks_order_arrives_by_the_next_pull(hub: Hub) -> None:
    gid = hub.sandbox.add_order(
        [{"sku": "LOOSE", "quantity": 1, "price": Decimal("9.50")}], currency="USD"
    )
    Scheduler(hub.engine.runtime).enqueue_due_pulls()
    wait_until(lambda: [o["external_id"] for o in hub.orders()] == [gid])


def test_a_bad_signature_is_401_and_stores_nothing(hub: Hub) -> None:
    gid = hub.sandbox.add_order(
        [{"sku": "X", "quantity": 1, "price": Decimal("1.00")}], currency="USD"
    )
    body, headers = hub.sandbox.signed_webhook(
        "orders/updated", hub.sandbox.order_webhook_payload(gid), secret="forged"
    )
    response = hub.client.post("/webhooks/shopify", content=body, headers=headers)
    assert response.status_code == 401
    assert hub.event_statuses() == []


def test_a_signed_malformed_body_is_stored_as_rejected_and_answered_200(hub: Hub) -> None:
    body, headers = hub.sandbox.signed_webhook("orders/updated", {"placeholder": True})
    garbage = b"{not json"
    headers["X-Shopify-Hmac-Sha256"] = base64.b64encode(
        hmac.new(SHOPIFY_SECRET.encode(), garbage, hashlib.sha256).digest()
    ).decode()
    response = hub.client.post("/webhooks/shopify", content=garbage, headers=headers)
    assert response.status_code == 200
    assert response.json()["status"] == "rejected"
    assert hub.event_statuses() == ["rejected"]
    assert body


def test_an_unknown_shop_is_stored_as_rejected_and_answered_200(hub: Hub) -> None:
    other = ShopifySandbox(client_secret=SHOPIFY_SECRET, shop_domain="stranger.myshopify.com")
    body, headers = other.signed_webhook(
        "orders/updated", {"id": 1, "admin_graphql_api_id": "gid://shopify/Order/1"}
    )
    response = hub.client.post("/webhooks/shopify", content=body, headers=headers)
    assert response.status_code == 200
    assert response.json()["status"] == "rejected"


def test_a_restart_re_sends_what_the_in_memory_broker_lost(backend: Backend) -> None:
    sandbox = ShopifySandbox(client_secret=SHOPIFY_SECRET, restore_rate=100_000)
    with serve_in_thread(sandbox.app) as base_url:
        container = bootstrap(shopify_settings(backend))
        shop_id = add_shopify_shop(container, sandbox, base_url, "Restart")
        gid = sandbox.add_order(
            [{"sku": "R-1", "quantity": 1, "price": Decimal("3.00")}], currency="USD"
        )
        first = SyncEngine(container=container)
        first.start_relay()  # publishes to the in-memory broker; no worker consumes it
        with TestClient(create_app(container=container)) as client:
            body, headers = sandbox.signed_webhook(
                "orders/updated", sandbox.order_webhook_payload(gid), event_id="evt-r"
            )
            assert (
                client.post("/webhooks/shopify", content=body, headers=headers).status_code == 200
            )
        time.sleep(0.3)
        first.stop()  # the process "dies": its in-memory queue is gone

        second = SyncEngine(container=container)
        second.start_worker(threads=1)
        hub = Hub(second, TestClient(create_app(container=container)), sandbox, shop_id)
        assert hub.event_statuses() == ["received"]
        assert second.recover()  # the unhandled event is sent again
        second.start_relay()
        wait_until(lambda: [o["external_id"] for o in hub.orders()] == [gid])
        second.stop()
        container.close()


def test_import_one_re_reads_a_single_order(hub: Hub) -> None:
    gid = hub.sandbox.add_order(
        [{"sku": "ONE", "quantity": 2, "price": Decimal("4.00")}], currency="USD"
    )
    hub.engine.runtime.send(
        "orders.import_one", "orders", {"shop_id": hub.shop_id, "external_id": gid}
    )
    wait_until(lambda: [o["external_id"] for o in hub.orders()] == [gid])


def test_events_are_listed_and_a_handled_one_can_be_replayed(hub: Hub) -> None:
    gid = hub.sandbox.add_order(
        [{"sku": "EV", "quantity": 1, "price": Decimal("2.00")}], currency="USD"
    )
    assert hub.deliver(gid, "evt-list") == 200
    wait_until(lambda: hub.event_statuses() == ["handled"])
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    listed = hub.client.get("/events", params={"status": "handled"}, headers=admin).json()
    assert [item["event_key"] for item in listed["items"]] == ["evt-list"]
    assert listed["items"][0]["shop_id"] == hub.shop_id
    event_id = listed["items"][0]["id"]
    replayed = hub.client.post(f"/events/{event_id}/replay", headers=admin)
    assert replayed.status_code == 200
    assert replayed.json()["status"] == "received"
    wait_until(lambda: hub.event_statuses() == ["handled"])
    assert len(hub.orders()) == 1
    assert hub.client.get("/events", params={"status": "bogus"}, headers=admin).status_code == 422


def test_webhook_status_reports_the_last_verified_delivery(hub: Hub) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    before = hub.client.get(f"/shops/{hub.shop_id}/webhook-status", headers=admin).json()
    assert before["last_verified_delivery_at"] is None
    assert before["webhook_management"] == "api"
    gid = hub.sandbox.add_order(
        [{"sku": "WS", "quantity": 1, "price": Decimal("1.00")}], currency="USD"
    )
    assert hub.deliver(gid, "evt-status") == 200
    after = hub.client.get(f"/shops/{hub.shop_id}/webhook-status", headers=admin).json()
    assert after["last_verified_delivery_at"] is not None
    assert 0 <= after["seconds_since_last_delivery"] < 60
