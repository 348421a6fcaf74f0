"""What the webhook guard's tests share: a hub with a WooCommerce and a Shopify shop behind a
trusted proxy, signed deliveries for each marketplace, and spies that count the work one request
does (HMACs, decryptions, budget calls, SQL statements, stored events)."""

from __future__ import annotations

import base64
import hmac
import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select

from connectors.etsy import webhooks as etsy_webhooks
from connectors.shopify import webhooks as shopify_webhooks
from connectors.woocommerce import webhooks as woo_webhooks
from hub.api import webhooks
from hub.api.app import create_app
from hub.application import shops
from hub.application.sellers import create_seller
from hub.bootstrap import Container, bootstrap
from hub.domain.sellers import Principal
from hub.domain.shops import Marketplace
from hub.infrastructure.tables import table_of
from hub.settings import Settings
from sync.infrastructure import events
from sync.infrastructure.events_async import AsyncEventStore
from sync.infrastructure.tables import InboundEventRow
from tests.conftest import Backend

EVENTS = table_of(InboundEventRow)
WOO_SITE = "guard-shop.example.com"
WOO_SECRET = "wc-guard-secret"
SHOPIFY_DOMAIN = "guard-shop.myshopify.com"
SHOPIFY_SECRET = "shpss_guard_current"
SHOPIFY_PREVIOUS = "shpss_guard_previous"
ETSY_SECRET = "whsec_" + base64.b64encode(b"etsy-guard-current-key").decode()
ETSY_PREVIOUS = "whsec_" + base64.b64encode(b"etsy-guard-previous-key").decode()
FORGED_ETSY_SECRET = "whsec_" + base64.b64encode(b"forged").decode()
PROXY = "10.0.0.1"  # the test client's peer address: a trusted proxy, so sources come from XFF
FLOODER = "198.51.100.7"
BYSTANDER = "198.51.100.8"


@dataclass
class Hub:
    client: TestClient
    container: Container
    woo_shop_id: int
    shopify_shop_id: int
    sent: int = field(default=0)

    def post(self, path: str, body: bytes, headers: dict[str, str], source: str) -> Any:
        return self.client.post(path, content=body, headers={**headers, "X-Forwarded-For": source})

    def events(self) -> list[tuple[int | None, str]]:
        with self.container.engine.connect() as db:
            query = select(EVENTS.c.shop_id, EVENTS.c.status).order_by(EVENTS.c.id)
            return [(row.shop_id, row.status) for row in db.execute(query)]


@contextmanager
def running_hub(backend: Backend, **overrides: Any) -> Iterator[Hub]:
    settings = Settings(
        **{
            **backend.settings.model_dump(),
            "shopify_client_secret": SHOPIFY_SECRET,
            "shopify_client_secret_previous": SHOPIFY_PREVIOUS,
            "etsy_webhook_secret": ETSY_SECRET,
            "etsy_webhook_secret_previous": ETSY_PREVIOUS,
            "trusted_proxies": "10.0.0.0/8",
            "webhook_failure_delay_seconds": 0.0,  # held-back 429s are tested on the guard
            **overrides,
        }
    )
    container = bootstrap(settings)
    try:
        with container.uow() as uow:
            seller, _ = create_seller(uow, "Guard seller")
            assert seller.id is not None
            principal = Principal(seller_id=seller.id)
            woo = shops.create_shop(
                uow,
                shops.CreateShop(
                    seller_id=seller.id,
                    marketplace=Marketplace.WOOCOMMERCE,
                    external_id=WOO_SITE,
                    name="Woo",
                    credentials={
                        "consumer_key": "ck_x",
                        "consumer_secret": "cs_x",
                        "webhook_secret": WOO_SECRET,
                    },
                ),
                principal,
            )
            shopify = shops.create_shop(
                uow,
                shops.CreateShop(
                    seller_id=seller.id,
                    marketplace=Marketplace.SHOPIFY,
                    external_id=SHOPIFY_DOMAIN,
                    name="Shopify",
                    credentials={"access_token": "shpat_x"},
                ),
                principal,
            )
            uow.commit()
        app = create_app(container=container)
        with TestClient(app, client=(PROXY, 50000)) as client:
            yield Hub(client, container, woo.id or 0, shopify.id or 0)
    finally:
        container.close()


def woo_delivery(
    secret: str = WOO_SECRET, resource_id: int | None = None
) -> tuple[bytes, dict[str, str]]:
    order_id = resource_id or int(uuid.uuid4().int % 10**9)
    body = json.dumps(
        {"id": order_id, "status": "processing", "date_modified_gmt": "2026-05-01T10:00:00"},
        separators=(",", ":"),
    ).encode()
    return body, {
        "Content-Type": "application/json",
        "X-WC-Webhook-Source": f"https://{WOO_SITE}/",
        "X-WC-Webhook-Topic": "order.updated",
        "X-WC-Webhook-Resource": "order",
        "X-WC-Webhook-Event": "updated",
        "X-WC-Webhook-ID": "7",
        "X-WC-Webhook-Delivery-ID": uuid.uuid4().hex,
        "X-WC-Webhook-Signature": woo_webhooks.signature(body, secret),
    }


def shopify_delivery(
    secret: str = SHOPIFY_SECRET, domain: str = SHOPIFY_DOMAIN
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(
        {"id": 4501, "admin_graphql_api_id": "gid://shopify/Order/4501", "name": "#1001"},
        separators=(",", ":"),
    ).encode()
    return body, {
        "Content-Type": "application/json",
        "X-Shopify-Topic": "orders/updated",
        "X-Shopify-Hmac-Sha256": shopify_webhooks.signature(body, secret),
        "X-Shopify-Shop-Domain": domain,
        "X-Shopify-Event-Id": str(uuid.uuid4()),
        "X-Shopify-Webhook-Id": str(uuid.uuid4()),
    }


def etsy_delivery(secret: str = ETSY_SECRET, shop_id: int = 424242) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(
        {
            "event_type": "order.paid",
            "shop_id": shop_id,
            "resource_url": f"https://openapi.etsy.com/v3/application/shops/{shop_id}/receipts/9",
        },
        separators=(",", ":"),
    ).encode()
    return body, etsy_headers(body, secret)


def etsy_headers(body: bytes, secret: str = ETSY_SECRET) -> dict[str, str]:
    """Standard Webhooks headers signing ``body`` as Etsy does, with a fresh message id."""
    message_id, stamp = f"msg_{uuid.uuid4().hex}", str(int(time.time()))
    mac = etsy_webhooks.signature(etsy_webhooks.signing_key(secret), message_id, stamp, body)
    return {
        "Content-Type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": stamp,
        "webhook-signature": f"v1,{mac}",
    }


@dataclass
class Work:
    """What one request did."""

    status: int = 0
    answer: Any = None
    hmacs_over_body: int = 0
    digest_compares: int = 0
    decryptions: int = 0
    budget_calls: int = 0
    held_back: int = 0
    statements: list[str] = field(default_factory=list)
    stored: list[str] = field(default_factory=list)


class Spies:
    """Counts, per request, the work the ingress does for it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, hub: Hub) -> None:
        self.current: Work | None = None
        self.body = b""
        real_new, real_compare = hmac.new, hmac.compare_digest

        def spy_new(key: Any, msg: Any = None, digestmod: Any = None) -> Any:
            if self.current is not None and msg is not None and bytes(msg).endswith(self.body):
                self.current.hmacs_over_body += 1
            return real_new(key, msg, digestmod)

        def spy_compare(a: Any, b: Any) -> bool:
            if self.current is not None:
                self.current.digest_compares += 1
            return real_compare(a, b)

        monkeypatch.setattr(hmac, "new", spy_new)
        monkeypatch.setattr(hmac, "compare_digest", spy_compare)

        cipher = hub.container.cipher
        real_decrypt = cipher.decrypt

        def spy_decrypt(token: str) -> dict[str, Any]:
            if self.current is not None:
                self.current.decryptions += 1
            return real_decrypt(token)

        monkeypatch.setattr(cipher, "decrypt", spy_decrypt)

        guard = hub.client.app.state.webhook_ingress.guard  # type: ignore[attr-defined]
        budget = guard.budget
        real_spend = budget.spend
        real_hold_back = guard.hold_back

        async def spy_hold_back(wait: float) -> None:
            if self.current is not None:
                self.current.held_back += 1
            await real_hold_back(wait)

        monkeypatch.setattr(guard, "hold_back", spy_hold_back)

        async def spy_spend(source: str) -> float:
            if self.current is not None:
                self.current.budget_calls += 1
            return float(await real_spend(source))

        monkeypatch.setattr(budget, "spend", spy_spend)

        def on_statement(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            if self.current is not None:
                self.current.statements.append(" ".join(statement.split()))

        self._engine = hub.container.engine
        self._listener = on_statement
        event.listen(self._engine, "before_cursor_execute", on_statement)

        real_store_event = events.store_event
        real_async_store = AsyncEventStore.store

        def spy_store_event(engine: Any, incoming: Any) -> Any:
            if self.current is not None:
                self.current.stored.append(incoming.marketplace)
            return real_store_event(engine, incoming)

        async def spy_async_store(store: AsyncEventStore, incoming: Any) -> Any:
            if self.current is not None:
                self.current.stored.append(incoming.marketplace)
            return await real_async_store(store, incoming)

        monkeypatch.setattr("hub.api.webhooks.store_event", spy_store_event)
        monkeypatch.setattr(AsyncEventStore, "store", spy_async_store)

    def close(self) -> None:
        event.remove(self._engine, "before_cursor_execute", self._listener)

    def measure(self, send: Callable[[], Any], body: bytes) -> Work:
        self.current, self.body = Work(), body
        try:
            response = send()
        finally:
            work, self.current = self.current, None
        work.status, work.answer = response.status_code, response.json()
        return work


def same_work(first: Work, second: Work) -> None:
    assert first.status == second.status
    assert first.answer == second.answer
    assert first.hmacs_over_body == second.hmacs_over_body
    assert first.digest_compares == second.digest_compares
    assert first.decryptions == second.decryptions
    assert first.budget_calls == second.budget_calls
    assert first.held_back == second.held_back
    assert first.statements == second.statements
    assert first.stored == second.stored == []


@contextmanager
def spied_hub(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Hub, Spies]]:
    """A hub with a small failure budget and the spies on; the snapshot of WooCommerce secrets
    (what held sources are checked against) stays fresh for the whole test, so no request
    reloads it and skews the counts."""
    monkeypatch.setattr(webhooks, "SNAPSHOT_MAX_AGE_SECONDS", 300.0)
    with running_hub(backend, webhook_failure_limit=2, webhook_failure_window_seconds=60.0) as hub:
        spies = Spies(monkeypatch, hub)
        try:
            yield hub, spies
        finally:
            spies.close()
