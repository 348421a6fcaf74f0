"""The broker: RabbitMQ with publisher confirms in production, Dramatiq's StubBroker embedded.

Built by a function (never at import time) and set as Dramatiq's global broker before any actor
is declared, so embedded mode can never quietly try RabbitMQ.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import dramatiq
from dramatiq.broker import Broker
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

from hub.settings import Settings
from sync.infrastructure.outbox import OutboxMessage

QUEUES = ("webhooks", "orders", "catalog", "stock", "images", "fulfillment", "maintenance")
RETRY_CEILING = 5  # budgets live in the database; Dramatiq's count is only a ceiling above them


def middleware() -> list[Middleware]:
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
        Retries(max_retries=RETRY_CEILING, min_backoff=1_000, max_backoff=60_000),
        # Actors can read their message id (the outbox row id) for logs.
        CurrentMessage(),
    ]


def build_broker(settings: Settings) -> Broker:
    broker: Broker
    if settings.broker_url:
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        broker = RabbitmqBroker(
            url=settings.broker_url, confirm_delivery=True, middleware=middleware()
        )
    else:
        broker = StubBroker(middleware=middleware())
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
