"""Bound ids ride on every record: nested binds add and restore, threads and tasks keep their
own, an explicit ``extra`` wins, and a deferred id is looked up only when a line is written."""

from __future__ import annotations

import asyncio
import io
import logging
import threading
from collections.abc import Iterator

import orjson
import pytest

from hub.infrastructure import log_context
from hub.infrastructure.logs import JsonFormatter


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    log_context.install(handler)
    log_context.install(handler)  # once only
    assert sum(isinstance(f, log_context.ContextFilter) for f in handler.filters) == 1
    logger = logging.getLogger("tests.log_context")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield stream
    logger.removeHandler(handler)


def documents(stream: io.StringIO) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


def test_bound_ids_are_on_every_line_and_restored_after(lines: io.StringIO) -> None:
    log = logging.getLogger("tests.log_context")
    with log_context.bind(shop_id=3, job_id=None):
        log.info("outer")
        with log_context.bind(job_id=41, event_id=7):
            log.info("inner")
            assert log_context.current() == {"shop_id": 3, "job_id": 41, "event_id": 7}
        log.info("outer again")
    log.info("outside")
    outer, inner, again, outside = documents(lines)
    assert (outer["shop_id"], "job_id" in outer) == (3, False)  # None is not bound
    assert (inner["shop_id"], inner["job_id"], inner["event_id"]) == (3, 41, 7)
    assert "job_id" not in again
    assert not {"shop_id", "job_id", "event_id"} & set(outside)


def test_an_explicit_extra_wins(lines: io.StringIO) -> None:
    with log_context.bind(shop_id=3):
        logging.getLogger("tests.log_context").info("x", extra={"shop_id": 9})
    assert documents(lines)[0]["shop_id"] == 9


def test_threads_and_tasks_keep_their_own_ids(lines: io.StringIO) -> None:
    log = logging.getLogger("tests.log_context")
    ready = threading.Barrier(2)

    def work(job_id: int) -> None:
        with log_context.bind(job_id=job_id):
            ready.wait()
            log.info("thread")

    threads = [threading.Thread(target=work, args=(n,)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    async def task(event_id: int) -> None:
        with log_context.bind(event_id=event_id):
            await asyncio.sleep(0)
            log.info("task")

    async def both() -> None:
        await asyncio.gather(task(10), task(20))

    asyncio.run(both())
    found = documents(lines)
    assert sorted(d["job_id"] for d in found if d["message"] == "thread") == [1, 2]
    assert sorted(d["event_id"] for d in found if d["message"] == "task") == [10, 20]


def test_a_deferred_id_is_found_once_and_only_when_a_line_is_written(lines: io.StringIO) -> None:
    calls: list[int] = []

    def find() -> int:
        calls.append(1)
        return 5

    log = logging.getLogger("tests.log_context")
    with log_context.bind(shop_id=log_context.Deferred(find)):
        log.debug("below the level: no record, no lookup")
        assert calls == []
        log.info("one")
        log.info("two")
    assert calls == [1]
    assert [d["shop_id"] for d in documents(lines)] == [5, 5]


def test_a_failing_lookup_leaves_the_id_out(lines: io.StringIO) -> None:
    def broken() -> int:
        raise RuntimeError("database away")

    with log_context.bind(shop_id=log_context.Deferred(broken), job_id=4):
        logging.getLogger("tests.log_context").info("still logged")
    (document,) = documents(lines)
    assert document["job_id"] == 4
    assert "shop_id" not in document


def test_configure_logging_installs_the_filter() -> None:
    from hub.infrastructure.logs import configure_logging

    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    try:
        configure_logging("INFO")
        assert any(
            isinstance(f, log_context.ContextFilter) for h in root.handlers for f in h.filters
        )
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
