"""`GET /metrics` on both backends: each metric's value after seeding known state, the text
format, the admin key, rate-limit waits (in-process and shared through Redis) and RabbitMQ's own
queue depths."""

from __future__ import annotations

import math
import re
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from connectors.contract import RateLimited
from connectors.ratelimit import (
    PROCESS_WAITS,
    CostBucket,
    InProcessRateLimiter,
    RateLimiter,
    RequestWindows,
)
from hub.api.app import create_app
from hub.api.metrics import BrokerDepths
from hub.bootstrap import Container
from hub.infrastructure.clock import utcnow
from hub.settings import Settings
from sync.infrastructure.metrics import broker_queue_names, read_broker_queue_depths
from sync.infrastructure.rate_limits import RedisRateLimiter
from sync.worker.broker import QUEUES
from tests.conftest import ADMIN_KEY, REDIS_URL, Backend
from tests.integration.sync_seed import SyncSeed

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
SAMPLE = re.compile(
    r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_]\w*="(?:[^"\\]|\\.)*",?)*\})? (\S+)$'
)
Metrics = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Metrics:
    """Samples by (name, labels); asserts the text format on the way: every family has one HELP
    and one TYPE line before its samples, every sample line parses."""
    assert text.endswith("\n")
    declared: dict[str, set[str]] = {}
    current: str | None = None
    samples: Metrics = {}
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            name = line.split(" ")[2]
            declared.setdefault(name, set()).add(line[2:6])
            if line.startswith("# TYPE "):
                assert line.split(" ")[3] in {"counter", "gauge", "summary", "histogram"}
                current = name
            continue
        match = SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        name, labels, value = match.group(1), match.group(2), match.group(3)
        assert name == current, f"{name} outside its family"
        pairs = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', labels or ""))
        assert (name, pairs) not in samples, f"duplicate sample {line!r}"
        samples[(name, pairs)] = float(value)
    for name, kinds in declared.items():
        assert kinds == {"HELP", "TYPE"}, name
    return samples


def value(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics[(name, frozenset(labels.items()))]


@pytest.fixture(autouse=True)
def no_process_waits() -> Iterator[None]:
    PROCESS_WAITS.clear()
    yield
    PROCESS_WAITS.clear()


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container=container)) as test_client:
        yield test_client


def scrape(client: TestClient) -> Metrics:
    response = client.get("/metrics", headers=ADMIN)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return parse(response.text)


def test_metrics_need_the_admin_key(client: TestClient, container: Container) -> None:
    seed = SyncSeed(container)
    assert client.get("/metrics").status_code == 401
    seller = client.post("/sellers", json={"name": "Seller"}, headers=ADMIN).json()
    headers = {"Authorization": f"Bearer {seller['api_key']}"}
    assert client.get("/metrics", headers=headers).status_code == 403
    assert seed.shop_a  # the seller's key is real: only the admin's reads metrics


def test_an_idle_hub_reports_zeros_and_no_lag(client: TestClient, container: Container) -> None:
    SyncSeed(container)
    metrics = scrape(client)
    assert value(metrics, "hub_outbox_pending") == 0
    assert value(metrics, "hub_outbox_lag_seconds") == 0
    assert value(metrics, "hub_queue_depth", source="operations", queue="stock.batch") == 0
    assert value(metrics, "hub_queue_depth", source="outbox", queue="webhooks") == 0
    assert value(metrics, "hub_queue_depth", source="triggers", queue="orders.pull") == 0
    assert value(metrics, "hub_oldest_pending_push_seconds", kind="stock") == 0
    assert value(metrics, "hub_oldest_unhandled_event_seconds") == 0
    assert math.isnan(value(metrics, "hub_webhook_to_order_seconds", quantile="0.5"))
    assert value(metrics, "hub_webhook_to_order_events") == 0
    for marketplace in ("etsy", "shopify", "woocommerce"):
        for outcome in ("inline", "deferred"):
            labels = {"marketplace": marketplace, "outcome": outcome}
            assert value(metrics, "hub_rate_limit_waits_total", **labels) == 0
            assert value(metrics, "hub_rate_limit_wait_seconds_total", **labels) == 0
    assert not [key for key in metrics if key[0] == "hub_failed_operations"]
    assert not [key for key in metrics if key[0] == "hub_broker_queues_up"]  # no RabbitMQ


def test_each_metric_reports_the_seeded_state(client: TestClient, container: Container) -> None:
    seed = SyncSeed(container)
    now = utcnow()
    ago = lambda seconds: now - timedelta(seconds=seconds)  # noqa: E731
    # outbox: one published long ago, two waiting (the older first, as ids grow with time)
    seed.outbox(ago(1000), published_at=ago(999))
    seed.outbox(ago(120), queue="stock")
    seed.outbox(ago(30), queue="webhooks")
    # operations: queued and running pushes, a queued scan, failures per shop
    seed.operation("stock.batch", "queued", ago(300), seed.shop_a)
    seed.operation("fulfillment.push", "running", ago(100), seed.shop_a)
    seed.operation("catalog.pull", "queued", ago(1000), seed.shop_b)
    seed.operation("stock.batch", "failed", ago(5000), seed.shop_a)
    seed.operation("fulfillment.push", "failed", ago(5000), seed.shop_a)
    seed.operation("catalog.pull", "failed", ago(5000), seed.shop_b)
    seed.operation("privacy.export", "failed", ago(5000), None)
    seed.operation("stock.batch", "succeeded", ago(9000), seed.shop_a)
    # triggers: a stock push due a minute ago, images not due yet, a queued pull
    seed.trigger("stock", seed.shop_a, ago(60))
    seed.trigger("images", seed.shop_a, now + timedelta(hours=1))
    seed.trigger("orders.pull", seed.shop_b, ago(500))
    # events: ten handled in the window (1..10 s each), one handled long ago (outside it),
    # one waiting, one rejected
    for i in range(10):
        seed.event("handled", ago(60 + i), ago(60 + i - (i + 1)), seed.shop_a)
    seed.event("handled", ago(7200), ago(6200), seed.shop_a)
    seed.event("received", ago(50), None, seed.shop_b)
    seed.event("rejected", ago(40))

    metrics = scrape(client)

    assert value(metrics, "hub_outbox_pending") == 2
    assert 119 <= value(metrics, "hub_outbox_lag_seconds") <= 130
    depth = "hub_queue_depth"
    assert value(metrics, depth, source="outbox", queue="stock") == 1
    assert value(metrics, depth, source="outbox", queue="webhooks") == 1
    assert value(metrics, depth, source="outbox", queue="images") == 0
    assert value(metrics, depth, source="operations", queue="stock.batch") == 1
    assert value(metrics, depth, source="operations", queue="catalog.pull") == 1
    assert value(metrics, depth, source="operations", queue="fulfillment.push") == 0  # running
    assert value(metrics, "hub_operations_running", kind="fulfillment.push") == 1
    assert value(metrics, depth, source="triggers", queue="stock") == 1
    assert value(metrics, depth, source="triggers", queue="images") == 1
    assert value(metrics, depth, source="triggers", queue="orders.pull") == 1
    assert value(metrics, depth, source="events", queue="received") == 1

    push = "hub_oldest_pending_push_seconds"
    assert 59 <= value(metrics, push, kind="stock") <= 70
    assert value(metrics, push, kind="images") == 0  # queued, not due yet
    assert 299 <= value(metrics, push, kind="stock.batch") <= 310
    assert 99 <= value(metrics, push, kind="fulfillment.push") <= 110
    assert value(metrics, push, kind="images.listing") == 0
    assert not [key for key in metrics if key[0] == push and ("kind", "orders.pull") in key[1]]

    assert 49 <= value(metrics, "hub_oldest_unhandled_event_seconds") <= 60
    lag = "hub_webhook_to_order_seconds"
    assert value(metrics, "hub_webhook_to_order_events") == 10
    assert value(metrics, lag, quantile="0.5") == pytest.approx(5, abs=0.01)
    assert value(metrics, lag, quantile="0.95") == pytest.approx(10, abs=0.01)
    assert value(metrics, lag, quantile="0.99") == pytest.approx(10, abs=0.01)
    assert value(metrics, lag, quantile="1") == pytest.approx(10, abs=0.01)

    failed = {
        dict(labels)["shop_id"]: count
        for (name, labels), count in metrics.items()
        if name == "hub_failed_operations"
    }
    assert failed == {str(seed.shop_a): 2, str(seed.shop_b): 1, "none": 1}


def test_the_cache_counters_stay(client: TestClient, container: Container) -> None:
    product_id = SyncSeed(container).world.product.id
    for _ in range(2):
        client.get(f"/products/{product_id}", headers=ADMIN)
    metrics = scrape(client)
    assert value(metrics, "hub_cache_reads_total", kind="product", result="miss") == 1
    assert value(metrics, "hub_cache_reads_total", kind="product", result="hit") == 1


def test_rate_limit_waits_are_counted_per_marketplace(
    backend: Backend, client: TestClient, container: Container
) -> None:
    """In-process limiters count in this process; the Redis limiter counts in Redis, so the
    API reports every worker's waits."""
    if backend.name == "services":
        from redis import Redis

        client_redis = Redis.from_url(backend.settings.cache_url or "")
        prefix = backend.settings.cache_key_prefix
        patient: RateLimiter = RedisRateLimiter(client_redis, prefix=prefix, max_inline_wait=1)
        impatient: RateLimiter = RedisRateLimiter(client_redis, prefix=prefix, max_inline_wait=0)
    else:
        patient = InProcessRateLimiter(max_inline_wait=1.0)
        impatient = InProcessRateLimiter(max_inline_wait=0)
    bucket = CostBucket("shopify", capacity=10, restore_per_second=100)
    window = RequestWindows("etsy", ((1, 60.0),))
    patient.acquire(bucket, "a.myshopify.com", cost=10)
    patient.acquire(bucket, "a.myshopify.com", cost=5)  # 0.05 s short: slept inline
    impatient.acquire(window, "app")
    with pytest.raises(RateLimited):
        impatient.acquire(window, "app")  # 60 s away: deferred

    metrics = scrape(client)
    waits, seconds = "hub_rate_limit_waits_total", "hub_rate_limit_wait_seconds_total"
    assert value(metrics, waits, marketplace="shopify", outcome="inline") == 1
    assert 0 < value(metrics, seconds, marketplace="shopify", outcome="inline") <= 0.051
    assert value(metrics, waits, marketplace="shopify", outcome="deferred") == 0
    assert value(metrics, waits, marketplace="etsy", outcome="deferred") == 1
    assert 59 <= value(metrics, seconds, marketplace="etsy", outcome="deferred") <= 60
    assert value(metrics, waits, marketplace="etsy", outcome="inline") == 0
    assert value(metrics, waits, marketplace="woocommerce", outcome="inline") == 0
    if backend.name == "services":
        assert PROCESS_WAITS.snapshot() == {}  # counted in Redis only: no double count
    else:
        assert PROCESS_WAITS.snapshot()[("etsy", "deferred")][0] == 1


def test_the_window_setting_bounds_the_webhook_lag(
    backend: Backend, client: TestClient, container: Container
) -> None:
    seed = SyncSeed(container)
    now = utcnow()
    seed.event("handled", now - timedelta(minutes=8), now - timedelta(minutes=7), seed.shop_a)
    metrics = scrape(client)  # the default window is 5 minutes
    assert value(metrics, "hub_webhook_to_order_events") == 0
    if "metrics_window_minutes" in Settings.model_fields:
        wider = backend.settings.model_copy(update={"metrics_window_minutes": 10})
    else:  # until the setting exists: the attribute is read with getattr
        wider = backend.settings.model_copy()
        object.__setattr__(wider, "metrics_window_minutes", 10)
    container.settings = wider
    metrics = scrape(client)
    assert value(metrics, "hub_webhook_to_order_events") == 1
    assert value(metrics, "hub_webhook_to_order_seconds", quantile="1") == pytest.approx(60)


# ---------------------------------------------------------------------------------------------
# RabbitMQ's own queue depths
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def rabbitmq() -> str:
    from tests.e2e.rabbitmq_support import RABBITMQ_URL, require_rabbitmq

    return require_rabbitmq(RABBITMQ_URL)


@pytest.fixture
def queue_prefix(rabbitmq: str) -> Iterator[str]:
    import pika  # type: ignore[import-untyped]

    prefix = f"hubtest.metrics.{uuid.uuid4().hex[:8]}."
    yield prefix
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq))
    channel = connection.channel()
    for name in broker_queue_names(prefix, QUEUES):
        channel.queue_delete(name)
    connection.close()


def _publish(url: str, queue: str, count: int) -> None:
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.queue_declare(queue, durable=True)
    for n in range(count):
        channel.basic_publish("", queue, f"message {n}".encode())
    connection.close()


def _wait_for_depth(url: str, names: dict[str, str], name: str, depth: int) -> dict[str, int]:
    deadline = time.monotonic() + 5
    while True:
        found = read_broker_queue_depths(url, names, 2.0)
        if found.get(name) == depth or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_broker_depths_read_ready_messages_and_skip_undeclared_queues(
    rabbitmq: str, queue_prefix: str
) -> None:
    _publish(rabbitmq, f"{queue_prefix}stock", 3)
    _publish(rabbitmq, f"{queue_prefix}stock.XQ", 1)
    names = broker_queue_names(queue_prefix, QUEUES)
    found = _wait_for_depth(rabbitmq, names, f"{queue_prefix}stock", 3)
    assert found == {f"{queue_prefix}stock": 3, f"{queue_prefix}stock.XQ": 1}


def test_metrics_report_the_brokers_depths(
    request: pytest.FixtureRequest, rabbitmq: str, queue_prefix: str
) -> None:
    from hub.bootstrap import bootstrap
    from tests.conftest import services_backend

    backends = services_backend(request, broker_url=rabbitmq, broker_queue_prefix=queue_prefix)
    backend = next(backends)
    container = bootstrap(backend.settings)
    try:
        _publish(rabbitmq, f"{queue_prefix}webhooks", 2)
        _wait_for_depth(
            rabbitmq, broker_queue_names(queue_prefix, QUEUES), f"{queue_prefix}webhooks", 2
        )
        with TestClient(create_app(container=container)) as test_client:
            metrics = scrape(test_client)
        assert value(metrics, "hub_broker_queues_up") == 1
        assert value(metrics, "hub_queue_depth", source="broker", queue="webhooks") == 2
        assert ("hub_queue_depth", frozenset({("source", "broker"), ("queue", "stock")})) not in (
            metrics
        )
    finally:
        container.close()
        next(backends, None)


def test_an_unreachable_broker_is_reported_down_not_an_error() -> None:
    settings = Settings(broker_url="amqp://guest:guest@127.0.0.1:1/%2F", cache_url=REDIS_URL)
    depths = BrokerDepths(settings)
    started = time.monotonic()
    assert depths.read() is None
    assert depths.read() is None  # the answer is reused: no second connection attempt
    assert time.monotonic() - started < 5
