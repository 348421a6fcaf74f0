"""Read caches behind the ``ReadCache`` port: in-process, Redis, and none.

Entries carry the entity's version. A writer, after its commit, replaces the key with a tombstone
of the new version; a reader populates only through a compare-and-set that refuses to put an
older version back, so a slow reader never resurrects stale data.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections import OrderedDict
from typing import Any

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry

from hub.application.reads import CacheUnavailable
from hub.domain.ports import CacheEntry
from hub.infrastructure.outages import is_outage

log = logging.getLogger(__name__)

# Distinct keys whose invalidation one process keeps while Redis is away; past it, the process
# drops its whole prefix on recovery instead (see ``RedisReadCache``).
MAX_OWED_INVALIDATIONS = 10_000
FORGET_BATCH = 500  # keys scanned and unlinked per round trip when dropping the prefix
UNTRUSTED = "the cache is unavailable or owed invalidations"
_GLOB_SPECIAL = re.compile(r"[*?\[\]\\]")

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
    """The shared cache; while Redis is away the hub reads the database and loses no write.

    - Bounded waits: every command gives up after ``timeout_seconds`` (connect and read), and a
      connection error is retried once at once (a pooled connection killed by a Redis restart
      reconnects transparently) but a timeout never is, so a black-holed Redis costs a read at
      most one timeout before the cache is bypassed.
    - Reads: the first failure marks the cache untrusted (one warning per outage); from then on
      ``get``/``offer`` raise ``CacheUnavailable`` without touching the network, and the reader
      goes to the database.
    - Writes: a tombstone that cannot be written is owed, kept in memory per key with its
      highest version, never dropped. Past ``max_owed`` keys the process stops tracking them and
      instead drops every entry under its prefix on recovery (the cache refills from the
      database; owing more than that many keys means a long outage, when a cold cache is the
      cheaper risk than a stale one).
    - Recovery: a daemon thread pings every ``retry_seconds``; once Redis answers it applies what
      is owed, then waits one more ``retry_seconds`` before trusting the cache again, so the
      other processes (workers, other API replicas), which flush their own owed tombstones on
      the same schedule, have done so before this one serves a cached entry. A process that
      never noticed the outage cannot be told: its staleness is bounded by that schedule.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str,
        ttl_seconds: int,
        tombstone_ttl_seconds: int,
        timeout_seconds: float = 1.0,
        retry_seconds: float = 2.0,
        max_owed: int = MAX_OWED_INVALIDATIONS,
    ) -> None:
        self._prefix = prefix
        self._ttl = ttl_seconds
        self._tombstone_ttl = tombstone_ttl_seconds
        self._timeout = timeout_seconds
        self._retry_seconds = retry_seconds
        self._max_owed = max_owed
        # No health_check_interval: the one reconnect on ConnectionError already replaces dead
        # pooled connections, and a PING first would only add a round trip (or a second
        # timeout, against a black hole) to the command it precedes.
        self._sync = Redis.from_url(
            url,
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
            retry=Retry(NoBackoff(), 1, (RedisConnectionError,)),
        )
        self._async: AsyncRedis | None = None
        self._offer: Any = None
        self._url = url
        self._tombstone = self._sync.register_script(TOMBSTONE_SCRIPT)
        # Outage state, shared by the event loop (reads), request/worker threads (tombstones)
        # and the recovery thread. Invariant: something owed => not trusted, recovery running.
        self._state = threading.Lock()
        self._trusted = True  # reads may use the cache
        self._reachable = True  # tombstones go straight to Redis (else they are owed)
        self._owed: dict[str, int] = {}
        self._forget_all = False  # owed overflowed: drop the whole prefix on recovery
        self._failures = 0
        self._outage_since: float | None = None
        self._refusal_logged = False
        self._recovery: threading.Thread | None = None
        self._closed = threading.Event()

    def _client(self) -> AsyncRedis:
        # Created lazily inside the running event loop (the app's lifespan), never at import.
        if self._async is None:
            # No socket_timeout here: redis-py then sends every command through
            # ``asyncio.wait_for``, a task per command, which doubled a cache hit's latency.
            # Each call is bounded by ``asyncio.timeout`` instead (see ``get``/``offer``); a
            # cancelled command makes redis-py drop its connection, as a socket timeout would.
            self._async = AsyncRedis.from_url(
                self._url,
                socket_connect_timeout=self._timeout,
                retry=AsyncRetry(NoBackoff(), 1, (RedisConnectionError,)),
            )
            self._offer = self._async.register_script(OFFER_SCRIPT)
        return self._async

    @property
    def trusted(self) -> bool:
        """Whether reads use the cache now (False during an outage and until it is settled)."""
        return self._trusted

    def owed(self) -> int:
        """Invalidations waiting for Redis (-1: too many, the whole prefix will be dropped)."""
        with self._state:
            return -1 if self._forget_all else len(self._owed)

    async def get(self, key: str) -> CacheEntry | None:
        if not self._trusted:
            raise CacheUnavailable(UNTRUSTED)
        try:
            async with asyncio.timeout(self._timeout):
                raw: Any = await self._client().get(self._prefix + key)
        except Exception as exc:
            if not is_outage(exc):
                raise
            self._failed(exc)
            raise CacheUnavailable(str(type(exc).__name__)) from exc
        return decode_entry(raw)

    async def offer(self, key: str, version: int, payload: bytes) -> bool:
        if not self._trusted:
            raise CacheUnavailable(UNTRUSTED)
        self._client()
        try:
            async with asyncio.timeout(self._timeout):
                stored: Any = await self._offer(
                    keys=[self._prefix + key], args=[version, payload, self._ttl]
                )
        except Exception as exc:
            if not is_outage(exc):
                raise
            self._failed(exc)
            raise CacheUnavailable(str(type(exc).__name__)) from exc
        return bool(stored)

    def tombstone(self, key: str, version: int) -> None:
        """Never raises: the write is committed, so its invalidation is applied now or owed."""
        if not self._reachable:
            with self._state:
                self._owe(key, version)
            return
        try:
            self._tombstone(keys=[self._prefix + key], args=[version, self._tombstone_ttl])
        except Exception as exc:
            self._failed(exc, owe=(key, version))
            if not is_outage(exc):  # Redis answered with an error: a bug or a full Redis
                log.exception("cache tombstone refused; owed until it is accepted")

    def ping(self) -> bool:
        return bool(self._sync.ping())

    def close(self) -> None:
        self._closed.set()
        recovery = self._recovery
        if recovery is not None and recovery is not threading.current_thread():
            recovery.join(self._retry_seconds + 4 * self._timeout)
        if (self._owed or self._forget_all) and not self._flush():
            log.warning(
                "cache invalidations lost at shutdown: entries may be stale until they expire",
                extra={"owed_invalidations": self.owed(), "cache_ttl_seconds": self._ttl},
            )
        self._sync.close()

    async def aclose(self) -> None:
        if self._async is not None:
            await self._async.aclose()
            self._async = None

    # --- outages -------------------------------------------------------------------------------

    def _failed(self, exc: BaseException, *, owe: tuple[str, int] | None = None) -> None:
        """Stop using the cache until the recovery thread has seen Redis answer again."""
        with self._state:
            self._failures += 1
            self._trusted = self._reachable = False
            if owe is not None:
                self._owe(*owe)
            started = self._outage_since is None
            if started:
                self._outage_since = time.monotonic()
            self._ensure_recovery()
        if started:
            log.warning(
                "cache unavailable: reads go to the database, invalidations are kept until it "
                "answers",
                extra={"error_type": type(exc).__name__, "retry_seconds": self._retry_seconds},
            )

    def _owe(self, key: str, version: int) -> None:
        """Hold ``_state``."""
        self._trusted = False
        if not self._forget_all:
            if key in self._owed or len(self._owed) < self._max_owed:
                self._owed[key] = max(version, self._owed.get(key, version))
            else:
                self._owed.clear()
                self._forget_all = True
                log.warning(
                    "too many cache invalidations owed: every cached entry will be dropped "
                    "when the cache answers again",
                    extra={"owed_limit": self._max_owed},
                )
        self._ensure_recovery()

    def _ensure_recovery(self) -> None:
        """Hold ``_state``."""
        if self._recovery is None and not self._closed.is_set():
            self._recovery = threading.Thread(
                target=self._recover, name="cache-recovery", daemon=True
            )
            self._recovery.start()

    def _recover(self) -> None:
        try:
            while not self._closed.wait(self._retry_seconds):
                failures = self._failures
                if not self._flush():
                    continue
                with self._state:
                    if self._failures != failures:
                        continue
                    self._reachable = True  # writers tombstone directly again
                # The grace: other processes flush what they owe on the same schedule.
                if self._closed.wait(self._retry_seconds) or not self._flush():
                    continue
                with self._state:
                    if self._failures != failures or self._owed or self._forget_all:
                        continue
                    self._trusted = True
                    self._recovery = None
                    since, self._outage_since = self._outage_since, None
                if since is not None:
                    log.info(
                        "cache available again",
                        extra={"outage_seconds": round(time.monotonic() - since, 3)},
                    )
                return
        finally:
            with self._state:
                if self._recovery is threading.current_thread():
                    self._recovery = None

    def _flush(self) -> bool:
        """Apply what is owed; False (and still owed) when Redis does not take it all."""
        with self._state:
            owed, self._owed = self._owed, {}
            forget_all, self._forget_all = self._forget_all, False
        try:
            self._sync.ping()
            if forget_all:
                self._forget_prefix()
            if owed:
                pipeline = self._sync.pipeline(transaction=False)
                for key, version in owed.items():
                    self._tombstone(
                        keys=[self._prefix + key],
                        args=[version, self._tombstone_ttl],
                        client=pipeline,
                    )
                pipeline.execute()
        except Exception as exc:
            with self._state:
                self._failures += 1
                self._reachable = False
                self._forget_all = self._forget_all or forget_all
                for key, version in owed.items():
                    self._owe(key, version)
            if not is_outage(exc) and not self._refusal_logged:
                self._refusal_logged = True  # it is retried every retry_seconds: log it once
                log.warning(
                    "cache refused the owed invalidations; retrying",
                    extra={"error_type": type(exc).__name__},
                )
            return False
        self._refusal_logged = False
        if owed or forget_all:
            log.info(
                "owed cache invalidations applied",
                extra={"invalidations": len(owed), "prefix_dropped": forget_all},
            )
        return True

    def _forget_prefix(self) -> None:
        pattern = _GLOB_SPECIAL.sub(r"\\\g<0>", self._prefix) + "*"
        batch: list[bytes] = []
        for name in self._sync.scan_iter(match=pattern, count=FORGET_BATCH):
            batch.append(name)
            if len(batch) >= FORGET_BATCH:
                self._sync.unlink(*batch)
                batch = []
        if batch:
            self._sync.unlink(*batch)


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
