"""Benchmark: pull 2,000 orders from the Shopify sandbox at Shopify's real rate limit.

Question it answers: does the connector keep Shopify's cost bucket busy (restore 100 points/s,
bucket 1,000) without ever being throttled, and does every order reach the hub?

What it does, and why that way:

* The sandbox runs under uvicorn in a thread with Shopify's documented bucket; its own counters
  (actual cost charged, THROTTLED answers) are the figures, not the client's view.
* The connector pages through ``orders(sortKey: UPDATED_AT)`` with the shared rate limiter,
  which reserves each query's requested cost and adopts the ``throttleStatus`` Shopify reports.
  When the limiter says the wait is longer than a worker may block, this loop sleeps the
  ``retry_after`` it was given, as the sync layer's re-sent message would.
* Every page is imported into an embedded hub (SQLite) through ``import_order``, so "every order
  imported" is counted in the hub's database.
* budget_utilization = Σ actual cost / (initial bucket + restore rate x seconds): 1.0 means no
  point of the budget was left unused.

Run ``make bench`` or ``.venv/bin/python bench/shopify_pull.py [--orders N]``.
Results: ``bench/results/shopify_pull.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from bench.order_reads import git_state  # noqa: E402
from connectors.contract import ConnectorConfig, RateLimited, ShopContext  # noqa: E402
from connectors.ratelimit import InProcessRateLimiter  # noqa: E402
from connectors.sandbox_server import serve_in_thread  # noqa: E402
from connectors.shopify.connector import ShopifyConnector  # noqa: E402
from connectors.shopify.sandbox import ShopifySandbox  # noqa: E402
from hub.application import orders as order_service  # noqa: E402
from hub.application import shops  # noqa: E402
from hub.application.sellers import create_seller  # noqa: E402
from hub.bootstrap import Container, bootstrap  # noqa: E402
from hub.domain.sellers import Principal  # noqa: E402
from hub.domain.shops import Marketplace  # noqa: E402
from hub.infrastructure.migrations import upgrade  # noqa: E402
from hub.infrastructure.tables import OrderRow  # noqa: E402
from hub.settings import Settings  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "shopify_pull.json"
BUCKET_SIZE = 1000.0
RESTORE_RATE = 100.0
TARGET_UTILIZATION = 0.8


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--lines-min", type=int, default=1)
    parser.add_argument("--lines-max", type=int, default=3)
    parser.add_argument("--max-inline-wait", type=float, default=1.0)
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def hub_with_shop(data_dir: Path, shop_domain: str) -> tuple[Container, int]:
    container = bootstrap(Settings(data_dir=data_dir))
    upgrade(container.engine)
    with container.uow() as uow:
        seller, _ = create_seller(uow, "Bench seller")
        assert seller.id is not None
        shop = shops.create_shop(
            uow,
            shops.CreateShop(
                seller_id=seller.id,
                marketplace=Marketplace.SHOPIFY,
                external_id=shop_domain,
                name="Bench shop",
            ),
            Principal(seller_id=seller.id),
        )
        uow.commit()
    assert shop.id is not None
    return container, shop.id


def pull_everything(
    connector: ShopifyConnector, shop: ShopContext, container: Container, since: datetime
) -> dict[str, int]:
    """Page to the end, importing each page in one unit of work; wait out rate limits."""
    cursor: str | None = None
    pages = waits = imported = 0
    while True:
        try:
            page = connector.list_orders_changed(shop, since=since, cursor=cursor)
        except RateLimited as limited:
            waits += 1
            time.sleep(limited.retry_after or 1.0)
            continue
        pages += 1
        with container.uow() as uow:
            for order in page.orders:
                order_service.import_order(uow, order)
            uow.commit()
        imported += len(page.orders)
        if page.next_cursor is None:
            return {"pages": pages, "rate_limit_waits": waits, "orders_returned": imported}
        cursor = page.next_cursor


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    sandbox = ShopifySandbox(bucket_size=BUCKET_SIZE, restore_rate=RESTORE_RATE)
    start = datetime(2026, 6, 1, tzinfo=UTC)
    sandbox.bulk_add_orders(
        args.orders,
        (args.lines_min, args.lines_max),
        start=start,
        spacing=timedelta(seconds=7),
        seed=7,
    )
    limiter = InProcessRateLimiter(max_inline_wait=args.max_inline_wait)
    connector = ShopifyConnector(
        ConnectorConfig(api_version=sandbox.api_version), rate_limiter=limiter
    )
    with tempfile.TemporaryDirectory() as scratch, serve_in_thread(sandbox.app) as base_url:
        container, shop_id = hub_with_shop(Path(scratch), sandbox.shop_domain)
        shop = ShopContext(
            shop_id=shop_id,
            external_id=sandbox.shop_domain,
            credentials={"access_token": sandbox.access_token},
            api_base_url=base_url,
            location_id=sandbox.location_id,
        )
        began = time.monotonic()
        progress = pull_everything(connector, shop, container, since=start - timedelta(seconds=1))
        seconds = time.monotonic() - began
        with container.engine.connect() as db:
            in_hub = db.execute(select(func.count()).select_from(OrderRow)).scalar_one()
        container.close()
    connector.close()
    budget = BUCKET_SIZE + RESTORE_RATE * seconds
    figures: dict[str, Any] = {
        "benchmark": "shopify_pull",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        **git_state(),
        "cpu_count": os.cpu_count(),
        "orders": args.orders,
        "orders_in_hub": in_hub,
        "seconds": round(seconds, 2),
        "actual_cost": sandbox.cost_spent,
        "budget_points": round(budget, 1),
        "budget_utilization": round(sandbox.cost_spent / budget, 4),
        "throttled_responses": sandbox.throttled_responses,
        "sandbox_requests": sandbox.requests,
        **progress,
        "settings": {
            "bucket_size": BUCKET_SIZE,
            "restore_rate": RESTORE_RATE,
            "lines_per_order": [args.lines_min, args.lines_max],
            "max_inline_wait": args.max_inline_wait,
            "api_version": sandbox.api_version,
        },
    }
    checks = {
        "every_order_imported": in_hub == args.orders,
        "budget_utilization_at_least_0.8": figures["budget_utilization"] >= TARGET_UTILIZATION,
        "no_throttled_responses": sandbox.throttled_responses == 0,
    }
    figures["targets"] = checks
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    for name, ok in checks.items():
        if not ok:
            print(f"MISSED: {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
