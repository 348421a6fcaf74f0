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
import time
from collections.abc import Iterator

import pytest
from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from hub.api.ingress_guard import (
    IngressGuard,
    InProcessFailureBudget,
    RedisFailureBudget,
    client_source,
    parse_networks,
)
from tests.conftest import Backend, delete_prefix, redis_prefix
from tests.support.webhook_guard import (
    BYSTANDER,
    FLOODER,
    FORGED_ETSY_SECRET,
    WOO_SECRET,
    Hub,
    Spies,
    Work,
    etsy_delivery,
    running_hub,
    same_work,
    shopify_delivery,
    spied_hub,
    woo_delivery,
)

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


@pytest.fixture
def spied(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Hub, Spies]]:
    with spied_hub(backend, monkeypatch) as both:
        yield both


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
