"""The shared shape of an actor that calls a marketplace for one operation: claim in a short
transaction, call with none open, record the outcome in a second one. Waits are new messages
(or a parked ``not_before`` beyond the broker's longest delay) and spend no attempt."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from connectors.contract import PermanentError
from hub.infrastructure.clock import utcnow
from hub.infrastructure.outbound import add_message
from sync.domain.policies import Policy
from sync.infrastructure import operations as ops
from sync.worker.runtime import SyncRuntime

log = logging.getLogger(__name__)
FAILED_ACTOR, FAILED_QUEUE = "sync.operation_failed", "maintenance"


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
