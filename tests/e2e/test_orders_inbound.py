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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from connectors.sandbox_server import serve_in_thread
from connectors.shopify.sandbox import ShopifySandbox
from hub.api.app import create_app
from hub.application import shops
from hub.application.sellers import create_seller
from hub.bootstrap import bootstrap
from hub.domain.sellers import Principal
from hub.domain.shops import Marketplace
from hub.infrastructure.tables import OrderRow, table_of
from hub.settings import Settings
from sync.infrastructure.tables import InboundEventRow
from sync.worker.engine import SyncEngine
from sync.worker.scheduler import Scheduler
from tests.conftest import ADMIN_KEY, Backend

SECRET = "shpss_e2e_secret"
ORDERS = table_of(OrderRow)
EVENTS = table_of(InboundEventRow)


@dataclass
class Hub:
    engine: SyncEngine
    client: TestClient
    sandbox: ShopifySandbox
    shop_id: int

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


def wait_until(condition: Callable[[], bool], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


@pytest.fixture
def hub(backend: Backend) -> Iterator[Hub]:
    sandbox = ShopifySandbox(client_secret=SECRET, restore_rate=100_000)
    with serve_in_thread(sandbox.app) as base_url:
        settings = Settings(
            **{**backend.settings.model_dump(), "shopify_client_secret": SECRET},
        )
        container = bootstrap(settings)
        with container.uow() as uow:
            seller, _ = create_seller(uow, "E2E")
            assert seller.id is not None
            shop = shops.create_shop(
                uow,
                shops.CreateShop(
                    seller_id=seller.id,
                    marketplace=Marketplace.SHOPIFY,
                    external_id=sandbox.shop_domain,
                    name="E2E shop",
                    api_base_url=base_url,
                    location_id=sandbox.location_id,
                    credentials={"access_token": sandbox.access_token},
                ),
                Principal(seller_id=seller.id),
            )
            uow.commit()
        engine = SyncEngine(container=container)
        engine.start_relay()
        engine.start_worker(threads=2)
        with TestClient(create_app(container=container)) as client:
            yield Hub(engine, client, sandbox, shop.id or 0)
        engine.stop()
        container.close()


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
        hmac.new(SECRET.encode(), garbage, hashlib.sha256).digest()
    ).decode()
    response = hub.client.post("/webhooks/shopify", content=garbage, headers=headers)
    assert response.status_code == 200
    assert response.json()["status"] == "rejected"
    assert hub.event_statuses() == ["rejected"]
    assert body


def test_an_unknown_shop_is_stored_as_rejected_and_answered_200(hub: Hub) -> None:
    other = ShopifySandbox(client_secret=SECRET, shop_domain="stranger.myshopify.com")
    body, headers = other.signed_webhook(
        "orders/updated", {"id": 1, "admin_graphql_api_id": "gid://shopify/Order/1"}
    )
    response = hub.client.post("/webhooks/shopify", content=body, headers=headers)
    assert response.status_code == 200
    assert response.json()["status"] == "rejected"


def test_a_restart_re_sends_what_the_in_memory_broker_lost(backend: Backend) -> None:
    sandbox = ShopifySandbox(client_secret=SECRET, restore_rate=100_000)
    with serve_in_thread(sandbox.app) as base_url:
        settings = Settings(**{**backend.settings.model_dump(), "shopify_client_secret": SECRET})
        container = bootstrap(settings)
        with container.uow() as uow:
            seller, _ = create_seller(uow, "Restart")
            shop = shops.create_shop(
                uow,
                shops.CreateShop(
                    seller_id=seller.id or 0,
                    marketplace=Marketplace.SHOPIFY,
                    external_id=sandbox.shop_domain,
                    name="R",
                    api_base_url=base_url,
                    location_id=sandbox.location_id,
                    credentials={"access_token": sandbox.access_token},
                ),
                Principal(seller_id=seller.id),
            )
            uow.commit()
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
        hub = Hub(second, TestClient(create_app(container=container)), sandbox, shop.id or 0)
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
