"""Rate-limit waits are counted per budget (the marketplace): inline sleeps with the seconds
slept, deferrals with their retry-after."""

from __future__ import annotations

import pytest

from connectors.contract import RateLimited
from connectors.ratelimit import (
    DEFERRED,
    INLINE,
    PROCESS_WAITS,
    CostBucket,
    InProcessRateLimiter,
    RequestWindows,
    WaitCounts,
)


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


SHOPIFY = CostBucket("shopify", capacity=1000, restore_per_second=100)
ETSY = RequestWindows("etsy", ((2, 1.0),))


def test_inline_sleeps_and_deferrals_are_counted_apart() -> None:
    time, waits = FakeTime(), WaitCounts()
    limiter = InProcessRateLimiter(
        max_inline_wait=1.0, clock=time.clock, sleep=time.sleep, waits=waits
    )
    limiter.acquire(SHOPIFY, "a", cost=1000)
    assert waits.snapshot() == {}  # no wait, no count
    limiter.acquire(SHOPIFY, "a", cost=50)  # 0.5 s inline
    with pytest.raises(RateLimited):
        limiter.acquire(SHOPIFY, "a", cost=1000)  # 10 s away: deferred
    for _ in range(3):
        limiter.acquire(ETSY, "app")  # the third waits for the window: 1 s inline
    assert waits.snapshot() == {
        ("shopify", INLINE): (1, pytest.approx(0.5)),
        ("shopify", DEFERRED): (1, pytest.approx(10.0)),
        ("etsy", INLINE): (1, pytest.approx(1.0)),
    }
    waits.clear()
    assert waits.snapshot() == {}


def test_in_process_limiters_count_in_the_process_by_default() -> None:
    PROCESS_WAITS.clear()
    try:
        time = FakeTime()
        limiter = InProcessRateLimiter(max_inline_wait=0, clock=time.clock, sleep=time.sleep)
        limiter.acquire(ETSY, "app")
        limiter.acquire(ETSY, "app")
        with pytest.raises(RateLimited):
            limiter.acquire(ETSY, "app")
        assert PROCESS_WAITS.snapshot() == {("etsy", DEFERRED): (1, pytest.approx(1.0))}
    finally:
        PROCESS_WAITS.clear()
