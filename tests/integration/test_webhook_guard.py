"""Per-source limiting of failed webhook requests, and equal work for every kind of failure.

* The failure budget on its own: in-process (a fake clock) and on the real Redis (two clients
  standing for two API processes, Redis's clock).
* The source of a request: the peer, or what trusted proxies put in ``X-Forwarded-For``.
* Through the API (embedded and services): failures past the budget get 429 with Retry-After,
  verified deliveries from the flooding source still get 200 and are stored, the budget frees
  up after the window, and a held source's forgeries cost no SQL statement.
* Equal work, with spies on ``hmac.new``/``hmac.compare_digest``, on the credential cipher, on
  the budget, on SQLAlchemy's ``before_cursor_execute`` and on both event stores: a WooCommerce
  delivery with a bad signature to a known shop and a well-formed one to an unknown shop id do
  exactly the same work and get the same answer; Shopify's and Etsy's bad signatures do no
  database work at all (their shop comes from the verified event, so an "unknown shop" there is
  a verified delivery, stored as rejected and answered 200).

Timing comparisons live in ``bench/webhook_flood.py``, not here.
"""

from __future__ import annotations

import asyncio
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
from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from sqlalchemy import event, select

from connectors.etsy import webhooks as etsy_webhooks
from connectors.shopify import webhooks as shopify_webhooks
from connectors.woocommerce import webhooks as woo_webhooks
from hub.api import webhooks
from hub.api.app import create_app
from hub.api.ingress_guard import (
    IngressGuard,
    InProcessFailureBudget,
    RedisFailureBudget,
    client_source,
    parse_networks,
)
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
from tests.conftest import Backend, delete_prefix, redis_prefix

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


# ---------------------------------------------------------------------------------------------
# The budget on its own
# ---------------------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_in_process_budget_counts_failures_up_to_the_limit_then_returns_the_wait() -> None:
    clock = FakeClock()
    budget = InProcessFailureBudget(limit=3, window=10.0, clock=clock)
    spent = []
    for _ in range(3):  # at 0, 1 and 2 s
        spent.append(budget.spend_now("a"))
        clock.now += 1
    assert spent == [0.0, 0.0, 0.0]
    clock.now += 1
    assert budget.spend_now("a") == pytest.approx(6.0)  # at 4 s: the first leaves at 10 s
    assert budget.spend_now("b") == 0.0  # another source, another budget
    clock.now += 6
    assert budget.spend_now("a") == 0.0  # one slot freed (the 429 above was not counted)
    assert budget.spend_now("a") == pytest.approx(1.0)  # the next leaves at 11 s


def test_in_process_budget_resets_after_the_window_and_bounds_its_memory() -> None:
    clock = FakeClock()
    budget = InProcessFailureBudget(limit=2, window=10.0, clock=clock, max_sources=2)
    assert [budget.spend_now("a") for _ in range(3)][-1] > 0
    clock.now += 10.001
    assert [budget.spend_now("a") for _ in range(2)] == [0.0, 0.0]
    budget.spend_now("b")
    budget.spend_now("c")  # a third source: the least recently seen ("a") is forgotten
    assert budget.spend_now("a") == 0.0


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    chosen = redis_prefix()
    yield chosen
    delete_prefix(redis_url, chosen)


def test_redis_budget_is_shared_by_processes_and_resets_after_the_window(
    redis_url: str, prefix: str
) -> None:
    async def scenario() -> None:
        first = RedisFailureBudget(
            AsyncRedis.from_url(redis_url), prefix=prefix, limit=3, window=1.0
        )
        second = RedisFailureBudget(
            AsyncRedis.from_url(redis_url), prefix=prefix, limit=3, window=1.0
        )
        try:
            assert [await first.spend("s"), await second.spend("s"), await first.spend("s")] == [
                0.0,
                0.0,
                0.0,
            ]
            wait = await second.spend("s")  # the other "process" sees the shared count
            assert 0 < wait <= 1.0
            assert await first.spend("other") == 0.0
            sync = Redis.from_url(redis_url)
            try:
                assert sync.zcard(first.key("s")) == 3  # the refusal was not counted
                assert 0 < sync.pttl(first.key("s")) <= 2000  # the key expires with the window
            finally:
                sync.close()
            await asyncio.sleep(1.05)
            assert [await second.spend("s") for _ in range(3)] == [0.0, 0.0, 0.0]
            assert await first.spend("s") > 0
        finally:
            await first.aclose()
            await second.aclose()

    asyncio.run(scenario())


def test_redis_budget_answers_within_budget_when_redis_is_unreachable() -> None:
    async def scenario() -> float:
        budget = RedisFailureBudget(
            AsyncRedis.from_url("redis://127.0.0.1:1", socket_connect_timeout=0.5),
            prefix="unused:",
            limit=1,
            window=10.0,
        )
        try:
            await budget.spend("s")
            return await budget.spend("s")
        finally:
            await budget.aclose()

    assert asyncio.run(scenario()) == 0.0


def test_a_held_source_is_answered_from_the_memo_without_asking_the_budget() -> None:
    clock = FakeClock()
    calls: list[str] = []
    inner = InProcessFailureBudget(limit=2, window=10.0, clock=clock)

    class Counting:
        async def spend(self, source: str) -> float:
            calls.append(source)
            return await inner.spend(source)

        async def aclose(self) -> None:
            return None

    guard = IngressGuard(Counting(), window=10.0, clock=clock)

    async def fail(times: int) -> list[float]:
        return [await guard.failed("s") for _ in range(times)]

    assert asyncio.run(fail(2)) == [0.0, 0.0]
    assert not guard.holding("s")
    assert asyncio.run(fail(5)) == [pytest.approx(10.0)] * 5
    assert guard.holding("s")
    assert len(calls) == 3  # two counted, one refused; the next four came from the memo
    clock.now += 10.001
    assert not guard.holding("s")
    assert asyncio.run(fail(1)) == [0.0]
    assert len(calls) == 4


def test_a_held_answer_is_held_back_up_to_the_delay_and_only_so_many_at_once() -> None:
    pauses: list[float] = []

    async def scenario() -> list[int]:
        release = asyncio.Event()

        async def fake_sleep(seconds: float) -> None:
            pauses.append(seconds)
            await release.wait()

        guard = IngressGuard(
            InProcessFailureBudget(limit=1, window=10.0),
            window=10.0,
            delay=1.0,
            max_delayed=2,
            sleep=fake_sleep,
        )
        held = [asyncio.create_task(guard.hold_back(wait)) for wait in (9.0, 0.25)]
        await asyncio.sleep(0)
        delayed_while_full = guard.delayed
        await guard.hold_back(9.0)  # the cap is reached: answered at once, no sleep
        release.set()
        await asyncio.gather(*held)
        return [delayed_while_full, guard.delayed]

    assert asyncio.run(scenario()) == [2, 0]
    assert pauses == [1.0, 0.25]  # the delay, but never past the Retry-After

    async def no_sleep(seconds: float) -> None:
        pauses.append(seconds)

    budget = InProcessFailureBudget(limit=1, window=10.0)
    asyncio.run(IngressGuard(budget, window=10.0, delay=0.0, sleep=no_sleep).hold_back(9.0))
    assert pauses == [1.0, 0.25]  # delay 0: at once


# ---------------------------------------------------------------------------------------------
# The source of a request
# ---------------------------------------------------------------------------------------------


def test_the_source_is_the_peer_unless_a_trusted_proxy_forwarded_the_request() -> None:
    proxies = parse_networks("10.0.0.0/8, 192.0.2.1")
    spoofed = ["1.1.1.1, 2.2.2.2"]
    assert client_source("203.0.113.5", spoofed, ()) == "203.0.113.5"
    assert client_source("203.0.113.5", spoofed, proxies) == "203.0.113.5"  # peer not trusted
    assert client_source("10.1.2.3", ["203.0.113.9"], proxies) == "203.0.113.9"
    # Read from the right through trusted hops; what the client wrote on the left is ignored.
    assert client_source("10.1.2.3", ["6.6.6.6, 203.0.113.9", "192.0.2.1"], proxies) == (
        "203.0.113.9"
    )
    assert client_source("10.1.2.3", ["garbage, 10.9.9.9"], proxies) == "10.9.9.9"
    assert client_source("10.1.2.3", [], proxies) == "10.1.2.3"
    assert client_source("2001:db8:1:2:3:4:5:6", [], ()) == "2001:db8:1:2::/64"
    assert client_source("::ffff:203.0.113.5", [], ()) == "203.0.113.5"
    assert client_source("testclient", [], proxies) == "testclient"
    with pytest.raises(ValueError, match="HUB_TRUSTED_PROXIES"):
        parse_networks("10.0.0.0/8, proxy.internal")


# ---------------------------------------------------------------------------------------------
# Through the API
# ---------------------------------------------------------------------------------------------


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
    message_id, stamp = f"msg_{uuid.uuid4().hex}", str(int(time.time()))
    mac = etsy_webhooks.signature(etsy_webhooks.signing_key(secret), message_id, stamp, body)
    return body, {
        "Content-Type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": stamp,
        "webhook-signature": f"v1,{mac}",
    }


WOO_LIMIT, WINDOW = 3, 1.0


def test_failures_past_the_budget_get_429_while_verified_deliveries_get_through(
    backend: Backend,
) -> None:
    with running_hub(
        backend, webhook_failure_limit=WOO_LIMIT, webhook_failure_window_seconds=WINDOW
    ) as hub:
        forged = shopify_delivery(secret="forged")
        answers = [hub.post("/webhooks/shopify", *forged, source=FLOODER) for _ in range(4)]
        assert [a.status_code for a in answers] == [401, 401, 401, 429]
        assert answers[3].headers["Retry-After"] == "1"
        assert answers[3].json()["error"]["code"] == "too_many_failures"
        # Every failure counts, whichever route and however it failed.
        woo_path = f"/webhooks/woocommerce/{hub.woo_shop_id}"
        unknown_path = f"/webhooks/woocommerce/{hub.woo_shop_id + 99}"
        assert hub.post(woo_path, *woo_delivery(secret="forged"), FLOODER).status_code == 429
        assert hub.post(unknown_path, *woo_delivery(), FLOODER).status_code == 429
        etsy_forged = etsy_delivery(secret=FORGED_ETSY_SECRET)
        assert hub.post("/webhooks/etsy", *etsy_forged, FLOODER).status_code == 429

        # Verified deliveries from the flooding source are never limited, on every route.
        assert hub.post("/webhooks/shopify", *shopify_delivery(), FLOODER).json()["status"] == (
            "accepted"
        )
        woo = hub.post(f"/webhooks/woocommerce/{hub.woo_shop_id}", *woo_delivery(), FLOODER)
        assert (woo.status_code, woo.json()["status"]) == (200, "accepted")
        etsy = hub.post("/webhooks/etsy", *etsy_delivery(), FLOODER)
        assert (etsy.status_code, etsy.json()["status"]) == (200, "rejected")  # unknown shop
        ping = hub.client.post(
            f"/webhooks/woocommerce/{hub.woo_shop_id}",
            content=b"webhook_id=7",
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Forwarded-For": FLOODER,
            },
        )
        assert ping.json() == {"status": "ping"}
        assert hub.events() == [
            (hub.shopify_shop_id, "received"),
            (hub.woo_shop_id, "received"),
            (None, "rejected"),
        ]
        # Another source behind the same proxy has its own budget.
        assert hub.post("/webhooks/shopify", *forged, source=BYSTANDER).status_code == 401
        assert hub.post("/webhooks/shopify", *forged, source=FLOODER).status_code == 429

        # After the window the budget is whole again: `limit` more 401s, then 429.
        time.sleep(WINDOW + 0.1)
        again = [hub.post("/webhooks/shopify", *forged, source=FLOODER) for _ in range(4)]
        assert [a.status_code for a in again] == [401, 401, 401, 429]


def test_spoofed_forwarded_for_from_an_untrusted_peer_does_not_spread_the_budget(
    backend: Backend,
) -> None:
    with running_hub(
        backend,
        webhook_failure_limit=2,
        webhook_failure_window_seconds=30.0,
        trusted_proxies="192.0.2.0/24",  # the client's 10.0.0.1 is not one of them
    ) as hub:
        forged = shopify_delivery(secret="forged")
        statuses = [
            hub.post("/webhooks/shopify", *forged, source=f"203.0.113.{n}").status_code
            for n in range(1, 5)
        ]
        assert statuses == [401, 401, 429, 429]


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


@pytest.fixture
def spied(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Hub, Spies]]:
    monkeypatch.setattr(webhooks, "SNAPSHOT_MAX_AGE_SECONDS", 300.0)
    with running_hub(backend, webhook_failure_limit=2, webhook_failure_window_seconds=60.0) as hub:
        spies = Spies(monkeypatch, hub)
        try:
            yield hub, spies
        finally:
            spies.close()


def woo_bad_signature_and_unknown_shop(hub: Hub, spies: Spies, source: str) -> tuple[Work, Work]:
    forged_body, forged_headers = woo_delivery(secret="forged")
    bad_signature = spies.measure(
        lambda: hub.post(
            f"/webhooks/woocommerce/{hub.woo_shop_id}", forged_body, forged_headers, source
        ),
        forged_body,
    )
    body, headers = woo_delivery(secret="whatever-the-forger-likes")
    unknown_shop = spies.measure(
        lambda: hub.post(f"/webhooks/woocommerce/{hub.woo_shop_id + 999}", body, headers, source),
        body,
    )
    return bad_signature, unknown_shop


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


def test_woocommerce_bad_signature_and_unknown_shop_do_the_same_work(
    spied: tuple[Hub, Spies],
) -> None:
    hub, spies = spied
    bad_signature, unknown_shop = woo_bad_signature_and_unknown_shop(hub, spies, FLOODER)
    same_work(bad_signature, unknown_shop)
    assert bad_signature.status == 401
    # Two secret slots (current, previous; a dummy fills the gap), each one HMAC over the body.
    assert bad_signature.hmacs_over_body == 2
    assert bad_signature.decryptions == 1
    assert bad_signature.budget_calls == 1
    selects = [s for s in bad_signature.statements if s.upper().startswith("SELECT")]
    assert len(selects) == 1
    assert "FROM shops" in selects[0]
    assert [s for s in bad_signature.statements if s not in selects] in ([], ["BEGIN"])


def test_a_shop_mid_rotation_does_the_same_work_as_an_unknown_one(
    spied: tuple[Hub, Spies],
) -> None:
    hub, spies = spied
    with hub.container.uow() as uow:
        shop = uow.shops.get(hub.woo_shop_id)
        assert shop is not None
        shop.credentials = {
            **shop.credentials,
            "webhook_secret": "wc-new-secret",
            "webhook_secret_previous": WOO_SECRET,
        }
        uow.shops.save(shop)
        uow.commit()
    bad_signature, unknown_shop = woo_bad_signature_and_unknown_shop(hub, spies, BYSTANDER)
    same_work(bad_signature, unknown_shop)
    assert bad_signature.hmacs_over_body == 2
    # Both of a rotating shop's secrets verify.
    for secret in ("wc-new-secret", WOO_SECRET):
        answer = hub.post(
            f"/webhooks/woocommerce/{hub.woo_shop_id}", *woo_delivery(secret=secret), BYSTANDER
        )
        assert answer.json()["status"] == "accepted"


def test_a_held_source_does_the_same_cheap_work_for_both_and_no_database_work(
    spied: tuple[Hub, Spies],
) -> None:
    hub, spies = spied
    forged = woo_delivery(secret="forged")
    path = f"/webhooks/woocommerce/{hub.woo_shop_id}"
    assert [hub.post(path, *forged, FLOODER).status_code for _ in range(3)] == [401, 401, 429]
    hub.post(path, *forged, FLOODER)  # the first held request loads the secrets snapshot
    bad_signature, unknown_shop = woo_bad_signature_and_unknown_shop(hub, spies, FLOODER)
    same_work(bad_signature, unknown_shop)
    assert bad_signature.status == 429
    assert bad_signature.hmacs_over_body == 2  # still verified ...
    assert bad_signature.statements == []  # ... but no database,
    assert bad_signature.decryptions == 0  # no decryption,
    assert bad_signature.budget_calls == 0  # and no round trip to the budget,
    assert bad_signature.held_back == 1  # the answer held back (delay 0 here).
    verified_body, verified_headers = woo_delivery()
    verified = spies.measure(
        lambda: hub.post(path, verified_body, verified_headers, FLOODER), verified_body
    )
    assert (verified.status, verified.answer["status"]) == (200, "accepted")
    assert verified.stored == ["woocommerce"]
    assert verified.budget_calls == 0
    assert not any("FROM shops" in s for s in verified.statements)  # verified by the snapshot


@pytest.mark.parametrize("marketplace", ["shopify", "etsy"])
def test_app_wide_bad_signatures_do_no_database_work(
    spied: tuple[Hub, Spies], marketplace: str
) -> None:
    """Shopify and Etsy verify with the app's secrets, and the shop comes from the verified
    event: a bad signature is refused before any database work, and an event naming a shop we
    do not know is a verified delivery, stored as rejected and answered 200 after the very same
    verification work."""
    hub, spies = spied
    path = f"/webhooks/{marketplace}"
    if marketplace == "shopify":
        forged = shopify_delivery(secret="forged")
        unknown = shopify_delivery(domain="someone-else.myshopify.com")
    else:
        forged = etsy_delivery(secret=FORGED_ETSY_SECRET)
        unknown = etsy_delivery(shop_id=777)
    bad_signature = spies.measure(lambda: hub.post(path, *forged, FLOODER), forged[0])
    unknown_shop = spies.measure(lambda: hub.post(path, *unknown, FLOODER), unknown[0])
    assert bad_signature.status == 401
    assert bad_signature.statements == []
    assert bad_signature.stored == []
    assert bad_signature.decryptions == 0
    assert bad_signature.budget_calls == 1
    # Both configured secrets, current and previous, are tried in either case.
    assert bad_signature.hmacs_over_body == unknown_shop.hmacs_over_body == 2
    assert bad_signature.digest_compares == unknown_shop.digest_compares == 2
    assert (unknown_shop.status, unknown_shop.answer["status"]) == (200, "rejected")
    assert unknown_shop.stored == [marketplace]
    assert unknown_shop.budget_calls == 0
    assert hub.events() == [(None, "rejected")]
