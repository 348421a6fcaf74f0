"""A line logged inside an actor carries the ids of what it works on: the job (operation) and
its shop, the event and its shop, the shop of a pull; plus the actor and the broker message id.
Run through the broker and a worker thread, as in production."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import dramatiq
import orjson
import pytest

from connectors.ratelimit import InProcessRateLimiter
from hub.bootstrap import Container
from hub.infrastructure import log_context
from hub.infrastructure.clock import utcnow
from hub.infrastructure.logs import JsonFormatter
from sync.application import fulfillment_out, orders_in
from sync.worker.actors import declare_actors
from sync.worker.broker import build_broker, queue_name
from sync.worker.runtime import SyncRuntime
from tests.integration.sync_seed import SyncSeed

log = logging.getLogger("tests.actor_logs")


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    log_context.install(handler)
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    yield stream
    log.removeHandler(handler)


def documents(stream: io.StringIO) -> dict[str, dict[str, Any]]:
    found = [orjson.loads(line) for line in stream.getvalue().splitlines()]
    return {document["message"]: document for document in found}


def test_lines_logged_in_actors_carry_the_ids(
    container: Container, lines: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed = SyncSeed(container)
    now = utcnow()
    job = seed.operation("fulfillment.push", "queued", now, seed.shop_a)
    event = seed.event("received", now - timedelta(seconds=1), None, seed.shop_b)

    def push_fulfillment(_runtime: SyncRuntime, operation_id: int) -> None:
        log.info("pushing tracking")

    def process_event(_runtime: SyncRuntime, event_id: int) -> None:
        log.info("handling event")

    def pull_orders(_runtime: SyncRuntime, shop_id: int, **_: Any) -> None:
        log.info("pulling orders")

    monkeypatch.setattr(fulfillment_out, "push_fulfillment", push_fulfillment)
    monkeypatch.setattr(orders_in, "process_event", process_event)
    monkeypatch.setattr(orders_in, "pull_orders", pull_orders)

    settings = container.settings.model_copy(update={"broker_url": None})
    broker = build_broker(settings)
    runtime = SyncRuntime(container, InProcessRateLimiter(), lambda message: None)
    actors = declare_actors(broker, settings, lambda: runtime)
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=50)
    worker.start()
    try:
        sent = {
            "fulfillment": actors["fulfillment.push"].send(operation_id=job),
            "webhooks": actors["inbound.process"].send(event_id=event),
            "orders": actors[orders_in.PULL_ACTOR].send(shop_id=seed.shop_b),
        }
        for queue in sent:
            broker.join(queue_name(settings, queue), fail_fast=True)  # type: ignore[attr-defined]
        worker.join()
    finally:
        worker.stop()
        broker.close()

    found = documents(lines)
    pushing = found["pushing tracking"]
    assert (pushing["job_id"], pushing["shop_id"]) == (job, seed.shop_a)
    assert pushing["actor"] == "fulfillment.push"
    assert pushing["message_id"] == sent["fulfillment"].message_id
    assert "event_id" not in pushing
    handling = found["handling event"]
    assert (handling["event_id"], handling["shop_id"]) == (event, seed.shop_b)
    assert "job_id" not in handling
    pulling = found["pulling orders"]
    assert pulling["shop_id"] == seed.shop_b
    assert pulling["actor"] == orders_in.PULL_ACTOR
    log.info("after the actors")
    assert not {"job_id", "shop_id", "event_id"} & set(documents(lines)["after the actors"])


def test_a_job_without_a_shop_binds_none(container: Container, lines: io.StringIO) -> None:
    from sync.worker.actors import logged

    seed = SyncSeed(container)
    job = seed.operation("privacy.export", "queued", utcnow(), None)
    runtime = SyncRuntime(container, InProcessRateLimiter(), lambda message: None)

    def run(operation_id: int) -> None:
        log.info("exporting")

    logged(run, "privacy.export", lambda: runtime)(job)  # positional, as a direct call
    document = documents(lines)["exporting"]
    assert document["job_id"] == job
    assert "shop_id" not in document
