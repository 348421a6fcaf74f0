"""Operations on SQL: claimed under a lease, one attempt row per real remote call, finished,
parked, listed and retried. Every function is one short statement or transaction, so nothing
here is held across a network call."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, and_, insert, or_, select, update
from sqlalchemy.exc import OperationalError

from hub.infrastructure.clock import utcnow
from hub.infrastructure.outbound import (
    CATALOG_PULL_ACTOR,
    CATALOG_QUEUE,
    FULFILLMENT_PUSH_ACTOR,
    FULFILLMENT_QUEUE,
    IMAGES_LISTING_ACTOR,
    IMAGES_QUEUE,
    IMAGES_RENDER_ACTOR,
    OPERATIONS,
    STOCK_BATCH_ACTOR,
    STOCK_QUEUE,
    WEBHOOKS_CHECK_ACTOR,
    add_message,
    request_operation,
)
from hub.infrastructure.tables import table_of
from sync.domain.policies import (
    CATALOG_PULL,
    FULFILLMENT_PUSH,
    IMAGES_LISTING,
    IMAGES_RENDER,
    STOCK_BATCH,
    WEBHOOKS_CHECK,
)
from sync.infrastructure import leases
from sync.infrastructure.tables import SyncAttemptRow

ATTEMPTS = table_of(SyncAttemptRow)
T = TypeVar("T")
# PostgreSQL's deadlock_detected and serialization_failure: it aborted this transaction so
# another could go on; run again, it goes through once the other has committed.
VICTIM_SQLSTATES = frozenset({"40P01", "40001"})
VICTIM_RETRIES = 5

QUEUED, RUNNING, SUCCEEDED, SUPERSEDED, FAILED = (
    "queued",
    "running",
    "succeeded",
    "superseded",
    "failed",
)
FINISHED = (SUCCEEDED, SUPERSEDED, FAILED)
__all__ = ["OPERATION_ACTORS", "Operation", "request_operation"]

# Which actor runs an operation of each kind (the sweeps and `POST /jobs/{id}/retry` send it).
OPERATION_ACTORS: dict[str, tuple[str, str]] = {
    STOCK_BATCH: (STOCK_BATCH_ACTOR, STOCK_QUEUE),
    FULFILLMENT_PUSH: (FULFILLMENT_PUSH_ACTOR, FULFILLMENT_QUEUE),
    CATALOG_PULL: (CATALOG_PULL_ACTOR, CATALOG_QUEUE),
    IMAGES_RENDER: (IMAGES_RENDER_ACTOR, IMAGES_QUEUE),
    IMAGES_LISTING: (IMAGES_LISTING_ACTOR, IMAGES_QUEUE),
    WEBHOOKS_CHECK: (WEBHOOKS_CHECK_ACTOR, CATALOG_QUEUE),
}


@dataclass(frozen=True)
class Operation:
    id: int
    kind: str
    shop_id: int | None
    key: str
    status: str
    payload: dict[str, Any]
    attempts: int
    not_before: datetime | None
    lease_until: datetime | None
    last_error: str | None
    result: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "shop_id": self.shop_id,
            "key": self.key,
            "status": self.status,
            "attempts": self.attempts,
            "not_before": self.not_before,
            "last_error": self.last_error,
            "result": self.result,
            "payload": self.payload,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


def _operation(row: Any) -> Operation:
    return Operation(
        id=row.id,
        kind=row.kind,
        shop_id=row.shop_id,
        key=row.key,
        status=row.status,
        payload=dict(row.payload),
        attempts=row.attempts,
        not_before=row.not_before,
        lease_until=row.lease_until,
        last_error=row.last_error,
        result=dict(row.result) if row.result is not None else None,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def request_catalog_pull(db: Connection, shop_id: int, reason: str) -> int:
    """A new listing scan for the shop; every request is its own job (listings change)."""
    operation_id = request_operation(
        db,
        kind=CATALOG_PULL,
        shop_id=shop_id,
        key=f"catalog:{shop_id}:{uuid.uuid4().hex}",
        payload={"shop_id": shop_id, "reason": reason},
        actor=CATALOG_PULL_ACTOR,
        queue=CATALOG_QUEUE,
    )
    assert operation_id is not None  # a fresh key never conflicts
    return operation_id


def in_transaction(engine: Engine, work: Callable[[Connection], T]) -> T:
    """``work`` in one transaction, run again when the database made it a deadlock's victim.

    For recording what a remote call did: a recording lost to a deadlock would leave the
    operation running under its lease, and the call repeated only once the lease ran out."""
    for attempt in range(1, VICTIM_RETRIES + 1):
        try:
            with engine.begin() as db:
                return work(db)
        except OperationalError as error:
            victim = getattr(error.orig, "sqlstate", None) in VICTIM_SQLSTATES
            if not victim or attempt == VICTIM_RETRIES:
                raise
            time.sleep(0.02 * attempt)
    raise AssertionError("unreachable: the last attempt returns or raises")


def claim(db: Connection, operation_id: int, *, lease_seconds: float) -> Operation | None:
    """Take a queued operation (or one whose runner's lease ran out) once it is due; ``None``
    when it is finished, running elsewhere or parked for later: a duplicate message is a no-op.

    A retry of the message whose earlier run holds the lease takes it back at once (see
    ``sync.infrastructure.leases``)."""
    now = utcnow()
    takeable = [
        OPERATIONS.c.status == QUEUED,
        and_(OPERATIONS.c.status == RUNNING, OPERATIONS.c.lease_until < now),
    ]
    own_token = leases.resumable_token(operation_id)
    if own_token is not None:
        takeable.append(and_(OPERATIONS.c.status == RUNNING, OPERATIONS.c.lease_token == own_token))
    token = uuid.uuid4().hex
    row = db.execute(
        update(OPERATIONS)
        .where(
            OPERATIONS.c.id == operation_id,
            or_(*takeable),
            or_(OPERATIONS.c.not_before.is_(None), OPERATIONS.c.not_before <= now),
        )
        .values(
            status=RUNNING,
            lease_until=now + timedelta(seconds=lease_seconds),
            lease_token=token,
            not_before=None,
            updated_at=now,
        )
        .returning(*OPERATIONS.c)
    ).first()
    if row is None:
        return None
    leases.record_taken(operation_id, token, db.engine)
    return _operation(row)


def release_taken() -> list[int]:
    """Let go of the leases this message's run took and still holds: back to queued, so any
    delivery of the message takes them at once. For a run that failed and whose retry could
    not be sent; a lease another claim has taken since is left alone (the token differs)."""
    engine, taken = leases.taken_by_this_run()
    if engine is None or not taken:
        return []
    released: list[int] = []
    with engine.begin() as db:
        for operation_id, token in taken.items():
            changed = db.execute(
                update(OPERATIONS)
                .where(
                    OPERATIONS.c.id == operation_id,
                    OPERATIONS.c.status == RUNNING,
                    OPERATIONS.c.lease_token == token,
                )
                .values(status=QUEUED, lease_until=None, lease_token=None, updated_at=utcnow())
            ).rowcount
            if changed:
                released.append(operation_id)
    return released


def get(db: Connection, operation_id: int) -> Operation | None:
    row = db.execute(select(OPERATIONS).where(OPERATIONS.c.id == operation_id)).first()
    return _operation(row) if row is not None else None


def record_attempt(
    db: Connection, operation_id: int, *, ok: bool, duration_ms: int, error: str | None = None
) -> int:
    """One row per real remote call, and the budget spent; returns the attempts so far."""
    db.execute(
        insert(ATTEMPTS).values(
            operation_id=operation_id,
            status=SUCCEEDED if ok else FAILED,
            duration_ms=duration_ms,
            error=error,
            created_at=utcnow(),
        )
    )
    attempts: int = db.execute(
        update(OPERATIONS)
        .where(OPERATIONS.c.id == operation_id)
        .values(attempts=OPERATIONS.c.attempts + 1, updated_at=utcnow())
        .returning(OPERATIONS.c.attempts)
    ).scalar_one()
    return attempts


def finish(
    db: Connection,
    operation_id: int,
    status: str,
    *,
    error: str | None = None,
    result: dict[str, Any] | None = None,
) -> None:
    values: dict[str, Any] = {
        "status": status,
        "lease_until": None,
        "lease_token": None,
        "updated_at": utcnow(),
    }
    if error is not None:
        values["last_error"] = error
    if result is not None:
        values["result"] = result
    db.execute(update(OPERATIONS).where(OPERATIONS.c.id == operation_id).values(**values))


def requeue(
    db: Connection,
    operation_id: int,
    *,
    not_before: datetime | None = None,
    error: str | None = None,
) -> None:
    """Back to queued (the runner lets go), due at ``not_before``."""
    values: dict[str, Any] = {
        "status": QUEUED,
        "lease_until": None,
        "lease_token": None,
        "not_before": not_before,
        "updated_at": utcnow(),
    }
    if error is not None:
        values["last_error"] = error
    db.execute(update(OPERATIONS).where(OPERATIONS.c.id == operation_id).values(**values))


def set_payload(db: Connection, operation_id: int, payload: dict[str, Any]) -> None:
    db.execute(update(OPERATIONS).where(OPERATIONS.c.id == operation_id).values(payload=payload))


def list_operations(
    db: Connection,
    *,
    shop_id: int | None = None,
    status: str | None = None,
    kind: str | None = None,
    limit: int = 100,
    before_id: int | None = None,
) -> list[Operation]:
    query = select(OPERATIONS).order_by(OPERATIONS.c.id.desc()).limit(limit)
    if shop_id is not None:
        query = query.where(OPERATIONS.c.shop_id == shop_id)
    if status is not None:
        query = query.where(OPERATIONS.c.status == status)
    if kind is not None:
        query = query.where(OPERATIONS.c.kind == kind)
    if before_id is not None:
        query = query.where(OPERATIONS.c.id < before_id)
    return [_operation(row) for row in db.execute(query)]


def retry(db: Connection, operation: Operation) -> bool:
    """A failed operation gets a fresh budget and a new message; ``False`` if it is not failed."""
    operation_id = operation.id
    actor, queue = OPERATION_ACTORS[operation.kind]
    changed = db.execute(
        update(OPERATIONS)
        .where(OPERATIONS.c.id == operation_id, OPERATIONS.c.status == FAILED)
        .values(status=QUEUED, attempts=0, not_before=None, lease_until=None, updated_at=utcnow())
    ).rowcount
    if not changed:
        return False
    add_message(db, actor, queue, {"operation_id": operation_id})
    return True


def due_for_sweep(db: Connection, *, stuck_after: timedelta, limit: int = 500) -> list[Operation]:
    """Parked operations now due, and operations whose message or runner was lost: queued and
    untouched for ``stuck_after``, or running past their lease."""
    now = utcnow()
    query = (
        select(OPERATIONS)
        .where(
            or_(
                and_(
                    OPERATIONS.c.status == QUEUED,
                    OPERATIONS.c.not_before.is_not(None),
                    OPERATIONS.c.not_before <= now,
                ),
                and_(
                    OPERATIONS.c.status == QUEUED,
                    OPERATIONS.c.not_before.is_(None),
                    OPERATIONS.c.updated_at < now - stuck_after,
                ),
                and_(OPERATIONS.c.status == RUNNING, OPERATIONS.c.lease_until < now),
            )
        )
        .order_by(OPERATIONS.c.id)
        .limit(limit)
    )
    return [_operation(row) for row in db.execute(query)]


def touch(db: Connection, operation_id: int) -> None:
    """Mark a swept operation as just re-sent, so the next sweep leaves it alone."""
    db.execute(
        update(OPERATIONS)
        .where(OPERATIONS.c.id == operation_id, OPERATIONS.c.status == QUEUED)
        .values(not_before=None, updated_at=utcnow())
    )
