"""A small HTTP/1.1 load generator on raw asyncio streams: open loop, closed loop, Zipf ids.

Why raw streams and not httpx/aiohttp: the generator has one core, and a client library's
per-request overhead (header objects, cookie jars, URL parsing) would queue requests on the
client side and show up as server latency. A keep-alive GET with a fixed set of headers needs
none of that: write the bytes, parse the status line, three headers and a sized body.

Open loop: request ``i`` is *intended* at ``start + i / rate`` whatever became of the earlier
requests, and its latency runs from that intended time to the end of its response. A server
that stalls is therefore charged for every request it kept waiting, including the time they
spent waiting for a free connection (no coordinated omission). The connection pool grows when
every connection is busy, up to a cap, so the offered load does not silently shrink to the
number of sockets.

Closed loop: N workers send back to back; completions per second is the server's capacity.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import math
import random
import re
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

ERROR_STATUS = 0  # no HTTP status came back: a timeout, a refused or broken connection
# asyncio's timers round up to whole milliseconds (epoll), so the scheduler sleeps until this
# close to the intended time and yields in a tight loop for the rest: sends land within tens of
# microseconds of their schedule instead of up to a millisecond late. (Measured here: without it,
# hit p50 rose by ~0.5 ms and, oddly, uncached latencies doubled: a vCPU left idle between sends
# is slow to wake for the database backends that run on it.)
SPIN_SECONDS = 0.0011
# uvicorn closes a keep-alive connection after 5 s idle; never reuse one idle for this long.
IDLE_LIMIT_SECONDS = 3.0
HEAD_END = b"\r\n\r\n"
METRIC_LINE = re.compile(rb'^hub_cache_reads_total\{kind="([^"]+)",result="([^"]+)"\} (\d+)$')


class ProtocolError(Exception):
    """The server answered something that is not HTTP/1.x as we speak it."""


class HttpResponse(NamedTuple):
    status: int
    cache: str  # the X-Cache header, "" when absent
    body: bytes
    keep_alive: bool


@dataclass(frozen=True)
class Target:
    """Where requests go and the headers every request carries."""

    host: str
    port: int
    headers: tuple[tuple[str, str], ...] = ()

    def get(self, path: str) -> bytes:
        """The bytes of one keep-alive GET of ``path``."""
        lines = [f"GET {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class Connection:
    """One keep-alive HTTP/1.1 connection; one request in flight at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self.uses = 0
        self.idle_since = time.perf_counter()

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def exchange(self, request: bytes) -> HttpResponse:
        """Send one request and read its whole response."""
        self.uses += 1
        self._writer.write(request)
        head = await self._reader.readuntil(HEAD_END)
        lines = head[: -len(HEAD_END)].split(b"\r\n")
        version, _, rest = lines[0].partition(b" ")
        if not version.startswith(b"HTTP/1."):
            raise ProtocolError(f"not an HTTP/1.x status line: {lines[0]!r}")
        status = int(rest[:3])
        length: int | None = None
        cache = ""
        chunked = False
        keep_alive = version == b"HTTP/1.1"
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"x-cache":
                cache = value.strip().decode("latin-1")
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                keep_alive = b"close" not in value.lower()
        if chunked:
            body = await self._read_chunked()
        elif length is not None:
            body = await self._reader.readexactly(length)
        elif status in (204, 304) or status < 200:
            body = b""
        else:  # no length: the body runs to the end of the connection
            body = await self._reader.read()
            keep_alive = False
        return HttpResponse(status, cache, body, keep_alive)

    async def _skip_trailers(self) -> None:
        """Read trailer lines up to the blank line that ends a chunked body."""
        line = await self._reader.readuntil(b"\r\n")
        while line != b"\r\n":
            line = await self._reader.readuntil(b"\r\n")

    async def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            size = int((await self._reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
            if size == 0:
                await self._skip_trailers()
                return b"".join(chunks)
            chunks.append(await self._reader.readexactly(size))
            await self._reader.readexactly(2)

    def close(self) -> None:
        self._writer.close()


class ConnectionPool:
    """Keep-alive connections to one target, grown on demand up to ``max_size``.

    Idle connections are reused last-in first-out so a steady load keeps a small warm set; a
    request that finds every connection busy opens a new one, and once the cap is reached it
    queues (and its latency keeps counting).
    """

    def __init__(self, target: Target, *, max_size: int = 256) -> None:
        self.target = target
        self.max_size = max_size
        self.size = 0
        self.peak = 0
        self.opened = 0
        self.retries = 0
        self._idle: list[Connection] = []
        self._waiters: deque[asyncio.Future[Connection | None]] = deque()

    async def acquire(self) -> Connection:
        while True:
            while self._idle:
                connection = self._idle.pop()
                if time.perf_counter() - connection.idle_since < IDLE_LIMIT_SECONDS:
                    return connection
                self.discard(connection)
            if self.size < self.max_size:
                return await self._open()
            waiter: asyncio.Future[Connection | None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                handed = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._pass_on(waiter.result())  # handed over as we were cancelled
                raise
            if handed is not None:
                return handed
            # None: a connection was discarded, a slot is free; go round and open one.

    async def _open(self) -> Connection:
        self.size += 1
        self.peak = max(self.peak, self.size)
        self.opened += 1
        try:
            return await Connection.open(self.target.host, self.target.port)
        except BaseException:
            self.size -= 1
            self._pass_on(None)
            raise

    def release(self, connection: Connection) -> None:
        """Give back a connection that is ready for its next request."""
        connection.idle_since = time.perf_counter()
        self._pass_on(connection)

    def discard(self, connection: Connection) -> None:
        """Close a connection that must not be reused, freeing its slot."""
        connection.close()
        self.size -= 1
        self._pass_on(None)

    def _pass_on(self, connection: Connection | None) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        if connection is not None:
            self._idle.append(connection)

    async def request(self, request: bytes) -> HttpResponse:
        """One exchange on a pooled connection; retried once if a reused one was dead.

        Retrying is safe because the benchmark only sends GETs, and only when not a byte of the
        response arrived (the server had closed the idle connection under us).
        """
        for attempt in range(2):
            connection = await self.acquire()
            reused = connection.uses > 0
            try:
                response = await connection.exchange(request)
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                self.discard(connection)
                unanswered = not isinstance(exc, asyncio.IncompleteReadError) or not exc.partial
                if reused and unanswered and attempt == 0:
                    self.retries += 1
                    continue
                raise
            except BaseException:
                self.discard(connection)
                raise
            if response.keep_alive:
                self.release(connection)
            else:
                self.discard(connection)
            return response
        raise AssertionError("unreachable")

    def close(self) -> None:
        for connection in self._idle:
            connection.close()
        self._idle.clear()


@dataclass(slots=True)
class Sample:
    """One request: when it was due, when it started, when it ended, and what came back."""

    intended: float  # time.perf_counter() seconds
    started: float
    done: float
    status: int
    cache: str


TransportErrors = (TimeoutError, OSError, EOFError, ProtocolError, ValueError)


async def _timed(
    pool: ConnectionPool, request: bytes, intended: float, timeout: float, into: list[Sample]
) -> None:
    started = time.perf_counter()
    status, cache = ERROR_STATUS, ""
    try:
        async with asyncio.timeout(timeout):
            response = await pool.request(request)
        status, cache = response.status, response.cache
    except TransportErrors:
        pass
    into.append(Sample(intended, started, time.perf_counter(), status, cache))


async def sleep_until(deadline: float) -> None:
    """Sleep until ``deadline`` (perf_counter), precise to tens of microseconds."""
    delay = deadline - time.perf_counter()
    if delay > SPIN_SECONDS:
        await asyncio.sleep(delay - SPIN_SECONDS)
    while time.perf_counter() < deadline:
        await asyncio.sleep(0)  # yield: responses keep being read while we wait


async def open_loop(
    pool: ConnectionPool,
    next_request: Callable[[], bytes],
    *,
    rate: float,
    duration: float,
    start: float,
    timeout: float = 30.0,
) -> list[Sample]:
    """Send at ``rate``/s from ``start`` (perf_counter) for ``duration`` s, fixed schedule.

    A request whose time has come is sent at once, however many are still in flight; if the
    generator itself falls behind, overdue requests go out together and their lateness counts
    in their latency. Returns when every request has finished or timed out.
    """
    samples: list[Sample] = []
    in_flight: set[asyncio.Task[None]] = set()
    crashed: list[BaseException] = []  # bugs of the generator itself, not failed requests

    def finished(task: asyncio.Task[None]) -> None:
        in_flight.discard(task)
        error = None if task.cancelled() else task.exception()
        if error is not None:
            crashed.append(error)

    loop = asyncio.get_running_loop()
    interval = 1.0 / rate
    for index in range(round(rate * duration)):
        intended = start + index * interval
        await sleep_until(intended)
        task = loop.create_task(_timed(pool, next_request(), intended, timeout, samples))
        in_flight.add(task)
        task.add_done_callback(finished)
        if crashed:
            break
    if in_flight:
        await asyncio.wait(in_flight)
    if crashed:
        raise crashed[0]
    return samples


async def closed_loop(
    pool: ConnectionPool,
    next_request: Callable[[], bytes],
    *,
    concurrency: int,
    duration: float,
    timeout: float = 30.0,
) -> list[Sample]:
    """``concurrency`` workers, each sending its next request as soon as the last completes."""
    samples: list[Sample] = []
    end = time.perf_counter() + duration

    async def worker() -> None:
        while (now := time.perf_counter()) < end:
            await _timed(pool, next_request(), now, timeout, samples)
            if samples[-1].status == ERROR_STATUS:
                await asyncio.sleep(0.01)  # do not spin on a refused connection

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return samples


async def fetch(target: Target, path: str, timeout: float = 10.0) -> HttpResponse:
    """One request on a connection of its own (health checks, metric scrapes)."""
    async with asyncio.timeout(timeout):
        connection = await Connection.open(target.host, target.port)
        try:
            return await connection.exchange(target.get(path))
        finally:
            connection.close()


async def cache_counters(target: Target) -> dict[str, int]:
    """The server's ``hub_cache_reads_total`` counters as ``{"<kind>_<result>": count}``."""
    response = await fetch(target, "/metrics")
    if response.status != 200:
        raise ProtocolError(f"/metrics answered {response.status}: {response.body[:200]!r}")
    counters: dict[str, int] = {}
    for line in response.body.splitlines():
        found = METRIC_LINE.match(line.strip())
        if found:
            kind, result, count = (part.decode() for part in found.groups())
            counters[f"{kind}_{result}"] = int(count)
    return counters


class ZipfIds:
    """Ids drawn Zipf(s) by popularity rank, ranks mapped to ids through a fixed shuffle.

    Rank ``k`` has probability proportional to ``k ** -s``; a draw inverts the precomputed CDF
    with a bisection. The shuffle (its own seed) spreads the hot ids over the table instead of
    piling them on the lowest ids, which would sit in the same few pages.
    """

    def __init__(self, ids: Sequence[int], *, s: float, permutation_seed: int, seed: int) -> None:
        weights = (float(rank) ** -s for rank in range(1, len(ids) + 1))
        cumulative = list(itertools.accumulate(weights))
        total = cumulative[-1]
        self._cdf = [value / total for value in cumulative]
        self._ids = list(ids)
        random.Random(permutation_seed).shuffle(self._ids)
        self._random = random.Random(seed)

    def __call__(self) -> int:
        index = bisect.bisect_right(self._cdf, self._random.random())
        return self._ids[min(index, len(self._ids) - 1)]


def percentile(ordered: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile of already sorted values; None when there are none."""
    if not ordered:
        return None
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def latency_ms(seconds: Sequence[float]) -> dict[str, Any]:
    """Count, mean and tail percentiles, in milliseconds rounded to the microsecond."""
    ordered = sorted(seconds)

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000.0, 3)

    return {
        "count": len(ordered),
        "mean": ms(sum(ordered) / len(ordered)) if ordered else None,
        "p50": ms(percentile(ordered, 0.50)),
        "p90": ms(percentile(ordered, 0.90)),
        "p95": ms(percentile(ordered, 0.95)),
        "p99": ms(percentile(ordered, 0.99)),
        "p999": ms(percentile(ordered, 0.999)),
        "max": ms(ordered[-1] if ordered else None),
    }


def summarize(samples: Sequence[Sample], window_start: float, window_end: float) -> dict[str, Any]:
    """Figures of the requests *due* in the window; the rate from responses *completed* in it.

    Selecting by intended time keeps the latency population equal to the offered one (a slow
    response still counts against its window); counting completions inside the window gives the
    throughput the server actually sustained.
    """
    due = [s for s in samples if window_start <= s.intended < window_end]
    completed = sum(
        1 for s in samples if s.status != ERROR_STATUS and window_start <= s.done < window_end
    )
    ok = [s for s in due if 200 <= s.status < 300]
    hits = [s.done - s.intended for s in ok if s.cache == "hit"]
    misses = [s.done - s.intended for s in ok if s.cache == "miss"]
    tagged = len(hits) + len(misses)
    statuses = Counter(s.status for s in due)
    return {
        "window_seconds": round(window_end - window_start, 3),
        "requests": len(due),
        "ok": len(ok),
        "non_2xx": sum(n for status, n in statuses.items() if status and not 200 <= status < 300),
        "transport_errors": statuses.get(ERROR_STATUS, 0),
        "status_counts": {str(status): n for status, n in sorted(statuses.items())},
        "completed_in_window": completed,
        "achieved_rps": round(completed / (window_end - window_start), 2),
        "latency_ms": latency_ms([s.done - s.intended for s in due]),
        "hit_latency_ms": latency_ms(hits),
        "miss_latency_ms": latency_ms(misses),
        "hits": len(hits),
        "misses": len(misses),
        "miss_rate": round(len(misses) / tagged, 5) if tagged else None,
        "send_lag_ms": latency_ms([s.started - s.intended for s in due]),
    }
