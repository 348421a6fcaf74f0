"""The shared shape of an actor that calls a marketplace for one operation: claim in a short
transaction, call with none open, record the outcome in a second one. Waits are new messages
(or a parked ``not_before`` beyond the broker's longest delay) and spend no attempt."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import Connection

from connectors.contract import AuthError, PermanentError, RateLimited, TransientError
from hub.domain.shops import Shop, ShopStatus
from hub.infrastructure.clock import utcnow
from hub.infrastructure.outbound import add_message
from sync.application.orders_in import mark_shop
from sync.domain.policies import Policy, policy
from sync.infrastructure import operations as ops
from sync.worker.runtime import SyncRuntime

log = logging.getLogger(__name__)
FAILED_ACTOR, FAILED_QUEUE = "sync.operation_failed", "maintenance"
T = TypeVar("T")


@dataclass(frozen=True)
class Route:
    """Where an operation kind's messages go, and its budget."""

    kind: str
    actor: str
    queue: str

    @property
    def policy(self) -> Policy:
        return policy(self.kind)


def active_shop(runtime: SyncRuntime, operation: ops.Operation, route: Route) -> Shop | None:
    """The operation's shop if it can be called now; a gone shop fails the operation, a paused
    or unauthorised one parks it for the broker's longest delay."""
    shop = runtime.shop(operation.shop_id or 0)
    if shop is None:
        fail(runtime, operation, f"shop {operation.shop_id} no longer exists")
        return None
    if shop.status is not ShopStatus.ACTIVE:
        seconds = runtime.container.settings.max_broker_delay_seconds
        wait(runtime, operation, seconds, route.actor, route.queue, error=f"shop is {shop.status}")
        return None
    return shop


def call_remote(
    runtime: SyncRuntime,
    operation: ops.Operation,
    route: Route,
    shop: Shop,
    call: Callable[[], T],
) -> tuple[T, int] | None:
    """Make the operation's remote call with no transaction open; the result and its duration
    in ms, or ``None`` after doing what the failure asks: a rate limit waits (no attempt spent),
    a refusal fails at once with the marketplace's words (and a refused token marks the shop),
    a transient error spends an attempt and backs off until the budget is gone."""
    started = time.monotonic()
    try:
        result = call()
    except RateLimited as limited:
        wait(runtime, operation, limited.retry_after or 1.0, route.actor, route.queue)
        return None
    except AuthError as error:
        mark_shop(runtime, shop, ShopStatus.AUTH_FAILED)
        refused(runtime, operation, error.message, elapsed_ms(started))
        return None
    except PermanentError as error:
        refused(runtime, operation, error_text(error), elapsed_ms(started))
        return None
    except TransientError as error:
        attempt_failed(
            runtime,
            operation,
            route.policy,
            error.message,
            elapsed_ms(started),
            route.actor,
            route.queue,
            retry_after=error.retry_after,
        )
        return None
    return result, elapsed_ms(started)


def succeeded(
    runtime: SyncRuntime, operation: ops.Operation, duration_ms: int, result: dict[str, Any]
) -> None:

    def record(db: Connection) -> None:
        ops.record_attempt(db, operation.id, ok=True, duration_ms=duration_ms)
        ops.finish(db, operation.id, ops.SUCCEEDED, result=result)

    ops.in_transaction(runtime.container.engine, record)


def elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def wait(
    runtime: SyncRuntime,
    operation: ops.Operation,
    seconds: float,
    actor: str,
    queue: str,
    *,
    error: str | None = None,
) -> None:
    """Run the operation again in ``seconds``: a delayed message when the broker can carry the
    wait, else parked for the scheduler's sweep."""
    settings = runtime.container.settings
    due = utcnow() + timedelta(seconds=seconds)
    message_id: int | None = None
    with runtime.container.engine.begin() as db:
        ops.requeue(db, operation.id, not_before=due, error=error)
        if seconds <= settings.max_broker_delay_seconds:
            message_id = add_message(
                db, actor, queue, {"operation_id": operation.id}, delay_ms=int(seconds * 1000)
            )
    if message_id is not None:
        runtime.publisher.publish(ids=[message_id])


def fail(runtime: SyncRuntime, operation: ops.Operation, error: str) -> None:
    """Out of budget or refused for good: failed, visible, replayable, and announced."""
    with runtime.container.engine.begin() as db:
        ops.finish(db, operation.id, ops.FAILED, error=error)
        message_id = add_message(db, FAILED_ACTOR, FAILED_QUEUE, {"operation_id": operation.id})
    runtime.publisher.publish(ids=[message_id])


def attempt_failed(
    runtime: SyncRuntime,
    operation: ops.Operation,
    policy: Policy,
    error: str,
    duration_ms: int,
    actor: str,
    queue: str,
    *,
    retry_after: float | None = None,
) -> None:
    """A real call failed transiently: spend an attempt, then wait or fail out of budget."""
    with runtime.container.engine.begin() as db:
        attempts = ops.record_attempt(
            db, operation.id, ok=False, duration_ms=duration_ms, error=error
        )
    if attempts >= policy.max_attempts:
        fail(runtime, operation, f"out of budget after {attempts} attempts: {error}")
        return
    wait(runtime, operation, policy.backoff(attempts, retry_after), actor, queue, error=error)


def refused(runtime: SyncRuntime, operation: ops.Operation, error: str, duration_ms: int) -> None:
    """A permanent refusal: one attempt, failed at once with the marketplace's message."""
    with runtime.container.engine.begin() as db:
        ops.record_attempt(db, operation.id, ok=False, duration_ms=duration_ms, error=error)
    fail(runtime, operation, error)


def error_text(error: PermanentError) -> str:
    """Our summary plus the marketplace's own words, once."""
    detail = getattr(error, "marketplace_message", "")
    return f"{error.message}: {detail}" if detail and detail not in error.message else error.message


def announce_failure(runtime: SyncRuntime, operation_id: int) -> dict[str, Any] | None:
    """``sync.operation_failed``: one structured error line per failed operation, for alerts."""
    with runtime.container.engine.connect() as db:
        operation = ops.get(db, operation_id)
    if operation is None or operation.status != ops.FAILED:
        return None
    details = {
        "operation_id": operation.id,
        "operation_kind": operation.kind,
        "shop_id": operation.shop_id,
        "operation_key": operation.key,
        "attempts": operation.attempts,
        "last_error": operation.last_error,
    }
    log.error("sync operation failed", extra=details)
    return details
