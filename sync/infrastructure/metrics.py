"""What ``/metrics`` reports about the sync engine, read from the database (and the broker).

A scrape comes every 15 s, so each query here is cheap at any table size: it reads an index
range (the outbox's partial index of unpublished rows, ``(status, …)`` on operations and
events), a table that holds only what is queued (push triggers), or a bounded sample. All of
them run in one read-only transaction (SQLite: no write lock).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, select

from hub.infrastructure.db import read_only
from hub.infrastructure.outbound import OPERATIONS, OUTBOX, PULL_TRIGGER_KIND, TRIGGERS
from sync.domain.policies import FULFILLMENT_PUSH, IMAGES_LISTING, STOCK_BATCH
from sync.infrastructure.events import EVENTS, HANDLED, RECEIVED
from sync.infrastructure.operations import FAILED, QUEUED, RUNNING

# Operations that write to a marketplace what changed here (a push, once its trigger is taken)
PUSH_OPERATION_KINDS = (STOCK_BATCH, IMAGES_LISTING, FULFILLMENT_PUSH)
WEBHOOK_SAMPLE_LIMIT = 10_000  # at most this many of the newest handled events per quantile


@dataclass(frozen=True)
class SyncMetrics:
    outbox_pending: int = 0
    outbox_oldest_at: datetime | None = None  # created_at of the oldest unpublished row
    outbox_by_queue: dict[str, int] = field(default_factory=dict)
    operations_queued: dict[str, int] = field(default_factory=dict)  # kind -> queued
    operations_running: dict[str, int] = field(default_factory=dict)  # kind -> running
    triggers_queued: dict[str, int] = field(default_factory=dict)  # trigger kind -> rows
    events_received: int = 0  # stored, not handled yet
    oldest_received_event_at: datetime | None = None
    push_due_since: dict[str, datetime] = field(default_factory=dict)  # kind -> oldest due
    webhook_lags: list[float] = field(default_factory=list)  # seconds, ascending
    failed_operations: dict[int | None, int] = field(default_factory=dict)  # shop -> failed


def read_sync_metrics(
    engine: Engine,
    *,
    now: datetime,
    window: timedelta,
    sample_limit: int = WEBHOOK_SAMPLE_LIMIT,
) -> SyncMetrics:
    """Everything at once, in one read-only transaction."""
    with read_only(engine).connect() as db:
        oldest_outbox = db.execute(
            select(OUTBOX.c.created_at)
            .where(OUTBOX.c.published_at.is_(None))
            .order_by(OUTBOX.c.id)
            .limit(1)
        ).scalar_one_or_none()
        outbox_by_queue: dict[str, int] = dict(
            db.execute(
                select(OUTBOX.c.queue, func.count())
                .where(OUTBOX.c.published_at.is_(None))
                .group_by(OUTBOX.c.queue)
            ).all()
        )
        queued: dict[str, int] = {}
        running: dict[str, int] = {}
        due_since: dict[str, datetime] = {}
        for kind, status, count, oldest in db.execute(
            select(
                OPERATIONS.c.kind,
                OPERATIONS.c.status,
                func.count(),
                func.min(OPERATIONS.c.created_at),
            )
            .where(OPERATIONS.c.status.in_((QUEUED, RUNNING)))
            .group_by(OPERATIONS.c.kind, OPERATIONS.c.status)
        ).all():
            (queued if status == QUEUED else running)[kind] = count
            if kind in PUSH_OPERATION_KINDS:
                _keep_earliest(due_since, kind, oldest)
        triggers: dict[str, int] = {}
        for kind, count, due_at in db.execute(
            select(TRIGGERS.c.kind, func.count(), func.min(TRIGGERS.c.due_at)).group_by(
                TRIGGERS.c.kind
            )
        ).all():
            triggers[kind] = count
            if kind != PULL_TRIGGER_KIND:
                _keep_earliest(due_since, kind, due_at)
        events_received, oldest_event = db.execute(
            select(func.count(), func.min(EVENTS.c.received_at)).where(EVENTS.c.status == RECEIVED)
        ).one()
        lags = sorted(
            max(0.0, (_utc(handled) - _utc(received)).total_seconds())
            for received, handled in db.execute(
                select(EVENTS.c.received_at, EVENTS.c.handled_at)
                .where(EVENTS.c.status == HANDLED, EVENTS.c.received_at >= now - window)
                .order_by(EVENTS.c.received_at.desc())
                .limit(sample_limit)
            ).all()
            if handled is not None
        )
        failed: dict[int | None, int] = dict(
            db.execute(
                select(OPERATIONS.c.shop_id, func.count())
                .where(OPERATIONS.c.status == FAILED)
                .group_by(OPERATIONS.c.shop_id)
            ).all()
        )
    return SyncMetrics(
        outbox_pending=sum(outbox_by_queue.values()),
        outbox_oldest_at=_utc(oldest_outbox) if oldest_outbox is not None else None,
        outbox_by_queue=outbox_by_queue,
        operations_queued=queued,
        operations_running=running,
        triggers_queued=triggers,
        events_received=events_received,
        oldest_received_event_at=_utc(oldest_event) if oldest_event is not None else None,
        push_due_since=due_since,
        webhook_lags=lags,
        failed_operations=failed,
    )


def _utc(value: datetime | str) -> datetime:
    """A time column (or an aggregate of one, which SQLite may hand back as text) in UTC."""
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _keep_earliest(found: dict[str, datetime], kind: str, value: datetime | str | None) -> None:
    if value is None:
        return
    at = _utc(value)
    if kind not in found or at < found[kind]:
        found[kind] = at


def quantile(ascending: Sequence[float], q: float) -> float:
    """Nearest-rank quantile of sorted values; NaN when there are none."""
    if not ascending:
        return math.nan
    rank = min(len(ascending), max(1, math.ceil(q * len(ascending))))
    return ascending[rank - 1]


def broker_queue_names(prefix: str, queues: Iterable[str]) -> dict[str, str]:
    """The RabbitMQ queues Dramatiq declares for each of ours: the queue, its delay queue (.DQ)
    and its dead letters (.XQ); broker name -> the name reported (without the prefix)."""
    from dramatiq.common import dq_name, xq_name

    names: dict[str, str] = {}
    for queue in queues:
        for name in (queue, dq_name(queue), xq_name(queue)):
            names[f"{prefix}{name}"] = name
    return names


def read_broker_queue_depths(url: str, names: Iterable[str], timeout: float) -> dict[str, int]:
    """Ready messages per queue, by a passive ``queue.declare`` on one short-lived connection
    (connecting and every call bounded by ``timeout``). A queue not declared yet is left out.
    RabbitMQ counts ready messages only, not those a consumer holds unacknowledged (Dramatiq
    keeps delayed messages in worker memory until due)."""
    import pika  # type: ignore[import-untyped]
    from pika.exceptions import ChannelClosedByBroker  # type: ignore[import-untyped]

    parameters = pika.URLParameters(url)
    parameters.connection_attempts = 1
    parameters.socket_timeout = timeout
    parameters.stack_timeout = timeout
    parameters.blocked_connection_timeout = timeout
    depths: dict[str, int] = {}
    connection = pika.BlockingConnection(parameters)
    try:
        channel = connection.channel()
        for name in names:
            try:
                frame = channel.queue_declare(name, passive=True)
            except ChannelClosedByBroker:  # 404: nobody declared it yet, and the channel closed
                channel = connection.channel()
                continue
            depths[name] = int(frame.method.message_count)
    finally:
        if connection.is_open:
            connection.close()
    return depths
