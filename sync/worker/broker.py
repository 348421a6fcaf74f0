"""The broker: RabbitMQ with publisher confirms in production, Dramatiq's StubBroker embedded.

Built by a function (never at import time) and set as Dramatiq's global broker before any actor
is declared, so embedded mode can never quietly try RabbitMQ.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import dramatiq
from dramatiq.broker import Broker, MessageProxy
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    CurrentMessage,
    Middleware,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

from hub.infrastructure.outages import is_outage
from hub.settings import Settings
from sync.infrastructure import leases
from sync.infrastructure import operations as ops
from sync.infrastructure.outbox import OutboxMessage

log = logging.getLogger(__name__)

QUEUES = ("webhooks", "orders", "catalog", "stock", "images", "fulfillment", "maintenance")
RETRY_CEILING = 5  # budgets live in the database; Dramatiq's count is only a ceiling above them
HELD_LEASES = "held_leases"  # message option: {operation id: lease token} an earlier run took


class OutageRetries(Retries):
    """Retries that do not count our own outages against the work.

    While PostgreSQL, Redis or RabbitMQ is away every message fails within milliseconds, and
    Dramatiq's count would dead-letter a whole backlog in seconds although nothing is wrong
    with the work itself. A failure classified as an outage puts the message back after
    ``HUB_OUTAGE_RETRY_SECONDS`` with its count untouched; any other failure counts as before.
    Only the first message of an outage is logged with its reason, so a long outage does not
    flood the logs.

    Every retried message (outage or not) carries the leases its run took (``HELD_LEASES``),
    so the retry takes its operation back at once rather than finding it "running elsewhere"
    until the lease runs out (``sync.infrastructure.leases``).
    """

    def __init__(self, *, outage_retry_seconds: float, **options: Any) -> None:
        super().__init__(**options)
        self.outage_delay_ms = max(1, int(outage_retry_seconds * 1000))
        self._reported = threading.Event()

    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:
        leases.open_scope(message.options.get(HELD_LEASES))

    def after_process_message(
        self,
        broker: Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        if exception is None:
            self._reported.clear()
            return
        held = leases.taken()
        if held:
            message.options[HELD_LEASES] = held
        try:
            self._send_again(broker, message, exception)
        except dramatiq.errors.BrokerConnectionError:
            # The broker is away as well: no retry can be sent, and the message is about to be
            # acknowledged on a dead channel, so RabbitMQ redelivers the original, which carries
            # no lease token. Let go of the leases in the database for it to take them.
            self._release_for_redelivery()

    def _send_again(self, broker: Broker, message: MessageProxy, exception: BaseException) -> None:
        if not is_outage(exception):
            super().after_process_message(  # type: ignore[no-untyped-call]
                broker, message, exception=exception
            )
            return
        if not self._reported.is_set():
            self._reported.set()
            log.warning(
                "work put back: a service is unreachable (%s); retrying every %.1f s",
                type(exception).__name__,
                self.outage_delay_ms / 1000,
            )
        # As Retries itself does: the proxy forwards everything to the message it wraps.
        broker.enqueue(message, delay=self.outage_delay_ms)  # type: ignore[arg-type]

    @staticmethod
    def _release_for_redelivery() -> None:
        try:
            released = ops.release_taken()
        except Exception as error:  # the database too: the leases run out and the sweep resends
            log.warning(
                "retry not sent and leases not released (%s); the operations wait for their leases",
                type(error).__name__,
            )
            return
        log.warning(
            "retry not sent: the broker is away; RabbitMQ redelivers the message",
            extra={"released_operations": released},
        )


def middleware(settings: Settings) -> list[Middleware]:
    """Explicit and ordered; each line says why it is here."""
    return [
        # Drop a message older than its actor's max_age: a stale pull is replaced by the next.
        AgeLimit(),
        # Stop a run past its actor's time_limit; HTTP timeouts are set well below it.
        TimeLimit(),
        # Let long runs notice a worker shutdown and stop between pages.
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        # A ceiling for crashes only: waits are new messages, never Retry (which counts here).
        # Outages (database, cache, broker) wait and retry without spending the count.
        OutageRetries(
            outage_retry_seconds=settings.outage_retry_seconds,
            max_retries=RETRY_CEILING,
            min_backoff=1_000,
            max_backoff=60_000,
        ),
        # Actors can read their message id (the outbox row id) for logs.
        CurrentMessage(),
    ]


def build_broker(settings: Settings) -> Broker:
    broker: Broker
    if settings.broker_url:
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        broker = RabbitmqBroker(
            url=settings.broker_url, confirm_delivery=True, middleware=middleware(settings)
        )
    else:
        broker = StubBroker(middleware=middleware(settings))
    for queue in QUEUES:
        broker.declare_queue(queue_name(settings, queue))
    dramatiq.set_broker(broker)
    return broker


def queue_name(settings: Settings, queue: str) -> str:
    return f"{settings.broker_queue_prefix}{queue}"


def sender(broker: Broker, settings: Settings) -> Callable[[OutboxMessage], None]:
    """The outbox's hand-off: one outbox row becomes one broker message with the row's id."""

    def send(message: OutboxMessage) -> None:
        broker.enqueue(
            dramatiq.Message(
                queue_name=queue_name(settings, message.queue),
                actor_name=message.actor,
                args=(),
                kwargs=message.payload,
                options={"outbox_id": message.id},
                message_id=str(message.id),  # the outbox row id: one name in logs and tables
                message_timestamp=int(time.time() * 1000),
            ),
            delay=message.delay_ms or None,
        )

    return send
