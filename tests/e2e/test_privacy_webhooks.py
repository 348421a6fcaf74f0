"""Shopify's mandatory compliance webhooks, end to end: signed deliveries to ``/webhooks/shopify``
handled by the worker. The Shopify sandbox plays Shopify; the hub runs its API, the outbox relay
and the worker on the StubBroker (embedded) or on PostgreSQL and Redis (services).

Payloads follow the examples of https://shopify.dev/docs/apps/build/compliance/privacy-law-compliance
field by field: ``customers/data_request`` {shop_id, shop_domain, orders_requested,
customer {id, email, phone}, data_request {id}}, ``customers/redact`` {shop_id, shop_domain,
customer {id, email, phone}, orders_to_redact}, ``shop/redact`` {shop_id, shop_domain}.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from connectors.shopify.sandbox import SHOP_ID, ShopifySandbox
from hub.domain.orders import REDACTED
from hub.infrastructure.tables import OrderRow, table_of
from sync.application.privacy import EXPORT_KIND, REDACTED_BODY
from sync.infrastructure.tables import InboundEventRow
from tests.conftest import ADMIN_KEY
from tests.e2e.conftest import SHOPIFY_SECRET, ShopifyHub, wait_until

ORDERS = table_of(OrderRow)
EVENTS = table_of(InboundEventRow)
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
ADA = "ada@example.com"
ADDRESS = {
    "name": "Ada Lovelace",
    "address1": "12 St James's Square",
    "city": "London",
    "zip": "SW1Y 4JH",
    "country_code": "GB",
    "phone": "+44 20 7946 0000",
}


class Hub(ShopifyHub):
    def post(self, topic: str, payload: dict[str, Any], event_id: str) -> int:
        body, headers = self.sandbox.signed_webhook(topic, payload, event_id=event_id)
        answer = self.client.post("/webhooks/shopify", content=body, headers=headers)
        return int(answer.status_code)

    def order_from_buyer(self, email: str = ADA, sku: str = "PRIV-1") -> tuple[str, int]:
        """A buyer's order on Shopify, imported through its orders/create webhook."""
        gid = self.sandbox.add_order(
            [{"sku": sku, "quantity": 1, "price": Decimal("9.00")}],
            currency="USD",
            email=email,
            customer={"first_name": "Ada", "last_name": "Lovelace", "email": email},
            shipping_address=ADDRESS,
        )
        assert self.post("orders/create", self.sandbox.order_webhook_payload(gid), gid) == 200
        wait_until(lambda: self.order(gid) is not None)
        order = self.order(gid)
        assert order is not None
        return gid, order["id"]

    def order(self, external_id: str) -> dict[str, Any] | None:
        with self.engine.container.engine.connect() as db:
            row = db.execute(select(ORDERS).where(ORDERS.c.external_id == external_id)).first()
        return dict(row._mapping) if row else None

    def event(self, event_key: str) -> dict[str, Any]:
        with self.engine.container.engine.connect() as db:
            row = db.execute(select(EVENTS).where(EVENTS.c.event_key == event_key)).one()
        return dict(row._mapping)

    def handled(self, event_key: str) -> bool:
        return bool(self.event(event_key)["status"] == "handled")


def numeric(gid: str) -> int:
    return int(gid.rsplit("/", 1)[1])


@pytest.fixture
def hub(shopify_hub: ShopifyHub) -> Hub:
    return Hub(**vars(shopify_hub))


def test_a_data_request_files_an_export_job_and_forgets_the_request(hub: Hub) -> None:
    gid, order_id = hub.order_from_buyer()
    customer_id = hub.sandbox.order_webhook_payload(gid)["customer"]["id"]
    payload = {
        "shop_id": SHOP_ID,
        "shop_domain": hub.sandbox.shop_domain,
        "orders_requested": [numeric(gid)],
        "customer": {"id": customer_id, "email": ADA, "phone": "+44 20 7946 0000"},
        "data_request": {"id": 9999},
    }

    assert hub.post("customers/data_request", payload, "evt-data-request") == 200
    wait_until(lambda: hub.handled("evt-data-request"))

    jobs = hub.client.get("/jobs", params={"kind": EXPORT_KIND}, headers=ADMIN).json()["items"]
    assert len(jobs) == 1
    job = jobs[0]
    assert (job["status"], job["shop_id"]) == ("succeeded", hub.shop_id)
    assert job["payload"]["data_request_id"] == "9999"
    assert ADA not in str(job["payload"])  # only its hash: the payload outlives the result
    exported = job["result"]
    assert [order["id"] for order in exported["orders"]] == [order_id]
    assert exported["orders"][0]["customer"]["email"] == ADA
    assert exported["orders"][0]["shipping_address"]["line1"] == ADDRESS["address1"]
    assert exported["request"]["data_request_id"] == "9999"
    assert gid in [event["resource_id"] for event in exported["events"]]
    event = hub.event("evt-data-request")
    assert bytes(event["body"]) == REDACTED_BODY
    assert f"job {job['id']}" in event["reason"]
    assert event["resource_id"] == "9999"
    order = hub.order(gid)
    assert order is not None
    assert order["customer_email"] == ADA  # a data request changes nothing


def test_a_customer_redaction_removes_them_from_orders_events_and_cached_reads(
    hub: Hub,
) -> None:
    gid, order_id = hub.order_from_buyer()
    other_gid, other_id = hub.order_from_buyer("grace@example.com", sku="PRIV-2")
    wait_until(lambda: hub.handled(gid))
    first = hub.client.get(f"/orders/{order_id}", headers=ADMIN)
    assert hub.client.get(f"/orders/{order_id}", headers=ADMIN).headers["x-cache"] == "hit"
    assert first.json()["customer"]["email"] == ADA
    stranger = ShopifySandbox(client_secret=SHOPIFY_SECRET, shop_domain="stranger.myshopify.com")
    body, headers = stranger.signed_webhook(
        "orders/updated", {"id": 1, "email": ADA}, event_id="evt-stranger"
    )
    rejected = hub.client.post("/webhooks/shopify", content=body, headers=headers)
    assert rejected.json()["status"] == "rejected"
    customer_id = hub.sandbox.order_webhook_payload(gid)["customer"]["id"]
    payload = {
        "shop_id": SHOP_ID,
        "shop_domain": hub.sandbox.shop_domain,
        "customer": {"id": customer_id, "email": ADA, "phone": "+44 20 7946 0000"},
        "orders_to_redact": [numeric(gid)],
    }

    assert hub.post("customers/redact", payload, "evt-redact") == 200
    wait_until(lambda: hub.handled("evt-redact"))

    after = hub.client.get(f"/orders/{order_id}", headers=ADMIN)
    assert after.headers["x-cache"] == "miss"
    document = after.json()
    assert document["customer"] == {"name": REDACTED, "email": None}
    assert document["shipping_address"] == {"country": "GB"}
    assert document["version"] == first.json()["version"] + 1
    assert [line["sku"] for line in document["lines"]] == ["PRIV-1"]
    for key in (gid, "evt-stranger", "evt-redact"):
        assert bytes(hub.event(key)["body"]) == REDACTED_BODY, key
    assert hub.event("evt-stranger")["status"] == "rejected"
    assert hub.event("evt-redact")["resource_id"] == f"gid://shopify/Customer/{customer_id}"
    assert "1 orders" in hub.event("evt-redact")["reason"]
    untouched = hub.client.get(f"/orders/{other_id}", headers=ADMIN).json()
    assert untouched["customer"]["email"] == "grace@example.com"
    assert bytes(hub.event(other_gid)["body"]) != REDACTED_BODY

    # Shopify sends the order again: the import applies, the buyer stays redacted, and the new
    # event's body is not kept either.
    hub.sandbox.update_order(gid, refund={"PRIV-1": 1})
    assert hub.post("orders/updated", hub.sandbox.order_webhook_payload(gid), "evt-again") == 200
    wait_until(lambda: hub.handled("evt-again"))
    again = hub.client.get(f"/orders/{order_id}", headers=ADMIN).json()
    assert again["lines"][0]["quantity"] == 0
    assert again["customer"] == {"name": REDACTED, "email": None}
    assert bytes(hub.event("evt-again")["body"]) == REDACTED_BODY


def test_a_shop_redaction_removes_every_buyer_of_the_shop(hub: Hub) -> None:
    first_gid, _ = hub.order_from_buyer()
    second_gid, _ = hub.order_from_buyer("grace@example.com", sku="PRIV-2")
    assert hub.post("app/uninstalled", hub.sandbox.app_uninstalled_payload(), "evt-bye") == 200
    wait_until(lambda: hub.handled("evt-bye"))
    payload = {"shop_id": SHOP_ID, "shop_domain": hub.sandbox.shop_domain}

    assert hub.post("shop/redact", payload, "evt-shop-redact") == 200
    wait_until(lambda: hub.handled("evt-shop-redact"))

    for gid in (first_gid, second_gid):
        order = hub.order(gid)
        assert order is not None
        assert (order["customer_name"], order["customer_email"]) == (REDACTED, None)
        assert order["buyer_redacted_at"] is not None
        assert bytes(hub.event(gid)["body"]) == REDACTED_BODY
    assert "2 orders" in hub.event("evt-shop-redact")["reason"]


def test_a_compliance_webhook_with_a_bad_signature_is_401_and_stores_nothing(hub: Hub) -> None:
    """ "If a mandatory compliance webhook sends a request with an invalid Shopify HMAC header,
    then the app must return a 401" (https://shopify.dev/docs/apps/build/compliance/privacy-law-compliance)."""
    payload = {"shop_id": SHOP_ID, "shop_domain": hub.sandbox.shop_domain}
    body, headers = hub.sandbox.signed_webhook("shop/redact", payload, secret="forged")
    assert hub.client.post("/webhooks/shopify", content=body, headers=headers).status_code == 401
    with hub.engine.container.engine.connect() as db:
        assert db.execute(select(EVENTS.c.id)).all() == []
