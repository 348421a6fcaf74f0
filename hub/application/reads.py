"""Cache-aside reads with single-flight misses and hit/miss counters.

The loader reads the database and returns the entity's version with the bytes to serve; the
reader offers them to the cache under that version, so a slow reader cannot overwrite a newer
write (the cache refuses it). Concurrent misses on one key in this process share one load.

The cache is an optimisation, never a dependency: when it says ``CacheUnavailable`` (Redis
away, or back but still owed invalidations) the read goes to the database and nothing is
offered back, so an outage costs latency, not answers, and never a stale read.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from hub.domain.ports import ReadCache

Loaded = tuple[int, bytes] | None
Loader = Callable[[], Awaitable[Loaded]]


class CacheUnavailable(Exception):
    """The cache cannot be used for this read: unreachable, or not yet trustworthy again.

    Adapters raise it instead of their client's errors, so this ring handles an outage without
    knowing which cache is behind the ``ReadCache`` port.
    """


@dataclass(frozen=True)
class ReadResult:
    payload: bytes | None  # None: the entity does not exist
    hit: bool


class CachedReader:
    def __init__(self, cache: ReadCache, *, enabled: bool = True) -> None:
        self._cache = cache
        self._enabled = enabled
        self._inflight: dict[str, asyncio.Future[Loaded]] = {}
        self._writes: set[asyncio.Task[bool]] = set()
        self.counters: Counter[str] = Counter()

    async def settle(self) -> None:
        """Wait for cache writes still in flight (shutdown, tests)."""
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)

    async def read(self, kind: str, key: str, loader: Loader) -> ReadResult:
        if not self._enabled:
            # No cache, no coalescing either: every read is a real database read.
            self.counters[f"{kind}_miss"] += 1
            loaded = await loader()
            return ReadResult(loaded[1] if loaded else None, hit=False)
        try:
            entry = await self._cache.get(key)
        except CacheUnavailable:
            # The adapter logs the outage once; per read there is only the counter.
            self.counters[f"{kind}_bypass"] += 1
            cached = False
        else:
            cached = True
            if entry is not None and entry.payload is not None:
                self.counters[f"{kind}_hit"] += 1
                return ReadResult(entry.payload, hit=True)
        pending = self._inflight.get(key)
        if pending is not None:
            self.counters[f"{kind}_hit"] += 1
            self.counters[f"{kind}_coalesced"] += 1
            loaded = await asyncio.shield(pending)
            return ReadResult(loaded[1] if loaded else None, hit=True)
        self.counters[f"{kind}_miss"] += 1
        future: asyncio.Future[Loaded] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            loaded = await loader()
            future.set_result(loaded)
            if loaded is not None and cached:
                # Answer first, populate after: the compare-and-set keeps a late write safe.
                # Not after a bypass: a load that raced invalidations the cache has not yet
                # received is judged against versions that do not know about them.
                write = asyncio.ensure_future(self._offer(key, loaded[0], loaded[1]))
                self._writes.add(write)
                write.add_done_callback(self._writes.discard)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it, nobody else must log it
            raise
        finally:
            del self._inflight[key]
        return ReadResult(loaded[1] if loaded else None, hit=False)

    async def _offer(self, key: str, version: int, payload: bytes) -> bool:
        """Populate in the background; a cache gone meanwhile only means no population."""
        try:
            return await self._cache.offer(key, version, payload)
        except CacheUnavailable:
            return False
