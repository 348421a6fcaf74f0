"""Per-source limiting of failed webhook requests, so a flood of forgeries stays cheap.

Only failures are counted and only failures are limited: a request that fails verification (a
bad or missing signature, a WooCommerce shop id we do not know, which fails the same way). A
verified delivery is never limited nor counted, whatever its source: a 429 is a failed delivery
to a marketplace (WooCommerce disables a webhook after a few), and marketplaces deliver from
shared egress addresses that a forger may share too.

Whether a request would fail is only known by verifying it, so every request is verified (an
HMAC: ~4,000 requests/s on one core, DESIGN.md). What a source over its budget is spared is
everything else: its failures get 429 with ``Retry-After`` without a round trip to the budget
(each process keeps a memo of the sources it found held), without a database round trip (the
per-shop WooCommerce secrets come from a snapshot reloaded at most every few seconds, see
``SecretsSnapshot``) and without a log line per request.

A held source's 429 is held back for up to ``delay`` seconds (never past its Retry-After, at
most ``MAX_DELAYED_ANSWERS`` at a time per process, beyond which it goes at once): a sleeping
coroutine costs no CPU, and a forger looping on a few connections is slowed to
connections / delay requests per second instead of taking the event loop from the verified
deliveries (``bench/webhook_flood.py`` measured an immediate 429 letting such a flood starve
them worse than no limit at all). The cap keeps a flood on many connections from turning the
delay into held sockets without end.

The budget is a sliding-window log per source of the failures answered 401, at most ``limit``
of them per ``window`` seconds; a 429 is not counted, so a source that keeps flooding gets
``limit`` full-price failures per window and a cheap 429 for everything else. All API processes
share it through Redis (one Lua script per counted failure, on Redis's clock); the embedded
mode keeps it in the process.

The source is the peer's address, or, when the peer is a trusted proxy, the right-most address
in ``X-Forwarded-For`` that is not one (the one a trusted proxy saw); IPv6 addresses count per
/64, the block a single subscriber gets.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Any, Generic, Protocol, TypeVar

from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import RedisError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from hub.settings import Settings

log = logging.getLogger(__name__)

Network = IPv4Network | IPv6Network
Address = IPv4Address | IPv6Address
IPV6_SOURCE_PREFIX = 64
MAX_TRACKED_SOURCES = 65_536  # in-process memory bound: the least recently seen are forgotten
MAX_DELAYED_ANSWERS = 256  # 429s held back at once per process; beyond, they go out at once
UNAVAILABLE_LOG_SECONDS = 60.0


class FailureBudget(Protocol):
    """The failures each source may have per window, shared by every process that answers."""

    async def spend(self, source: str) -> float:
        """Count one failed request of ``source`` and return 0; or, when its budget for the
        window is spent, count nothing and return the seconds until it has room again."""
        ...

    async def aclose(self) -> None: ...


class InProcessFailureBudget:
    """The embedded adapter: a log of failure times per source, a lock, bounded memory."""

    def __init__(
        self,
        *,
        limit: int,
        window: float,
        clock: Callable[[], float] = time.monotonic,
        max_sources: int = MAX_TRACKED_SOURCES,
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._max_sources = max_sources
        self._lock = threading.Lock()
        self._logs: OrderedDict[str, deque[float]] = OrderedDict()

    def __repr__(self) -> str:
        return f"InProcessFailureBudget(limit={self.limit}, window={self.window:g})"

    async def spend(self, source: str) -> float:
        return self.spend_now(source)

    def spend_now(self, source: str) -> float:
        now = self._clock()
        with self._lock:
            failures = self._logs.get(source)
            if failures is None:
                failures = self._logs[source] = deque()
                while len(self._logs) > self._max_sources:
                    self._logs.popitem(last=False)
            else:
                self._logs.move_to_end(source)
            while failures and failures[0] <= now - self.window:
                failures.popleft()
            if len(failures) >= self.limit:
                return failures[0] + self.window - now
            failures.append(now)
            return 0.0

    async def aclose(self) -> None:
        return None


# KEYS[1]: the source's sorted set of failure times; ARGV: limit, window seconds, a unique
# member suffix. Returns "0" when the failure was counted, else the seconds until there is room.
SPEND_FAILURE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return tostring(math.max(0.001, tonumber(oldest[2]) + window - now))
end
redis.call('ZADD', KEYS[1], now, tostring(now) .. ':' .. ARGV[3])
redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000) + 1000)
return '0'
"""


class RedisFailureBudget:
    """The budget in Redis, shared by every API process; a key per source expires with its
    window. When Redis cannot be reached failures are answered as within budget (401), with
    one log line a minute: the limit protects capacity, it never refuses a delivery."""

    def __init__(self, client: AsyncRedis, *, prefix: str, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._redis = client
        self._prefix = prefix + "webhook-failures:"
        self._script = client.register_script(SPEND_FAILURE)
        self._sequence = 0
        self._logged_unavailable = -math.inf

    @classmethod
    def from_url(
        cls, url: str, *, prefix: str, limit: int, window: float, timeout: float
    ) -> RedisFailureBudget:
        # Call inside the running event loop (the app's lifespan): the client belongs to it.
        # The timeout bounds what a Redis outage adds to each failed delivery's answer.
        client = AsyncRedis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        return cls(client, prefix=prefix, limit=limit, window=window)

    def __repr__(self) -> str:
        return f"RedisFailureBudget(prefix={self._prefix!r}, limit={self.limit})"

    def key(self, source: str) -> str:
        return self._prefix + source

    async def spend(self, source: str) -> float:
        self._sequence += 1
        unique = f"{os.getpid()}:{id(self):x}:{self._sequence}"
        try:
            answer: Any = await self._script(
                keys=[self.key(source)], args=[self.limit, repr(float(self.window)), unique]
            )
        except (RedisError, OSError) as error:
            now = time.monotonic()
            if now - self._logged_unavailable >= UNAVAILABLE_LOG_SECONDS:
                self._logged_unavailable = now
                log.warning(
                    "webhook failure budget: Redis unavailable (%s); failures are answered 401 "
                    "without a limit until it is back",
                    type(error).__name__,
                )
            return 0.0
        return float(answer)

    async def aclose(self) -> None:
        await self._redis.aclose()


def parse_networks(text: str | Iterable[str]) -> tuple[Network, ...]:
    """``"10.0.0.0/8, 192.0.2.7"`` as networks; raises ``ValueError`` naming a bad entry."""
    parts = text.split(",") if isinstance(text, str) else list(text)
    networks = []
    for part in (item.strip() for item in parts):
        if not part:
            continue
        try:
            networks.append(ip_network(part, strict=False))
        except ValueError:
            raise ValueError(
                f"HUB_TRUSTED_PROXIES: {part!r} is not an IP address or network"
            ) from None
    return tuple(networks)


def _address(text: str | None) -> Address | None:
    if not text:
        return None
    try:
        found = ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(found, IPv6Address) and found.ipv4_mapped is not None:
        return found.ipv4_mapped
    return found


def _trusted(address: Address, proxies: tuple[Network, ...]) -> bool:
    return any(address in network for network in proxies)


def client_source(peer: str | None, forwarded: Iterable[str], proxies: tuple[Network, ...]) -> str:
    """The address a request is counted against (see the module docstring).

    ``forwarded`` is every ``X-Forwarded-For`` header value in order; each proxy appends the
    address it saw, so the list is read from the right, through trusted proxies only, and stops
    at the first address no trusted proxy vouches for (or at one that does not parse).
    """
    address = _address(peer)
    if address is None:
        return peer or "unknown"
    if proxies and _trusted(address, proxies):
        hops = [hop.strip() for value in forwarded for hop in value.split(",")]
        for hop in reversed(hops):
            parsed = _address(hop)
            if parsed is None:
                break
            address = parsed
            if not _trusted(parsed, proxies):
                break
    if isinstance(address, IPv6Address):
        return str(ip_network(f"{address}/{IPV6_SOURCE_PREFIX}", strict=False))
    return str(address)


class IngressGuard:
    """Which source a request is, whether it is held, and the answer to one of its failures."""

    def __init__(
        self,
        budget: FailureBudget,
        *,
        window: float,
        delay: float = 0.0,
        trusted_proxies: tuple[Network, ...] = (),
        clock: Callable[[], float] = time.monotonic,
        max_sources: int = MAX_TRACKED_SOURCES,
        max_delayed: int = MAX_DELAYED_ANSWERS,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.budget = budget
        self._sleep = sleep
        self.delay = delay
        self.max_delayed = max_delayed
        self.delayed = 0  # 429s being held back right now
        self._window = window
        self._proxies = trusted_proxies
        self._clock = clock
        self._max_sources = max_sources
        # Source -> when (our clock) its budget has room again. Kept a window longer, so a
        # source that stays over budget is reported once, not each time a slot frees up.
        self._held: dict[str, float] = {}

    def source(self, request: Request) -> str:
        peer = request.client.host if request.client else None
        return client_source(peer, request.headers.getlist("x-forwarded-for"), self._proxies)

    def holding(self, source: str) -> bool:
        """True while this process knows the source to be over its failure budget."""
        until = self._held.get(source)
        return until is not None and until > self._clock()

    async def failed(self, source: str) -> float:
        """Count a failed request; 0 means answer it 401, else 429 after this many seconds."""
        now = self._clock()
        until = self._held.get(source)
        if until is not None and until > now:
            return until - now
        wait = await self.budget.spend(source)
        if wait <= 0:
            return 0.0
        if until is None or until + self._window <= now:
            log.warning(
                "webhook source %s is over its failure budget (%s): its failing requests are "
                "answered 429 without further work",
                source,
                self.budget,
            )
        self._hold(source, now + wait, now)
        return wait

    async def hold_back(self, wait: float) -> None:
        """Sleep before a 429 (see the module docstring): up to ``delay``, never past ``wait``,
        and not at all while ``max_delayed`` answers are held back already."""
        pause = min(self.delay, wait)
        if pause <= 0 or self.delayed >= self.max_delayed:
            return
        self.delayed += 1
        try:
            await self._sleep(pause)
        finally:
            self.delayed -= 1

    async def aclose(self) -> None:
        await self.budget.aclose()

    def _hold(self, source: str, until: float, now: float) -> None:
        self._held[source] = until
        if len(self._held) > self._max_sources:
            horizon = now - self._window
            self._held = {key: value for key, value in self._held.items() if value > horizon}
            if len(self._held) > self._max_sources:
                self._held = {source: until}


def retry_after_header(wait: float) -> str:
    """``Retry-After`` in whole seconds (RFC 9110 delay-seconds), at least 1."""
    return str(max(1, math.ceil(wait)))


def build_guard(settings: Settings) -> IngressGuard:
    """The guard for these settings; call inside the running event loop (Redis's client)."""
    limit, window = settings.webhook_failure_limit, settings.webhook_failure_window_seconds
    budget: FailureBudget
    if settings.cache_url:
        budget = RedisFailureBudget.from_url(
            settings.cache_url,
            prefix=settings.cache_key_prefix,
            limit=limit,
            window=window,
            timeout=settings.cache_timeout_seconds,
        )
    else:
        budget = InProcessFailureBudget(limit=limit, window=window)
    return IngressGuard(
        budget,
        window=window,
        delay=settings.webhook_failure_delay_seconds,
        trusted_proxies=parse_networks(settings.trusted_proxies),
    )


Key = TypeVar("Key")
Value = TypeVar("Value")


class SecretsSnapshot(Generic[Key, Value]):
    """A whole table loaded at once and reloaded when older than ``max_age`` (single flight):
    what a held source's requests are verified with, so its forgeries cost no database round
    trip. Whoever finds it stale reloads it, whichever key is asked for, so a known and an
    unknown key cost the same. A secret set less than ``max_age`` ago is not in it yet: only a
    delivery signed with it from a source flooding at that very moment can be refused."""

    def __init__(
        self,
        load: Callable[[], Mapping[Key, Value]],
        *,
        max_age: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_age = max_age
        self._load = load
        self._clock = clock
        self._table: Mapping[Key, Value] = {}
        self._loaded_at: float | None = None
        self._lock = asyncio.Lock()

    def _stale(self) -> bool:
        return self._loaded_at is None or self._clock() - self._loaded_at > self.max_age

    async def get(self, key: Key) -> Value | None:
        if self._stale():
            async with self._lock:
                if self._stale():
                    self._table = await run_in_threadpool(self._load)
                    self._loaded_at = self._clock()
        return self._table.get(key)
