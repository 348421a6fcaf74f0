"""The transactional outbox: messages written with the change, published after the commit.

Rows are claimed with ``UPDATE … RETURNING`` under a lease (both databases), handed to the broker
with the row id as the message id, then marked published. A publisher that dies between the two
leaves a leased row; once the lease runs out the relay publishes it again (at-least-once: every
actor is idempotent).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, and_, or_, select, update

from hub.infrastructure.clock import utcnow
from hub.infrastructure.outbound import OUTBOX, add_message

__all__ = ["OUTBOX", "OutboxMessage", "Publisher", "Relay", "add_message", "claim", "listener"]

log = logging.getLogger(__name__)
DEFAULT_LEASE = timedelta(seconds=30)
CLAIM_BATCH = 200
RELAY_FAILURE_PAUSE_SECONDS = 1.0  # a failed pass waits this long before the next
LISTEN_MAX_PAUSE_SECONDS = 5.0  # longest wait between LISTEN reconnects; publishers poll anyway


@dataclass(frozen=True)
class OutboxMessage:
    id: int
    actor: str
    queue: str
    payload: dict[str, Any]
    delay_ms: int


def claim(
    engine: Engine,
    *,
    ids: Iterable[int] | None = None,
    limit: int = CLAIM_BATCH,
    lease: timedelta = DEFAULT_LEASE,
) -> list[OutboxMessage]:
    now = utcnow()
    free = and_(
        OUTBOX.c.published_at.is_(None),
        or_(OUTBOX.c.lease_until.is_(None), OUTBOX.c.lease_until < now),
    )
    chosen = select(OUTBOX.c.id).where(free).order_by(OUTBOX.c.id).limit(limit)
    if ids is not None:
        wanted = sorted(set(ids))
        if not wanted:
            return []
        chosen = chosen.where(OUTBOX.c.id.in_(wanted))
    statement = (
        update(OUTBOX)
        .where(OUTBOX.c.id.in_(chosen.scalar_subquery()), free)
        .values(lease_until=now + lease)
        .returning(OUTBOX.c.id, OUTBOX.c.actor, OUTBOX.c.queue, OUTBOX.c.payload, OUTBOX.c.delay_ms)
    )
    with engine.begin() as db:
        rows = db.execute(statement).all()
    return sorted(
        (OutboxMessage(r.id, r.actor, r.queue, dict(r.payload), r.delay_ms) for r in rows),
        key=lambda message: message.id,
    )


def mark_published(engine: Engine, ids: Iterable[int]) -> None:
    done = sorted(set(ids))
    if done:
        with engine.begin() as db:
            db.execute(update(OUTBOX).where(OUTBOX.c.id.in_(done)).values(published_at=utcnow()))


def release(engine: Engine, ids: Iterable[int]) -> None:
    unsent = sorted(set(ids))
    if unsent:
        with engine.begin() as db:
            db.execute(
                update(OUTBOX)
                .where(OUTBOX.c.id.in_(unsent), OUTBOX.c.published_at.is_(None))
                .values(lease_until=None)
            )


def backlog(engine: Engine) -> int:
    from sqlalchemy import func

    with engine.connect() as db:
        count: int = db.execute(
            select(func.count()).select_from(OUTBOX).where(OUTBOX.c.published_at.is_(None))
        ).scalar_one()
    return count


class Publisher:
    """Moves claimed rows to the broker; ``send`` is the broker's enqueue for one message."""

    def __init__(self, engine: Engine, send: Callable[[OutboxMessage], None]) -> None:
        self._engine = engine
        self._send = send

    def publish(self, ids: Iterable[int] | None = None) -> int:
        published = 0
        while True:
            messages = claim(self._engine, ids=ids)
            sent: list[int] = []
            try:
                for message in messages:
                    self._send(message)
                    sent.append(message.id)
            except Exception:
                # The broker is away: free what was not sent so the next pass (not the lease's
                # end) sends it. A send that failed unconfirmed may go twice; actors are
                # idempotent.
                release(self._engine, [m.id for m in messages if m.id not in set(sent)])
                raise
            finally:
                mark_published(self._engine, sent)
            published += len(sent)
            if ids is not None or len(messages) < CLAIM_BATCH:
                return published


class FailureReport:
    """One traceback per run of failures, then silence until it works again.

    A relay thread retries every second while a service is away: logging each failure would
    write thousands of identical tracebacks during an outage and bury everything else.
    """

    def __init__(self, what: str) -> None:
        self._what = what
        self._failures = 0

    def failed(self) -> None:
        self._failures += 1
        if self._failures == 1:
            log.exception("%s failed; retrying quietly until it works again", self._what)

    def succeeded(self) -> None:
        if self._failures:
            log.warning("%s works again after %d failures", self._what, self._failures)
            self._failures = 0


class Relay:
    """Publishes what others left: woken by LISTEN/NOTIFY on PostgreSQL, else a short poll.

    Several publisher threads drain the backlog side by side: with publisher confirms each
    publish waits for the broker's acknowledgement, so one thread caps the relay's rate at one
    round trip per message. Claims are leased, so threads never publish the same row twice.
    """

    def __init__(
        self,
        publisher: Publisher,
        *,
        wait_for_work: Callable[[float], None],
        poll_seconds: float = 0.05,
        threads: int = 1,
    ) -> None:
        self._publisher = publisher
        self._wait = wait_for_work
        self._poll = poll_seconds
        self._threads = max(1, threads)
        self._stop = threading.Event()
        self._work = threading.Event()
        self._running: list[threading.Thread] = []
        self._closer = getattr(wait_for_work, "close", None)

    def run_forever(self) -> None:
        """The waiting loop: wake the publishers on a NOTIFY or after the poll interval."""
        failures = FailureReport("outbox relay wait")
        while not self._stop.is_set():
            try:
                self._wait(self._poll)
                failures.succeeded()
            except Exception:
                failures.failed()
                self._stop.wait(RELAY_FAILURE_PAUSE_SECONDS)
            self._work.set()

    def _publish_forever(self) -> None:
        failures = FailureReport("outbox relay pass")
        while not self._stop.is_set():
            try:
                if self._publisher.publish() == 0:
                    self._work.wait(self._poll)
                    self._work.clear()
                failures.succeeded()
            except Exception:  # the database or broker blinked: keep relaying
                failures.failed()
                self._stop.wait(RELAY_FAILURE_PAUSE_SECONDS)

    def start(self) -> None:
        targets = [(self.run_forever, "outbox-relay-wait")] + [
            (self._publish_forever, f"outbox-relay-{n}") for n in range(self._threads)
        ]
        for target, name in targets:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._running.append(thread)

    def stop(self) -> None:
        self._stop.set()
        self._work.set()
        for thread in self._running:
            thread.join(5)
        if self._closer is not None:
            self._closer()


def notify_channel(schema: str | None) -> str:
    return f"hub_outbox_{schema or 'public'}"


class Listener:
    """A wait that returns early on NOTIFY (PostgreSQL) or simply sleeps (SQLite).

    A dropped LISTEN connection is reopened on the next wait: a relay that quietly stopped
    listening would leave webhooks to the stale-event sweep.
    """

    def __init__(self, engine: Engine, schema: str | None, *, connect_timeout: int) -> None:
        self._postgres = engine.dialect.name == "postgresql"
        self._url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._channel = notify_channel(schema)
        self._connect_timeout = connect_timeout
        self._connection: Any = None
        self._sleep = threading.Event()
        self._pause = 0.0  # grows while PostgreSQL stays away; the relay polls meanwhile

    def __call__(self, seconds: float) -> None:
        if not self._postgres:
            self._sleep.wait(seconds)
            return
        try:
            connection = self._connect()
            self._pause = 0.0
            for _ in connection.notifies(timeout=seconds, stop_after=1):
                return
        except Exception as error:
            if not self._pause:
                log.warning("outbox LISTEN connection lost (%s); reopening", type(error).__name__)
            self.close()
            self._pause = min(max(seconds, self._pause * 2), LISTEN_MAX_PAUSE_SECONDS)
            self._sleep.wait(self._pause)

    def _connect(self) -> Any:
        if self._connection is None or self._connection.closed:
            import psycopg

            self._connection = psycopg.connect(
                self._url, autocommit=True, connect_timeout=self._connect_timeout
            )
            self._connection.execute(f"LISTEN {self._channel}")
        return self._connection

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except Exception:  # closing a dead connection: nothing left to free
                log.debug("closing the LISTEN connection failed", exc_info=True)


def listener(engine: Engine, schema: str | None, *, connect_timeout: int) -> Listener:
    return Listener(engine, schema, connect_timeout=connect_timeout)
