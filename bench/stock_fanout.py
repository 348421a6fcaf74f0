"""Benchmark: stock out, from a blank's change to every marketplace showing it.

Questions it answers (DESIGN.md, flow 4 "Stock out"):

1. ``change_to_all_shops_p95_s``, embedded (SQLite, in-process broker) and rabbitmq
   (PostgreSQL, Redis, RabbitMQ): with 50 SKUs, each backed by a blank of its own and bound in a
   Shopify, a WooCommerce and an Etsy shop, and one stock change per second (the API's
   ``POST /blanks/{id}/stock``, a new absolute ``on_hand`` each time, round-robin over a seeded
   shuffle of the SKUs), how long from the change's commit until all three marketplaces show
   the new quantity? Also p50, max, how many changes and how many never arrived.
2. ``api_calls`` per marketplace when ONE blank change bumps 10,000 bindings per shop (Shopify
   40 products of 250 variants, WooCommerce 100 variable products of 100 variations, Etsy 1,000
   listings of 10 SKUs, every variant backed by the same blank): the requests the marketplaces
   answer from the change until every batch operation it made is finished; with the time that
   took and the operations' statuses.

What it does, and why that way:

* The hub is ``hub run`` (API, outbox relay, worker and scheduler in one process, as a small
  installation runs it) started as a subprocess with only the ``HUB_*`` settings named in the
  result file. Its database is created and seeded from this process first (migrations, then
  the application layer), so the hub starts on a known catalog.
* The marketplaces are the connectors' sandboxes, served over loopback HTTP from threads of
  this process. In production a marketplace's CPU is not ours; here it shares the machine (two
  cores), so the CPU seconds of this process (sandboxes and the bench's polling) are reported
  apart from the hub's. They are light in part 1 (a few requests per second). Forking them
  would hide nothing the figures need and would make reading their state a round trip.
* Part 1 measures from the moment the API answered the change (its transaction committed
  before that; the request's round trip is reported) until the last of the three sandboxes
  shows the new quantity, read from the sandboxes' in-process state every ``--poll-ms``
  (15 ms). A change not seen everywhere within ``arrival_timeout`` counts as missing. The
  initial push after binding (every binding is due once bound) is waited out before the clock
  starts. Per marketplace and change the stages come from the hub's own rows: the push
  trigger's outbox message (written in the change's transaction, then published), the batch
  operation ``stock.push`` made of it (after ``HUB_PUSH_DEBOUNCE_MS``), the batch's remote
  call (its attempt row) and the moment the sandbox showed it.
* Part 2 writes the 30,000 bindings with SQL in bulk (the rows ``put_bindings`` writes: the
  binding, its push states at desired 1 / pushed 0 and the push triggers with their delayed
  messages; calling it per row would take minutes), lets the hub push them once, then restarts
  ``hub run`` so no connector cache survives (Etsy's connector remembers a listing's inventory
  for a minute and skips the read when it can: the figure is the worst case, a read and a write
  per listing), waits for the start-up order pulls to go quiet, resets the counters and makes
  the one change. Calls are counted per endpoint; the target counts the stock push's endpoints
  (``stock_push_requests``), and anything else in the window (a scheduled order pull) is
  reported as ``other_requests``. Etsy's sandbox and ``HUB_ETSY_REQUESTS_PER_SECOND`` are
  raised for this part: it counts calls (``bench/etsy_stock.py`` measures rate compliance). It
  runs in ``--fanout-mode``, embedded by default: the faster of the two here (one process,
  SQLite, no broker hop: about 11 s from the change to the last batch against about 17 s with
  PostgreSQL, Redis and RabbitMQ, for the same calls).
* Every PostgreSQL schema, Redis key prefix and RabbitMQ queue prefix is the run's own and is
  removed at the end even on failure; embedded data lives in a temporary folder.
* Before it starts it waits (up to ``--quiet-wait`` seconds) for the host to be nearly idle;
  per measured window it records the host's CPU split with hypervisor steal and the CPU seconds
  of the hub, of this process and of the shared services.

Run ``.venv/bin/python bench/stock_fanout.py`` (about five minutes once the host is quiet) or
with ``--quick`` (a smoke run of about a minute: 12 s of changes per mode, a tenth of the
fan-out catalog).
Results: ``bench/results/stock_fanout.json`` (``stock_fanout.quick.json``).
Exit status 0 when it measured (missed targets are printed as ``MISSED`` lines), 1 when the
figures cannot be trusted (failed changes, lost pushes, a push that never finished).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script, `bench` is not on the path otherwise

import httpx  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402
from sqlalchemy import Engine, func, select  # noqa: E402

from bench.host import CpuTimes, cpu_times, cpu_usage  # noqa: E402
from bench.loadgen import Target, latency_ms, percentile  # noqa: E402
from bench.order_reads import (  # noqa: E402
    bench_env,
    drop_cache_keys,
    drop_schema,
    free_port,
    git_state,
    setting,
)
from bench.server import ApiServer  # noqa: E402
from bench.stock_fanout_world import (  # noqa: E402
    ETSY_KEYSTRING,
    ETSY_SECRET,
    MARKETPLACES,
    SHOPIFY_SECRET,
    Catalog,
    Marketplaces,
    Shape,
    seed_fanout_catalog,
    seed_latency_catalog,
)
from bench.webhooks import (  # noqa: E402
    CLOCK_TICKS,
    SHARED_SERVICES,
    _process_ticks,
    _ticks_by_command,
    delete_queues,
    queue_names,
    wait_for_quiet_host,
)
from hub.bootstrap import bootstrap  # noqa: E402
from hub.domain.shops import QUANTITY_KINDS  # noqa: E402
from hub.infrastructure.bindings import STATES  # noqa: E402
from hub.infrastructure.db import create_db_engine  # noqa: E402
from hub.infrastructure.migrations import upgrade  # noqa: E402
from hub.infrastructure.outbound import OPERATIONS, OUTBOX, STOCK_PUSH_ACTOR, TRIGGERS  # noqa: E402
from hub.settings import Settings  # noqa: E402
from sync.domain.policies import STOCK_BATCH  # noqa: E402
from sync.infrastructure.operations import ATTEMPTS  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
MODES = ("embedded", "rabbitmq")
LATENCY_SHAPE = Shape(50, 50, 50, 10, "LAT")  # one product / variable product, 5 Etsy listings
FANOUT_SHAPE = Shape(10_000, 250, 100, 10, "FAN")
QUICK_FANOUT_SHAPE = Shape(1_000, 250, 100, 10, "FAN")
REMOTE_START = 5  # what the sandboxes show before the hub's first push
LATENCY_ON_HAND = 100  # every blank's count when bound
MAX_NEW_ON_HAND = 900  # new counts drawn from 1..this (below the shops' 999 cap, never 0)
FANOUT_ON_HAND, FANOUT_NEW_ON_HAND = 500, 537
ETSY_FANOUT_PER_DAY = 10_000_000
LATENCY_TARGET_S = 2.0
# Calls allowed for the full fan-out catalog: one per Shopify batch of 250, one per WooCommerce
# batch of 100, a read and a write per Etsy listing. The quick run scales them with the catalog.
CALL_TARGETS = {"shopify": 40, "woocommerce": 100, "etsy": 2_000}
MAX_BAD_FRACTION = 0.01  # failed or lost changes above this share void part 1
NOISY_STEAL_PERCENT = 5.0
QUIET_SECONDS = 2.0  # part 2: no sandbox request for this long = the start-up pulls are done
DB_POLL_SECONDS = 0.25


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Durations:
    """Seconds of each phase; ``FULL`` is the benchmark, ``QUICK`` only proves it runs."""

    change_seconds: float  # part 1: how long changes are made (one per 1/change_rate s)
    settle_timeout: float  # part 1: the initial push after binding
    arrival_timeout: float  # part 1: a change not everywhere by then is missing
    fanout_timeout: float  # part 2: each of the two pushes


FULL = Durations(120, 90, 30, 300)
QUICK = Durations(12, 60, 15, 120)


@dataclass(frozen=True)
class Config:
    quick: bool
    durations: Durations
    parts: tuple[str, ...]
    modes: tuple[str, ...]
    fanout_mode: str
    database_url: str
    cache_url: str
    broker_url: str
    change_rate: float
    poll_ms: float
    seed: int
    etsy_fanout_rps: int
    quiet_wait: float
    keep_data: bool
    server_env: dict[str, str]
    output: Path

    @property
    def fanout_shape(self) -> Shape:
        return QUICK_FANOUT_SHAPE if self.quick else FANOUT_SHAPE

    def call_targets(self) -> dict[str, int]:
        scale = self.fanout_shape.skus / FANOUT_SHAPE.skus
        return {name: round(limit * scale) for name, limit in CALL_TARGETS.items()}


def _names(text: str, allowed: Sequence[str], parser: argparse.ArgumentParser) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if not names or any(name not in allowed for name in names):
        parser.error(f"expected a comma-separated list of {', '.join(allowed)}, got {text!r}")
    return names


def parse_args(argv: Sequence[str] | None = None) -> Config:
    """Flags win over ``BENCH_<FLAG>`` environment variables, which win over the defaults."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of about a minute")
    parser.add_argument("--parts", help="latency,fanout (both)")
    parser.add_argument("--modes", help="part 1's modes: embedded,rabbitmq (both)")
    parser.add_argument("--fanout-mode", help="part 2's mode (embedded)")
    parser.add_argument("--database-url", help="SQLAlchemy URL of the PostgreSQL to use")
    parser.add_argument("--cache-url", help="redis:// URL (rate limits, cache, leader lock)")
    parser.add_argument("--broker-url", help="amqp:// URL of RabbitMQ")
    parser.add_argument("--change-rate", type=float, help="part 1: stock changes per second (1)")
    parser.add_argument("--poll-ms", type=float, help="part 1: sandbox polling interval (15)")
    parser.add_argument("--seed", type=int, help="seed of the SKU order and quantities")
    parser.add_argument(
        "--etsy-fanout-rps", type=int, help="part 2: Etsy's per-second budget, both sides (1000)"
    )
    parser.add_argument(
        "--quiet-wait", type=float, help="seconds to wait for an idle host before starting (60)"
    )
    parser.add_argument(
        "--keep-data", action="store_true", help="keep schemas and embedded data folders"
    )
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="HUB_NAME=VALUE",
        help="extra setting for `hub run` (repeatable), e.g. HUB_PUSH_DEBOUNCE_MS=100",
    )
    parser.add_argument("--output", type=Path, help="result file")
    for item in fields(Durations):
        parser.add_argument(f"--{item.name.replace('_', '-')}", type=float)
    args = parser.parse_args(argv)

    def pick(name: str, default: Any, kind: Callable[[str], Any]) -> Any:
        return setting(args, name, default, kind)

    quick = args.quick or (bench_env("quick") or "").lower() in ("1", "true", "yes")
    base = QUICK if quick else FULL
    durations = Durations(
        **{item.name: pick(item.name, getattr(base, item.name), float) for item in fields(base)}
    )
    server_env = dict(item.partition("=")[::2] for item in args.server_env)
    if any(not name.startswith("HUB_") for name in server_env):
        parser.error("--server-env takes HUB_NAME=VALUE")
    fanout_mode = pick("fanout_mode", "embedded", str)
    if fanout_mode not in MODES:
        parser.error(f"--fanout-mode is one of {', '.join(MODES)}")
    default_output = RESULTS / ("stock_fanout.quick.json" if quick else "stock_fanout.json")
    return Config(
        quick=quick,
        durations=durations,
        parts=_names(pick("parts", "latency,fanout", str), ("latency", "fanout"), parser),
        modes=_names(pick("modes", ",".join(MODES), str), MODES, parser),
        fanout_mode=fanout_mode,
        database_url=pick("database_url", "postgresql+psycopg://postgres@127.0.0.1:5432/test", str),
        cache_url=pick("cache_url", "redis://127.0.0.1:6379/15", str),
        broker_url=pick("broker_url", "amqp://guest:guest@127.0.0.1:5672/%2F", str),
        change_rate=pick("change_rate", 1.0, float),
        poll_ms=pick("poll_ms", 15.0, float),
        seed=pick("seed", 20261101, int),
        etsy_fanout_rps=pick("etsy_fanout_rps", 1000, int),
        quiet_wait=pick("quiet_wait", 60.0, float),
        keep_data=args.keep_data or (bench_env("keep_data") or "") == "1",
        server_env=server_env,
        output=pick("output", default_output, Path),
    )


# ---------------------------------------------------------------------------------------------
# Modes: where the hub keeps its data and how its messages travel
# ---------------------------------------------------------------------------------------------


HIDDEN = ("HUB_ADMIN_API_KEY", "HUB_SECRET_KEYS", "HUB_SHOPIFY_CLIENT_SECRET")


@dataclass
class Mode:
    """One hub installation: its ``HUB_*`` settings and what must be removed afterwards."""

    name: str
    env: dict[str, str]
    database_url: str
    schema: str | None = None
    cache_prefix: str | None = None
    queue_prefix: str | None = None
    data_dir: Path | None = None

    @property
    def settings(self) -> Settings:
        """The same settings ``hub run`` reads from ``env``, for seeding from this process."""
        values = {key.removeprefix("HUB_").lower(): value for key, value in self.env.items()}
        return Settings.model_validate(values)  # exactly these values: no inherited HUB_*

    def shown_env(self) -> dict[str, str]:
        shown = {key: value for key, value in self.env.items() if key not in HIDDEN}
        return shown | dict.fromkeys(HIDDEN, "<random per run>")


def make_mode(
    name: str, phase: str, config: Config, run: RunContext, extra: dict[str, str]
) -> Mode:
    token = f"{run.token}_{phase}"
    env = {**run.common_env, "HUB_PORT": str(free_port()), **extra}
    if name == "embedded":
        data_dir = run.workdir / f"{phase}-embedded"
        data_dir.mkdir(parents=True)
        env["HUB_DATA_DIR"] = str(data_dir)
        env |= config.server_env
        url = f"sqlite+pysqlite:///{(data_dir / 'hub.db').resolve()}"
        return Mode(name, env, url, data_dir=data_dir)
    schema = f"bench_sf_{token}"
    cache_prefix = f"bench_sf:{token}:"
    queue_prefix = f"bench_sf_{token}."
    env |= {
        "HUB_DATABASE_URL": config.database_url,
        "HUB_DB_SCHEMA": schema,
        "HUB_CACHE_URL": config.cache_url,
        "HUB_CACHE_KEY_PREFIX": cache_prefix,
        "HUB_BROKER_URL": config.broker_url,
        "HUB_BROKER_QUEUE_PREFIX": queue_prefix,
        **config.server_env,
    }
    return Mode(
        name,
        env,
        config.database_url,
        schema=schema,
        cache_prefix=cache_prefix,
        queue_prefix=queue_prefix,
    )


def prepare_database(mode: Mode) -> None:
    engine = create_db_engine(mode.settings.resolved_database_url, schema=mode.schema)
    try:
        upgrade(engine, schema=mode.schema)
    finally:
        engine.dispose()


def cleanup_mode(mode: Mode, config: Config) -> dict[str, Any]:
    """Remove what the mode created; each step on its own so one failure skips nothing."""
    done: dict[str, Any] = {}
    if mode.data_dir is not None:
        done["data_dir"] = "kept" if config.keep_data else "removed with the run's temp folder"
    if mode.schema is not None:
        if config.keep_data:
            done["schema"] = f"kept {mode.schema}"
        else:
            try:
                drop_schema(config.database_url, mode.schema)
                done["schema"] = "dropped"
            except Exception as error:  # report and go on: the other resources still need it
                done["schema"] = f"FAILED: {error!r}"
    if mode.cache_prefix is not None:
        try:
            done["cache_keys_removed"] = drop_cache_keys(config.cache_url, [mode.cache_prefix])
        except Exception as error:
            done["cache_keys_removed"] = f"FAILED: {error!r}"
    if mode.queue_prefix is not None:
        try:
            done["queues_deleted"] = delete_queues(
                config.broker_url, queue_names(mode.queue_prefix)
            )
        except Exception as error:
            done["queues_deleted"] = f"FAILED: {error!r}"
    return done


@dataclass
class RunContext:
    token: str
    admin_key: str
    common_env: dict[str, str]
    workdir: Path
    log_dir: Path
    cleanup: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# The hub process and the bench's view of its database
# ---------------------------------------------------------------------------------------------


class HubRun(ApiServer):
    """``hub run`` (API, relay, worker, scheduler in one process) with the API server's
    lifecycle: only our ``HUB_*`` settings, a log file, ready on /healthz and /readyz, SIGTERM
    then SIGKILL."""

    def __init__(self, mode: Mode, log_path: Path) -> None:
        port = int(mode.env["HUB_PORT"])
        super().__init__(
            target=Target("127.0.0.1", port),
            env={**mode.env, "PYTHONUNBUFFERED": "1"},
            log_path=log_path,
            core=None,
            startup_timeout=90.0,
        )

    @property
    def command(self) -> list[str]:
        return [sys.executable, "-m", "cli.main", "run", "--port", str(self.target.port)]

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None else None

    @property
    def base_url(self) -> str:
        return f"http://{self.target.host}:{self.target.port}"


@contextmanager
def hub_running(mode: Mode, log_path: Path) -> Iterator[HubRun]:
    hub = HubRun(mode, log_path)
    try:
        asyncio.run(hub.start())
        yield hub
    finally:
        hub.stop()


class HubDb:
    """The bench's own reads of the hub's database (a small pool, never in a hot loop)."""

    def __init__(self, mode: Mode) -> None:
        self.engine: Engine = create_db_engine(
            mode.settings.resolved_database_url, schema=mode.schema, pool_size=2, max_overflow=2
        )

    def backlog(self, after_operation: int = 0) -> dict[str, Any]:
        """What is still to do: queued triggers, bindings due, batch operations by status."""
        kinds = [kind.value for kind in QUANTITY_KINDS]
        with self.engine.connect() as db:
            triggers = db.execute(select(func.count()).select_from(TRIGGERS)).scalar_one()
            due = db.execute(
                select(func.count())
                .select_from(STATES)
                .where(STATES.c.kind.in_(kinds), STATES.c.desired_version > STATES.c.pushed_version)
            ).scalar_one()
            statuses: dict[str, int] = {
                str(status): int(count)
                for status, count in db.execute(
                    select(OPERATIONS.c.status, func.count())
                    .where(OPERATIONS.c.kind == STOCK_BATCH, OPERATIONS.c.id > after_operation)
                    .group_by(OPERATIONS.c.status)
                ).all()
            }
        return {"triggers": int(triggers), "due_bindings": int(due), "operations": statuses}

    @staticmethod
    def idle(backlog: dict[str, Any]) -> bool:
        open_ops = sum(n for status, n in backlog["operations"].items() if status in OPEN)
        return bool(backlog["triggers"] == 0 and backlog["due_bindings"] == 0 and open_ops == 0)

    def last_operation_id(self) -> int:
        with self.engine.connect() as db:
            return int(db.execute(select(func.coalesce(func.max(OPERATIONS.c.id), 0))).scalar_one())

    def operations(self, after: int = 0) -> list[Any]:
        with self.engine.connect() as db:
            return list(
                db.execute(
                    select(OPERATIONS)
                    .where(OPERATIONS.c.kind == STOCK_BATCH, OPERATIONS.c.id > after)
                    .order_by(OPERATIONS.c.id)
                )
            )

    def attempts(self, after_operation: int = 0) -> list[Any]:
        with self.engine.connect() as db:
            return list(
                db.execute(
                    select(ATTEMPTS)
                    .where(ATTEMPTS.c.operation_id > after_operation)
                    .order_by(ATTEMPTS.c.id)
                )
            )

    def push_messages(self) -> list[Any]:
        with self.engine.connect() as db:
            return list(
                db.execute(
                    select(OUTBOX).where(OUTBOX.c.actor == STOCK_PUSH_ACTOR).order_by(OUTBOX.c.id)
                )
            )

    def close(self) -> None:
        self.engine.dispose()


OPEN = ("queued", "running")


# ---------------------------------------------------------------------------------------------
# Where the CPU went
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CpuSnapshot:
    at: float
    host: CpuTimes
    processes: dict[str, int]


def cpu_snapshot(hub: HubRun) -> CpuSnapshot:
    pids = {"hub_run": hub.pid, "bench_and_sandboxes": os.getpid()}
    processes = {
        name: ticks
        for name, pid in pids.items()
        if pid is not None and (ticks := _process_ticks(pid)) is not None
    }
    return CpuSnapshot(
        time.perf_counter(), cpu_times(), processes | _ticks_by_command(SHARED_SERVICES)
    )


def cpu_figures(before: CpuSnapshot, after: CpuSnapshot) -> dict[str, Any]:
    seconds = {
        name: round((after.processes.get(name, 0) - ticks) / CLOCK_TICKS, 2)
        for name, ticks in before.processes.items()
    }
    return {
        "window_seconds": round(after.at - before.at, 2),
        "host_cpu_percent": cpu_usage(before.host, after.host),
        "cpu_seconds": seconds,
    }


def steal_of(figures: dict[str, Any]) -> float | None:
    value = figures.get("host_cpu_percent", {}).get("cpu", {}).get("steal")
    return float(value) if value is not None else None


# ---------------------------------------------------------------------------------------------
# Part 1: change to all shops
# ---------------------------------------------------------------------------------------------


@dataclass
class Change:
    """One stock change: which SKU, the new count, and when each marketplace showed it."""

    index: int
    item: int  # index into the catalog's items
    on_hand: int
    intended: float  # perf_counter
    sent: float
    answered: float
    status: int
    seen: dict[str, float] = field(default_factory=dict)  # perf_counter per marketplace
    missing: bool = False
    superseded: bool = False

    @property
    def arrived(self) -> bool:
        return len(self.seen) == len(MARKETPLACES)

    def latency(self) -> float:
        return max(self.seen.values()) - self.answered


def change_plan(skus: int, count: int, seed: int, start: int) -> list[tuple[int, int]]:
    """(item, new on_hand) per change: round-robin over a seeded shuffle, each value new."""
    rng = random.Random(seed)
    order = list(range(skus))
    rng.shuffle(order)
    current = dict.fromkeys(order, start)
    plan = []
    for index in range(count):
        item = order[index % skus]
        value = current[item]
        while value == current[item]:
            value = rng.randint(1, MAX_NEW_ON_HAND)
        current[item] = value
        plan.append((item, value))
    return plan


def send_changes(
    client: httpx.Client,
    catalog: Catalog,
    plan: Sequence[tuple[int, int]],
    *,
    start: float,
    rate: float,
    changes: list[Change],
    lock: threading.Lock,
) -> None:
    """Open loop: change i is due at start + i / rate, whatever the previous one took."""
    for index, (item, on_hand) in enumerate(plan):
        intended = start + index / rate
        time.sleep(max(0.0, intended - time.perf_counter()))
        sent = time.perf_counter()
        try:
            response = client.post(
                f"/blanks/{catalog.blank_ids[item]}/stock", json={"on_hand": on_hand}
            )
            status = response.status_code
        except httpx.HTTPError:
            status = 0
        answered = time.perf_counter()
        with lock:
            changes.append(Change(index, item, on_hand, intended, sent, answered, status))


def watch_arrivals(
    world: Marketplaces,
    changes: list[Change],
    lock: threading.Lock,
    sender: threading.Thread,
    *,
    poll_seconds: float,
    timeout: float,
) -> int:
    """Poll the sandboxes for every change in flight until all arrived or timed out; returns
    the number of polling rounds."""
    pending: list[Change] = []
    taken = 0
    rounds = 0
    while True:
        began = time.perf_counter()
        with lock:
            fresh = changes[taken:]
            taken = len(changes)
        for change in fresh:
            if change.status != 200:
                continue
            for older in pending:
                if older.item == change.item:  # a newer value for the SKU: the old one is gone
                    older.superseded = True
            pending = [c for c in pending if not c.superseded]
            pending.append(change)
        for change in pending:
            item = world.items[change.item]
            for name in MARKETPLACES:
                if name not in change.seen and world.stock(name, item) == change.on_hand:
                    change.seen[name] = time.perf_counter()
            if not change.arrived and time.perf_counter() - change.answered > timeout:
                change.missing = True
        pending = [c for c in pending if not c.arrived and not c.missing]
        rounds += 1
        if not pending and not sender.is_alive():
            with lock:
                if taken == len(changes):
                    return rounds
        time.sleep(max(0.0, poll_seconds - (time.perf_counter() - began)))


def wait_settled(world: Marketplaces, db: HubDb, quantity: int, timeout: float) -> dict[str, Any]:
    """Until every SKU shows ``quantity`` everywhere and the hub has nothing left to push."""
    began = time.perf_counter()
    while True:
        wrong = world.wrong(quantity)
        backlog = db.backlog()
        if not any(wrong.values()) and HubDb.idle(backlog):
            return {"settled": True, "seconds": round(time.perf_counter() - began, 2)}
        if time.perf_counter() - began > timeout:
            return {
                "settled": False,
                "seconds": round(time.perf_counter() - began, 2),
                "wrong": wrong,
                "backlog": backlog,
            }
        time.sleep(DB_POLL_SECONDS)


def seconds_summary(values: Sequence[float]) -> dict[str, Any]:
    ordered = sorted(values)

    def s(value: float | None) -> float | None:
        return None if value is None else round(value, 3)

    return {
        "count": len(ordered),
        "p50_s": s(percentile(ordered, 0.50)),
        "p95_s": s(percentile(ordered, 0.95)),
        "p99_s": s(percentile(ordered, 0.99)),
        "max_s": s(ordered[-1] if ordered else None),
        "mean_s": s(sum(ordered) / len(ordered) if ordered else None),
    }


def stage_timings(
    changes: Sequence[Change], catalog: Catalog, db: HubDb, wall_offset: float
) -> dict[str, Any]:
    """Per marketplace, where each arrived change's time went, from the hub's own rows.

    ``txn_to_published``: the push trigger's outbox row (written in the change's transaction)
    until the relay published it. ``published_to_batch``: until ``stock.push`` wrote the batch
    operation (includes the debounce delay and the worker picking the delayed message up).
    ``batch_to_call_done``: until the batch's remote call was recorded (includes the batch
    message's hop). ``call``: the remote call itself. ``answered_to_seen``: the API's answer
    until the sandbox showed the value (the headline's per-marketplace part).
    """
    shops = {shop_id: name for name, shop_id in catalog.shop_ids.items()}
    binding_of = {
        (name, binding): index
        for name, ids in catalog.binding_ids.items()
        for index, binding in enumerate(ids)
    }
    messages: dict[str, list[tuple[float, float | None]]] = {name: [] for name in MARKETPLACES}
    for row in db.push_messages():
        name = shops.get(int(row.payload.get("shop_id", 0)))
        if name is not None:
            published = row.published_at.timestamp() if row.published_at else None
            messages[name].append((row.created_at.timestamp(), published))
    first_attempt: dict[int, Any] = {}
    for attempt in db.attempts():
        first_attempt.setdefault(attempt.operation_id, attempt)
    batches: dict[tuple[str, int], list[tuple[float, int]]] = {}
    for op in db.operations():
        name = shops.get(op.shop_id or 0)
        if name is None:
            continue
        for level in op.payload.get("levels", []):
            index = binding_of.get((name, int(level["binding_id"])))
            if index is not None:
                batches.setdefault((name, index), []).append((op.created_at.timestamp(), op.id))
    stages: dict[str, dict[str, list[float]]] = {
        name: {
            "txn_to_published": [],
            "published_to_batch": [],
            "batch_to_call_done": [],
            "call": [],
            "answered_to_seen": [],
        }
        for name in MARKETPLACES
    }
    slowest: Counter[str] = Counter()
    unmatched: Counter[str] = Counter()
    for change in changes:
        if not change.arrived:
            continue
        slowest[max(change.seen, key=lambda name: change.seen[name])] += 1
        sent, answered = change.sent + wall_offset, change.answered + wall_offset
        for name in MARKETPLACES:
            stage = stages[name]
            stage["answered_to_seen"].append(change.seen[name] - change.answered)
            near = [m for m in messages[name] if sent - 0.05 <= m[0] <= answered + 0.05]
            batch = min(
                (b for b in batches.get((name, change.item), []) if b[0] >= sent - 0.05),
                default=None,
            )
            if not near or batch is None:
                unmatched[name] += 1
                continue
            created, published = near[0]
            if published is None:
                unmatched[name] += 1
                continue
            stage["txn_to_published"].append(published - created)
            stage["published_to_batch"].append(batch[0] - published)
            attempt = first_attempt.get(batch[1])
            if attempt is not None:
                stage["batch_to_call_done"].append(attempt.created_at.timestamp() - batch[0])
                stage["call"].append(attempt.duration_ms / 1000.0)
    return {
        "stages_ms": {
            name: {stage: latency_ms(values) for stage, values in per.items()}
            for name, per in stages.items()
        },
        "last_marketplace_to_show": dict(slowest),
        "changes_without_matching_rows": dict(unmatched),
    }


def measure_latency(mode_name: str, config: Config, run: RunContext) -> dict[str, Any]:
    world = Marketplaces(LATENCY_SHAPE, quantity=REMOTE_START)
    mode = make_mode(mode_name, f"lat_{mode_name[:3]}", config, run, {})
    print(f"bench: part 1 ({mode_name}): seeding", flush=True)
    began = time.perf_counter()
    try:
        with world.serving() as urls:
            prepare_database(mode)
            container = bootstrap(mode.settings)
            try:
                catalog = seed_latency_catalog(container, world, urls, LATENCY_ON_HAND)
            finally:
                container.close()
            db = HubDb(mode)
            try:
                with hub_running(mode, run.log_dir / f"hub-latency-{mode_name}.log") as hub:
                    result = _latency_window(world, catalog, db, hub, config, run)
                    result["hub_log_error_lines"] = hub.error_lines()
                    result["hub_log_error_excerpt"] = hub.error_excerpt()
                result |= stage_timings(result.pop("_changes"), catalog, db, result.pop("_offset"))
            finally:
                db.close()
    finally:
        run.cleanup[f"latency_{mode_name}"] = cleanup_mode(mode, config)
    result["mode"] = mode_name
    result["hub_env"] = mode.shown_env()
    result["phase_wall_seconds"] = round(time.perf_counter() - began, 1)
    print(
        f"bench: part 1 ({mode_name}): p95 {result['change_to_all_shops']['p95_s']} s, "
        f"missing {result['change_to_all_shops']['missing']}",
        flush=True,
    )
    return result


def _latency_window(
    world: Marketplaces,
    catalog: Catalog,
    db: HubDb,
    hub: HubRun,
    config: Config,
    run: RunContext,
) -> dict[str, Any]:
    durations = config.durations
    settle = wait_settled(world, db, LATENCY_ON_HAND, durations.settle_timeout)
    print(f"bench: initial push after binding: {settle}", flush=True)
    count = max(1, int(durations.change_seconds * config.change_rate))
    plan = change_plan(len(world.items), count, config.seed, LATENCY_ON_HAND)
    changes: list[Change] = []
    lock = threading.Lock()
    world.reset_counters()
    headers = {"Authorization": f"Bearer {run.admin_key}"}
    with httpx.Client(base_url=hub.base_url, headers=headers, timeout=10.0) as client:
        client.get("/healthz")  # open the keep-alive connection before the clock starts
        wall_offset = time.time() - time.perf_counter()
        before = cpu_snapshot(hub)
        start = time.perf_counter() + 0.1
        sender = threading.Thread(
            target=send_changes,
            args=(client, catalog, plan),
            kwargs={
                "start": start,
                "rate": config.change_rate,
                "changes": changes,
                "lock": lock,
            },
            name="stock-changes",
            daemon=True,
        )
        sender.start()
        rounds = watch_arrivals(
            world,
            changes,
            lock,
            sender,
            poll_seconds=config.poll_ms / 1000.0,
            timeout=durations.arrival_timeout,
        )
        sender.join()
        after = cpu_snapshot(hub)
    ok = [c for c in changes if c.status == 200]
    arrived = [c for c in ok if c.arrived]
    statuses = Counter(str(c.status) for c in changes)
    return {
        "initial_push": settle,
        "change_to_all_shops": {
            **seconds_summary([c.latency() for c in arrived]),
            "changes": len(changes),
            "accepted": len(ok),
            "arrived": len(arrived),
            "missing": sum(1 for c in ok if c.missing),
            "superseded_before_arrival": sum(1 for c in ok if c.superseded),
            "api_statuses": dict(statuses),
        },
        "from_request_sent": seconds_summary([max(c.seen.values()) - c.sent for c in arrived]),
        "api_round_trip_ms": latency_ms([c.answered - c.sent for c in changes]),
        "send_lag_ms": latency_ms([c.sent - c.intended for c in changes]),
        "poll_rounds": rounds,
        "sandbox_calls": world.calls(),
        "cpu": cpu_figures(before, after),
        "_changes": changes,
        "_offset": wall_offset,
    }


# ---------------------------------------------------------------------------------------------
# Part 2: one change, 10,000 bindings per shop
# ---------------------------------------------------------------------------------------------


def wait_pushed(
    db: HubDb, after_operation: int, timeout: float, *, need_operations: bool
) -> dict[str, Any]:
    """Until nothing is due and every batch operation after ``after_operation`` finished."""
    began = time.perf_counter()
    while True:
        backlog = db.backlog(after_operation)
        made = sum(backlog["operations"].values())
        if HubDb.idle(backlog) and (made or not need_operations):
            return {"finished": True, "waited_seconds": round(time.perf_counter() - began, 2)}
        if time.perf_counter() - began > timeout:
            return {
                "finished": False,
                "waited_seconds": round(time.perf_counter() - began, 2),
                "backlog": backlog,
            }
        time.sleep(DB_POLL_SECONDS)


def wait_for_quiet_sandboxes(world: Marketplaces, limit: float) -> float:
    """Until no sandbox answered a request for ``QUIET_SECONDS`` (the start-up order pulls)."""
    began = time.perf_counter()
    while time.perf_counter() - began < limit:
        lasts = [log.last_at for log in world.logs.values() if log.last_at is not None]
        if time.time() - max(lasts, default=0.0) >= QUIET_SECONDS:
            break
        time.sleep(0.1)
    return round(time.perf_counter() - began, 2)


def push_figures(db: HubDb, catalog: Catalog, after: int, answered_wall: float) -> dict[str, Any]:
    """The batch operations one push made, per marketplace: statuses, sizes, timings."""
    shops = {shop_id: name for name, shop_id in catalog.shop_ids.items()}
    per: dict[str, dict[str, Any]] = {}
    attempts: dict[int, list[Any]] = {}
    for attempt in db.attempts(after):
        attempts.setdefault(attempt.operation_id, []).append(attempt)
    for name in MARKETPLACES:
        per[name] = {"statuses": Counter(), "levels": 0, "attempts": 0, "created": [], "ended": []}
    for op in db.operations(after):
        owner = shops.get(op.shop_id or 0)
        if owner is None:
            continue
        entry = per[owner]
        entry["statuses"][op.status] += 1
        entry["levels"] += len(op.payload.get("levels", []))
        entry["attempts"] += len(attempts.get(op.id, []))
        entry["created"].append(op.created_at.timestamp())
        entry["ended"].append(op.updated_at.timestamp())
    figures: dict[str, Any] = {}
    for name, entry in per.items():
        created, ended = entry.pop("created"), entry.pop("ended")
        figures[name] = {
            "operations": sum(entry["statuses"].values()),
            "statuses": dict(entry["statuses"]),
            "levels": entry["levels"],
            "attempts": entry["attempts"],
            "first_batch_after_s": round(min(created) - answered_wall, 3) if created else None,
            "last_batch_finished_after_s": round(max(ended) - answered_wall, 3) if ended else None,
        }
    ends = [f["last_batch_finished_after_s"] for f in figures.values()]
    return {
        "per_marketplace": figures,
        "all_batches_finished_after_s": max((e for e in ends if e is not None), default=None),
    }


def measure_fanout(config: Config, run: RunContext) -> dict[str, Any]:
    shape = config.fanout_shape
    rps = config.etsy_fanout_rps
    world = Marketplaces(
        shape,
        quantity=REMOTE_START,
        etsy_requests_per_second=rps,
        etsy_requests_per_day=ETSY_FANOUT_PER_DAY,
    )
    extra = {
        "HUB_ETSY_REQUESTS_PER_SECOND": str(rps),
        "HUB_ETSY_REQUESTS_PER_DAY": str(ETSY_FANOUT_PER_DAY),
    }
    mode = make_mode(config.fanout_mode, "fan", config, run, extra)
    timeout = config.durations.fanout_timeout
    result: dict[str, Any] = {"mode": config.fanout_mode, "shape": shape.as_dict()}
    began = time.perf_counter()
    try:
        with world.serving() as urls:
            prepare_database(mode)
            print(f"bench: part 2 ({mode.name}): seeding {shape.skus} SKUs x 3 shops", flush=True)
            seeded_at = time.perf_counter()
            container = bootstrap(mode.settings)
            try:
                catalog = seed_fanout_catalog(container, world, urls, FANOUT_ON_HAND)
            finally:
                container.close()
            result["seed_seconds"] = round(time.perf_counter() - seeded_at, 1)
            db = HubDb(mode)
            try:
                result |= _fanout_pushes(world, catalog, db, mode, config, run, timeout)
            finally:
                db.close()
    finally:
        run.cleanup["fanout"] = cleanup_mode(mode, config)
    result["hub_env"] = mode.shown_env()
    result["phase_wall_seconds"] = round(time.perf_counter() - began, 1)
    return result


def _fanout_pushes(
    world: Marketplaces,
    catalog: Catalog,
    db: HubDb,
    mode: Mode,
    config: Config,
    run: RunContext,
    timeout: float,
) -> dict[str, Any]:
    result: dict[str, Any] = {}
    print("bench: part 2: the initial push after binding", flush=True)
    log = run.log_dir / "hub-fanout.log"
    with hub_running(mode, log) as hub:
        started = time.perf_counter()
        initial = wait_pushed(db, 0, timeout, need_operations=True)
        initial["seconds"] = round(time.perf_counter() - started, 2)
        initial["wrong_after"] = world.wrong(FANOUT_ON_HAND)
        initial["calls"] = {name: c["requests"] for name, c in world.calls().items()}
        initial |= push_figures(db, catalog, 0, time.time() - initial["seconds"])
        errors_initial = hub.error_lines()
    result["initial_push"] = initial
    print(
        f"bench: part 2: initial push {initial['finished']} in {initial['seconds']} s; "
        "restarting the hub (cold connector caches)",
        flush=True,
    )
    if not initial["finished"]:
        return result
    with hub_running(mode, log) as hub:
        result["quiet_wait_seconds"] = wait_for_quiet_sandboxes(world, 30.0)
        after = db.last_operation_id()
        world.reset_counters()
        headers = {"Authorization": f"Bearer {run.admin_key}"}
        with httpx.Client(base_url=hub.base_url, headers=headers, timeout=30.0) as client:
            client.get("/healthz")
            before = cpu_snapshot(hub)
            sent = time.perf_counter()
            response = client.post(
                f"/blanks/{catalog.blank_ids[0]}/stock", json={"on_hand": FANOUT_NEW_ON_HAND}
            )
            answered = time.perf_counter()
            answered_wall = time.time()
        print(f"bench: part 2: changed the blank ({response.status_code}); waiting", flush=True)
        pushed = wait_pushed(db, after, timeout, need_operations=True)
        cpu_after = cpu_snapshot(hub)
        calls = world.calls()
        pushed["api_status"] = response.status_code
        pushed["api_round_trip_ms"] = round((answered - sent) * 1000, 1)
        pushed["wrong_after"] = world.wrong(FANOUT_NEW_ON_HAND)
        pushed |= push_figures(db, catalog, after, answered_wall)
        pushed["calls"] = calls
        pushed["calls_span_s"] = {
            name: (
                [
                    round(c["first_at"] - answered_wall, 3),
                    round(c["last_at"] - answered_wall, 3),
                ]
                if c["first_at"] is not None and c["last_at"] is not None
                else None
            )
            for name, c in calls.items()
        }
        pushed["cpu"] = cpu_figures(before, cpu_after)
        result["hub_log_error_lines"] = errors_initial + hub.error_lines()
        result["hub_log_error_excerpt"] = hub.error_excerpt()
    result["measured_push"] = pushed
    return result


# ---------------------------------------------------------------------------------------------
# Figures, targets, main
# ---------------------------------------------------------------------------------------------


def headline(phases: dict[str, Any]) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    latency = phases.get("latency", {})
    if latency:
        figures["change_to_all_shops_p95_s"] = {
            mode: part["change_to_all_shops"]["p95_s"] for mode, part in latency.items()
        }
        figures["change_to_all_shops"] = {
            mode: {
                key: part["change_to_all_shops"][key]
                for key in ("p50_s", "p95_s", "max_s", "count", "missing", "changes")
            }
            for mode, part in latency.items()
        }
    fanout = phases.get("fanout", {})
    pushed = fanout.get("measured_push")
    if pushed:
        figures["api_calls"] = {
            name: calls["stock_push_requests"] for name, calls in pushed["calls"].items()
        }
        figures["api_calls_all_endpoints"] = {
            name: calls["requests"] for name, calls in pushed["calls"].items()
        }
        figures["fanout_seconds"] = pushed["all_batches_finished_after_s"]
        figures["fanout_operation_statuses"] = {
            name: part["statuses"] for name, part in pushed["per_marketplace"].items()
        }
    return figures


def targets(figures: dict[str, Any], config: Config) -> dict[str, dict[str, Any]]:
    def at_most(value: float | None, threshold: float) -> dict[str, Any]:
        passed = value is not None and value <= threshold
        return {"value": value, "threshold": threshold, "op": "<=", "pass": passed}

    checks: dict[str, dict[str, Any]] = {}
    for mode, p95 in figures.get("change_to_all_shops_p95_s", {}).items():
        checks[f"change_to_all_shops_p95_s.{mode}"] = at_most(p95, LATENCY_TARGET_S)
    if "api_calls" in figures:
        for name, limit in config.call_targets().items():
            checks[f"api_calls.{name}"] = at_most(figures["api_calls"][name], limit)
    return checks


def failures(phases: dict[str, Any]) -> list[str]:
    """Reasons the figures cannot be trusted."""
    found: list[str] = []
    for mode, part in phases.get("latency", {}).items():
        if not part["initial_push"]["settled"]:
            found.append(f"latency {mode}: the initial push never settled: {part['initial_push']}")
        counts = part["change_to_all_shops"]
        bad = counts["changes"] - counts["accepted"]
        if not counts["changes"] or bad > MAX_BAD_FRACTION * counts["changes"]:
            found.append(
                f"latency {mode}: {bad} of {counts['changes']} changes failed "
                f"({counts['api_statuses']})"
            )
        if counts["missing"] > MAX_BAD_FRACTION * max(1, counts["accepted"]):
            found.append(
                f"latency {mode}: {counts['missing']} of {counts['accepted']} changes never "
                "reached every marketplace"
            )
    fanout = phases.get("fanout")
    if fanout:
        initial = fanout.get("initial_push", {})
        if not initial.get("finished"):
            found.append(f"fanout: the initial push never finished: {initial.get('backlog')}")
        pushed = fanout.get("measured_push")
        if pushed is not None:
            if pushed["api_status"] != 200:
                found.append(f"fanout: the change answered {pushed['api_status']}")
            if not pushed["finished"]:
                found.append(f"fanout: the push never finished: {pushed.get('backlog')}")
            if any(pushed["wrong_after"].values()):
                found.append(f"fanout: SKUs not at the new quantity: {pushed['wrong_after']}")
            for name, part in pushed["per_marketplace"].items():
                if part["statuses"].get("failed"):
                    found.append(f"fanout {name}: {part['statuses']['failed']} batches failed")
    return found


def git_changes(limit: int = 40) -> list[str]:
    """What differs from HEAD (``git status --porcelain``), so a dirty flag can be judged."""
    try:
        listed = subprocess.run(
            ["git", "--no-optional-locks", "status", "--porcelain"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return []
    return listed[:limit] + ([f"... {len(listed) - limit} more"] if len(listed) > limit else [])


def _stop_on_sigterm(signum: int, _frame: object) -> NoReturn:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks that clean up


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(argv)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    began = time.perf_counter()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    admin_key = secrets.token_urlsafe(24)
    common_env = {
        "HUB_ALLOW_PRIVATE_URLS": "true",  # the sandboxes listen on loopback
        "HUB_ADMIN_API_KEY": admin_key,
        "HUB_SECRET_KEYS": Fernet.generate_key().decode(),
        "HUB_SHOPIFY_CLIENT_SECRET": SHOPIFY_SECRET,
        "HUB_ETSY_KEYSTRING": ETSY_KEYSTRING,
        "HUB_ETSY_SHARED_SECRET": ETSY_SECRET,
        "HUB_HOST": "127.0.0.1",
        "HUB_LOG_LEVEL": "WARNING",
    }
    print(f"bench: stock fan-out, {'quick' if config.quick else 'full'} run", flush=True)
    quiet = wait_for_quiet_host(config.quiet_wait)
    print(f"bench: host before the run: {quiet}", flush=True)
    phases: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="hub-bench-stock-") as scratch:
        workdir = Path(scratch)
        log_dir = workdir / "logs"
        log_dir.mkdir()
        run = RunContext(secrets.token_hex(3), admin_key, common_env, workdir, log_dir)
        try:
            if "latency" in config.parts:
                phases["latency"] = {
                    mode: measure_latency(mode, config, run) for mode in config.modes
                }
            if "fanout" in config.parts:
                phases["fanout"] = measure_fanout(config, run)
        except BaseException:
            for log in sorted(log_dir.glob("*.log")):
                print(f"--- {log.name} (tail)\n{log.read_text(errors='replace')[-3000:]}")
            raise
        finally:
            print(f"bench: cleanup {run.cleanup}", flush=True)
        if config.keep_data:
            kept = Path(tempfile.mkdtemp(prefix="hub-bench-stock-kept-"))
            os.rename(workdir / "logs", kept / "logs")
            print(f"bench: logs kept in {kept}")

    figures = headline(phases)
    checks = targets(figures, config)
    errors = failures(phases)
    steals = {
        name: steal
        for name, steal in (
            *((f"latency_{m}", steal_of(p["cpu"])) for m, p in phases.get("latency", {}).items()),
            (
                "fanout",
                steal_of(phases.get("fanout", {}).get("measured_push", {}).get("cpu", {})),
            ),
        )
        if steal is not None
    }
    noisy = any(steal > NOISY_STEAL_PERCENT for steal in steals.values())
    result: dict[str, Any] = {
        "benchmark": "stock_fanout",
        "mode": "quick" if config.quick else "full",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "started_at": started_at,
        **git_state(),
        "git_changes": git_changes(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        **figures,
        "targets": checks,
        "all_targets_met": all(check["pass"] for check in checks.values()),
        "noisy_host": noisy,
        "steal_percent": steals,
        "errors": errors,
        "cleanup": run.cleanup,
        "host_before_run": quiet,
        "settings": {
            "durations_seconds": asdict(config.durations),
            "parts": config.parts,
            "latency": {
                "modes": config.modes,
                "shape": LATENCY_SHAPE.as_dict() | {"blanks": "one per SKU"},
                "change_rate_per_s": config.change_rate,
                "sku_order": "round-robin over a seeded shuffle",
                "new_on_hand": f"seeded random 1..{MAX_NEW_ON_HAND}, never the current value",
                "initial_on_hand": LATENCY_ON_HAND,
                "poll_ms": config.poll_ms,
                "seed": config.seed,
                "measured_from": "the API's answer to POST /blanks/{id}/stock (after commit)",
            },
            "fanout": {
                "mode": config.fanout_mode,
                "shape": config.fanout_shape.as_dict() | {"blanks": "one behind every SKU"},
                "on_hand": [FANOUT_ON_HAND, FANOUT_NEW_ON_HAND],
                "bindings_seeded_with": "SQL in bulk (the rows put_bindings writes)",
                "etsy_requests_per_second": config.etsy_fanout_rps,
                "etsy_requests_per_day": ETSY_FANOUT_PER_DAY,
                "hub_restarted_before_the_change": "yes: connector caches are cold",
                "call_targets": config.call_targets(),
            },
            "sandboxes": "served over loopback from threads of the bench process (not the hub's "
            "CPU: see cpu_seconds.bench_and_sandboxes)",
            "hub": f"{sys.executable} -m cli.main run --port <free port>",
            "server_env": config.server_env,
            "push_debounce_ms": Settings.model_fields["push_debounce_ms"].default,
            "worker_threads": Settings.model_fields["worker_threads"].default,
        },
        "phases": phases,
        "wall_seconds": round(time.perf_counter() - began, 1),
    }
    config.output.parent.mkdir(parents=True, exist_ok=True)
    config.output.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(json.dumps({key: result[key] for key in (*figures, "targets", "errors")}, indent=2))
    print(f"bench: wrote {config.output}")
    for name, check in checks.items():
        if not check["pass"]:
            print(f"MISSED {name}: {check['value']} (target {check['op']} {check['threshold']})")
    if noisy:
        print(f"bench: WARNING noisy host: steal {steals} (limit {NOISY_STEAL_PERCENT}%)")
    for error in errors:
        print(f"bench: ERROR {error}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
