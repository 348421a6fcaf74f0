"""The rate limiter port on Redis: one budget shared by every worker process and host.

Each decision is one Lua script, so concurrent workers never both spend the last unit; time is
Redis's own (``TIME``), so hosts with skewed clocks agree. Keys carry the configured prefix.

Waits are counted in Redis too (one hash, ``{prefix}rl:waits``, written only when a caller had to
wait), so ``/metrics`` in any process reports the totals of every worker process and host.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any

from redis import Redis, RedisError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from connectors.contract import RateLimited
from connectors.ratelimit import (
    DEFAULT_MAX_INLINE_WAIT,
    Budget,
    CostBucket,
    RequestWindows,
    wait_inline,
)

# The wait before asking again when Redis is away (the worker passes HUB_OUTAGE_RETRY_SECONDS).
DEFAULT_OUTAGE_RETRY_SECONDS = 2.0

# Returns "0" when the cost was taken, else the seconds to wait, as a string (floats survive).
COST_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local cost = tonumber(ARGV[1])
local state = redis.call('HMGET', KEYS[1], 'available', 'capacity', 'restore', 'updated')
local capacity = tonumber(state[2]) or tonumber(ARGV[2])
local restore = tonumber(state[3]) or tonumber(ARGV[3])
local available = tonumber(state[1]) or capacity
local updated = tonumber(state[4]) or now
available = math.min(capacity, available + math.max(0, now - updated) * restore)
if cost > capacity then return 'never' end
local wait = 0
if available >= cost then
  available = available - cost
else
  wait = (cost - available) / restore
end
redis.call('HSET', KEYS[1], 'available', tostring(available), 'capacity', tostring(capacity),
  'restore', tostring(restore), 'updated', tostring(now))
redis.call('EXPIRE', KEYS[1], ARGV[4])
return tostring(wait)
"""

COST_FEEDBACK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
redis.call('HSET', KEYS[1], 'available', ARGV[1], 'updated', tostring(now))
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'capacity', ARGV[2]) end
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'restore', ARGV[3]) end
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
"""

COST_REFUND = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local state = redis.call('HMGET', KEYS[1], 'available', 'capacity', 'restore', 'updated')
if not state[2] then return 0 end
local capacity, restore = tonumber(state[2]), tonumber(state[3])
local elapsed = math.max(0, now - tonumber(state[4]))
local available = math.min(capacity, tonumber(state[1]) + elapsed * restore + tonumber(ARGV[1]))
redis.call('HSET', KEYS[1], 'available', tostring(available), 'updated', tostring(now))
return 1
"""

# KEYS: one sorted set per window; ARGV: limit_1, period_1, limit_2, period_2, ..., then a
# unique member suffix. All windows are checked before any is written.
WINDOWS_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local wait = 0
for i, key in ipairs(KEYS) do
  local limit, period = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - period)
  if redis.call('ZCARD', key) >= limit then
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    wait = math.max(wait, tonumber(oldest[2]) + period - now)
  end
end
if wait > 0 then return tostring(wait) end
local member = tostring(now) .. ':' .. ARGV[#ARGV]
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, member)
  redis.call('EXPIRE', key, math.ceil(tonumber(ARGV[2 * i])) + 1)
end
return '0'
"""

WINDOW_SYNC = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local limit, period, remaining = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - period)
local missing = limit - redis.call('ZCARD', KEYS[1]) - math.max(0, remaining)
for n = 1, missing do
  redis.call('ZADD', KEYS[1], now, tostring(now) .. ':sync:' .. ARGV[4] .. ':' .. n)
end
redis.call('EXPIRE', KEYS[1], math.ceil(period) + 1)
return missing
"""

BUCKET_TTL_SECONDS = 86400
WAITS_KEY = "rl:waits"  # after the prefix: fields "{budget}:{outcome}:count" and ":seconds"

log = logging.getLogger(__name__)


def waits_key(prefix: str) -> str:
    return f"{prefix}{WAITS_KEY}"


def read_waits(client: Redis, prefix: str) -> dict[tuple[str, str], tuple[int, float]]:
    """Every process's waits so far: (budget name, outcome) -> (count, seconds)."""
    raw: Any = client.hgetall(waits_key(prefix))
    found: dict[tuple[str, str], list[float]] = {}
    for field, value in raw.items():
        name = field.decode() if isinstance(field, bytes) else str(field)
        budget, outcome, measure = name.rsplit(":", 2)
        totals = found.setdefault((budget, outcome), [0.0, 0.0])
        totals[0 if measure == "count" else 1] = float(value)
    return {key: (int(count), seconds) for key, (count, seconds) in found.items()}


class RedisRateLimiter:
    def __init__(
        self,
        client: Redis,
        *,
        prefix: str,
        max_inline_wait: float = DEFAULT_MAX_INLINE_WAIT,
        outage_retry_seconds: float = DEFAULT_OUTAGE_RETRY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._redis = client
        self._outage_retry_seconds = outage_retry_seconds
        self._prefix = prefix
        self.max_inline_wait = max_inline_wait
        self._clock = clock
        self._sleep = sleep
        self._cost_acquire = client.register_script(COST_ACQUIRE)
        self._cost_feedback = client.register_script(COST_FEEDBACK)
        self._cost_refund = client.register_script(COST_REFUND)
        self._windows_acquire = client.register_script(WINDOWS_ACQUIRE)
        self._window_sync = client.register_script(WINDOW_SYNC)
        self._sequence = 0

    def __repr__(self) -> str:
        return f"RedisRateLimiter(prefix={self._prefix!r})"

    def acquire(self, budget: Budget, account: str, cost: float = 1.0) -> None:
        wait_inline(
            lambda: self._attempt(budget, account, cost),
            budget,
            account,
            self.max_inline_wait,
            self._clock,
            self._sleep,
            self._record_wait,
        )

    def _record_wait(self, budget: str, outcome: str, seconds: float) -> None:
        """Count a wait for every process to see; losing a count never fails the caller."""
        key = waits_key(self._prefix)
        try:
            pipe = self._redis.pipeline(transaction=False)
            pipe.hincrby(key, f"{budget}:{outcome}:count", 1)
            pipe.hincrbyfloat(key, f"{budget}:{outcome}:seconds", float(seconds))
            pipe.execute()
        except RedisError:
            log.warning("rate-limit wait not counted", exc_info=True)

    def feedback(
        self,
        budget: CostBucket,
        account: str,
        *,
        available: float,
        capacity: float | None = None,
        restore_per_second: float | None = None,
    ) -> None:
        self._best_effort(
            "feedback",
            lambda: self._cost_feedback(
                keys=[self._cost_key(budget, account)],
                args=[
                    repr(float(available)),
                    "" if capacity is None else repr(float(capacity)),
                    "" if restore_per_second is None else repr(float(restore_per_second)),
                    BUCKET_TTL_SECONDS,
                ],
            ),
        )

    def refund(self, budget: CostBucket, account: str, cost: float) -> None:
        self._best_effort(
            "refund",
            lambda: self._cost_refund(
                keys=[self._cost_key(budget, account)], args=[repr(float(cost))]
            ),
        )

    def sync_window(
        self, budget: RequestWindows, account: str, *, period: float, remaining: int
    ) -> None:
        limit = next((lim for lim, per in budget.windows if per == period), None)
        if limit is None:
            return
        self._best_effort(
            "window sync",
            lambda: self._window_sync(
                keys=[self._window_key(budget, account, period)],
                args=[limit, period, remaining, self._unique()],
            ),
        )

    @staticmethod
    def _best_effort(what: str, call: Callable[[], object]) -> None:
        """Corrections after a request was sent: losing one to a Redis outage only makes the
        shared budget a little less exact, while raising would fail work that already
        reached the marketplace (and would be sent again on retry)."""
        try:
            call()
        except RedisError as error:
            log.warning("rate-limit %s skipped: %s", what, type(error).__name__)

    def _attempt(self, budget: Budget, account: str, cost: float) -> float:
        """Redis away means no budget can be proven free: the caller waits as if it were spent.

        Sending anyway would let every worker exceed the marketplace's limit together; failing
        would spend the operation's retries on our own outage. A RateLimited with a short
        retry_after makes the operation wait its turn like any other throttled call.
        """
        try:
            return self._spend(budget, account, cost)
        except (RedisConnectionError, RedisTimeoutError) as error:
            raise RateLimited(
                f"{budget.name}: the shared rate limiter is unreachable",
                retry_after=self._outage_retry_seconds,
            ) from error

    def _spend(self, budget: Budget, account: str, cost: float) -> float:
        if isinstance(budget, CostBucket):
            answer: Any = self._cost_acquire(
                keys=[self._cost_key(budget, account)],
                args=[
                    repr(float(cost)),
                    repr(float(budget.capacity)),
                    repr(float(budget.restore_per_second)),
                    BUCKET_TTL_SECONDS,
                ],
            )
            if answer == b"never":
                raise RateLimited(
                    f"{budget.name}: a request costing {cost} can never fit the bucket",
                    retry_after=None,
                )
            return float(answer)
        keys = [self._window_key(budget, account, period) for _, period in budget.windows]
        args: list[Any] = [value for window in budget.windows for value in window]
        return float(self._windows_acquire(keys=keys, args=[*args, self._unique()]))

    def _cost_key(self, budget: CostBucket, account: str) -> str:
        return f"{self._prefix}rl:cost:{budget.name}:{account}"

    def _window_key(self, budget: RequestWindows, account: str, period: float) -> str:
        return f"{self._prefix}rl:win:{budget.name}:{account}:{period:g}"

    def _unique(self) -> str:
        self._sequence += 1
        return f"{os.getpid()}:{id(self):x}:{self._sequence}:{time.time_ns()}"
