"""While Redis is away the API answers cached reads from the database, and no write made during
the outage lets a stale entry be served once Redis is back.

Redis is reached through a loopback proxy of the test (``tests.support.tcp_proxy``); ``cut``
resets the hub's connections and refuses (or black-holes) new ones, as a stopped (or
partitioned) Redis would. Short timeouts through the settings keep every test a few seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from redis import Redis

from hub.api.app import create_app
from hub.application.cache_keys import order_key
from hub.application.reads import CacheUnavailable
from hub.bootstrap import Container, bootstrap
from hub.infrastructure.cache import RedisReadCache
from hub.settings import Settings
from tests.conftest import Backend, delete_prefix, redis_prefix, services_backend
from tests.factories import World
from tests.support.tcp_proxy import CutMode, TcpProxy

pytestmark = [pytest.mark.services, pytest.mark.timeout(60)]

TIMEOUT = 0.5  # cache_timeout_seconds: a black-holed Redis costs a read at most this
RETRY = 0.2  # outage_retry_seconds: how often the adapter looks for Redis again
RECOVERED_WITHIN = 5.0


@pytest.fixture
def redis_proxy(redis_url: str) -> Iterator[tuple[TcpProxy, str]]:
    with TcpProxy.to_url(redis_url, 6379, name="proxy-redis") as proxy:
        yield proxy, proxy.url(redis_url)


@pytest.fixture
def settings(
    request: pytest.FixtureRequest, redis_proxy: tuple[TcpProxy, str]
) -> Iterator[Settings]:
    """The services backend, its cache reached through the proxy (same key prefix, so the
    backend's own clean-up still removes what the test wrote)."""
    backends: Iterator[Backend] = services_backend(
        request, cache_timeout_seconds=TIMEOUT, outage_retry_seconds=RETRY
    )
    backend = next(backends)
    yield backend.settings.model_copy(update={"cache_url": redis_proxy[1]})
    next(backends, None)


@pytest.fixture
def container(settings: Settings) -> Iterator[Container]:
    built = bootstrap(settings)
    yield built
    built.close()


def wait_until(condition: Callable[[], bool], seconds: float = RECOVERED_WITHIN) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def redis_cache(container: Container) -> RedisReadCache:
    assert isinstance(container.cache, RedisReadCache)
    return container.cache


def outage_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage().startswith("cache unavailable")]


@pytest.mark.parametrize("mode", ["refuse", "blackhole"])
def test_reads_fall_back_to_the_database_and_a_write_during_the_cut_is_not_lost(
    container: Container,
    redis_proxy: tuple[TcpProxy, str],
    redis_url: str,
    caplog: pytest.LogCaptureFixture,
    mode: CutMode,
) -> None:
    proxy, _ = redis_proxy
    caplog.set_level(logging.INFO, logger="hub.infrastructure.cache")
    world = World(container)
    order_id = world.import_order().order.id
    headers = {"Authorization": f"Bearer {world.api_key}"}
    path = f"/orders/{order_id}"
    with TestClient(create_app(container=container)) as client:
        first = client.get(path, headers=headers)
        cached = client.get(path, headers=headers)
        assert (first.headers["x-cache"], cached.headers["x-cache"]) == ("miss", "hit")

        proxy.cut(mode)
        started = time.monotonic()
        during = [client.get(path, headers=headers) for _ in range(5)]
        took = time.monotonic() - started
        assert [r.status_code for r in during] == [200] * 5
        assert {r.headers["x-cache"] for r in during} == {"miss"}  # from the database
        assert all(r.json() == cached.json() for r in during)
        assert took < TIMEOUT * 2 + 1.0, "only the first read may wait for Redis"
        assert not redis_cache(container).trusted

        changed = client.put(f"{path}/status", json={"status": "in_production"}, headers=headers)
        assert changed.status_code == 200, changed.text
        assert redis_cache(container).owed() == 1
        assert client.get(path, headers=headers).json()["status"] == "in_production"
        assert len(outage_warnings(caplog)) == 1, "one warning per outage, not per request"

        # Redis still holds the entry cached before the cut: serving it now would be stale.
        proxy.restore()
        restored = time.monotonic()
        seen: list[tuple[str, str]] = []
        while time.monotonic() - restored < RECOVERED_WITHIN:
            answer = client.get(path, headers=headers)
            seen.append((answer.json()["status"], answer.headers["x-cache"]))
            if answer.headers["x-cache"] == "hit":
                break
            time.sleep(0.05)
        assert all(status == "in_production" for status, _ in seen), seen
        assert seen[-1][1] == "hit", "the cache is used again once the invalidation is applied"
        assert redis_cache(container).trusted
        assert redis_cache(container).owed() == 0

    direct = Redis.from_url(redis_url)
    try:
        stored = direct.get(container.settings.cache_key_prefix + order_key(order_id))
    finally:
        direct.close()
    assert stored is not None
    assert stored.startswith(b"v%d|" % (first.json()["version"] + 1))
    assert any(r.getMessage() == "cache available again" for r in caplog.records)


@pytest.fixture
def adapter(redis_proxy: tuple[TcpProxy, str], redis_url: str) -> Iterator[RedisReadCache]:
    prefix = redis_prefix()
    cache = RedisReadCache(
        redis_proxy[1],
        prefix=prefix,
        ttl_seconds=60,
        tombstone_ttl_seconds=120,
        timeout_seconds=TIMEOUT,
        retry_seconds=RETRY,
        max_owed=3,
    )
    yield cache
    cache.close()
    delete_prefix(redis_url, prefix)


def stored(redis_url: str, key: str) -> bytes | None:
    client = Redis.from_url(redis_url)
    try:
        value: Any = client.get(key)
    finally:
        client.close()
    return value  # type: ignore[no-any-return]


def test_owed_invalidations_are_applied_without_any_read(
    adapter: RedisReadCache, redis_proxy: tuple[TcpProxy, str], redis_url: str
) -> None:
    """A worker only writes: its owed tombstones reach Redis on their own when it returns."""
    proxy, _ = redis_proxy
    prefix = adapter._prefix

    async def populate() -> None:
        assert await adapter.offer("a", 1, b"one")
        await adapter.aclose()

    asyncio.run(populate())
    with proxy.outage("refuse"):
        adapter.tombstone("a", 2)  # never raises: the write is committed already
        adapter.tombstone("a", 3)
        adapter.tombstone("b", 7)
        assert adapter.owed() == 2
        assert stored(redis_url, prefix + "a") == b"v1|one"
    assert wait_until(lambda: adapter.trusted)
    assert stored(redis_url, prefix + "a") == b"t3"
    assert stored(redis_url, prefix + "b") == b"t7"


def test_too_many_owed_invalidations_drop_the_whole_prefix(
    adapter: RedisReadCache, redis_proxy: tuple[TcpProxy, str], redis_url: str
) -> None:
    proxy, _ = redis_proxy
    prefix = adapter._prefix

    async def populate() -> None:
        for name in ("a", "b", "c", "d", "untouched"):
            assert await adapter.offer(name, 1, b"old")
        await adapter.aclose()

    asyncio.run(populate())
    with proxy.outage("refuse"):
        for name in ("a", "b", "c", "d"):  # one more than max_owed
            adapter.tombstone(name, 2)
        assert adapter.owed() == -1
    assert wait_until(lambda: adapter.trusted)
    for name in ("a", "b", "c", "d", "untouched"):
        assert stored(redis_url, prefix + name) is None, name


def test_reads_raise_cache_unavailable_until_the_cache_is_trusted_again(
    adapter: RedisReadCache, redis_proxy: tuple[TcpProxy, str]
) -> None:
    proxy, _ = redis_proxy

    async def get() -> str:
        try:
            entry = await adapter.get("k")
        except CacheUnavailable:
            return "unavailable"
        finally:
            await adapter.aclose()
        return "none" if entry is None else "entry"

    assert asyncio.run(get()) == "none"
    with proxy.outage("blackhole"):
        started = time.monotonic()
        assert asyncio.run(get()) == "unavailable"
        assert time.monotonic() - started < TIMEOUT + 0.5
        started = time.monotonic()
        assert asyncio.run(get()) == "unavailable"
        assert time.monotonic() - started < 0.1, "no network while the cache is untrusted"
    assert wait_until(lambda: adapter.trusted)
    assert asyncio.run(get()) == "none"
