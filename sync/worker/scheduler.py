"""The scheduler: order pulls per shop, the stale-event sweep, the daily buyer-data retention.
One leader at a time.

With Redis, leadership is a key set with NX and a TTL, renewed on every tick; a leader that dies
is replaced within one TTL. Embedded, the one process is the leader.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from datetime import datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from redis import Redis
from sqlalchemy import select, update

from hub.domain.shops import ShopStatus
from hub.infrastructure.clock import utcnow
from hub.infrastructure.outages import is_outage
from hub.infrastructure.outbound import (
    PULL_TRIGGER_KIND,
    TRIGGERS,
    trigger_actor,
    trigger_pushes,
)
from sync.application import orders_in, privacy
from sync.application.catalog_jobs import request_catalog_pull
from sync.application.onboarding import request_webhook_check
from sync.application.retention import Pruning, Retention, prune
from sync.application.scheduling import due, pull_interval_seconds
from sync.infrastructure import events, pushes
from sync.infrastructure import operations as ops
from sync.infrastructure.outbox import add_message
from sync.worker.runtime import SyncRuntime

log = logging.getLogger(__name__)
TICK_SECONDS = 15
LEADER_TTL_MS = 45_000
RETENTION_INTERVAL_SECONDS = 24 * 3600
RETENTION_BUDGET = 5_000  # rows of each kind per tick: a backlog goes on at the next tick
PRUNING_INTERVAL_SECONDS = 3600  # handled events, old attempts, published outbox rows
PRUNING_BUDGET = 20_000  # rows read per kind per tick: a backlog goes on at the next tick


class LeaderLock:
    def __init__(self, redis_url: str | None, key: str, timeout_seconds: float) -> None:
        self._redis = (
            Redis.from_url(
                redis_url, socket_timeout=timeout_seconds, socket_connect_timeout=timeout_seconds
            )
            if redis_url
            else None
        )
        self._key = key
        self._me = uuid.uuid4().hex

    def held(self) -> bool:
        if self._redis is None:
            return True
        if self._redis.set(self._key, self._me, nx=True, px=LEADER_TTL_MS):
            return True
        if self._redis.get(self._key) == self._me.encode():
            self._redis.pexpire(self._key, LEADER_TTL_MS)
            return True
        return False


class Scheduler:
    def __init__(self, runtime: SyncRuntime) -> None:
        self.runtime = runtime
        settings = runtime.container.settings
        self._lock = LeaderLock(
            settings.cache_url,
            f"{settings.cache_key_prefix}scheduler:leader",
            timeout_seconds=settings.cache_timeout_seconds,
        )
        self._last_pull: dict[int, datetime] = {}
        self._last_catalog: dict[int, datetime] = {}
        self._last_webhook_check: dict[int, datetime] = {}
        self._last_retention: datetime | None = None
        self._last_pruning: datetime | None = None
        self._pruning_resume: dict[str, int] = {}
        self._scheduler = BackgroundScheduler(timezone="UTC")
        self._scheduler.add_job(self.tick, "interval", seconds=TICK_SECONDS, next_run_time=utcnow())

    def start(self) -> None:
        self._scheduler.start()

    def stop(self) -> None:
        self._scheduler.shutdown(wait=False)

    def tick(self) -> None:
        """One pass of every periodic duty; an outage skips the pass and the next tick retries.

        The leader check is inside the guard: a Redis outage must not kill the scheduler thread.
        """
        try:
            if not self._lock.held():
                return
            self.enqueue_due_pulls()
            self.sweep_stale_events()
            sweep_operations(self.runtime)
            sweep_lost_triggers(self.runtime)
            sweep_forgotten_pushes(self.runtime)
            self.enqueue_due_catalog_pulls()
            self.enqueue_due_webhook_checks()
            self.runtime.publisher.publish()  # the outbox sweep: whatever a relay left behind
            self.redact_expired_buyer_data()
            self.prune_expired_rows()
        except Exception as error:
            if is_outage(error):
                log.warning(
                    "scheduler tick skipped: a service is unreachable (%s)", type(error).__name__
                )
            else:
                log.exception("scheduler tick failed")

    def enqueue_due_pulls(self, now: datetime | None = None) -> list[int]:
        settings = self.runtime.container.settings
        now = now or utcnow()
        with self.runtime.container.uow() as uow:
            shops = [s for s in uow.shops.list(None) if s.status is ShopStatus.ACTIVE]
        per_marketplace = Counter(shop.marketplace for shop in shops)
        ids: list[int] = []
        with self.runtime.container.engine.begin() as db:
            for shop in shops:
                assert shop.id is not None
                interval = pull_interval_seconds(
                    shop.marketplace,
                    default_seconds=settings.pull_interval_seconds,
                    active_shops_of_marketplace=per_marketplace[shop.marketplace],
                    etsy_requests_per_day=settings.etsy_requests_per_day,
                    etsy_poll_share=settings.etsy_poll_share,
                )
                if due(self._last_pull.get(shop.id), now, interval):
                    ids.append(
                        add_message(
                            db, orders_in.PULL_ACTOR, orders_in.PULL_QUEUE, {"shop_id": shop.id}
                        )
                    )
                    self._last_pull[shop.id] = now
        self.runtime.publisher.publish(ids=ids)
        return ids

    def sweep_stale_events(self, older_than: timedelta | None = None) -> list[int]:
        return sweep_stale_events(self.runtime, older_than)

    def enqueue_due_catalog_pulls(self, now: datetime | None = None) -> list[int]:
        """Re-bind every active shop's listings each ``catalog_pull_interval_hours``; a shop's
        first scan waits one interval (connecting a shop or `bindings auto` scans at once)."""
        now = now or utcnow()
        interval = self.runtime.container.settings.catalog_pull_interval_hours * 3600
        with self.runtime.container.uow() as uow:
            shops = [s.id for s in uow.shops.list(None) if s.status is ShopStatus.ACTIVE]
        created: list[int] = []
        for shop_id in shops:
            assert shop_id is not None
            last = self._last_catalog.setdefault(shop_id, now)
            if due(last, now, interval) and last != now:
                operation_id = request_catalog_pull(self.runtime, shop_id, "schedule")
                self._last_catalog[shop_id] = now
                if operation_id is not None:
                    created.append(operation_id)
        return created

    def enqueue_due_webhook_checks(self, now: datetime | None = None) -> list[int]:
        """Check every active shop's webhook subscriptions each
        ``webhook_check_interval_minutes``; connecting a shop checks at once, so a shop's first
        scheduled check waits one interval."""
        now = now or utcnow()
        interval = self.runtime.container.settings.webhook_check_interval_minutes * 60
        with self.runtime.container.uow() as uow:
            shops = [s.id for s in uow.shops.list(None) if s.status is ShopStatus.ACTIVE]
        created: list[int] = []
        with self.runtime.container.engine.begin() as db:
            for shop_id in shops:
                assert shop_id is not None
                last = self._last_webhook_check.setdefault(shop_id, now)
                if due(last, now, interval) and last != now:
                    created.append(request_webhook_check(db, shop_id, "schedule"))
                    self._last_webhook_check[shop_id] = now
        if created:
            self.runtime.publisher.publish()
        return created

    def redact_expired_buyer_data(self, now: datetime | None = None) -> privacy.Redaction | None:
        """Once a day (and at start), redact buyer data past its retention; a run that left a
        backlog (``RETENTION_BUDGET``) goes on at the next tick."""
        now = now or utcnow()
        if not due(self._last_retention, now, RETENTION_INTERVAL_SECONDS):
            return None
        report = redact_expired_buyer_data(self.runtime, now)
        if report.complete:
            self._last_retention = now
        return report

    def prune_expired_rows(self, now: datetime | None = None) -> Pruning | None:
        """Hourly (and at start), delete the bookkeeping past its retention; a run that left a
        backlog (``PRUNING_BUDGET``) goes on at the next tick."""
        now = now or utcnow()
        if not due(self._last_pruning, now, PRUNING_INTERVAL_SECONDS):
            return None
        report = prune_expired_rows(
            self.runtime, now, budget=PRUNING_BUDGET, resume=self._pruning_resume
        )
        self._pruning_resume = report.resume
        if report.complete:
            self._last_pruning = now
        return report


def prune_expired_rows(
    runtime: SyncRuntime,
    now: datetime | None = None,
    *,
    budget: int | None = PRUNING_BUDGET,
    resume: dict[str, int] | None = None,
) -> Pruning:
    """Delete what ``HUB_RETENTION_*_DAYS`` say has been kept long enough."""
    container = runtime.container
    retention = Retention.from_settings(container.settings)
    report = prune(container.engine, retention, now or utcnow(), budget=budget, resume=resume)
    if report.events or report.attempts or report.outbox:
        log.info("pruning: %s", report.summary())
    return report


def redact_expired_buyer_data(
    runtime: SyncRuntime, now: datetime | None = None, *, budget: int | None = RETENTION_BUDGET
) -> privacy.Redaction:
    """Redact what ``HUB_BUYER_DATA_RETENTION_DAYS`` and ``HUB_PRIVACY_EXPORT_RETENTION_DAYS``
    say has been kept long enough."""
    container = runtime.container
    older_than, exports_older_than = privacy.retention_cutoffs(container.settings, now or utcnow())
    report = privacy.redact_expired(
        container, older_than, exports_older_than=exports_older_than, budget=budget
    )
    if any(report.as_dict().values()):
        log.info("buyer data retention: %s", report.summary())
    return report


def sweep_stale_events(runtime: SyncRuntime, older_than: timedelta | None = None) -> list[int]:
    """Re-send events still unhandled after a while: a lost message or a crashed worker."""
    settings = runtime.container.settings
    age = older_than if older_than is not None else timedelta(minutes=settings.stale_event_minutes)
    with runtime.container.engine.begin() as db:
        stale = events.stale_event_ids(db, utcnow() - age)
        ids = [events.requeue(db, event_id) for event_id in stale]
    runtime.publisher.publish(ids=ids)
    return stale


def sweep_operations(runtime: SyncRuntime, stuck_after: timedelta | None = None) -> list[int]:
    """Re-send parked operations now due and those whose message or runner was lost."""
    settings = runtime.container.settings
    age = (
        stuck_after
        if stuck_after is not None
        else timedelta(minutes=settings.stuck_operation_minutes)
    )
    ids: list[int] = []
    swept: list[int] = []
    with runtime.container.engine.begin() as db:
        for operation in ops.due_for_sweep(db, stuck_after=age):
            actor = ops.OPERATION_ACTORS.get(operation.kind)
            if actor is None:
                continue
            ops.touch(db, operation.id)
            ids.append(add_message(db, actor[0], actor[1], {"operation_id": operation.id}))
            swept.append(operation.id)
    runtime.publisher.publish(ids=ids)
    return swept


def sweep_forgotten_pushes(runtime: SyncRuntime) -> list[tuple[str, int]]:
    """Queue a push for due bindings nothing is queued to push (see ``forgotten_pushes``)."""
    with runtime.container.engine.begin() as db:
        queued = trigger_pushes(
            db,
            pushes.forgotten_pushes(),
            debounce_ms=runtime.container.settings.push_debounce_ms,
        )
    if queued:
        log.warning("due bindings had no push queued; queued again", extra={"pushes": queued})
        runtime.publisher.publish()
    return queued


def sweep_lost_triggers(runtime: SyncRuntime, grace: timedelta = timedelta(minutes=1)) -> int:
    """A trigger still queued well past its due time lost its message: send it again."""
    now = utcnow()
    ids: list[int] = []
    with runtime.container.engine.begin() as db:
        lost = db.execute(
            select(TRIGGERS.c.kind, TRIGGERS.c.shop_id).where(TRIGGERS.c.due_at < now - grace)
        ).all()
        for kind, shop_id in lost:
            db.execute(
                update(TRIGGERS)
                .where(TRIGGERS.c.kind == kind, TRIGGERS.c.shop_id == shop_id)
                .values(due_at=now)
            )
            actor, queue = trigger_actor(kind)
            payload = (
                {"shop_id": shop_id}
                if kind == PULL_TRIGGER_KIND
                else {"shop_id": shop_id, "kind": kind}
            )
            ids.append(add_message(db, actor, queue, payload))
    runtime.publisher.publish(ids=ids)
    return len(lost)
