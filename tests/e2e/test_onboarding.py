"""Shop onboarding end to end: a seller connects each marketplace by its own authorization flow
(the sandboxes play Shopify, Etsy and WooCommerce, an httpx client plays the seller's browser),
and the hub keeps the connection alive: subscriptions registered and repaired, an uninstall
noticed. The hub is served over real HTTP, because the marketplaces call it back.

Flows: Shopify's authorization code grant
(https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens/authorization-code-grant),
Etsy's OAuth 2 with PKCE (https://developers.etsy.com/documentation/essentials/authentication),
WooCommerce's app authentication endpoint
(https://woocommerce.github.io/woocommerce-rest-api-docs/#rest-api-keys); subscriptions:
Shopify ``webhookSubscriptionCreate``
(https://shopify.dev/docs/api/admin-graphql/latest/mutations/webhookSubscriptionCreate) and
WooCommerce ``POST /wc/v3/webhooks`` (https://woocommerce.github.io/woocommerce-rest-api-docs/#webhooks),
which WooCommerce disables after more than five failed deliveries.
"""

from __future__ import annotations

import base64
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from connectors.etsy.sandbox import EtsySandbox
from connectors.sandbox_server import serve_in_thread
from connectors.shopify.sandbox import ShopifySandbox
from connectors.woocommerce.sandbox import WooCommerceSandbox
from connectors.woocommerce.webhooks import normalize_site
from hub.api.app import create_app
from hub.application.sellers import create_seller
from hub.bootstrap import bootstrap
from hub.infrastructure.tables import OrderRow, ShopAuthorizationRow, ShopRow, table_of
from hub.settings import Settings
from sync.worker.engine import SyncEngine
from sync.worker.scheduler import Scheduler
from tests.conftest import ADMIN_KEY, Backend
from tests.e2e.conftest import wait_until

SHOPIFY_CLIENT_ID = "hub-e2e-client"
SHOPIFY_SECRET = "shpss_e2e_onboarding"
ETSY_KEYSTRING = "e2eonboardingkeystring"
ETSY_SHARED_SECRET = "e2e-etsy-shared"
ETSY_WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"e2e-etsy-webhook-key").decode()
ETSY_SHOP_ID = 51_000_001
WOO_SITE = "https://e2e-onboarding.example.com"
ORDERS = table_of(OrderRow)
SHOPS = table_of(ShopRow)
AUTHORIZATIONS = table_of(ShopAuthorizationRow)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class World:
    hub_url: str
    api: httpx.Client  # the operator, with the admin key
    browser: httpx.Client  # the seller's browser: follows redirects, no API key
    engine: SyncEngine
    seller_id: int
    shopify: ShopifySandbox
    shopify_url: str
    etsy: EtsySandbox
    etsy_url: str
    woo: WooCommerceSandbox
    woo_url: str

    def start(self, marketplace: str, **body: Any) -> dict[str, Any]:
        answer = self.api.post(
            "/shops/connect",
            json={"marketplace": marketplace, "seller_id": self.seller_id, **body},
        )
        assert answer.status_code == 200, answer.text
        started: dict[str, Any] = answer.json()
        return started

    def connect_shopify(self) -> dict[str, Any]:
        started = self.start(
            "shopify", shop=self.shopify.shop_domain, api_base_url=self.shopify_url
        )
        answer = self.browser.get(started["authorization_url"])
        assert answer.status_code == 200, answer.text
        connected: dict[str, Any] = answer.json()
        return connected

    def job(self, job_id: int) -> dict[str, Any]:
        found: dict[str, Any] = self.api.get(f"/jobs/{job_id}").json()
        return found

    def wait_job(self, job_id: int) -> dict[str, Any]:
        wait_until(lambda: self.job(job_id)["status"] in ("succeeded", "failed"))
        job = self.job(job_id)
        assert job["status"] == "succeeded", job
        return job

    def count(self, table: Any) -> int:
        with self.engine.container.engine.connect() as db:
            return int(db.execute(select(func.count()).select_from(table)).scalar_one())

    def order_ids(self) -> set[str]:
        with self.engine.container.engine.connect() as db:
            return set(db.execute(select(ORDERS.c.external_id)).scalars())

    def shop(self, shop_id: int) -> dict[str, Any]:
        found: dict[str, Any] = self.api.get(f"/shops/{shop_id}").json()
        return found


@pytest.fixture
def world(backend: Backend) -> Iterator[World]:
    shopify = ShopifySandbox(
        client_id=SHOPIFY_CLIENT_ID, client_secret=SHOPIFY_SECRET, restore_rate=100_000
    )
    etsy = EtsySandbox(
        keystring=ETSY_KEYSTRING,
        shared_secret=ETSY_SHARED_SECRET,
        webhook_secret=ETSY_WEBHOOK_SECRET,
    )
    etsy.add_shop(ETSY_SHOP_ID, shop_name="E2EPrints")
    woo = WooCommerceSandbox(site=WOO_SITE)
    port = free_port()
    hub_url = f"http://127.0.0.1:{port}"
    settings = Settings(
        **{
            **backend.settings.model_dump(),
            "public_base_url": hub_url,
            "shopify_client_id": SHOPIFY_CLIENT_ID,
            "shopify_client_secret": SecretStr(SHOPIFY_SECRET),
            "etsy_keystring": ETSY_KEYSTRING,
            "etsy_shared_secret": SecretStr(ETSY_SHARED_SECRET),
            "etsy_webhook_secret": SecretStr(ETSY_WEBHOOK_SECRET),
        }
    )
    container = bootstrap(settings)
    with container.uow() as uow:
        seller, _ = create_seller(uow, "Onboarding E2E")
        uow.commit()
    assert seller.id is not None
    engine = SyncEngine(container=container)
    engine.start_relay()
    engine.start_worker(threads=4)
    with (
        serve_in_thread(shopify.app) as shopify_url,
        serve_in_thread(etsy.app) as etsy_url,
        serve_in_thread(woo.app) as woo_url,
        serve_in_thread(create_app(container=container), port=port, lifespan="on"),
        httpx.Client(
            base_url=hub_url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30
        ) as api,
        httpx.Client(follow_redirects=True, timeout=30) as browser,
    ):
        yield World(
            hub_url,
            api,
            browser,
            engine,
            seller.id,
            shopify,
            shopify_url,
            etsy,
            etsy_url,
            woo,
            woo_url,
        )
    engine.stop()
    container.close()


# --- Shopify ---------------------------------------------------------------------------------


def test_shopify_install_connects_the_shop_subscribes_its_topics_and_takes_their_deliveries(
    world: World,
) -> None:
    world.shopify.add_product(
        "Tee", [{"sku": "TEE-ONB", "price": Decimal("20.00"), "available": 4}]
    )
    connected = world.connect_shopify()
    shop = connected["shop"]
    assert (shop["marketplace"], shop["external_id"]) == ("shopify", world.shopify.shop_domain)
    assert shop["has_credentials"]
    assert shop["location_id"] == world.shopify.location_id
    assert "access_token" not in str(connected)
    check = world.wait_job(connected["webhook_check_job_id"])
    assert sorted(check["result"]["created"]) == [
        "app/uninstalled",
        "orders/create",
        "orders/updated",
    ]
    subscribed = {(sub["topic"], sub["uri"]) for sub in world.shopify.subscriptions()}
    address = f"{world.hub_url}/webhooks/shopify"
    assert {uri for _, uri in subscribed} == {address}
    assert len(subscribed) == 3
    world.wait_job(connected["catalog_job_id"])
    # An order placed now reaches the hub through the subscription the check registered.
    gid = world.shopify.add_order([{"sku": "TEE-ONB", "quantity": 1}], currency="EUR")
    deliveries = world.shopify.subscription_deliveries(
        "orders/create", world.shopify.order_webhook_payload(gid)
    )
    assert [d.address for d in deliveries] == [address]
    for delivery in deliveries:
        answer = httpx.post(delivery.address, content=delivery.body, headers=delivery.headers)
        assert answer.status_code == 200
    wait_until(lambda: gid in world.order_ids())
    status = world.api.get(f"/shops/{shop['id']}/connection").json()
    assert status["webhook_status"] == "repaired"
    assert "write_inventory" in status["scopes"]
    # The next check finds everything in place; a subscription Shopify deleted is put back.
    world.shopify.drop_subscription(
        next(s["id"] for s in world.shopify.subscriptions() if s["topic"] == "ORDERS_UPDATED")
    )
    rerun = world.api.post(f"/shops/{shop['id']}/webhooks/check")
    assert rerun.status_code == 202
    again = world.wait_job(rerun.json()["id"])
    assert again["result"]["created"] == ["orders/updated"]
    assert len(world.shopify.subscriptions()) == 3


def test_a_shopify_callback_with_a_bad_hmac_gets_401_and_stores_nothing(world: World) -> None:
    started = world.start("shopify", shop=world.shopify.shop_domain, api_base_url=world.shopify_url)
    no_follow = httpx.get(started["authorization_url"], follow_redirects=False)
    assert no_follow.status_code == 302
    location = urlsplit(no_follow.headers["location"])
    query = dict(parse_qsl(location.query))
    forged = {**query, "hmac": "0" * 64}
    answer = httpx.get(f"{world.hub_url}{location.path}?{urlencode(forged)}")
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "unauthorized"
    assert world.count(SHOPS) == 0
    # The genuine callback still works: the forged one spent nothing.
    genuine = httpx.get(no_follow.headers["location"])
    assert genuine.status_code == 200, genuine.text
    assert world.count(SHOPS) == 1


def test_a_replayed_callback_gets_401(world: World) -> None:
    started = world.start("shopify", shop=world.shopify.shop_domain, api_base_url=world.shopify_url)
    redirect = httpx.get(started["authorization_url"], follow_redirects=False)
    callback = redirect.headers["location"]
    assert httpx.get(callback).status_code == 200
    replay = httpx.get(callback)
    assert replay.status_code == 401
    assert "completed already" in replay.json()["error"]["message"]
    assert world.count(SHOPS) == 1


def test_a_callback_after_the_state_expired_gets_401(world: World) -> None:
    started = world.start("shopify", shop=world.shopify.shop_domain, api_base_url=world.shopify_url)
    redirect = httpx.get(started["authorization_url"], follow_redirects=False)
    with world.engine.container.engine.begin() as db:
        db.execute(AUTHORIZATIONS.update().values(expires_at=func.current_timestamp()))
    time.sleep(0.01)
    answer = httpx.get(redirect.headers["location"])
    assert answer.status_code == 401
    assert "expired" in answer.json()["error"]["message"]
    assert world.count(SHOPS) == 0


def test_a_long_shopify_backfill_warns_about_read_all_orders(world: World) -> None:
    started = world.start(
        "shopify",
        shop=world.shopify.shop_domain,
        api_base_url=world.shopify_url,
        backfill_days=90,
    )
    assert any("read_all_orders" in warning for warning in started["warnings"])


def test_uninstalling_the_app_disconnects_the_shop_and_stops_its_pulls(world: World) -> None:
    connected = world.connect_shopify()
    shop_id = connected["shop"]["id"]
    world.wait_job(connected["webhook_check_job_id"])
    for delivery in world.shopify.uninstall():
        assert (
            httpx.post(
                delivery.address, content=delivery.body, headers=delivery.headers
            ).status_code
            == 200
        )
    wait_until(lambda: world.shop(shop_id)["status"] == "disconnected")
    pulls = Scheduler(world.engine.runtime).enqueue_due_pulls()
    assert pulls == []  # a disconnected shop is neither pulled nor pushed
    # Installing again reconnects the same shop with a fresh token.
    again = world.connect_shopify()
    assert again["reconnected"]
    assert again["shop"]["id"] == shop_id
    assert world.shop(shop_id)["status"] == "active"


# --- Etsy ------------------------------------------------------------------------------------


def test_etsy_connects_through_pkce_and_reports_its_portal_webhooks_as_silent(
    world: World,
) -> None:
    started = world.start("etsy", api_base_url=world.etsy_url, backfill_days=7)
    assert "code_challenge_method=S256" in started["authorization_url"]
    assert started["warnings"] == []
    answer = world.browser.get(started["authorization_url"])
    assert answer.status_code == 200, answer.text
    connected = answer.json()
    shop = connected["shop"]
    assert (shop["marketplace"], shop["external_id"]) == ("etsy", str(ETSY_SHOP_ID))
    assert connected["backfill_days"] == 7
    check = world.wait_job(connected["webhook_check_job_id"])
    assert check["result"]["health"] == "silent"  # no verified delivery yet
    connection = world.api.get(f"/shops/{shop['id']}/connection").json()
    assert connection["webhook_status"] == "silent"
    assert connection["access_expires_at"] is not None  # Etsy's tokens rotate
    world.wait_job(connected["catalog_job_id"])


def test_an_etsy_callback_with_a_forged_state_gets_401_and_stores_nothing(world: World) -> None:
    world.start("etsy", api_base_url=world.etsy_url)
    answer = httpx.get(
        f"{world.hub_url}/shops/connect/etsy/callback",
        params={"code": "stolen-or-made-up", "state": "forged-state"},
    )
    assert answer.status_code == 401
    assert "unknown authorization state" in answer.json()["error"]["message"]
    assert world.count(SHOPS) == 0
    assert world.etsy.code_exchanges == 0  # nothing was sent to Etsy


def test_an_etsy_consent_the_seller_refused_gets_401(world: World) -> None:
    started = world.start("etsy", api_base_url=world.etsy_url)
    world.etsy.deny_next_consent = True
    answer = world.browser.get(started["authorization_url"])
    assert answer.status_code == 401
    assert "access_denied" in answer.json()["error"]["message"]
    assert world.count(SHOPS) == 0


# --- WooCommerce -----------------------------------------------------------------------------


def connect_woocommerce(world: World) -> dict[str, Any]:
    started = world.start("woocommerce", shop=WOO_SITE, api_base_url=world.woo_url)
    answer = world.browser.get(started["authorization_url"])
    assert answer.status_code == 200, answer.text
    assert answer.json()["success"] is True
    shops = [s for s in world.api.get("/shops").json() if s["marketplace"] == "woocommerce"]
    assert len(shops) == 1
    shop: dict[str, Any] = shops[0]
    return shop


def jobs_of(world: World, shop_id: int, kind: str) -> list[dict[str, Any]]:
    page = world.api.get("/jobs", params={"shop_id": shop_id, "kind": kind}).json()
    items: list[dict[str, Any]] = page["items"]
    return items


def test_woocommerce_keys_posted_back_connect_the_shop_and_a_disabled_webhook_is_re_enabled(
    world: World,
) -> None:
    shop = connect_woocommerce(world)
    assert shop["external_id"] == normalize_site(WOO_SITE)
    assert shop["has_credentials"]
    (check,) = jobs_of(world, shop["id"], "webhooks.check")
    assert sorted(world.wait_job(check["id"])["result"]["created"]) == [
        "order.created",
        "order.updated",
    ]
    address = f"{world.hub_url}/webhooks/woocommerce/{shop['id']}"
    hooks = world.woo.webhooks()
    assert {hook["delivery_url"] for hook in hooks} == {address}
    assert all(hook["status"] == "active" for hook in hooks)
    # A delivery signed with the secret the hub generated verifies at the hub.
    order_id = world.woo.add_order([], status="processing")
    (sent,) = world.woo.signed_deliveries("order.created", world.woo.order_json(order_id))
    answer = httpx.post(sent.delivery_url, content=sent.body, headers=sent.headers)
    assert answer.status_code == 200
    # Seven failed deliveries in a row and WooCommerce disables the webhook ...
    created = next(hook for hook in hooks if hook["topic"] == "order.created")
    for _ in range(7):
        world.woo.record_delivery(created["id"], 500)
    assert {h["id"]: h["status"] for h in world.woo.webhooks()}[created["id"]] == "disabled"
    # ... and the next check enables it again.
    rerun = world.api.post(f"/shops/{shop['id']}/webhooks/check").json()
    result = world.wait_job(rerun["id"])["result"]
    assert result["enabled"] == ["order.created"]
    assert all(hook["status"] == "active" for hook in world.woo.webhooks())
    connection = world.api.get(f"/shops/{shop['id']}/connection").json()
    assert connection["webhook_status"] == "repaired"
    assert "re-enabled order.created" in connection["webhook_detail"]


def test_a_woocommerce_callback_without_a_started_authorization_gets_401(world: World) -> None:
    forged = {
        "key_id": 9,
        "user_id": "never-issued",
        "consumer_key": "ck_" + "a" * 40,
        "consumer_secret": "cs_" + "b" * 40,
        "key_permissions": "read_write",
    }
    answer = httpx.post(f"{world.hub_url}/shops/connect/woocommerce/callback", json=forged)
    assert answer.status_code == 401
    assert world.count(SHOPS) == 0


def test_pasted_woocommerce_keys_connect_at_once_and_bad_ones_are_refused(world: World) -> None:
    good = world.woo.add_api_key("read_write")
    bad = world.api.post(
        "/shops/connect",
        json={
            "marketplace": "woocommerce",
            "seller_id": world.seller_id,
            "shop": WOO_SITE,
            "api_base_url": world.woo_url,
            "consumer_key": "ck_" + "0" * 40,
            "consumer_secret": "cs_" + "0" * 40,
        },
    )
    assert bad.status_code == 422
    assert world.count(SHOPS) == 0
    answer = world.api.post(
        "/shops/connect",
        json={
            "marketplace": "woocommerce",
            "seller_id": world.seller_id,
            "shop": WOO_SITE,
            "api_base_url": world.woo_url,
            "consumer_key": good["consumer_key"],
            "consumer_secret": good["consumer_secret"],
        },
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["shop"]["external_id"] == normalize_site(WOO_SITE)
    assert "consumer_secret" not in answer.text


def test_the_scheduler_checks_each_active_shops_webhooks_every_interval(world: World) -> None:
    from datetime import timedelta

    from hub.infrastructure.clock import utcnow

    connected = world.connect_shopify()
    world.wait_job(connected["webhook_check_job_id"])
    scheduler = Scheduler(world.engine.runtime)
    now = utcnow()
    assert scheduler.enqueue_due_webhook_checks(now) == []  # connecting checked just now
    interval = timedelta(minutes=world.engine.container.settings.webhook_check_interval_minutes)
    assert scheduler.enqueue_due_webhook_checks(now + interval / 2) == []
    (due,) = scheduler.enqueue_due_webhook_checks(now + interval)
    assert world.wait_job(due)["result"]["health"] == "ok"
    assert world.api.post(f"/shops/{connected['shop']['id']}/pause").status_code == 200
    assert scheduler.enqueue_due_webhook_checks(now + 3 * interval) == []
