"""Read caches behind the ``ReadCache`` port: in-process, Redis, and none.

Entries carry the entity's version. A writer, after its commit, replaces the key with a tombstone
of the new version; a reader populates only through a compare-and-set that refuses to put an
older version back, so a slow reader never resurrects stale data.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from hub.domain.ports import CacheEntry

# Stored form: b"v<version>|<payload>" for a value, b"t<version>" for a tombstone.
OFFER_SCRIPT = """
local current = redis.call('GET', KEYS[1])
local version = tonumber(ARGV[1])
if current then
  local kind = string.sub(current, 1, 1)
  if kind == 't' then
    if tonumber(string.sub(current, 2)) > version then return 0 end
  else
    local bar = string.find(current, '|', 2, true)
    if tonumber(string.sub(current, 2, bar - 1)) >= version then return 0 end
  end
end
redis.call('SET', KEYS[1], 'v' .. ARGV[1] .. '|' .. ARGV[2], 'EX', ARGV[3])
return 1
"""

TOMBSTONE_SCRIPT = """
local current = redis.call('GET', KEYS[1])
local version = tonumber(ARGV[1])
if current then
  local seen
  if string.sub(current, 1, 1) == 't' then
    seen = tonumber(string.sub(current, 2))
  else
    seen = tonumber(string.sub(current, 2, string.find(current, '|', 2, true) - 1))
  end
  if seen > version then version = seen end
end
redis.call('SET', KEYS[1], 't' .. version, 'EX', ARGV[2])
return version
"""


def decode_entry(raw: bytes | None) -> CacheEntry | None:
    if raw is None:
        return None
    if raw[:1] == b"t":
        return CacheEntry(int(raw[1:]), None)
    bar = raw.index(b"|", 1)
    return CacheEntry(int(raw[1:bar]), raw[bar + 1 :])


class RedisReadCache:
    def __init__(
        self, url: str, *, prefix: str, ttl_seconds: int, tombstone_ttl_seconds: int
    ) -> None:
        self._prefix = prefix
        self._ttl = ttl_seconds
        self._tombstone_ttl = tombstone_ttl_seconds
        self._sync = Redis.from_url(url)
        self._async: AsyncRedis | None = None
        self._offer: Any = None
        self._url = url
        self._tombstone = self._sync.register_script(TOMBSTONE_SCRIPT)

    def _client(self) -> AsyncRedis:
        # Created lazily inside the running event loop (the app's lifespan), never at import.
        if self._async is None:
            self._async = AsyncRedis.from_url(self._url)
            self._offer = self._async.register_script(OFFER_SCRIPT)
        return self._async

    async def get(self, key: str) -> CacheEntry | None:
        raw: Any = await self._client().get(self._prefix + key)
        return decode_entry(raw)

    async def offer(self, key: str, version: int, payload: bytes) -> bool:
        self._client()
        stored: Any = await self._offer(
            keys=[self._prefix + key], args=[version, payload, self._ttl]
        )
        return bool(stored)

    def tombstone(self, key: str, version: int) -> None:
        self._tombstone(keys=[self._prefix + key], args=[version, self._tombstone_ttl])

    def ping(self) -> bool:
        return bool(self._sync.ping())

    def close(self) -> None:
        self._sync.close()

    async def aclose(self) -> None:
        if self._async is not None:
            await self._async.aclose()
            self._async = None


class MemoryReadCache:
    """The embedded cache: one process, a lock standing in for the Lua compare-and-set.

    Bounded: past ``max_entries`` the least recently written entries go first. A fresh
    tombstone is the most recent entry, so evicting it early would take ``max_entries`` newer
    writes during one read: far longer than any read takes at the default bound.
    """

    def __init__(
        self, *, ttl_seconds: int, tombstone_ttl_seconds: int, max_entries: int = 100_000
    ) -> None:
        self._ttl = ttl_seconds
        self._tombstone_ttl = tombstone_ttl_seconds
        self._max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, CacheEntry]] = OrderedDict()
        self._lock = threading.Lock()

    def _store(self, key: str, expires: float, entry: CacheEntry) -> None:
        self._entries[key] = (expires, entry)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def _current(self, key: str) -> CacheEntry | None:
        found = self._entries.get(key)
        if found is None:
            return None
        expires, entry = found
        if expires < time.monotonic():
            del self._entries[key]
            return None
        return entry

    async def get(self, key: str) -> CacheEntry | None:
        with self._lock:
            return self._current(key)

    async def offer(self, key: str, version: int, payload: bytes) -> bool:
        with self._lock:
            current = self._current(key)
            if current is not None:
                if current.payload is None and current.version > version:
                    return False
                if current.payload is not None and current.version >= version:
                    return False
            self._store(key, time.monotonic() + self._ttl, CacheEntry(version, payload))
            return True

    def tombstone(self, key: str, version: int) -> None:
        with self._lock:
            current = self._current(key)
            if current is not None:
                version = max(version, current.version)
            self._store(key, time.monotonic() + self._tombstone_ttl, CacheEntry(version, None))

    def ping(self) -> bool:
        return True

    def close(self) -> None:
        with self._lock:
            self._entries.clear()

    async def aclose(self) -> None:
        return None


class NullReadCache:
    """No cache at all (``HUB_CACHE_ENABLED=false``): every read goes to the database."""

    async def get(self, key: str) -> CacheEntry | None:
        return None

    async def offer(self, key: str, version: int, payload: bytes) -> bool:
        return False

    def tombstone(self, key: str, version: int) -> None:
        return None

    def ping(self) -> bool:
        return True

    def close(self) -> None:
        return None

    async def aclose(self) -> None:
        return None
