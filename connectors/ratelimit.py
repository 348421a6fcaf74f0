"""Rate limits as marketplaces count them, shared by every caller of one account.

The port has two shapes of budget: a cost bucket (Shopify GraphQL: points that leak back at a
restore rate, with the server's own view fed back after each call) and request windows (Etsy:
per second and per day). ``acquire`` waits in the calling thread only up to ``max_inline_wait``;
a longer wait raises ``RateLimited(retry_after)`` before anything is sent, so the operation is
re-sent later without spending an attempt.

Every adapter counts its waits (``WaitCounts``): how often and how long a caller slept inline,
and how often and for how long it was sent away with ``RateLimited``, per budget name (the
marketplace). The in-process adapter counts in this process (``PROCESS_WAITS``); the Redis one
counts in Redis, so the totals cover every worker process and host.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from connectors.contract import RateLimited

DEFAULT_MAX_INLINE_WAIT = 1.0
INLINE, DEFERRED = "inline", "deferred"  # the outcomes of a wait, as counted

# (budget name, outcome, seconds): called once per acquire that slept, once per deferral
WaitRecorder = Callable[[str, str, float], None]


@dataclass(frozen=True)
class CostBucket:
    name: str
    capacity: float
    restore_per_second: float


@dataclass(frozen=True)
class RequestWindows:
    name: str
    windows: tuple[tuple[int, float], ...]  # (requests, seconds), e.g. ((10, 1), (10000, 86400))


Budget = CostBucket | RequestWindows


class RateLimiter(Protocol):
    def acquire(self, budget: Budget, account: str, cost: float = 1.0) -> None: ...

    def feedback(
        self,
        budget: CostBucket,
        account: str,
        *,
        available: float,
        capacity: float | None = None,
        restore_per_second: float | None = None,
    ) -> None:
        """Adopt the server's view of a cost bucket (Shopify's ``throttleStatus``)."""
        ...

    def refund(self, budget: CostBucket, account: str, cost: float) -> None:
        """Give back a reservation the server never charged (the call failed before it)."""
        ...

    def sync_window(
        self, budget: RequestWindows, account: str, *, period: float, remaining: int
    ) -> None:
        """Adopt the server's count of what is left in a window (Etsy's ``x-remaining-*``):
        when it reports fewer left than we think, the window fills up to match."""
        ...


class WaitCounts:
    """Waits per (budget name, outcome): how many and how many seconds, in this process.

    ``inline``: acquisitions that slept in the calling thread (the seconds slept);
    ``deferred``: acquisitions refused with ``RateLimited`` (the seconds of its retry-after).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals: dict[tuple[str, str], tuple[int, float]] = {}

    def record(self, budget: str, outcome: str, seconds: float) -> None:
        with self._lock:
            count, total = self._totals.get((budget, outcome), (0, 0.0))
            self._totals[(budget, outcome)] = (count + 1, total + seconds)

    def snapshot(self) -> dict[tuple[str, str], tuple[int, float]]:
        with self._lock:
            return dict(self._totals)

    def clear(self) -> None:
        with self._lock:
            self._totals.clear()


PROCESS_WAITS = WaitCounts()  # every in-process limiter of this process counts here


def wait_inline(
    attempt: Callable[[], float],
    budget: Budget,
    account: str,
    max_inline_wait: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    record: WaitRecorder | None = None,
) -> None:
    """Retry ``attempt`` (0 = budget taken, else seconds until it could be) within the bound.

    Shared by every adapter so they all wait the same way: inline up to ``max_inline_wait``,
    otherwise ``RateLimited`` before anything is sent. ``record`` hears of each acquisition
    that slept (once, with the seconds slept) and of each deferral (with its retry-after).
    """
    deadline = clock() + max_inline_wait
    slept = 0.0
    try:
        while True:
            wait = attempt()
            if wait <= 0:
                return
            if clock() + wait > deadline:
                if record is not None:
                    record(budget.name, DEFERRED, wait)
                raise RateLimited(
                    f"{budget.name} budget of {account} spent; retry in {wait:.2f}s",
                    retry_after=wait,
                )
            sleep(wait)
            slept += wait
    finally:
        if slept > 0 and record is not None:
            record(budget.name, INLINE, slept)


@dataclass
class _BucketState:
    available: float
    capacity: float
    restore: float
    updated: float


class InProcessRateLimiter:
    """The embedded adapter: one process, a lock per limiter."""

    def __init__(
        self,
        *,
        max_inline_wait: float = DEFAULT_MAX_INLINE_WAIT,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        waits: WaitCounts | None = None,
    ) -> None:
        self.max_inline_wait = max_inline_wait
        self._clock = clock
        self._sleep = sleep
        self.waits = waits if waits is not None else PROCESS_WAITS
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], _BucketState] = {}
        self._windows: dict[tuple[str, str, float], deque[float]] = {}

    def acquire(self, budget: Budget, account: str, cost: float = 1.0) -> None:
        def attempt() -> float:
            with self._lock:
                return self._try(budget, account, cost)

        wait_inline(
            attempt,
            budget,
            account,
            self.max_inline_wait,
            self._clock,
            self._sleep,
            self.waits.record,
        )

    def feedback(
        self,
        budget: CostBucket,
        account: str,
        *,
        available: float,
        capacity: float | None = None,
        restore_per_second: float | None = None,
    ) -> None:
        with self._lock:
            state = self._bucket(budget, account)
            state.available = available
            state.capacity = capacity or state.capacity
            state.restore = restore_per_second or state.restore
            state.updated = self._clock()

    def refund(self, budget: CostBucket, account: str, cost: float) -> None:
        with self._lock:
            state = self._bucket(budget, account)
            self._refill(state)
            state.available = min(state.capacity, state.available + cost)

    def sync_window(
        self, budget: RequestWindows, account: str, *, period: float, remaining: int
    ) -> None:
        limit = next((lim for lim, per in budget.windows if per == period), None)
        if limit is None:
            return
        with self._lock:
            now = self._clock()
            log = self._windows.setdefault((budget.name, account, period), deque())
            while log and log[0] <= now - period:
                log.popleft()
            while limit - len(log) > max(0, remaining):
                log.append(now)

    def available(self, budget: CostBucket, account: str) -> float:
        with self._lock:
            state = self._bucket(budget, account)
            self._refill(state)
            return state.available

    # -- internals, called under the lock ---------------------------------------------------
    def _try(self, budget: Budget, account: str, cost: float) -> float:
        """Take the budget and return 0, or return how long until it would be there."""
        if isinstance(budget, CostBucket):
            state = self._bucket(budget, account)
            self._refill(state)
            if cost > state.capacity:
                raise RateLimited(
                    f"{budget.name}: a request costing {cost} can never fit a bucket of "
                    f"{state.capacity}",
                    retry_after=None,
                )
            if state.available >= cost:
                state.available -= cost
                return 0.0
            return (cost - state.available) / state.restore
        now = self._clock()
        longest = 0.0
        logs = []
        for limit, period in budget.windows:
            log = self._windows.setdefault((budget.name, account, period), deque())
            while log and log[0] <= now - period:
                log.popleft()
            if len(log) >= limit:
                longest = max(longest, log[0] + period - now)
            logs.append(log)
        if longest > 0:
            return longest
        for log in logs:
            log.append(now)
        return 0.0

    def _bucket(self, budget: CostBucket, account: str) -> _BucketState:
        key = (budget.name, account)
        state = self._buckets.get(key)
        if state is None:
            state = _BucketState(
                budget.capacity, budget.capacity, budget.restore_per_second, self._clock()
            )
            self._buckets[key] = state
        return state

    def _refill(self, state: _BucketState) -> None:
        now = self._clock()
        state.available = min(
            state.capacity, state.available + (now - state.updated) * state.restore
        )
        state.updated = now
