"""Benchmark: verified webhook deliveries while a flood of forgeries hits from another source.

Questions it answers (issue #11, DESIGN.md flow 1 and ``hub/api/ingress_guard.py``):

1. ``verified_per_s_baseline``: WooCommerce deliveries one API process verifies, stores and
   answers 200 per second (closed loop) with nothing else going on.
2. ``verified_per_s_under_flood``: the same while a closed loop of forged deliveries (32
   connections) hits from another source, with the defaults: past its budget
   (``HUB_WEBHOOK_FAILURE_LIMIT`` per ``HUB_WEBHOOK_FAILURE_WINDOW_SECONDS``) the flood gets a
   cheap 429 (an HMAC, no database, no Redis round trip) held back for
   ``HUB_WEBHOOK_FAILURE_DELAY_SECONDS``. ``flood_answers_per_s`` and their statuses too.
3. ``..._immediate``: the same with the 429 sent at once (delay 0), and ``..._unguarded``: with
   the limit out of reach (10^9), so every forgery pays full price (a shop lookup in
   PostgreSQL in the threadpool, two HMACs, a Redis round trip, a 401): what each part buys.
4. ``..._open_flood`` and ``..._open_flood_unguarded``: the flood at a fixed rate
   (``--flood-rate``, open loop) instead, as a forger with many connections sends it: there
   the delay cannot slow it, and what counts is the cost of each forgery.
``verified_share_kept`` is each phase's verified rate over the baseline.

What it does, and why that way:

* PostgreSQL and Redis as in production (the failure budget lives in Redis), the API under
  uvicorn (``bench.server``) pinned to core 0, the load generator here pinned to core 1. No
  broker, relay or worker: ingress is what is measured (outbox rows simply accumulate).
* A schema and a Redis key prefix of its own per run (a fresh prefix per phase, so no phase
  starts with a budget the previous one spent), removed at the end even on failure.
* Both sources arrive on loopback: the API trusts ``127.0.0.1`` as a proxy
  (``HUB_TRUSTED_PROXIES``) and each request names its source in ``X-Forwarded-For``.
* Verified deliveries are ``order.updated`` bodies for the one shop, each one unique (a new
  event stored every time), signed live with the shop's secret. Forgeries alternate a bad
  signature for the real shop and a properly signed body for shop ids that do not exist: the
  two kinds of failure the ingress must make equally cheap.
* Per phase: the host's CPU split with hypervisor steal (a shared 2-core VM moves the figures).

Run ``.venv/bin/python bench/webhook_flood.py`` (about a minute and a half) or with ``--quick``.
Results: ``bench/results/webhook_flood.json`` (``webhook_flood.quick.json``).
Exit status 0 when it measured, 1 when the figures cannot be trusted (verified deliveries that
were not answered 200, or transport errors).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import secrets
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script, `bench` is not on the path otherwise

from cryptography.fernet import Fernet  # noqa: E402

from bench import services  # noqa: E402
from bench.host import cpu_times, cpu_usage  # noqa: E402
from bench.loadgen import (  # noqa: E402
    ConnectionPool,
    Sample,
    Target,
    closed_loop,
    latency_ms,
    open_loop,
)
from bench.order_reads import event_loop_runner, free_port  # noqa: E402
from bench.server import uvicorn_command  # noqa: E402
from connectors.woocommerce.webhooks import signature  # noqa: E402
from hub.domain.shops import Marketplace  # noqa: E402
from hub.settings import Settings  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SITE = "flood-bench.example.com"
VERIFIED_SOURCE = "198.51.100.10"  # the marketplace's egress address
FLOOD_SOURCE = "203.0.113.66"  # the forger
UNGUARDED_LIMIT = 1_000_000_000
FORGERIES_PREBUILT = 512
OPEN_LOOP_SOCKETS = 512  # the open-loop flood's connection cap
NOISY_EXTRA_LOAD = 1.0  # load average above the CPU count before a phase: neighbours are busy


@dataclass(frozen=True)
class Config:
    quick: bool
    warmup: float
    duration: float
    verified_concurrency: int
    flood_concurrency: int
    flood_rate: float
    database_url: str
    cache_url: str
    request_timeout: float
    output: Path


def parse_args(argv: Sequence[str] | None = None) -> Config:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short windows: a smoke test")
    parser.add_argument("--warmup", type=float, help="seconds before each measured window (3)")
    parser.add_argument("--duration", type=float, help="seconds of each measured window (20)")
    parser.add_argument("--verified-concurrency", type=int, default=8, help="connections (8)")
    parser.add_argument("--flood-concurrency", type=int, default=32, help="connections (32)")
    parser.add_argument(
        "--flood-rate", type=float, default=400.0, help="forgeries/s of the open-loop flood (400)"
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument(
        "--cache-url", default=os.environ.get("BENCH_CACHE_URL", "redis://127.0.0.1:6379/15")
    )
    parser.add_argument("--request-timeout", type=float, default=30.0)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    quick = bool(args.quick)
    return Config(
        quick=quick,
        warmup=args.warmup if args.warmup is not None else (1.0 if quick else 3.0),
        duration=args.duration if args.duration is not None else (4.0 if quick else 20.0),
        verified_concurrency=args.verified_concurrency,
        flood_concurrency=args.flood_concurrency,
        flood_rate=args.flood_rate,
        database_url=args.database_url,
        cache_url=args.cache_url,
        request_timeout=args.request_timeout,
        output=args.output
        or RESULTS / ("webhook_flood.quick.json" if quick else "webhook_flood.json"),
    )


def delivery(order_id: int, secret: str, source: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(
        {"id": order_id, "status": "processing", "date_modified_gmt": "2026-05-01T10:00:00"},
        separators=(",", ":"),
    ).encode()
    return body, {
        "Content-Type": "application/json",
        "X-WC-Webhook-Source": f"https://{SITE}/",
        "X-WC-Webhook-Topic": "order.updated",
        "X-WC-Webhook-Resource": "order",
        "X-WC-Webhook-Event": "updated",
        "X-WC-Webhook-ID": "1",
        "X-WC-Webhook-Signature": signature(body, secret),
        "X-Forwarded-For": source,
    }


def verified_requests(target: Target, shop_id: int, secret: str) -> Callable[[], bytes]:
    counter = itertools.count(1)

    def next_request() -> bytes:
        body, headers = delivery(next(counter), secret, VERIFIED_SOURCE)
        return services.post_request(target, f"/webhooks/woocommerce/{shop_id}", body, headers)

    return next_request


def forged_requests(target: Target, shop_id: int, secret: str) -> Callable[[], bytes]:
    prebuilt = []
    for n in range(FORGERIES_PREBUILT):
        if n % 2:  # a bad signature for the real shop
            body, headers = delivery(10**6 + n, "not-the-secret", FLOOD_SOURCE)
            prebuilt.append(
                services.post_request(target, f"/webhooks/woocommerce/{shop_id}", body, headers)
            )
        else:  # a well-formed delivery for a shop that does not exist
            body, headers = delivery(10**6 + n, secret, FLOOD_SOURCE)
            prebuilt.append(
                services.post_request(
                    target, f"/webhooks/woocommerce/{shop_id + 1000 + n}", body, headers
                )
            )
    cycle = itertools.cycle(prebuilt)
    return lambda: next(cycle)


def window_figures(samples: Sequence[Sample], start: float, end: float) -> dict[str, Any]:
    due = [s for s in samples if start <= s.intended < end]
    statuses = Counter(s.status for s in due)
    seconds = end - start
    return {
        "requests": len(due),
        "per_s": round(len(due) / seconds, 1),
        "status_counts": {str(status): n for status, n in sorted(statuses.items())},
        "status_per_s": {str(status): round(n / seconds, 1) for status, n in statuses.items()},
        "latency_ms": latency_ms([s.done - s.started for s in due]),
    }


async def run_phase(
    name: str,
    config: Config,
    env: dict[str, str],
    log_dir: Path,
    shop_id: int,
    secret: str,
    *,
    flood: str | None,
    pinned: bool,
) -> dict[str, Any]:
    target = Target("127.0.0.1", free_port())
    server = services.api_server(target, env, log_dir / f"{name}.log", pinned=pinned)
    async with server:
        verified_pool = ConnectionPool(target, max_size=config.verified_concurrency)
        flood_pool = ConnectionPool(
            target, max_size=config.flood_concurrency if flood == "closed" else OPEN_LOOP_SOCKETS
        )
        total = config.warmup + config.duration
        load_before = os.getloadavg()[0]
        began = time.perf_counter()
        before = cpu_times()
        loops = [
            closed_loop(
                verified_pool,
                verified_requests(target, shop_id, secret),
                concurrency=config.verified_concurrency,
                duration=total,
                timeout=config.request_timeout,
            )
        ]
        if flood == "closed":
            loops.append(
                closed_loop(
                    flood_pool,
                    forged_requests(target, shop_id, secret),
                    concurrency=config.flood_concurrency,
                    duration=total,
                    timeout=config.request_timeout,
                )
            )
        elif flood == "open":
            loops.append(
                open_loop(
                    flood_pool,
                    forged_requests(target, shop_id, secret),
                    rate=config.flood_rate,
                    duration=total,
                    start=began,
                    timeout=config.request_timeout,
                )
            )
        results = await asyncio.gather(*loops)
        host = cpu_usage(before, cpu_times())
        verified_pool.close()
        flood_pool.close()
        start, end = began + config.warmup, began + total
        phase: dict[str, Any] = {
            "verified": window_figures(results[0], start, end),
            "flood": window_figures(results[1], start, end) if flood else None,
            "host_cpu_percent": host,
            # The bench itself keeps about two cores busy; well above that, neighbours share
            # them and the absolute figures (not the comparison within a run) mean little.
            "load_average_1m": {"before": load_before, "after": os.getloadavg()[0]},
            "server_error_lines": server.error_lines(),
            "server_errors": server.error_excerpt(),
        }
    print(f"bench: {name}: {json.dumps(phase['verified']['status_per_s'])}", flush=True)
    return phase


def seed(config: Config, schema: str, secret_keys: str, webhook_secret: str) -> int:
    """The schema, and one WooCommerce shop signing with ``webhook_secret``."""
    services.migrate(config.database_url, schema)
    settings = Settings(database_url=config.database_url, db_schema=schema, secret_keys=secret_keys)
    with services.seeding(settings) as uow:
        return services.add_shop(
            uow,
            seller_id=services.add_seller(uow, "Flood bench seller"),
            marketplace=Marketplace.WOOCOMMERCE,
            external_id=SITE,
            name="Flood bench shop",
            credentials={
                "consumer_key": "ck_bench",
                "consumer_secret": "cs_bench",
                "webhook_secret": webhook_secret,
            },
        )


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(argv)
    services.exit_on_sigterm()
    cpu_count = os.cpu_count() or 1
    token = secrets.token_hex(4)
    schema = f"bench_flood_{token}"
    prefixes: list[str] = []
    secret_keys = Fernet.generate_key().decode()
    webhook_secret = secrets.token_urlsafe(24)
    defaults = Settings.model_fields
    base_env = services.hub_env(
        database_url=config.database_url,
        schema=schema,
        secret_keys=secret_keys,
        cache_url=config.cache_url,
        extra={"HUB_TRUSTED_PROXIES": "127.0.0.1"},
    )
    unguarded = {"HUB_WEBHOOK_FAILURE_LIMIT": str(UNGUARDED_LIMIT)}
    phase_settings: dict[str, tuple[dict[str, str], str | None]] = {
        "baseline": ({}, None),
        "flood_guarded": ({}, "closed"),
        "flood_guarded_immediate": ({"HUB_WEBHOOK_FAILURE_DELAY_SECONDS": "0"}, "closed"),
        "flood_unguarded": (unguarded, "closed"),
        "open_flood_guarded": ({}, "open"),
        "open_flood_unguarded": (unguarded, "open"),
    }
    print(f"bench: schema {schema}, mode {'quick' if config.quick else 'full'}", flush=True)
    began = time.perf_counter()
    pinned = services.pin_load_generator(cpu_count)
    phases: dict[str, Any] = {}
    try:
        shop_id = seed(config, schema, secret_keys, webhook_secret)
        with tempfile.TemporaryDirectory(prefix="hub-bench-flood-") as log_dir:

            async def run_all() -> None:
                for name, (extra, flood) in phase_settings.items():
                    prefix = f"bench_flood:{token}:{name}:"
                    prefixes.append(prefix)
                    env = {**base_env, "HUB_CACHE_KEY_PREFIX": prefix, **extra}
                    phases[name] = await run_phase(
                        name,
                        config,
                        env,
                        Path(log_dir),
                        shop_id,
                        webhook_secret,
                        flood=flood,
                        pinned=pinned,
                    )

            event_loop_runner()(run_all())
    finally:
        cleaned = services.remove_run_data(config.database_url, schema, config.cache_url, prefixes)
        print(f"bench: cleanup {cleaned}", flush=True)

    def verified_ok(name: str) -> float:
        return float(phases[name]["verified"]["status_per_s"].get("200", 0.0))

    baseline = verified_ok("baseline")
    flooded = [name for name in phases if name != "baseline"]
    figures = {
        "verified_per_s_baseline": baseline,
        "verified_per_s_under_flood": verified_ok("flood_guarded"),
        "verified_per_s_under_flood_immediate": verified_ok("flood_guarded_immediate"),
        "verified_per_s_under_flood_unguarded": verified_ok("flood_unguarded"),
        "verified_per_s_under_open_flood": verified_ok("open_flood_guarded"),
        "verified_per_s_under_open_flood_unguarded": verified_ok("open_flood_unguarded"),
        "verified_share_kept": {
            name: round(verified_ok(name) / baseline, 3) if baseline else None for name in flooded
        },
        "flood_answers_per_s": {name: phases[name]["flood"]["status_per_s"] for name in flooded},
        "verified_p99_ms": {
            name: phase["verified"]["latency_ms"]["p99"] for name, phase in phases.items()
        },
        "host_busy_percent": {
            name: round(100 - phase["host_cpu_percent"].get("cpu", {}).get("idle", 100.0), 1)
            for name, phase in phases.items()
        },
        "load_average_1m_before": {
            name: round(phase["load_average_1m"]["before"], 2) for name, phase in phases.items()
        },
    }
    # Before the first phase nothing of ours runs yet; later phases inherit our own load.
    noisy = phases["baseline"]["load_average_1m"]["before"] > cpu_count + NOISY_EXTRA_LOAD
    errors = []
    for name, phase in phases.items():
        statuses = phase["verified"]["status_counts"]
        bad = sum(n for status, n in statuses.items() if status != "200")
        if bad or not statuses:
            errors.append(f"{name}: verified deliveries not answered 200: {statuses}")
        flood_statuses = (phase["flood"] or {}).get("status_counts", {})
        if "0" in flood_statuses:
            errors.append(f"{name}: {flood_statuses['0']} forged requests got no answer")
    result: dict[str, Any] = {
        **services.result_header("webhook_flood", quick=config.quick, cpu_count=cpu_count),
        **figures,
        "noisy_host": noisy,
        "errors": errors,
        "cleanup": cleaned,
        "settings": {
            **{key: value for key, value in asdict(config).items() if key != "output"},
            "failure_limit": defaults["webhook_failure_limit"].default,
            "failure_window_seconds": defaults["webhook_failure_window_seconds"].default,
            "failure_delay_seconds": defaults["webhook_failure_delay_seconds"].default,
            "phases": {
                name: {"env": env, "flood": mode} for name, (env, mode) in phase_settings.items()
            },
            "unguarded_failure_limit": UNGUARDED_LIMIT,
            "sources": {"verified": VERIFIED_SOURCE, "flood": FLOOD_SOURCE},
            "flood": "alternating: bad signature for the shop / signed body for unknown shop ids",
            "pinning": (
                {"api_core": services.SERVER_CORE, "loadgen_core": services.CLIENT_CORE}
                if pinned
                else None
            ),
            "api_command": " ".join(
                uvicorn_command("<free port>", services.SERVER_CORE if pinned else None)
            ),
            "hub_env": services.recorded_env(
                base_env, services.HIDDEN_ENV, notes={"HUB_CACHE_KEY_PREFIX": "<per phase>"}
            ),
        },
        "phases": phases,
        "wall_seconds": round(time.perf_counter() - began, 1),
    }
    config.output.parent.mkdir(parents=True, exist_ok=True)
    config.output.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(json.dumps({key: result[key] for key in figures}, indent=2))
    print(f"bench: wrote {config.output}")
    if noisy:
        print(
            "bench: WARNING noisy host: the load average before the run exceeded "
            f"{cpu_count + NOISY_EXTRA_LOAD}; compare phases within this run only"
        )
    for error in errors:
        print(f"bench: ERROR {error}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
