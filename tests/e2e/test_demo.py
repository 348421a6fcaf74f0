"""The demo scenario end to end (``hub demo``): the three marketplace sandboxes, the hub in
process, buyers ordering and the print floor shipping, then the report's checks.

Embedded through the CLI (what ``make test`` runs), with chaos, and on PostgreSQL, Redis and
RabbitMQ. Small order counts at a higher rate keep each under a minute; the checks are the
ones ``hub demo`` exits on.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dramatiq
import pytest
from typer.testing import CliRunner

from cli import demo
from cli.main import app
from tests.conftest import ADMIN_KEY, Backend, services_backend
from tests.e2e.rabbitmq_support import delete_queues, require_rabbitmq, unique_queue_prefix

REPORT_FIELDS = {
    "orders_placed",
    "orders_imported",
    "duplicate_orders",
    "missing_orders",
    "stock_mismatches",
    "stock_pushes",
    "fulfillments_shipped",
    "fulfillments_pushed",
    "duplicate_tracking_writes",
    "images_pushed",
    "bound_listings",
    "failed_operations",
    "webhook_to_order_p50_ms",
    "webhook_to_order_p95_ms",
    "stock_to_marketplace_p95_ms",
    "elapsed_s",
}


def assert_clean(report: dict[str, Any], orders: int) -> None:
    assert set(report) >= REPORT_FIELDS
    assert report["ok"] is True, report
    assert report["orders_placed"] == report["orders_imported"] == orders
    for figure in (
        "missing_orders",
        "duplicate_orders",
        "stock_mismatches",
        "duplicate_tracking_writes",
        "failed_operations",
    ):
        assert report[figure] == 0, figure
    assert report["fulfillments_shipped"] == report["fulfillments_pushed"] == orders
    assert set(report["stock_pushes"]) == {"shopify", "etsy", "woocommerce"}
    assert min(report["stock_pushes"].values()) >= 1
    assert report["bound_listings"] == 24  # 8 products in each of three shops
    assert report["images_pushed"] >= report["bound_listings"]
    assert report["listings_without_images"] == 0
    assert report["drained"] is True
    assert report["webhook_to_order_p95_ms"] is not None


@pytest.fixture
def services(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """PostgreSQL schema, Redis prefix and RabbitMQ queue prefix of this test."""
    url = require_rabbitmq()
    prefix = unique_queue_prefix()
    previous = dramatiq.broker.global_broker  # the demo's engine sets the global broker
    try:
        yield from services_backend(request, broker_url=url, broker_queue_prefix=prefix)
    finally:
        delete_queues(url, prefix)
        if previous is not None:
            dramatiq.set_broker(previous)


def test_hub_demo_passes_on_the_embedded_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUB_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("HUB_DATABASE_URL", raising=False)
    monkeypatch.delenv("HUB_BROKER_URL", raising=False)
    monkeypatch.delenv("HUB_CACHE_URL", raising=False)
    path = tmp_path / "report.json"
    result = CliRunner().invoke(app, ["demo", "--orders", "30", "--rate", "6", "--json", str(path)])
    assert result.exit_code == 0, result.output
    assert "PASSED" in result.output
    assert "webhook->order p50" in result.output
    report = json.loads(path.read_text())
    assert_clean(report, 30)
    assert report["chaos"] is False
    assert report["webhooks"]["dropped"] == 0


def test_the_demo_survives_chaos(tmp_path: Path) -> None:
    """Lost, duplicated and reordered webhooks, 5xx and 429 bursts from every marketplace and
    a worker restart: still every order once, every tracking number once, stock equal."""
    lines: list[str] = []
    settings = demo.Settings(data_dir=tmp_path / "var", admin_api_key=ADMIN_KEY)
    path = tmp_path / "chaos.json"
    options = demo.DemoOptions(orders=60, rate=6.0, chaos=True, json_path=path)
    assert demo.run(options, settings, echo=lines.append) == 0, "\n".join(lines)
    report = json.loads(path.read_text())
    assert_clean(report, 60)
    assert report["worker_restarts"] == 1
    webhooks = report["webhooks"]
    assert webhooks["dropped"] > 0  # those orders came in by polling
    assert webhooks["duplicated"] > 0
    assert webhooks["reordered"] > 0
    errors = report["marketplace_errors"]
    assert sum(answers["5xx"] for answers in errors.values()) > 0
    assert sum(answers["429"] for answers in errors.values()) > 0


@pytest.mark.services
def test_the_demo_passes_on_postgresql_redis_and_rabbitmq(services: Backend) -> None:
    lines: list[str] = []
    options = demo.DemoOptions(orders=30, rate=6.0, chaos=True)
    assert demo.run(options, services.settings, echo=lines.append) == 0, "\n".join(lines)
    output = "\n".join(lines)
    assert "PostgreSQL schema" in output
    assert "RabbitMQ, Redis" in output
    assert "PASSED" in output


def test_hub_sandbox_prints_where_the_simulators_listen_and_their_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import httpx

    import cli.main

    seen: dict[str, int] = {}

    def probe() -> None:  # instead of waiting for Ctrl-C: the sandboxes answer meanwhile
        for name, url in (
            ("etsy", _url(result_lines, "etsy")),
            ("woocommerce", _url(result_lines, "woocommerce") + "/wp-json/wc/v3/products"),
        ):
            seen[name] = httpx.get(url, timeout=5).status_code

    result_lines: list[str] = []
    monkeypatch.setattr(cli.main, "_wait_for_signal", probe)
    monkeypatch.setattr(cli.main.typer, "echo", lambda text="", **_: result_lines.append(text))
    result = CliRunner().invoke(app, ["sandbox"])
    assert result.exit_code == 0, result.output
    text = "\n".join(result_lines)
    assert "HUB_SHOPIFY_CLIENT_SECRET=" in text
    assert '"consumer_key": "ck_demo_' in text
    assert "MTN-TEE-M" in text
    assert seen["woocommerce"] == 401  # it answers, and wants its credentials
    assert seen["etsy"] in (401, 403, 404)


def _url(lines: list[str], marketplace: str) -> str:
    for line in "\n".join(lines).splitlines():
        words = line.split()
        if words[:1] == [marketplace] and len(words) > 1 and words[1].startswith("http://"):
            return words[1]
    raise AssertionError(f"no URL printed for {marketplace}")
