"""Single-flight misses and counters of the cache-aside reader, on the in-process cache."""

from __future__ import annotations

import asyncio

from hub.application.reads import CachedReader
from hub.infrastructure.cache import MemoryReadCache


def make_reader() -> CachedReader:
    return CachedReader(MemoryReadCache(ttl_seconds=60, tombstone_ttl_seconds=120))


def test_concurrent_misses_on_one_key_share_one_load() -> None:
    reader = make_reader()
    loads = 0

    async def loader() -> tuple[int, bytes]:
        nonlocal loads
        loads += 1
        await asyncio.sleep(0.05)
        return 1, b"doc"

    async def main() -> list[bytes | None]:
        results = await asyncio.gather(*(reader.read("order", "k", loader) for _ in range(10)))
        return [r.payload for r in results]

    assert asyncio.run(main()) == [b"doc"] * 10
    assert loads == 1
    assert reader.counters["order_miss"] == 1
    assert reader.counters["order_hit"] == 9
    assert reader.counters["order_coalesced"] == 9


def test_second_read_is_a_hit_and_missing_entities_are_not_cached() -> None:
    reader = make_reader()

    async def found() -> tuple[int, bytes]:
        return 3, b"doc"

    async def missing() -> None:
        return None

    async def main() -> None:
        first = await reader.read("product", "p", found)
        await reader.settle()
        second = await reader.read("product", "p", found)
        assert (first.hit, second.hit) == (False, True)
        assert (await reader.read("product", "gone", missing)).payload is None
        assert (await reader.read("product", "gone", missing)).hit is False

    asyncio.run(main())


def test_a_failed_load_reaches_every_waiter_and_is_not_cached() -> None:
    reader = make_reader()
    calls = 0

    async def failing() -> tuple[int, bytes]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.02)
        raise RuntimeError("database down")

    async def main() -> list[BaseException | object]:
        return await asyncio.gather(
            *(reader.read("order", "k", failing) for _ in range(3)), return_exceptions=True
        )

    results = asyncio.run(main())
    assert all(isinstance(r, RuntimeError) for r in results)
    assert calls == 1


def test_without_a_cache_every_read_loads_and_nothing_is_coalesced() -> None:
    reader = CachedReader(MemoryReadCache(ttl_seconds=60, tombstone_ttl_seconds=60), enabled=False)
    loads = 0

    async def loader() -> tuple[int, bytes]:
        nonlocal loads
        loads += 1
        await asyncio.sleep(0.01)
        return 1, b"doc"

    async def main() -> None:
        results = await asyncio.gather(*(reader.read("order", "k", loader) for _ in range(3)))
        assert [r.hit for r in results] == [False] * 3

    asyncio.run(main())
    assert loads == 3
