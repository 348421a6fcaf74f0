"""The Redis rate limiter against a real Redis: shared budgets, windows, and two processes."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis

from connectors.contract import RateLimited
from connectors.ratelimit import CostBucket, RequestWindows
from sync.infrastructure.rate_limits import RedisRateLimiter
from tests.conftest import delete_prefix, redis_prefix
from tests.support.tcp_proxy import CutMode, TcpProxy

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    chosen = redis_prefix()
    yield chosen
    delete_prefix(redis_url, chosen)


@pytest.fixture
def limiter(redis_url: str, prefix: str) -> Iterator[RedisRateLimiter]:
    client = Redis.from_url(redis_url)
    yield RedisRateLimiter(client, prefix=prefix, max_inline_wait=0)
    client.close()


SLOW = CostBucket("shopify", capacity=100, restore_per_second=0.001)


def test_cost_bucket_is_spent_and_refused_with_the_wait(limiter: RedisRateLimiter) -> None:
    limiter.acquire(SLOW, "shop-a", cost=60)
    with pytest.raises(RateLimited) as caught:
        limiter.acquire(SLOW, "shop-a", cost=60)
    assert caught.value.retry_after is not None
    assert caught.value.retry_after > 1000  # 20 points at 0.001/s
    limiter.acquire(SLOW, "shop-b", cost=60)  # another account, another bucket


def test_feedback_and_refund_move_the_shared_view(limiter: RedisRateLimiter) -> None:
    limiter.acquire(SLOW, "shop", cost=90)
    limiter.refund(SLOW, "shop", cost=90)
    limiter.acquire(SLOW, "shop", cost=100)
    limiter.feedback(SLOW, "shop", available=50, capacity=100, restore_per_second=0.001)
    limiter.acquire(SLOW, "shop", cost=50)
    with pytest.raises(RateLimited):
        limiter.acquire(SLOW, "shop", cost=1)


def test_request_windows_hold_and_wait_inline_within_the_bound(redis_url: str, prefix: str) -> None:
    window = RequestWindows("etsy", ((2, 1.0), (100, 86400.0)))
    client = Redis.from_url(redis_url)
    patient = RedisRateLimiter(client, prefix=prefix, max_inline_wait=1.5)
    started = time.monotonic()
    for _ in range(3):
        patient.acquire(window, "app")  # the third waits for the one-second window
    assert 0.5 < time.monotonic() - started < 1.5
    impatient = RedisRateLimiter(client, prefix=prefix, max_inline_wait=0)
    impatient.acquire(window, "app")
    with pytest.raises(RateLimited) as caught:
        impatient.acquire(window, "app")
    assert caught.value.retry_after is not None
    assert 0 < caught.value.retry_after <= 1.0
    client.close()


def test_server_reported_remaining_fills_the_window(limiter: RedisRateLimiter) -> None:
    window = RequestWindows("etsy", ((10, 1.0), (50, 86400.0)))
    limiter.sync_window(window, "app", period=86400.0, remaining=1)
    limiter.acquire(window, "app")
    with pytest.raises(RateLimited):
        limiter.acquire(window, "app")


WORKER = """
import sys
from redis import Redis
from connectors.contract import RateLimited
from connectors.ratelimit import CostBucket
from sync.infrastructure.rate_limits import RedisRateLimiter
url, prefix = sys.argv[1], sys.argv[2]
limiter = RedisRateLimiter(Redis.from_url(url), prefix=prefix, max_inline_wait=0)
bucket = CostBucket("shared", capacity=100, restore_per_second=0.001)
taken = 0
for _ in range(80):
    try:
        limiter.acquire(bucket, "one-account", cost=1)
        taken += 1
    except RateLimited:
        pass
print(taken)
"""


def test_two_processes_share_one_bucket_exactly(redis_url: str, prefix: str) -> None:
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, redis_url, prefix],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    taken = [int(worker.communicate(timeout=60)[0].strip()) for worker in workers]
    assert sum(taken) == 100  # 160 attempts, a bucket of 100: never one more, never one less
    assert all(count > 0 for count in taken)


@pytest.mark.parametrize("mode", ["refuse", "blackhole"])
def test_redis_away_defers_the_request_and_loses_no_correction(
    redis_url: str, prefix: str, mode: CutMode
) -> None:
    """With Redis unreachable no budget can be proven free, so the call is deferred with the
    outage wait (a RateLimited the operation already knows how to wait on), never sent and
    never a crash; corrections after a sent request are skipped instead of failing it."""
    with TcpProxy.to_url(redis_url, 6379, name="redis-limiter") as proxy:
        client = Redis.from_url(
            proxy.url(redis_url), socket_timeout=0.5, socket_connect_timeout=0.5
        )
        limiter = RedisRateLimiter(
            client, prefix=prefix, max_inline_wait=0, outage_retry_seconds=3.0
        )
        limiter.acquire(SLOW, "shop", cost=10)
        with proxy.outage(mode):
            with pytest.raises(RateLimited) as caught:
                limiter.acquire(SLOW, "shop", cost=10)
            assert caught.value.retry_after == pytest.approx(3.0)
            limiter.feedback(SLOW, "shop", available=50)
            limiter.refund(SLOW, "shop", cost=10)
            limiter.sync_window(RequestWindows("etsy", ((5, 1.0),)), "app", period=1.0, remaining=1)
        limiter.acquire(SLOW, "shop", cost=10)  # Redis is back: budgets work again
        client.close()
