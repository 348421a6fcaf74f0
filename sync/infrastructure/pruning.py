"""Deleting the sync engine's bookkeeping once it has been kept long enough, in bounded batches.

Each batch is one short transaction deleting at most ``batch`` rows, so no statement holds
SQLite's write lock (or PostgreSQL's row locks and WAL) for long, and a backlog of millions of
rows goes away in steps other writers interleave with. What is never deleted:

* inbound events still ``received`` (not handled yet): only ``handled`` events whose receipt and
  handling are both older than the cutoff, and ``rejected`` ones received before it;
* attempts of an operation that is not finished (``queued`` or ``running``);
* outbox rows not published, or published after the cutoff.

Events are found through their ``(status, received_at)`` index. Attempts and outbox rows have no
index on their times, but their ids grow with them: a walk in id order (the primary key) reads one
batch at a time from the oldest row and stops at the first batch reaching rows created after the
cutoff, so a run reads what it deletes, the old rows it must keep, and one batch more: never the
whole table. A walk stopped by its budget says where (``resume_after``), so the next run goes on
from there instead of reading the kept rows again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, delete, select

from hub.infrastructure.outbound import OPERATIONS, OUTBOX
from sync.infrastructure.events import EVENTS, HANDLED, REJECTED
from sync.infrastructure.operations import ATTEMPTS, FINISHED

PRUNE_BATCH = 1_000  # rows per transaction


@dataclass
class Pruned:
    """What one kind's pruning did: rows deleted, and whether it reached the cutoff (False: a
    budget stopped it first; the rest goes at the next run)."""

    deleted: int = 0
    complete: bool = True
    resume_after: int = 0  # a walk stopped by its budget: the last id it read


class _Budget:
    """At most ``rows`` rows touched per kind in one run (deleted events; attempts and outbox
    rows read by the walk); ``None``: no bound."""

    def __init__(self, rows: int | None) -> None:
        self.left = rows

    def take(self, batch: int) -> int:
        """The size of the next batch (0: the budget is spent)."""
        if self.left is None:
            return batch
        size = max(0, min(batch, self.left))
        self.left -= size
        return size

    def give_back(self, unused: int) -> None:
        """A batch that touched fewer rows than it was given."""
        if self.left is not None:
            self.left += max(0, unused)


def prune_events(
    engine: Engine, older_than: datetime, *, batch: int = PRUNE_BATCH, budget: int | None = None
) -> Pruned:
    """Handled events (received and handled before ``older_than``) and rejected ones (received
    before it), oldest first. Unhandled events are never touched, nor an event replayed since
    (it is ``received`` again)."""
    rows = _Budget(budget)
    pruned = Pruned()
    for status in (HANDLED, REJECTED):
        conditions = [EVENTS.c.status == status, EVENTS.c.received_at < older_than]
        if status == HANDLED:
            conditions.append(EVENTS.c.handled_at < older_than)
        while True:
            size = rows.take(batch)
            if size == 0:
                pruned.complete = False
                return pruned
            chosen = (
                select(EVENTS.c.id).where(*conditions).order_by(EVENTS.c.received_at).limit(size)
            )
            with engine.begin() as db:
                deleted = db.execute(
                    delete(EVENTS).where(
                        EVENTS.c.id.in_(chosen.scalar_subquery()), EVENTS.c.status == status
                    )
                ).rowcount
            pruned.deleted += deleted
            if deleted < size:
                rows.give_back(size - deleted)
                break
    return pruned


def prune_attempts(
    engine: Engine,
    older_than: datetime,
    *,
    batch: int = PRUNE_BATCH,
    budget: int | None = None,
    after: int = 0,
) -> Pruned:
    """Attempts made before ``older_than`` by operations that are finished (succeeded,
    superseded or failed); a queued or running operation keeps its whole log."""
    finished = (
        select(OPERATIONS.c.id)
        .where(OPERATIONS.c.id == ATTEMPTS.c.operation_id, OPERATIONS.c.status.in_(FINISHED))
        .exists()
    )

    def doomed(db: Connection, after: int, upto: int) -> int:
        return db.execute(
            delete(ATTEMPTS).where(
                ATTEMPTS.c.id > after,
                ATTEMPTS.c.id <= upto,
                ATTEMPTS.c.created_at < older_than,
                finished,
            )
        ).rowcount

    return _walk(
        engine, ATTEMPTS.c.id, ATTEMPTS.c.created_at, older_than, doomed, batch, budget, after
    )


def prune_outbox(
    engine: Engine,
    older_than: datetime,
    *,
    batch: int = PRUNE_BATCH,
    budget: int | None = None,
    after: int = 0,
) -> Pruned:
    """Outbox rows published before ``older_than``; an unpublished row stays whatever its age
    (the relay still owes it to the broker)."""

    def doomed(db: Connection, after: int, upto: int) -> int:
        return db.execute(
            delete(OUTBOX).where(
                OUTBOX.c.id > after,
                OUTBOX.c.id <= upto,
                OUTBOX.c.published_at.is_not(None),
                OUTBOX.c.published_at < older_than,
            )
        ).rowcount

    # A row is published after it is written, so rows written after the cutoff end the walk.
    return _walk(engine, OUTBOX.c.id, OUTBOX.c.created_at, older_than, doomed, batch, budget, after)


def _walk(
    engine: Engine,
    id_column: ColumnElement[Any],
    time_column: ColumnElement[Any],
    older_than: datetime,
    delete_between: Callable[[Connection, int, int], int],
    batch: int,
    budget: int | None,
    after: int,
) -> Pruned:
    """Read ids in order, a batch at a time from the first after ``after``, deleting what
    qualifies in each (``delete_between(db, after, upto)``), until a batch reaches past the
    cutoff."""
    rows = _Budget(budget)
    pruned = Pruned()
    while True:
        size = rows.take(batch)
        if size == 0:
            pruned.complete = False
            pruned.resume_after = after
            return pruned
        with engine.begin() as db:
            window = db.execute(
                select(id_column, time_column)
                .where(id_column > after)
                .order_by(id_column)
                .limit(size)
            ).all()
            rows.give_back(size - len(window))
            if not window:
                return pruned
            upto, newest = window[-1]
            pruned.deleted += delete_between(db, after, upto)
        if len(window) < size or newest >= older_than:
            return pruned
        after = upto
