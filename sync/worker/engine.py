"""One process's sync engine: broker, actors, runtime, relay and (optionally) the scheduler."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import dramatiq

from hub.bootstrap import Container, bootstrap
from hub.settings import Settings
from sync.infrastructure.outbox import Relay, listener
from sync.worker.actors import declare_actors
from sync.worker.broker import build_broker, queue_name, sender
from sync.worker.runtime import SyncRuntime, build_limiter
from sync.worker.scheduler import (
    Scheduler,
    sweep_lost_triggers,
    sweep_operations,
    sweep_stale_events,
)


class SyncEngine:
    def __init__(self, settings: Settings | None = None, container: Container | None = None):
        self.settings = settings or (container.settings if container else Settings())
        self.broker = build_broker(self.settings)  # before any actor is declared
        self.container = container or bootstrap(self.settings)
        self.runtime = SyncRuntime(
            self.container, build_limiter(self.container), sender(self.broker, self.settings)
        )
        self.actors = declare_actors(self.broker, self.settings, lambda: self.runtime)
        self.worker: dramatiq.Worker | None = None
        self.relay: Relay | None = None
        self.scheduler: Scheduler | None = None

    def start_worker(self, threads: int | None = None, queues: Sequence[str] | None = None) -> None:
        """Consume every queue, or only ``queues`` (names without the prefix), e.g. a pool of
        image workers apart from the rest."""
        self.worker = dramatiq.Worker(
            self.broker,
            worker_threads=threads or self.settings.worker_threads,
            worker_timeout=self.settings.worker_poll_ms,
            queues={queue_name(self.settings, queue) for queue in queues} if queues else None,
        )
        self.worker.start()

    def start_relay(self) -> None:
        wait = listener(
            self.container.engine,
            self.settings.db_schema,
            connect_timeout=self.settings.db_connect_timeout_seconds,
        )
        self.relay = Relay(
            self.runtime.publisher,
            wait_for_work=wait,
            poll_seconds=self.settings.outbox_poll_ms / 1000,
            threads=self.settings.relay_threads if self.settings.broker_url else 1,
        )
        self.relay.start()

    def start_scheduler(self) -> None:
        self.scheduler = Scheduler(self.runtime)
        self.scheduler.start()

    def recover(self) -> list[int]:
        """After a restart: re-send every unhandled event and queued operation (an in-memory
        broker lost their messages)."""
        sweep_operations(self.runtime, stuck_after=timedelta(0))
        sweep_lost_triggers(self.runtime, grace=timedelta(0))
        return sweep_stale_events(self.runtime, older_than=timedelta(0))

    def stop(self) -> None:
        if self.scheduler is not None:
            self.scheduler.stop()
        if self.relay is not None:
            self.relay.stop()
        if self.worker is not None:
            self.worker.stop()
        self.runtime.close()
        self.broker.close()
