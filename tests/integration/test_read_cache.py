"""The versioned cache-aside contract, proven on the in-process cache and on real Redis."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from hub.domain.ports import CacheEntry, ReadCache
from hub.infrastructure.cache import MemoryReadCache, RedisReadCache
from tests.conftest import delete_prefix, redis_prefix

T = TypeVar("T")


# One event loop for the whole test, as in the API process: the async Redis client is bound to it.
_runner: asyncio.Runner | None = None


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    assert _runner is not None
    return _runner.run(coroutine)


@pytest.fixture(params=["memory", "redis"])
def cache(request: pytest.FixtureRequest) -> Iterator[ReadCache]:
    global _runner
    _runner = asyncio.Runner()
    if request.param == "memory":
        yield MemoryReadCache(ttl_seconds=60, tombstone_ttl_seconds=120)
    else:
        url = request.getfixturevalue("redis_url")
        prefix = redis_prefix()
        redis_cache = RedisReadCache(url, prefix=prefix, ttl_seconds=60, tombstone_ttl_seconds=120)
        yield redis_cache
        run(redis_cache.aclose())
        redis_cache.close()
        delete_prefix(url, prefix)
    _runner.close()
    _runner = None


def entry_of(cache: ReadCache, key: str) -> CacheEntry:
    entry = run(cache.get(key))
    assert entry is not None
    return entry


async def _offer_then_get(
    cache: ReadCache, key: str, version: int, body: bytes
) -> tuple[bool, CacheEntry | None]:
    stored = await cache.offer(key, version, body)
    return stored, await cache.get(key)


class TestCompareAndSet:
    def test_offer_to_an_absent_key_is_stored(self, cache: ReadCache) -> None:
        stored, entry = run(_offer_then_get(cache, "a", 1, b"one"))
        assert stored
        assert entry is not None
        assert (entry.version, entry.payload) == (1, b"one")

    def test_lower_or_equal_version_never_replaces_a_value(self, cache: ReadCache) -> None:
        run(cache.offer("a", 5, b"five"))
        assert not run(cache.offer("a", 4, b"four"))
        assert not run(cache.offer("a", 5, b"other five"))
        assert run(cache.offer("a", 6, b"six"))
        entry = entry_of(cache, "a")
        assert (entry.version, entry.payload) == (6, b"six")

    def test_tombstone_refuses_older_reads_and_accepts_its_own_version(
        self, cache: ReadCache
    ) -> None:
        run(cache.offer("a", 1, b"one"))
        cache.tombstone("a", 2)
        entry = entry_of(cache, "a")
        assert entry.payload is None
        assert entry.version == 2
        assert not run(cache.offer("a", 1, b"stale"))
        assert run(cache.offer("a", 2, b"two"))
        assert entry_of(cache, "a").payload == b"two"

    def test_tombstones_only_move_forward(self, cache: ReadCache) -> None:
        cache.tombstone("a", 7)
        cache.tombstone("a", 6)  # a slower writer of an older commit
        assert entry_of(cache, "a").version == 7
        assert not run(cache.offer("a", 6, b"six"))

    def test_payload_bytes_survive_unchanged(self, cache: ReadCache) -> None:
        body = b'12\n{"a": "|t5|v9|", "b": "\xc3\xa9"}'
        run(cache.offer("bytes", 3, body))
        assert entry_of(cache, "bytes").payload == body


def test_a_slow_reader_racing_a_writer_never_puts_the_old_value_back(cache: ReadCache) -> None:
    """Two threads: the reader (event loop) reads v1 from the database and stalls; the writer
    (a worker thread) commits v2 and tombstones; the reader's late offer of v1 must be refused,
    so the next reader loads v2."""
    database = {"version": 1}
    reader_has_read = threading.Event()

    def writer() -> None:
        reader_has_read.wait(5)
        database["version"] = 2
        cache.tombstone("order", 2)

    async def slow_reader() -> bool:
        version = database["version"]
        reader_has_read.set()
        await asyncio.get_running_loop().run_in_executor(None, writer)
        return await cache.offer("order", version, b"v%d" % version)

    assert run(slow_reader()) is False
    entry = entry_of(cache, "order")
    assert entry.payload is None
    assert entry.version == 2
    assert run(cache.offer("order", database["version"], b"v2"))
    assert entry_of(cache, "order").payload == b"v2"


def test_memory_cache_is_bounded() -> None:
    bounded = MemoryReadCache(ttl_seconds=60, tombstone_ttl_seconds=60, max_entries=3)
    runner = asyncio.Runner()
    for n in range(5):
        runner.run(bounded.offer(f"k{n}", 1, b"x"))
    assert runner.run(bounded.get("k0")) is None
    assert runner.run(bounded.get("k4")) is not None
    runner.close()
