"""Work failed by our own outage waits and retries without spending its retry count."""

from __future__ import annotations

import time
from collections.abc import Iterator

import dramatiq
import psycopg
import pytest
from dramatiq.broker import MessageProxy
from dramatiq.brokers.stub import StubBroker
from redis.exceptions import ConnectionError as RedisConnectionError

from hub.settings import Settings
from sync.worker.broker import OutageRetries, middleware

QUEUE = "outage-test"


@pytest.fixture
def broker() -> Iterator[StubBroker]:
    built = StubBroker()
    built.declare_queue(QUEUE)
    dramatiq.actor(lambda: None, actor_name="noop", queue_name=QUEUE, broker=built)
    yield built
    built.close()


def retries() -> OutageRetries:
    return OutageRetries(outage_retry_seconds=2.5, max_retries=3, min_backoff=1000)


def message() -> MessageProxy:
    return MessageProxy(
        dramatiq.Message(
            queue_name=QUEUE, actor_name="noop", args=(), kwargs={}, options={"retries": 1}
        )
    )


def delayed(broker: StubBroker) -> list[dramatiq.Message[None]]:
    queue = broker.queues[f"{QUEUE}.DQ"]
    found = []
    while not queue.empty():
        found.append(dramatiq.Message.decode(queue.get_nowait()))
    return found


@pytest.mark.parametrize(
    "outage",
    [
        psycopg.OperationalError("connection refused"),
        RedisConnectionError("Connection refused"),
        ConnectionResetError("reset by peer"),
    ],
    ids=["postgresql", "redis", "socket"],
)
def test_an_outage_requeues_with_the_outage_wait_and_keeps_the_count(
    broker: StubBroker, outage: Exception
) -> None:
    sent = message()
    before_ms = int(time.time() * 1000)
    retries().after_process_message(broker, sent, exception=outage)
    [again] = delayed(broker)
    assert before_ms + 2500 <= again.options["eta"] <= time.time() * 1000 + 2500
    assert again.options["retries"] == 1  # untouched: the work did nothing wrong
    assert not sent.failed


def test_a_real_error_spends_a_retry(broker: StubBroker) -> None:
    sent = message()
    retries().after_process_message(broker, sent, exception=ValueError("bad payload"))
    [again] = delayed(broker)
    assert again.options["retries"] == 2


def test_a_real_error_past_the_ceiling_fails(broker: StubBroker) -> None:
    sent = message()
    sent.options["retries"] = 3
    retries().after_process_message(broker, sent, exception=ValueError("bad payload"))
    assert delayed(broker) == []
    assert sent.failed


def test_an_outage_past_the_ceiling_still_waits(broker: StubBroker) -> None:
    sent = message()
    sent.options["retries"] = 3
    retries().after_process_message(broker, sent, exception=psycopg.OperationalError("gone"))
    assert len(delayed(broker)) == 1
    assert not sent.failed


def test_the_worker_uses_the_configured_outage_wait() -> None:
    [found] = [
        m for m in middleware(Settings(outage_retry_seconds=7)) if isinstance(m, OutageRetries)
    ]
    assert found.outage_delay_ms == 7000
