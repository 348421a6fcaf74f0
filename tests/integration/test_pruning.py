"""Pruning on both backends: handled and rejected events, finished jobs' attempts and published
outbox rows past their retention go, in batches; unhandled events, unfinished jobs' attempts and
unpublished messages stay whatever their age. The scheduler's hourly job and `hub prune`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import typer
from sqlalchemy import event, select
from typer.testing import CliRunner

from cli.prune import prune_command
from connectors.ratelimit import InProcessRateLimiter
from hub.bootstrap import Container
from hub.infrastructure.clock import utcnow
from hub.infrastructure.outbound import OUTBOX
from hub.settings import Settings
from sync.application.retention import Retention, prune
from sync.infrastructure.events import EVENTS
from sync.infrastructure.operations import ATTEMPTS
from sync.worker import scheduler as scheduler_module
from sync.worker.runtime import SyncRuntime
from sync.worker.scheduler import Scheduler
from tests.conftest import Backend
from tests.integration.sync_seed import SyncSeed

DAY = timedelta(days=1)


class Seeded:
    """Rows on both sides of the default cutoffs (events and attempts 30 days, outbox 7)."""

    def __init__(self, container: Container, now: datetime) -> None:
        seed = self.seed = SyncSeed(container)
        old, recent = now - 40 * DAY, now - DAY
        a = seed.shop_a
        # Events (received_at order is what the index walks; ids do not matter here)
        self.events_gone = [
            seed.event("handled", old, old + timedelta(seconds=2), a) for _ in "abc"
        ]
        self.events_gone += [seed.event("rejected", old) for _ in "ab"]
        self.events_kept = [
            seed.event("handled", old, recent, a),  # replayed lately: handled after the cutoff
            seed.event("handled", recent, recent, a),
            seed.event("rejected", recent),
            seed.event("received", old, None, a),  # never handled: never pruned
        ]
        # Attempts, written in time order like real ones (ids grow with time)
        done = seed.operation("stock.batch", "succeeded", old, a)
        failed = seed.operation("fulfillment.push", "failed", old, a)
        superseded = seed.operation("stock.batch", "superseded", old, a)
        queued = seed.operation("stock.batch", "queued", old, a)
        running = seed.operation("fulfillment.push", "running", old, a)
        self.attempts_gone: list[int] = []
        self.attempts_kept: list[int] = []
        for operation, gone in (
            (done, True),
            (done, True),
            (queued, False),
            (failed, True),
            (done, True),
            (running, False),
            (superseded, True),
            (queued, False),
        ):
            (self.attempts_gone if gone else self.attempts_kept).append(
                seed.attempt(operation, old)
            )
        self.attempts_kept.append(seed.attempt(done, recent))
        # Outbox, in time order
        week_old = now - 10 * DAY
        self.outbox_gone = [seed.outbox(week_old, week_old + timedelta(seconds=1)) for _ in "abcde"]
        self.outbox_kept = [
            seed.outbox(week_old),  # never published: the relay still owes it
            seed.outbox(week_old, recent),  # published after the cutoff
            seed.outbox(recent, recent),
            seed.outbox(now, None),
        ]

    def remaining(self, table: Any) -> list[int]:
        with self.seed.container.engine.connect() as db:
            return sorted(db.execute(select(table.c.id)).scalars())

    def assert_pruned(self) -> None:
        assert self.remaining(EVENTS) == sorted(self.events_kept)
        assert self.remaining(ATTEMPTS) == sorted(self.attempts_kept)
        assert self.remaining(OUTBOX) == sorted(self.outbox_kept)


class DeleteSizes:
    """The rows each DELETE statement removed."""

    def __init__(self, container: Container) -> None:
        self.sizes: list[int] = []
        self._engine = container.engine

    def _seen(self, _conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("DELETE"):
            self.sizes.append(cursor.rowcount)

    def __enter__(self) -> DeleteSizes:
        event.listen(self._engine, "after_cursor_execute", self._seen)
        return self

    def __exit__(self, *_exc: object) -> None:
        event.remove(self._engine, "after_cursor_execute", self._seen)


def test_prune_deletes_only_what_is_past_retention_and_finished(container: Container) -> None:
    now = utcnow()
    seeded = Seeded(container, now)
    with DeleteSizes(container) as deletes:
        report = prune(container.engine, Retention(), now, batch=2)
    assert report.as_dict() == {"events": 5, "attempts": 5, "outbox": 5, "complete": True}
    seeded.assert_pruned()
    assert deletes.sizes
    assert max(deletes.sizes) <= 2  # never more than a batch per statement
    again = prune(container.engine, Retention(), now, batch=2)
    assert (again.events, again.attempts, again.outbox) == (0, 0, 0)


def test_a_budget_stops_a_run_and_the_next_goes_on(container: Container) -> None:
    """Old rows that must stay (a queued job's attempts, an unpublished message) come first in
    the walk: a bounded run that stops says where, and the next resumes there, so kept rows
    never eat every run's budget."""
    now = utcnow()
    seeded = Seeded(container, now)
    report = prune(container.engine, Retention(), now, batch=1, budget=2)
    assert not report.complete
    assert (report.events, report.outbox) == (2, 2)
    runs = 1
    while not report.complete:
        report = prune(container.engine, Retention(), now, batch=1, budget=2, resume=report.resume)
        runs += 1
        assert runs < 20
    assert report.resume == {}
    seeded.assert_pruned()


def test_zero_days_keeps_a_kind_forever(container: Container) -> None:
    now = utcnow()
    seeded = Seeded(container, now)
    events_before = seeded.remaining(EVENTS)
    report = prune(container.engine, Retention(events_days=0, outbox_days=0), now)
    assert (report.events, report.attempts, report.outbox) == (0, 5, 0)
    assert seeded.remaining(EVENTS) == events_before
    assert seeded.remaining(ATTEMPTS) == sorted(seeded.attempts_kept)


def test_retention_reads_the_settings(backend: Backend) -> None:
    settings = backend.settings.model_copy()
    assert Retention.from_settings(settings) == Retention(30, 30, 7)
    if "retention_outbox_days" in Settings.model_fields:
        settings = settings.model_copy(update={"retention_outbox_days": 3})
    else:  # until the setting exists: the attribute is read with getattr
        object.__setattr__(settings, "retention_outbox_days", 3)
    assert Retention.from_settings(settings).outbox_days == 3


@pytest.fixture
def runtime(container: Container) -> Iterator[SyncRuntime]:
    built = SyncRuntime(container, InProcessRateLimiter(), lambda message: None)
    yield built
    built.close()


def test_the_scheduler_prunes_hourly(container: Container, runtime: SyncRuntime) -> None:
    now = utcnow()
    seeded = Seeded(container, now)
    scheduler = Scheduler(runtime)
    report = scheduler.prune_expired_rows(now)
    assert report is not None
    assert report.complete
    seeded.assert_pruned()
    assert scheduler.prune_expired_rows(now + timedelta(minutes=30)) is None
    assert scheduler.prune_expired_rows(now + timedelta(minutes=61)) is not None


def test_a_bounded_scheduler_run_goes_on_at_the_next_tick(
    container: Container, runtime: SyncRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scheduler_module, "PRUNING_BUDGET", 2)
    now = utcnow()
    seeded = Seeded(container, now)
    scheduler = Scheduler(runtime)
    ticks = []
    while True:
        report = scheduler.prune_expired_rows(now + timedelta(seconds=15 * len(ticks)))
        assert report is not None  # a backlog makes every tick due until it is gone
        ticks.append(report)
        if report.complete:
            break
        assert len(ticks) < 20
    assert len(ticks) > 1
    assert sum(r.events for r in ticks) == sum(r.attempts for r in ticks) == 5
    seeded.assert_pruned()
    assert scheduler.prune_expired_rows(now + timedelta(minutes=30)) is None


def _cli_env(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    for name in ("data_dir", "database_url", "db_schema", "cache_url", "cache_key_prefix"):
        found = getattr(settings, name)
        if found is not None:
            monkeypatch.setenv(f"HUB_{name.upper()}", str(found))
    if settings.secret_keys is not None:
        monkeypatch.setenv("HUB_SECRET_KEYS", settings.secret_keys.get_secret_value())


def test_hub_prune_command(
    backend: Backend, container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = utcnow()
    seeded = Seeded(container, now)
    _cli_env(monkeypatch, backend.settings)
    app = typer.Typer()
    app.command("prune")(prune_command)
    app.command("other")(lambda: None)  # two commands: `prune` is named like under `hub`
    runner = CliRunner()

    kept = runner.invoke(app, ["prune", "--events-days", "0", "--outbox-days", "0", "--json"])
    assert kept.exit_code == 0, kept.output
    assert json.loads(kept.output)["events"] == 0
    assert json.loads(kept.output)["attempts"] == 5

    result = runner.invoke(app, ["prune", "--batch", "2"])
    assert result.exit_code == 0, result.output
    assert "5 events, 0 attempts and 5 outbox rows deleted" in result.output
    seeded.assert_pruned()
