"""Cache-aside reads with single-flight misses and hit/miss counters.

The loader reads the database and returns the entity's version with the bytes to serve; the
reader offers them to the cache under that version, so a slow reader cannot overwrite a newer
write (the cache refuses it). Concurrent misses on one key in this process share one load.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from hub.domain.ports import ReadCache

Loaded = tuple[int, bytes] | None
Loader = Callable[[], Awaitable[Loaded]]


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
        entry = await self._cache.get(key)
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
            if loaded is not None:
                # Answer first, populate after: the compare-and-set keeps a late write safe.
                write = asyncio.ensure_future(self._cache.offer(key, loaded[0], loaded[1]))
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
