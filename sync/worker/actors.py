"""Thin actors: ids in, one use case, errors mapped. Declared by a function on a given broker,
so importing this module has no side effects and embedded mode never touches RabbitMQ."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import dramatiq
from dramatiq.broker import Broker
from dramatiq.middleware import CurrentMessage
from sqlalchemy import Engine, select

from hub.infrastructure import log_context
from hub.infrastructure.db import read_only
from hub.infrastructure.outbound import OPERATIONS
from hub.settings import Settings
from sync.application import (
    catalog_jobs,
    fulfillment_out,
    images_out,
    operations_run,
    orders_in,
    stock_out,
    webhook_checks,
)
from sync.infrastructure.events import EVENTS
from sync.worker.broker import queue_name
from sync.worker.runtime import SyncRuntime

SECOND_MS = 1000
MINUTE_MS = 60 * SECOND_MS
DAY_MS = 24 * 60 * MINUTE_MS


def declare_actors(
    broker: Broker, settings: Settings, runtime: Callable[[], SyncRuntime]
) -> dict[str, dramatiq.Actor[Any, Any]]:
    """Every actor with its own time limit, age limit and retry ceiling."""

    def inbound_process(event_id: int) -> None:
        wait = orders_in.process_event(runtime(), event_id)
        if wait is not None:
            runtime().send(
                "inbound.process", "webhooks", {"event_id": event_id}, delay_seconds=wait.seconds
            )

    def orders_pull(
        shop_id: int,
        page_cursor: str | None = None,
        since: str | None = None,
        scan_high: str | None = None,
    ) -> None:
        orders_in.pull_orders(
            runtime(), shop_id, page_cursor=page_cursor, since=since, scan_high=scan_high
        )

    def orders_import_one(shop_id: int, external_id: str) -> None:
        wait = orders_in.import_one_order(runtime(), shop_id, external_id)
        if wait is not None:
            runtime().send(
                orders_in.IMPORT_ONE_ACTOR,
                orders_in.PULL_QUEUE,
                {"shop_id": shop_id, "external_id": external_id},
                delay_seconds=wait.seconds,
            )

    def stock_push(shop_id: int, kind: str) -> None:
        stock_out.push_due(runtime(), shop_id, kind)

    def stock_push_batch(operation_id: int) -> None:
        stock_out.push_batch(runtime(), operation_id)

    def fulfillment_push(operation_id: int) -> None:
        fulfillment_out.push_fulfillment(runtime(), operation_id)

    def catalog_pull(operation_id: int) -> None:
        catalog_jobs.run_catalog_pull(runtime(), operation_id)

    def shops_check_webhooks(operation_id: int) -> None:
        webhook_checks.run_webhook_check(runtime(), operation_id)

    def images_render(operation_id: int) -> None:
        images_out.render(runtime(), operation_id)

    def images_push(shop_id: int, kind: str) -> None:
        images_out.push_due(runtime(), shop_id, kind)

    def images_push_listing(operation_id: int) -> None:
        images_out.push_listing(runtime(), operation_id)

    def operation_failed(operation_id: int) -> None:
        operations_run.announce_failure(runtime(), operation_id)

    definitions: list[tuple[Callable[..., None], str, str, int, int]] = [
        # (function, actor name, queue, time limit ms, max age ms)
        (inbound_process, "inbound.process", "webhooks", 2 * MINUTE_MS, 24 * 60 * MINUTE_MS),
        (orders_pull, orders_in.PULL_ACTOR, orders_in.PULL_QUEUE, 10 * MINUTE_MS, 60 * MINUTE_MS),
        (
            orders_import_one,
            orders_in.IMPORT_ONE_ACTOR,
            orders_in.PULL_QUEUE,
            2 * MINUTE_MS,
            24 * 60 * MINUTE_MS,
        ),
        # Outbound: operations carry their own budgets; max_age only drops long-lost messages
        # (the sweeps re-send from the database whatever is still due).
        (stock_push, "stock.push", "stock", 5 * MINUTE_MS, 24 * 60 * MINUTE_MS),
        (stock_push_batch, stock_out.BATCH_ACTOR, "stock", 2 * MINUTE_MS, 24 * 60 * MINUTE_MS),
        (
            fulfillment_push,
            "fulfillment.push",
            "fulfillment",
            2 * MINUTE_MS,
            7 * 24 * 60 * MINUTE_MS,
        ),
        (catalog_pull, catalog_jobs.CATALOG_ACTOR, "catalog", 15 * MINUTE_MS, 24 * 60 * MINUTE_MS),
        (
            shops_check_webhooks,
            webhook_checks.ROUTE.actor,
            webhook_checks.ROUTE.queue,
            5 * MINUTE_MS,
            DAY_MS,
        ),
        # Images on a queue of their own: image workers (`hub worker --queue images`) scale
        # apart, and a slow 12,000 px render never delays an order.
        (images_render, "images.render", "images", 10 * MINUTE_MS, 24 * 60 * MINUTE_MS),
        (images_push, "images.push", "images", 5 * MINUTE_MS, 24 * 60 * MINUTE_MS),
        (images_push_listing, "images.push_listing", "images", 5 * MINUTE_MS, DAY_MS),
        (
            operation_failed,
            operations_run.FAILED_ACTOR,
            "maintenance",
            MINUTE_MS,
            24 * 60 * MINUTE_MS,
        ),
    ]
    declared: dict[str, dramatiq.Actor[Any, Any]] = {}
    for function, name, queue, time_limit, max_age in definitions:
        decorate = dramatiq.actor(
            actor_name=name,
            queue_name=queue_name(settings, queue),
            broker=broker,
            time_limit=time_limit,
            max_age=max_age,
            max_retries=3,
        )
        declared[name] = decorate(logged(function, name, runtime))
    return declared


def logged(
    function: Callable[..., None], actor: str, runtime: Callable[[], SyncRuntime]
) -> Callable[..., None]:
    """``function`` with its message's ids bound for every line it logs: ``job_id`` (an
    operation id), ``event_id``, ``shop_id`` (given, else the job's or event's own, read only
    when a line is written), the actor and the broker message id (the outbox row id)."""
    signature = inspect.signature(function)

    @functools.wraps(function)
    def run(*args: Any, **kwargs: Any) -> None:
        given = signature.bind_partial(*args, **kwargs).arguments
        job_id, event_id = given.get("operation_id"), given.get("event_id")
        shop_id = given.get("shop_id")
        if shop_id is None and (job_id is not None or event_id is not None):
            engine = runtime().container.engine
            shop_id = log_context.Deferred(lambda: shop_of(engine, job_id, event_id))
        message = CurrentMessage.get_current_message()
        with log_context.bind(
            shop_id=shop_id,
            job_id=job_id,
            event_id=event_id,
            actor=actor,
            message_id=message.message_id if message is not None else None,
        ):
            function(*args, **kwargs)

    return run


def shop_of(engine: Engine, operation_id: int | None, event_id: int | None) -> int | None:
    """The shop an operation or a stored event belongs to (None: none, or not found)."""
    table, row_id = (OPERATIONS, operation_id) if operation_id is not None else (EVENTS, event_id)
    with read_only(engine).connect() as db:
        found: int | None = db.execute(
            select(table.c.shop_id).where(table.c.id == row_id)
        ).scalar_one_or_none()
    return found
