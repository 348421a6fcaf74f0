"""The in-process rate limiter: cost buckets with server feedback, request windows, inline waits."""

from __future__ import annotations

import pytest

from connectors.contract import RateLimited
from connectors.ratelimit import CostBucket, InProcessRateLimiter, RequestWindows


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


SHOPIFY = CostBucket("shopify", capacity=1000, restore_per_second=100)


def limiter(time: FakeTime, max_wait: float = 1.0) -> InProcessRateLimiter:
    return InProcessRateLimiter(max_inline_wait=max_wait, clock=time.clock, sleep=time.sleep)


class TestCostBucket:
    def test_spends_then_waits_inline_for_a_short_refill(self) -> None:
        time = FakeTime()
        rl = limiter(time)
        rl.acquire(SHOPIFY, "a.myshopify.com", cost=950)
        rl.acquire(SHOPIFY, "a.myshopify.com", cost=100)  # 50 short: 0.5 s at 100/s
        assert time.slept == [pytest.approx(0.5)]

    def test_a_long_wait_raises_rate_limited_before_sending(self) -> None:
        time = FakeTime()
        rl = limiter(time)
        rl.acquire(SHOPIFY, "a", cost=1000)
        with pytest.raises(RateLimited) as caught:
            rl.acquire(SHOPIFY, "a", cost=500)
        assert caught.value.retry_after == pytest.approx(5.0)
        assert time.slept == []

    def test_accounts_do_not_share_a_bucket(self) -> None:
        time = FakeTime()
        rl = limiter(time, max_wait=0)
        rl.acquire(SHOPIFY, "a", cost=1000)
        rl.acquire(SHOPIFY, "b", cost=1000)

    def test_server_feedback_replaces_the_local_view(self) -> None:
        time = FakeTime()
        rl = limiter(time, max_wait=0)
        rl.acquire(SHOPIFY, "a", cost=900)  # requested cost
        rl.feedback(SHOPIFY, "a", available=980, capacity=1000, restore_per_second=100)
        assert rl.available(SHOPIFY, "a") == pytest.approx(980)  # actual cost was refunded
        rl.feedback(SHOPIFY, "a", available=10, capacity=2000, restore_per_second=200)
        time.now += 1
        assert rl.available(SHOPIFY, "a") == pytest.approx(210)

    def test_a_cost_above_capacity_never_fits(self) -> None:
        with pytest.raises(RateLimited, match="never fit"):
            limiter(FakeTime()).acquire(SHOPIFY, "a", cost=1001)


class TestRequestWindows:
    def test_per_second_and_per_day_windows_both_hold(self) -> None:
        time = FakeTime()
        etsy = RequestWindows("etsy", ((2, 1.0), (3, 86400.0)))
        rl = limiter(time)
        rl.acquire(etsy, "app")
        rl.acquire(etsy, "app")
        rl.acquire(etsy, "app")  # third in the second: waits inline until the window slides
        assert time.slept == [pytest.approx(1.0)]
        with pytest.raises(RateLimited) as caught:
            rl.acquire(etsy, "app")  # the day is spent
        assert caught.value.retry_after is not None
        assert caught.value.retry_after > 80000


def test_refund_returns_an_uncharged_reservation() -> None:
    time = FakeTime()
    rl = limiter(time, max_wait=0)
    rl.acquire(SHOPIFY, "a", cost=900)
    rl.refund(SHOPIFY, "a", cost=900)
    rl.acquire(SHOPIFY, "a", cost=1000)
    rl.refund(SHOPIFY, "a", cost=5000)
    assert rl.available(SHOPIFY, "a") == 1000


def test_server_reported_remaining_fills_the_window() -> None:
    time = FakeTime()
    etsy = RequestWindows("etsy", ((10, 1.0), (100, 86400.0)))
    rl = limiter(time, max_wait=0)
    rl.acquire(etsy, "app")
    rl.sync_window(etsy, "app", period=86400.0, remaining=2)  # other processes used the day
    rl.acquire(etsy, "app")
    rl.acquire(etsy, "app")
    with pytest.raises(RateLimited):
        rl.acquire(etsy, "app")
