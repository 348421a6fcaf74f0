"""``catalog.pull`` as an operation: the scan's report is the job's result, so an operator sees
what was bound, what conflicts and which SKUs we do not know."""

from __future__ import annotations

import time

from connectors.contract import PermanentError
from hub.infrastructure.outbound import CATALOG_PULL_ACTOR, CATALOG_QUEUE
from sync.application import operations_run as run
from sync.application.catalog_in import pull_catalog
from sync.application.orders_in import Retry
from sync.domain.policies import CATALOG_PULL, policy
from sync.infrastructure import operations as ops
from sync.worker.runtime import SyncRuntime

CATALOG_ACTOR = CATALOG_PULL_ACTOR


def request_catalog_pull(runtime: SyncRuntime, shop_id: int, reason: str) -> int:
    """A new scan job, published at once."""
    with runtime.container.engine.begin() as db:
        operation_id = ops.request_catalog_pull(db, shop_id, reason)
    runtime.publisher.publish()
    return operation_id


def run_catalog_pull(runtime: SyncRuntime, operation_id: int) -> None:
    rules = policy(CATALOG_PULL)
    with runtime.container.engine.begin() as db:
        operation = ops.claim(db, operation_id, lease_seconds=rules.lease_seconds)
    if operation is None:
        return
    started = time.monotonic()
    try:
        outcome = pull_catalog(runtime, operation.shop_id or 0)
    except PermanentError as error:
        run.refused(runtime, operation, run.error_text(error), run.elapsed_ms(started))
        return
    if isinstance(outcome, Retry):
        run.wait(runtime, operation, outcome.seconds, CATALOG_ACTOR, CATALOG_QUEUE)
        return
    with runtime.container.engine.begin() as db:
        ops.record_attempt(db, operation.id, ok=True, duration_ms=run.elapsed_ms(started))
        if outcome is None:
            ops.finish(db, operation.id, ops.FAILED, error="the shop is gone or not active")
        else:
            ops.finish(db, operation.id, ops.SUCCEEDED, result=outcome.as_dict())
