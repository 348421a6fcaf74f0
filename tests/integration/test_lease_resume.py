"""A message retried after its run failed mid-operation takes its own lease back at once.

Seen under the fault test: PostgreSQL was cut after an image push had claimed its operation;
the retried message then found the operation "running elsewhere", dropped itself, and the
operation sat under its five-minute lease with the listing's images unpushed. Runs on SQLite
and on PostgreSQL.
"""

from __future__ import annotations

import contextvars
import itertools
from collections.abc import Iterator
from typing import Any

import dramatiq
import psycopg
import pytest
from dramatiq.broker import MessageProxy
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import Connection

from hub.bootstrap import Container
from hub.infrastructure.outbound import STOCK_BATCH_ACTOR, STOCK_QUEUE, request_operation
from sync.domain.policies import STOCK_BATCH
from sync.infrastructure import leases
from sync.infrastructure import operations as ops
from sync.worker.broker import OutageRetries, middleware

LEASE_SECONDS = 600.0  # far longer than any test: only the token can take it back
QUEUE = "lease-resume"
keys = itertools.count()


def new_operation(db: Connection) -> int:
    operation_id = request_operation(
        db,
        kind=STOCK_BATCH,
        shop_id=None,
        key=f"lease-resume-{next(keys)}",
        payload={},
        actor=STOCK_BATCH_ACTOR,
        queue=STOCK_QUEUE,
    )
    assert operation_id is not None
    return operation_id


def claim_in_scope(
    container: Container, operation_id: int, carried: dict[str, str] | None
) -> tuple[ops.Operation | None, dict[str, str]]:
    """One message's run: open its scope, claim, and report what the run would carry on."""
    leases.open_scope(carried)
    with container.engine.begin() as db:
        claimed = ops.claim(db, operation_id, lease_seconds=LEASE_SECONDS)
    return claimed, leases.taken()


def test_only_the_retry_of_the_holding_run_takes_a_live_lease(container: Container) -> None:
    with container.engine.begin() as db:
        operation_id = new_operation(db)
    first, held = claim_in_scope(container, operation_id, None)
    assert first is not None
    assert set(held) == {str(operation_id)}

    duplicate, _ = claim_in_scope(container, operation_id, None)
    assert duplicate is None  # another delivery of the message: the lease is someone's

    resumed, held_again = claim_in_scope(container, operation_id, held)
    assert resumed is not None
    assert resumed.status == ops.RUNNING
    assert held_again[str(operation_id)] != held[str(operation_id)]  # a fresh token per claim

    stale, _ = claim_in_scope(container, operation_id, held)
    assert stale is None  # the first run's token died when the retry claimed


def test_a_finished_operation_is_never_taken_back(container: Container) -> None:
    with container.engine.begin() as db:
        operation_id = new_operation(db)
    _, held = claim_in_scope(container, operation_id, None)
    with container.engine.begin() as db:
        ops.finish(db, operation_id, ops.SUCCEEDED)
    again, _ = claim_in_scope(container, operation_id, held)
    assert again is None


@pytest.fixture
def stub_broker(container: Container) -> Iterator[StubBroker]:
    settings = container.settings.model_copy(update={"outage_retry_seconds": 0.05})
    broker = StubBroker(middleware=middleware(settings))
    broker.declare_queue(QUEUE)
    yield broker
    broker.close()


@pytest.mark.parametrize(
    "failure",
    [psycopg.OperationalError("server closed the connection"), KeyError("a bug")],
    ids=["outage", "crash"],
)
def test_a_run_that_fails_after_claiming_is_finished_by_its_retry(
    container: Container, stub_broker: StubBroker, failure: Exception
) -> None:
    """Through the worker's own middleware: the retried message carries the lease."""
    runs: list[dict[str, str]] = []

    def push(operation_id: int) -> None:
        with container.engine.begin() as db:
            claimed = ops.claim(db, operation_id, lease_seconds=LEASE_SECONDS)
        runs.append(dict(leases.taken()))
        if claimed is None:
            return
        if len(runs) == 1:
            raise failure
        with container.engine.begin() as db:
            ops.finish(db, operation_id, ops.SUCCEEDED)

    actor = dramatiq.actor(
        push, actor_name="lease_resume_push", queue_name=QUEUE, broker=stub_broker, min_backoff=10
    )
    with container.engine.begin() as db:
        operation_id = new_operation(db)
    worker = dramatiq.Worker(stub_broker, worker_timeout=50)
    worker.start()
    try:
        actor.send(operation_id)
        stub_broker.join(QUEUE, timeout=10_000)
        worker.join()
    finally:
        worker.stop()
    with container.engine.connect() as db:
        finished = ops.get(db, operation_id)
    assert finished is not None
    assert finished.status == ops.SUCCEEDED
    assert len(runs) == 2
    assert stub_broker.dead_letters == []


class BrokerAway(StubBroker):
    """RabbitMQ refusing the retry: every send fails as dramatiq reports it."""

    def enqueue(self, message: Any, *, delay: int | None = None) -> Any:
        raise dramatiq.errors.ConnectionClosed(ConnectionRefusedError(111, "refused"))


@pytest.mark.parametrize(
    "failure",
    [dramatiq.errors.ConnectionClosed(ConnectionResetError()), KeyError("a bug")],
    ids=["outage", "crash"],
)
def test_a_retry_the_broker_cannot_take_lets_go_of_the_lease_for_the_redelivery(
    container: Container, failure: Exception
) -> None:
    """RabbitMQ redelivers the original message, which carries no token: it must find the
    operation queued, not running under a lease nobody will come back for."""
    broker = BrokerAway(middleware=middleware(container.settings))
    broker.declare_queue(QUEUE)
    dramatiq.actor(lambda: None, actor_name="lease_resume_noop", queue_name=QUEUE, broker=broker)
    with container.engine.begin() as db:
        operation_id = new_operation(db)
    [retries] = [m for m in broker.middleware if isinstance(m, OutageRetries)]
    message = MessageProxy(
        dramatiq.Message(
            queue_name=QUEUE, actor_name="lease_resume_noop", args=(), kwargs={}, options={}
        )
    )
    retries.before_process_message(broker, message)
    with container.engine.begin() as db:
        assert ops.claim(db, operation_id, lease_seconds=LEASE_SECONDS) is not None
    retries.after_process_message(broker, message, exception=failure)
    broker.close()

    with container.engine.connect() as db:
        released = ops.get(db, operation_id)
    assert released is not None
    assert released.status == ops.QUEUED
    redelivered, _ = claim_in_scope(container, operation_id, None)
    assert redelivered is not None


def test_letting_go_leaves_a_lease_another_claim_took_since(container: Container) -> None:
    with container.engine.begin() as db:
        operation_id = new_operation(db)
    first_run = contextvars.copy_context()

    def claim_expired_at_once() -> None:
        leases.open_scope(None)
        with container.engine.begin() as db:
            assert ops.claim(db, operation_id, lease_seconds=-1) is not None

    first_run.run(claim_expired_at_once)
    later, _ = claim_in_scope(container, operation_id, None)  # the lease ran out: taken anew
    assert later is not None
    assert first_run.run(ops.release_taken) == []
    with container.engine.connect() as db:
        still = ops.get(db, operation_id)
    assert still is not None
    assert still.status == ops.RUNNING
