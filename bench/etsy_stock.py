"""Benchmark: stock pushes for 300 Etsy listings over 3 shops of one app, from 2 worker
processes sharing the Redis rate limiter, against the Etsy sandbox's strict 10 requests/s.

Question it answers: do two processes together use Etsy's per-app budget (90% or more of it)
without a single 429, in at most 2 calls per listing (a read-modify-write of the inventory)?

What it does, and why that way:

* The sandbox runs in this process under uvicorn; its own counters (requests, 429s, calls per
  listing) are the figures, not the workers' view.
* Two worker processes (this script with ``--worker``) split the listings and push a new
  quantity to each through ``EtsyConnector.set_stock_levels``. They share one
  ``RedisRateLimiter`` (a run-unique key prefix): the budget is per app, not per process.
  A ``RateLimited`` answer is waited out with the ``retry_after`` it carries, as the sync layer's
  re-sent message would.

Run ``make bench`` or ``.venv/bin/python bench/etsy_stock.py``.
Results: ``bench/results/etsy_stock.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from redis import Redis  # noqa: E402

from bench.order_reads import git_state  # noqa: E402
from connectors.contract import (  # noqa: E402
    ConnectorConfig,
    InMemoryCredentialStore,
    RateLimited,
    ShopContext,
    StockLevel,
)
from connectors.etsy.connector import EtsyConnector  # noqa: E402
from connectors.etsy.sandbox import EtsySandbox  # noqa: E402
from connectors.sandbox_server import serve_in_thread  # noqa: E402
from sync.infrastructure.rate_limits import RedisRateLimiter  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "etsy_stock.json"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
LIMIT_PER_SECOND = 10
WORKERS = 2
TARGET_SHARE = 0.9


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listings", type=int, default=300)
    parser.add_argument("--shops", type=int, default=3)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)  # a job file
    return parser.parse_args(argv)


def run_worker(job_file: Path) -> int:
    """One worker process: push every listing of its job, waiting out rate limits."""
    job = json.loads(job_file.read_text())
    limiter = RedisRateLimiter(Redis.from_url(job["redis_url"]), prefix=job["prefix"])
    store = InMemoryCredentialStore({shop["shop_id"]: shop["credentials"] for shop in job["shops"]})
    connector = EtsyConnector(
        ConnectorConfig(
            app_credentials={
                "keystring": job["keystring"],
                "shared_secret": job["shared_secret"],
                "requests_per_second": LIMIT_PER_SECOND,
            },
            rate_limiter=limiter,
            credential_store=store,
        )
    )
    waits = 0
    started = time.time()
    for shop in job["shops"]:
        context = ShopContext(
            shop_id=shop["shop_id"],
            external_id=str(shop["shop_id"]),
            credentials=shop["credentials"],
            api_base_url=job["base_url"],
        )
        for listing_id in shop["listing_ids"]:
            level = StockLevel(item_id=str(listing_id), quantity=7)
            while True:
                try:
                    connector.set_stock_levels(
                        context, [level], idempotency_key=f"bench-{listing_id}"
                    )
                    break
                except RateLimited as limited:
                    waits += 1
                    time.sleep(limited.retry_after or 0.1)
    finished = time.time()
    connector.close()
    print(json.dumps({"waits": waits, "started": started, "finished": finished}))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        return run_worker(args.worker)
    sandbox = EtsySandbox(requests_per_second=LIMIT_PER_SECOND)
    shops = sandbox.seed_benchmark(shops=args.shops, listings=args.listings, quantity=10)
    prefix = f"bench:etsy:{secrets.token_hex(4)}:"
    jobs: list[dict[str, Any]] = [
        {"shops": [], "keystring": sandbox.keystring, "redis_url": REDIS_URL, "prefix": prefix}
        for _ in range(WORKERS)
    ]
    with serve_in_thread(sandbox.app) as base_url:
        for job in jobs:
            job["base_url"] = base_url
            job["shared_secret"] = _shared_secret(sandbox)
        for shop in shops:
            for index, job in enumerate(jobs):
                job["shops"].append(
                    {
                        "shop_id": shop.shop_id,
                        "credentials": shop.credentials(),
                        "listing_ids": list(shop.listing_ids[index::WORKERS]),
                    }
                )
        sandbox.reset_counters()
        scratch = Path(tempfile.mkdtemp(prefix="etsy-bench-"))
        files = []
        for number, job in enumerate(jobs):
            path = scratch / f"job-{number}.json"
            path.write_text(json.dumps(job))
            files.append(path)
        began = time.monotonic()
        workers = [
            subprocess.Popen(
                [sys.executable, __file__, "--worker", str(path)],
                stdout=subprocess.PIPE,
                text=True,
            )
            for path in files
        ]
        outputs = [worker.communicate(timeout=600)[0] for worker in workers]
        wall_seconds = time.monotonic() - began
        codes = [worker.returncode for worker in workers]
        shutil.rmtree(scratch, ignore_errors=True)
    _drop_prefix(prefix)
    calls = sandbox.requests
    listings = len(sandbox.calls_by_listing) or args.listings
    reports = [json.loads(out.strip().splitlines()[-1]) for out in outputs if out.strip()]
    # From the first push to the last, as the workers saw it: process start-up is not pushing.
    seconds = max(r["finished"] for r in reports) - min(r["started"] for r in reports)
    figures: dict[str, Any] = {
        "benchmark": "etsy_stock",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        **git_state(),
        "cpu_count": os.cpu_count(),
        "listings": args.listings,
        "listings_touched": listings,
        "calls": calls,
        "seconds": round(seconds, 2),
        "calls_per_listing": round(calls / args.listings, 3),
        "max_calls_for_one_listing": max(sandbox.calls_by_listing.values(), default=0),
        "listings_per_s": round(args.listings / seconds, 2),
        "calls_per_s": round(calls / seconds, 2),
        "http_429": sandbox.http_429,
        "stock_correct": all(
            sandbox.stock(listing_id) == 7 for shop in shops for listing_id in shop.listing_ids
        ),
        "worker_exit_codes": codes,
        "worker_reports": reports,
        "wall_seconds_with_process_start": round(wall_seconds, 2),
        "rate_limit_waits": sum(r["waits"] for r in reports),
        "settings": {
            "shops": args.shops,
            "workers": WORKERS,
            "limit_per_second": LIMIT_PER_SECOND,
            "rate_limiter": "redis",
        },
    }
    figures["targets"] = {
        "http_429 == 0": figures["http_429"] == 0,
        "calls_per_listing <= 2": figures["calls_per_listing"] <= 2,
        "calls/seconds >= 9": figures["calls_per_s"] >= TARGET_SHARE * LIMIT_PER_SECOND,
        "every listing at its new quantity": figures["stock_correct"],
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    for name, ok in figures["targets"].items():
        if not ok:
            print(f"MISSED: {name}")
    return 0 if all(code == 0 for code in codes) else 1


def _shared_secret(sandbox: EtsySandbox) -> str:
    from connectors.etsy import sandbox as module

    return str(module.DEFAULT_SHARED_SECRET)


def _drop_prefix(prefix: str) -> None:
    client = Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=prefix + "*", count=500))
    if keys:
        client.delete(*keys)
    client.close()


if __name__ == "__main__":
    raise SystemExit(main())
