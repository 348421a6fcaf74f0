"""Benchmark: order and product document reads, without a cache and through the Redis cache.

Question it answers: at a realistic load (60% of what the uncached service can serve), how much
faster is a cache hit than an uncached read, does the cache leave the overall tail no worse, and
how often does a Zipf-popular catalog still miss after a minute of warm-up?

What it does, and why that way:

* A schema of its own (``bench_<random>``), migrated and seeded with COPY, dropped at the end
  even on failure: the benchmark never touches anybody's data and leaves nothing behind.
* The API in a uvicorn subprocess pinned to core 0, the load generator here pinned to core 1,
  so client work never steals the server's CPU (PostgreSQL and Redis float, as in production).
* Ids drawn Zipf(s=1.1) over popularity ranks mapped through a fixed shuffle: a few orders are
  very hot, most are cold, and the hot ones are spread over the table.
* Capacity first (closed loop), then every latency at a fixed offered rate (open loop, latency
  from the intended send time): a p95 measured while the server is saturated would measure the
  queue, not the read path, and a closed loop hides stalls (coordinated omission).
* A fresh server process and a fresh, never pre-warmed cache key prefix per cached phase; miss
  rates come from after a warm-up, and the product one from the server's own counters.
* The host's CPU split, hypervisor steal included, recorded for every measured window: on a
  shared VM steal moves tail latencies more than the code does, so a run with more than 5%
  steal says so (``noisy_host``) instead of passing off noise as a result.

Run ``make bench`` (full, about five minutes) or ``.venv/bin/python bench/order_reads.py --quick``
(a smoke run of a minute). Results: ``bench/results/order_reads.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script, `bench` is not on the path otherwise

from cryptography.fernet import Fernet  # noqa: E402
from redis import Redis  # noqa: E402

from bench.host import CpuTimes, cpu_times, cpu_usage  # noqa: E402
from bench.loadgen import (  # noqa: E402
    ConnectionPool,
    Sample,
    Target,
    ZipfIds,
    cache_counters,
    closed_loop,
    open_loop,
    summarize,
)
from bench.seed import seed  # noqa: E402
from bench.server import ApiServer, uvicorn_command  # noqa: E402
from hub.infrastructure.db import create_db_engine  # noqa: E402
from hub.infrastructure.migrations import upgrade  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
MAX_ERROR_FRACTION = 0.01  # above this share of failed requests the run is an error, not data
NOISY_STEAL_PERCENT = 5.0  # CPU stolen by the hypervisor above which tails are not comparable
SERVER_CORE, CLIENT_CORE = 0, 1
ZIPF_S = 1.1
PERMUTATION_SEED = 1101  # fixed: the same ids are hot in every run


@dataclass(frozen=True)
class Durations:
    """Seconds of each phase; ``FULL`` is the benchmark, ``QUICK`` only proves it runs."""

    capacity_warmup: float
    capacity_seconds: float
    uncached_warmup: float
    uncached_seconds: float
    cached_warmup: float
    cached_seconds: float
    product_warmup: float
    product_seconds: float


FULL = Durations(3, 10, 10, 30, 60, 30, 60, 30)
QUICK = Durations(1, 5, 2, 5, 5, 5, 5, 5)


@dataclass(frozen=True)
class Config:
    quick: bool
    durations: Durations
    database_url: str
    cache_url: str
    orders: int
    products: int
    capacity_concurrency: int
    rate_fraction: float
    product_rate: float
    max_connections: int
    request_timeout: float
    seed: int
    keep_schema: bool
    server_env: dict[str, str]
    output: Path


def bench_env(name: str) -> str | None:
    return os.environ.get(f"BENCH_{name.upper()}")


def setting(args: argparse.Namespace, name: str, default: Any, kind: Callable[[str], Any]) -> Any:
    """A flag if given, else ``BENCH_<NAME>`` from the environment, else the default."""
    given = getattr(args, name)
    if given is not None:
        return given
    from_env = bench_env(name)
    return kind(from_env) if from_env is not None else default


def parse_args(argv: Sequence[str] | None = None) -> Config:
    """Flags win over ``BENCH_<FLAG>`` environment variables, which win over the defaults."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="~5 s windows: a smoke test")
    parser.add_argument("--database-url", help="SQLAlchemy URL of the PostgreSQL to use")
    parser.add_argument("--cache-url", help="redis:// URL for the cached phases")
    parser.add_argument("--orders", type=int, help="orders to seed (100000)")
    parser.add_argument("--products", type=int, help="products to seed (5000)")
    parser.add_argument("--capacity-concurrency", type=int, help="closed-loop workers (32)")
    parser.add_argument("--rate-fraction", type=float, help="offered rate / capacity (0.6)")
    parser.add_argument("--product-rate", type=float, help="product reads per second (250)")
    parser.add_argument("--max-connections", type=int, help="open-loop connection cap (256)")
    parser.add_argument("--request-timeout", type=float, help="seconds per request (30)")
    parser.add_argument("--seed", type=int, help="seed of data and id draws (20261101)")
    parser.add_argument("--keep-schema", action="store_true", help="do not drop the schema")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="HUB_NAME=VALUE",
        help="extra server setting for every phase (repeatable), e.g. HUB_DB_POOL_SIZE=10",
    )
    parser.add_argument("--output", type=Path, help="result file")
    for field in fields(Durations):
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=float)
    args = parser.parse_args(argv)

    def pick(name: str, default: Any, kind: Callable[[str], Any]) -> Any:
        return setting(args, name, default, kind)

    quick = args.quick or (bench_env("quick") or "").lower() in ("1", "true", "yes")
    base = QUICK if quick else FULL
    durations = Durations(
        **{f.name: pick(f.name, getattr(base, f.name), float) for f in fields(Durations)}
    )
    default_output = RESULTS / ("order_reads.quick.json" if quick else "order_reads.json")
    server_env = dict(item.partition("=")[::2] for item in args.server_env)
    if any(not name.startswith("HUB_") for name in server_env):
        parser.error("--server-env takes HUB_NAME=VALUE")
    rate_fraction = pick("rate_fraction", 0.6, float)
    if not 0 < rate_fraction <= 0.6:
        parser.error("--rate-fraction must be in (0, 0.6]: the latency phases run below capacity")
    return Config(
        quick=quick,
        durations=durations,
        database_url=pick("database_url", "postgresql+psycopg://postgres@127.0.0.1:5432/test", str),
        cache_url=pick("cache_url", "redis://127.0.0.1:6379/15", str),
        orders=pick("orders", 100_000, int),
        products=pick("products", 5_000, int),
        capacity_concurrency=pick("capacity_concurrency", 32, int),
        rate_fraction=rate_fraction,
        product_rate=pick("product_rate", 250.0, float),
        max_connections=pick("max_connections", 256, int),
        request_timeout=pick("request_timeout", 30.0, float),
        seed=pick("seed", 20261101, int),
        keep_schema=args.keep_schema or (bench_env("keep_schema") or "") == "1",
        server_env=server_env,
        output=pick("output", default_output, Path),
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def git_state() -> dict[str, Any]:
    """HEAD and whether the tree differs from it (read-only: no optional index locks)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "--no-optional-locks", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    try:
        return {
            "git_sha": git("rev-parse", "HEAD"),
            "git_dirty": bool(git("status", "--porcelain")),
        }
    except (OSError, subprocess.CalledProcessError):
        return {"git_sha": None, "git_dirty": None}


@dataclass
class Run:
    """What one benchmark run shares between phases."""

    config: Config
    schema: str
    admin_key: str
    base_env: dict[str, str]
    log_dir: Path
    server_core: int | None
    prefixes: list[str]

    def target(self) -> Target:
        return Target("127.0.0.1", free_port(), (("Authorization", f"Bearer {self.admin_key}"),))

    def server(self, name: str, target: Target, env: dict[str, str]) -> ApiServer:
        return ApiServer(
            target=target,
            env={**self.base_env, **env},
            log_path=self.log_dir / f"{name}.log",
            core=self.server_core,
        )

    def cache_env(self, name: str) -> dict[str, str]:
        """A never-used key prefix: the phase starts from a cold cache, shared with nobody."""
        prefix = f"bench:{self.schema}:{name}:"
        self.prefixes.append(prefix)
        return {
            "HUB_CACHE_ENABLED": "true",
            "HUB_CACHE_URL": self.config.cache_url,
            "HUB_CACHE_KEY_PREFIX": prefix,
            "HUB_CACHE_TTL_SECONDS": "300",
        }

    def order_paths(self, target: Target, draw_seed: int) -> Callable[[], bytes]:
        ids = ZipfIds(
            range(1, self.config.orders + 1),
            s=ZIPF_S,
            permutation_seed=PERMUTATION_SEED,
            seed=self.config.seed + draw_seed,
        )
        return lambda: target.get(f"/orders/{ids()}")

    def product_paths(self, target: Target, draw_seed: int) -> Callable[[], bytes]:
        ids = ZipfIds(
            range(1, self.config.products + 1),
            s=ZIPF_S,
            permutation_seed=PERMUTATION_SEED + 1,
            seed=self.config.seed + draw_seed,
        )
        return lambda: target.get(f"/products/{ids()}")


def _pool_figures(pool: ConnectionPool) -> dict[str, int]:
    return {"pool_peak": pool.peak, "pool_opened": pool.opened, "pool_retries": pool.retries}


@dataclass(frozen=True)
class Snapshot:
    counters: dict[str, int]
    cpu: CpuTimes


async def _snapshots_at(target: Target, moments: Sequence[float]) -> list[Snapshot]:
    """Server cache counters and host CPU times at each moment (perf_counter): window deltas."""
    taken = []
    for moment in moments:
        await asyncio.sleep(max(0.0, moment - time.perf_counter()))
        taken.append(Snapshot(await cache_counters(target), cpu_times()))
    return taken


def _window_figures(before: Snapshot, after: Snapshot) -> dict[str, Any]:
    return {
        "server_counters": {
            name: after.counters.get(name, 0) - before.counters.get(name, 0)
            for name in after.counters
        },
        "host_cpu_percent": cpu_usage(before.cpu, after.cpu),
    }


async def measure_open_loop(
    run: Run,
    target: Target,
    paths: Callable[[], bytes],
    *,
    rate: float,
    warmup: float,
    seconds: float,
) -> dict[str, Any]:
    """Warm-up then a measured window at a fixed rate: the window's figures, warm-up in brief."""
    pool = ConnectionPool(target, max_size=run.config.max_connections)
    start = time.perf_counter() + 0.2
    window = (start + warmup, start + warmup + seconds)
    snapshots = asyncio.create_task(_snapshots_at(target, window))
    samples = await open_loop(
        pool,
        paths,
        rate=rate,
        duration=warmup + seconds,
        start=start,
        timeout=run.config.request_timeout,
    )
    before, after = await snapshots
    pool.close()
    return {
        "offered_rps": rate,
        **summarize(samples, *window),
        **_pool_figures(pool),
        **_window_figures(before, after),
        "warmup_seconds": warmup,
        "warmup": _brief(summarize(samples, start, window[0])),
    }


def _brief(summary: dict[str, Any]) -> dict[str, Any]:
    keys = ("requests", "non_2xx", "transport_errors", "achieved_rps", "miss_rate")
    return {key: summary[key] for key in keys} | {"p95_ms": summary["latency_ms"]["p95"]}


def _server_miss_rate(deltas: dict[str, int], kind: str) -> float | None:
    hits, misses = deltas.get(f"{kind}_hit", 0), deltas.get(f"{kind}_miss", 0)
    return round(misses / (hits + misses), 5) if hits + misses else None


async def run_phases(run: Run) -> dict[str, Any]:
    config, durations = run.config, run.config.durations
    phases: dict[str, Any] = {}

    # a + b: no cache at all; capacity closed-loop, then latency at 60% of it, open-loop.
    target = run.target()
    async with run.server("uncached", target, {"HUB_CACHE_ENABLED": "false"}) as server:
        pool = ConnectionPool(target, max_size=config.capacity_concurrency)
        began = time.perf_counter()
        window = (
            began + durations.capacity_warmup,
            began + durations.capacity_warmup + durations.capacity_seconds,
        )
        snapshots = asyncio.create_task(_snapshots_at(target, window))
        samples: list[Sample] = await closed_loop(
            pool,
            run.order_paths(target, 1),
            concurrency=config.capacity_concurrency,
            duration=durations.capacity_warmup + durations.capacity_seconds,
            timeout=config.request_timeout,
        )
        pool.close()
        phases["order_capacity"] = {
            "concurrency": config.capacity_concurrency,
            **summarize(samples, *window),
            **_pool_figures(pool),
            **_window_figures(*await snapshots),
        }
        capacity = phases["order_capacity"]["achieved_rps"]
        rate = round(config.rate_fraction * capacity, 1)
        if rate <= 0:
            raise BenchError(f"uncached capacity is {capacity} req/s: nothing to measure")
        phases["order_uncached"] = await measure_open_loop(
            run,
            target,
            run.order_paths(target, 2),
            rate=rate,
            warmup=durations.uncached_warmup,
            seconds=durations.uncached_seconds,
        )
        phases["order_uncached"]["server_log_error_lines"] = server.error_lines()

    # c: the Redis cache, cold at the start, a fresh process.
    target = run.target()
    async with run.server("cached", target, run.cache_env("orders")) as server:
        phases["order_cached"] = await measure_open_loop(
            run,
            target,
            run.order_paths(target, 3),
            rate=rate,
            warmup=durations.cached_warmup,
            seconds=durations.cached_seconds,
        )
        phases["order_cached"]["server_log_error_lines"] = server.error_lines()

    # d: products at a fixed 250/s, again a fresh process and a cold, fresh prefix.
    target = run.target()
    async with run.server("products", target, run.cache_env("products")) as server:
        phases["product_cached"] = await measure_open_loop(
            run,
            target,
            run.product_paths(target, 4),
            rate=config.product_rate,
            warmup=durations.product_warmup,
            seconds=durations.product_seconds,
        )
        phases["product_cached"]["server_log_error_lines"] = server.error_lines()
    return phases


class BenchError(RuntimeError):
    """The run produced no trustworthy figures."""


def headline(phases: dict[str, Any]) -> dict[str, Any]:
    """The flat figures the README and CI compare, derived from the phase summaries."""
    capacity, uncached = phases["order_capacity"], phases["order_uncached"]
    cached, product = phases["order_cached"], phases["product_cached"]
    offered = uncached["offered_rps"]
    uncached_p95 = uncached["latency_ms"]["p95"]
    hit_p95 = cached["hit_latency_ms"]["p95"]
    figures: dict[str, Any] = {
        "order_uncached_capacity_rps": capacity["achieved_rps"],
        "offered_rate_rps": offered,
        "order_uncached_achieved_rps": uncached["achieved_rps"],
        "order_cached_achieved_rps": cached["achieved_rps"],
        "order_cached_achieved_ok": cached["achieved_rps"] >= 0.99 * offered,
        "product_offered_rate_rps": product["offered_rps"],
        "product_achieved_rps": product["achieved_rps"],
        "product_achieved_ok": product["achieved_rps"] >= 0.99 * product["offered_rps"],
    }
    for name, stats in (
        ("order_uncached", uncached["latency_ms"]),
        ("order_hit", cached["hit_latency_ms"]),
        ("order_miss", cached["miss_latency_ms"]),
        ("order_cached_all", cached["latency_ms"]),
        ("product_hit", product["hit_latency_ms"]),
        ("product_all", product["latency_ms"]),
    ):
        for quantile in ("p50", "p95", "p99"):
            figures[f"{name}_{quantile}_ms"] = stats[quantile]
    figures |= {
        "order_miss_rate": cached["miss_rate"],
        "order_miss_rate_server": _server_miss_rate(cached["server_counters"], "order"),
        "order_speedup_p95": (
            round(uncached_p95 / hit_p95, 2) if uncached_p95 is not None and hit_p95 else None
        ),
        "product_miss_rate": _server_miss_rate(product["server_counters"], "product"),
        "product_miss_rate_client": product["miss_rate"],
        "steal_percent": {
            name: phase["host_cpu_percent"].get("cpu", {}).get("steal")
            for name, phase in phases.items()
        },
        "counts": {
            name: {
                key: phase[key]
                for key in ("requests", "ok", "hits", "misses", "non_2xx", "transport_errors")
            }
            for name, phase in phases.items()
        },
    }
    return figures


def targets(figures: dict[str, Any]) -> dict[str, dict[str, Any]]:
    def check(value: Any, threshold: Any, passed: bool) -> dict[str, Any]:
        return {"value": value, "threshold": threshold, "pass": bool(passed)}

    speedup = figures["order_speedup_p95"]
    all_p95, uncached_p95 = figures["order_cached_all_p95_ms"], figures["order_uncached_p95_ms"]
    product_miss = figures["product_miss_rate"]
    achieved = {
        "order_uncached": figures["order_uncached_achieved_rps"] / figures["offered_rate_rps"],
        "order_cached": figures["order_cached_achieved_rps"] / figures["offered_rate_rps"],
        "product_cached": figures["product_achieved_rps"] / figures["product_offered_rate_rps"],
    }
    return {
        "order_speedup_p95 >= 5": check(speedup, 5, speedup is not None and speedup >= 5),
        "order_cached_all_p95_ms <= order_uncached_p95_ms": check(
            all_p95,
            uncached_p95,
            all_p95 is not None and uncached_p95 is not None and all_p95 <= uncached_p95,
        ),
        "product_miss_rate < 0.08": check(
            product_miss, 0.08, product_miss is not None and product_miss < 0.08
        ),
        "achieved >= 99% of offered": check(
            {name: round(ratio, 4) for name, ratio in achieved.items()},
            0.99,
            all(ratio >= 0.99 for ratio in achieved.values()),
        ),
    }


def failures(phases: dict[str, Any]) -> list[str]:
    """Phases whose failed requests exceed the tolerance: their latencies mean nothing."""
    found = []
    for name, phase in phases.items():
        bad = phase["non_2xx"] + phase["transport_errors"]
        if not phase["requests"] or bad > MAX_ERROR_FRACTION * phase["requests"]:
            found.append(
                f"{name}: {bad} of {phase['requests']} requests failed "
                f"(statuses {phase['status_counts']})"
            )
    return found


def pin_to(core: int) -> bool:
    try:
        os.sched_setaffinity(0, {core})
    except (AttributeError, OSError):
        return False
    return True


def drop_schema(database_url: str, schema: str) -> None:
    engine = create_db_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        engine.dispose()


def drop_cache_keys(cache_url: str, prefixes: Sequence[str]) -> int:
    """Remove this run's keys only (never FLUSHDB: the database may be shared)."""
    removed = 0
    client = Redis.from_url(cache_url)
    try:
        for prefix in prefixes:
            batch: list[bytes] = []
            for key in client.scan_iter(match=prefix + "*", count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    removed += int(client.unlink(*batch))
                    batch.clear()
            if batch:
                removed += int(client.unlink(*batch))
    finally:
        client.close()
    return removed


def _exit_on_sigterm(signum: int, _frame: object) -> NoReturn:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks that clean up


def event_loop_runner() -> Callable[[Awaitable[Any]], Any]:
    """uvloop when installed: the generator's own overhead is part of every latency we record."""
    try:
        import uvloop
    except ImportError:
        return lambda coroutine: asyncio.run(coroutine)  # type: ignore[arg-type]

    def run(coroutine: Awaitable[Any]) -> Any:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(coroutine)  # type: ignore[arg-type]

    return run


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    cpu_count = os.cpu_count() or 1
    pinned = cpu_count >= 2 and pin_to(CLIENT_CORE)
    schema = f"bench_{secrets.token_hex(4)}"
    admin_key = secrets.token_urlsafe(24)
    base_env = {
        "HUB_DATABASE_URL": config.database_url,
        "HUB_DB_SCHEMA": schema,
        "HUB_ADMIN_API_KEY": admin_key,
        "HUB_SECRET_KEYS": Fernet.generate_key().decode(),
        "HUB_LOG_LEVEL": "WARNING",
        **config.server_env,
    }
    print(f"bench: schema {schema}, mode {'quick' if config.quick else 'full'}", flush=True)
    began = time.perf_counter()
    engine = create_db_engine(config.database_url, schema=schema)
    run: Run | None = None
    try:
        with tempfile.TemporaryDirectory(prefix="hub-bench-") as log_dir:
            upgrade(engine, schema=schema)
            engine.dispose()
            report = seed(
                config.database_url,
                schema,
                orders=config.orders,
                products=config.products,
                seed=config.seed,
            )
            print(f"bench: seeded in {report.seconds}s: {report}", flush=True)
            run = Run(
                config=config,
                schema=schema,
                admin_key=admin_key,
                base_env=base_env,
                log_dir=Path(log_dir),
                server_core=SERVER_CORE if pinned else None,
                prefixes=[],
            )
            try:
                phases = event_loop_runner()(run_phases(run))
            except BaseException:
                for log in sorted(Path(log_dir).glob("*.log")):
                    print(f"--- {log.name} (tail)\n{log.read_text(errors='replace')[-3000:]}")
                raise
    finally:
        engine.dispose()
        if config.keep_schema:
            print(f"bench: kept schema {schema}")
        else:
            drop_schema(config.database_url, schema)
        if run is not None and run.prefixes:
            drop_cache_keys(config.cache_url, run.prefixes)

    figures = headline(phases)
    checks = targets(figures)
    errors = failures(phases)
    steals = {name: steal for name, steal in figures["steal_percent"].items() if steal is not None}
    noisy = any(steal > NOISY_STEAL_PERCENT for steal in steals.values())
    result: dict[str, Any] = {
        "benchmark": "order_reads",
        "mode": "quick" if config.quick else "full",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        **git_state(),
        "cpu_count": cpu_count,
        "python": sys.version.split()[0],
        **figures,
        "targets": checks,
        "all_targets_met": all(check["pass"] for check in checks.values()),
        "noisy_host": noisy,
        "errors": errors,
        "settings": {
            "durations_seconds": asdict(config.durations),
            "rate_fraction": config.rate_fraction,
            "capacity_concurrency": config.capacity_concurrency,
            "product_rate_rps": config.product_rate,
            "max_connections": config.max_connections,
            "request_timeout_seconds": config.request_timeout,
            "zipf_s": ZIPF_S,
            "seed": config.seed,
            "permutation_seed": PERMUTATION_SEED,
            "dataset": asdict(report),
            "pinning": (
                {"server_core": SERVER_CORE, "loadgen_core": CLIENT_CORE} if pinned else None
            ),
            "server_command": " ".join(
                uvicorn_command("<free port>", SERVER_CORE if pinned else None)
            ),
            "server_env": {
                **{
                    key: value
                    for key, value in base_env.items()
                    if key not in ("HUB_ADMIN_API_KEY", "HUB_SECRET_KEYS")
                },
                "HUB_ADMIN_API_KEY": "<random per run>",
                "HUB_SECRET_KEYS": "<random per run>",
                "uncached": {"HUB_CACHE_ENABLED": "false"},
                "cached": {
                    "HUB_CACHE_ENABLED": "true",
                    "HUB_CACHE_URL": config.cache_url,
                    "HUB_CACHE_KEY_PREFIX": "bench:<schema>:<phase>: (fresh per phase)",
                    "HUB_CACHE_TTL_SECONDS": "300",
                },
                "other HUB_* settings": "defaults (e.g. HUB_DB_POOL_SIZE=20); none inherited",
            },
            "loadgen_loop": "uvloop" if _has_uvloop() else "asyncio",
        },
        "phases": phases,
        "wall_seconds": round(time.perf_counter() - began, 1),
    }
    config.output.parent.mkdir(parents=True, exist_ok=True)
    config.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"bench: wrote {config.output}")
    for name, check in checks.items():
        verdict = "met" if check["pass"] else "MISSED"
        print(f"bench: target {name}: {verdict} (value {check['value']})")
    if noisy:
        print(
            f"bench: WARNING the hypervisor stole more than {NOISY_STEAL_PERCENT}% of the CPU "
            f"in a measured window ({steals}): tail latencies are inflated, compare with care"
        )
    if errors:
        for error in errors:
            print(f"bench: ERROR {error}", file=sys.stderr)
        return 1
    return 0


def _has_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
