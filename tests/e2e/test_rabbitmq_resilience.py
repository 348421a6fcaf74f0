"""Orders in on RabbitMQ survive the failures RabbitMQ deployments actually have.

What these tests prove, each end to end (Shopify sandbox → API → inbound_events + outbox →
relay → RabbitMQ → `hub worker` process → sandbox → orders), on PostgreSQL, Redis and RabbitMQ:

1. A worker process killed with SIGKILL in the middle of a batch loses nothing: RabbitMQ
   redelivers what the dead consumer had not acked, a new `hub worker` handles every event, and
   the events it re-runs (the ones killed mid-call) import their order once: exactly N orders.
2. A dropped broker connection loses no message, whether the network drops it (a proxy resets
   every TCP connection and refuses new ones for a while, with webhooks still arriving) or
   RabbitMQ closes it (CONNECTION_FORCED through `rabbitmqctl`, for this test's connections only):
   the relay re-publishes what it could not confirm, the same worker process reconnects by itself
   (Dramatiq restarts its consumers; no restart of `hub worker` is needed), and every event ends
   handled, each order imported once, nothing dead-lettered. Rows whose publish failed wait for
   their outbox lease (30 s) before the relay sends them again, which is most of that test's time.
   The `rabbitmqctl` variant skips where `rabbitmqctl` cannot reach the node (not root, no tool).

Isolation on the shared servers: the session's own PostgreSQL schema (truncated after each test),
a Redis key prefix per test, a queue-name prefix per test whose queues (with their .DQ and .XQ)
are deleted afterwards, and connections closed only when they are ours. A missing RabbitMQ skips
these tests with the reason, or fails them under HUB_TEST_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import dramatiq
import dramatiq.broker
import dramatiq.errors
import pytest
from dramatiq.worker import CONSUMER_RESTART_DELAY_SECS
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from connectors.sandbox_server import serve_in_thread
from connectors.shopify.sandbox import ShopifySandbox
from hub.api.app import create_app
from hub.application import shops
from hub.application.sellers import create_seller
from hub.bootstrap import Container, bootstrap
from hub.domain.sellers import Principal
from hub.domain.shops import Marketplace
from hub.infrastructure.tables import OrderRow, table_of
from hub.settings import Settings
from sync.infrastructure import outbox
from sync.infrastructure.tables import InboundEventRow, OutboxRow
from sync.worker.engine import SyncEngine
from tests.conftest import REQUIRE_SERVICES, SECRET_KEY, Backend
from tests.e2e.rabbitmq_support import (
    RABBITMQ_URL,
    BrokerProxy,
    HubProcess,
    close_connections_from_ports,
    dead_letters,
    delete_queues,
    hub_env,
    queue_stats,
    rabbitmqctl_usable,
    require_rabbitmq,
    unique_queue_prefix,
    wait_until,
)

pytestmark = [
    pytest.mark.services,
    # Only the services flavour of `backend`: RabbitMQ workers are separate processes, so the
    # database and the cache must be servers they can share (PostgreSQL schema, Redis prefix).
    pytest.mark.parametrize("backend", ["services"], indirect=True),
]

SECRET = "shpss_rabbitmq_resilience"
ORDERS = table_of(OrderRow)
EVENTS = table_of(InboundEventRow)
OUTBOX = table_of(OutboxRow)
WEBHOOKS_QUEUE = "webhooks"


class RecordingHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class Deployment:
    """The hub as production runs it: the API and the relay here, workers as `hub worker`."""

    container: Container
    engine: SyncEngine  # the relay only; no worker threads in the test process
    client: TestClient
    sandbox: ShopifySandbox
    queue_prefix: str
    worker_broker_url: str  # what `hub worker` connects to (RabbitMQ, or the proxy before it)
    logs: Path
    relay_log: RecordingHandler
    proxy: BrokerProxy | None = None
    workers: list[HubProcess] = field(default_factory=list)

    # -- processes ------------------------------------------------------------------------------

    def start_worker(self, threads: int = 2) -> HubProcess:
        settings = self.container.settings
        assert settings.database_url
        assert settings.cache_url
        assert settings.shopify_client_secret
        env = hub_env(
            {
                "HUB_DATABASE_URL": settings.database_url,
                "HUB_DB_SCHEMA": settings.db_schema or "",
                "HUB_DB_POOL_SIZE": "4",
                "HUB_DB_MAX_OVERFLOW": "4",
                "HUB_CACHE_URL": settings.cache_url,
                "HUB_CACHE_KEY_PREFIX": settings.cache_key_prefix,
                "HUB_BROKER_URL": self.worker_broker_url,
                "HUB_BROKER_QUEUE_PREFIX": self.queue_prefix,
                "HUB_SECRET_KEYS": SECRET_KEY,
                "HUB_SHOPIFY_CLIENT_SECRET": settings.shopify_client_secret.get_secret_value(),
                "HUB_WORKER_THREADS": str(threads),
                "HUB_HTTP_TIMEOUT_SECONDS": "5",
                "HUB_ALLOW_PRIVATE_URLS": "true",  # the sandbox listens on loopback
            }
        )
        worker = HubProcess("worker", env, self.logs / f"worker-{len(self.workers) + 1}.log")
        self.workers.append(worker)
        return worker

    def wait_for_consumer(self, worker: HubProcess, seconds: float = 30.0) -> None:
        """Until `worker` consumes our webhooks queue (it declares the queue itself)."""
        name = f"{self.queue_prefix}{WEBHOOKS_QUEUE}"

        def consuming() -> bool:
            assert worker.alive(), f"the worker exited early:\n{worker.log_tail()}"
            stats = queue_stats(RABBITMQ_URL, name)
            return stats is not None and stats[1] >= 1

        wait_until(consuming, seconds, f"a consumer on {name}", self.diagnostics)

    # -- traffic --------------------------------------------------------------------------------

    def add_orders(self, count: int, tag: str) -> list[str]:
        return [
            self.sandbox.add_order(
                [{"sku": f"{tag}-{i}", "quantity": 1, "price": Decimal("5.00")}], currency="USD"
            )
            for i in range(count)
        ]

    def deliver(self, gids: list[str], tag: str) -> None:
        for i, gid in enumerate(gids):
            body, headers = self.sandbox.signed_webhook(
                "orders/updated", self.sandbox.order_webhook_payload(gid), event_id=f"{tag}-{i}"
            )
            response = self.client.post("/webhooks/shopify", content=body, headers=headers)
            assert response.status_code == 200, response.text

    # -- observations ---------------------------------------------------------------------------

    def statuses(self) -> Counter[str]:
        with self.container.engine.connect() as db:
            return Counter(r.status for r in db.execute(select(EVENTS.c.status)))

    def handled(self) -> int:
        return self.statuses()["handled"]

    def in_flight(self) -> dict[int, int]:
        """Events a worker has started (attempt counted, committed) but not finished."""
        with self.container.engine.connect() as db:
            rows = db.execute(
                select(EVENTS.c.id, EVENTS.c.attempts).where(
                    EVENTS.c.status == "received", EVENTS.c.attempts >= 1
                )
            )
            return {r.id: r.attempts for r in rows}

    def attempts(self) -> dict[int, int]:
        with self.container.engine.connect() as db:
            return {r.id: r.attempts for r in db.execute(select(EVENTS.c.id, EVENTS.c.attempts))}

    def order_ids(self) -> list[str]:
        with self.container.engine.connect() as db:
            return [r.external_id for r in db.execute(select(ORDERS.c.external_id))]

    def relay_connections(self) -> set[object]:
        """The relay's open AMQP connections in this process (Dramatiq drops a dead one)."""
        return set(getattr(self.engine.broker, "connections", ()))

    def relay_failures(self) -> list[logging.LogRecord]:
        """Relay passes that raised (logged by the relay, which then keeps relaying)."""
        return list(self.relay_log.records)

    def diagnostics(self) -> str:
        lines = [f"events: {dict(self.statuses())}", f"orders: {len(self.order_ids())}"]
        with self.container.engine.connect() as db:
            backlog = db.execute(
                select(func.count()).select_from(OUTBOX).where(OUTBOX.c.published_at.is_(None))
            ).scalar_one()
        lines.append(f"outbox unpublished: {backlog}")
        try:
            stats = queue_stats(RABBITMQ_URL, f"{self.queue_prefix}{WEBHOOKS_QUEUE}")
            lines.append(f"webhooks queue (ready, consumers): {stats}")
            lines.append(f"dead letters: {dead_letters(RABBITMQ_URL, self.queue_prefix)}")
        except Exception as error:  # diagnostics must not hide the real failure
            lines.append(f"queue stats unavailable: {error!r}")
        if self.proxy is not None:
            lines.append(f"proxy: {self.proxy.connections()} open, {self.proxy.dropped} dropped")
        for number, worker in enumerate(self.workers, 1):
            state = "alive" if worker.alive() else f"exit {worker.process.returncode}"
            lines.append(f"--- worker {number} (pid {worker.pid}, {state}) ---")
            lines.append(worker.log_tail())
        return "\n".join(lines)


@pytest.fixture
def deploy(backend: Backend, tmp_path: Path) -> Iterator[Callable[..., Deployment]]:
    """Build the deployment once per test, optionally with a TCP proxy before RabbitMQ."""
    rabbitmq = require_rabbitmq()
    previous_broker = dramatiq.broker.global_broker  # SyncEngine replaces the global broker
    with ExitStack() as stack:  # unwinds in reverse, and keeps unwinding past a failure

        def build(*, through_proxy: bool = False) -> Deployment:
            prefix = unique_queue_prefix()
            stack.callback(delete_queues, rabbitmq, prefix)
            proxy = BrokerProxy(rabbitmq) if through_proxy else None
            if proxy is not None:
                stack.callback(proxy.close)
            broker_url = proxy.url if proxy is not None else rabbitmq

            sandbox = ShopifySandbox(client_secret=SECRET, restore_rate=100_000)
            base_url = stack.enter_context(serve_in_thread(sandbox.app))
            settings = Settings(
                **{
                    **backend.settings.model_dump(),
                    "shopify_client_secret": SECRET,
                    "broker_url": broker_url,
                    "broker_queue_prefix": prefix,
                }
            )
            container = bootstrap(settings)
            stack.callback(container.close)
            with container.uow() as uow:
                seller, _ = create_seller(uow, "Resilience")
                assert seller.id is not None
                shops.create_shop(
                    uow,
                    shops.CreateShop(
                        seller_id=seller.id,
                        marketplace=Marketplace.SHOPIFY,
                        external_id=sandbox.shop_domain,
                        name="Resilience shop",
                        api_base_url=base_url,
                        location_id=sandbox.location_id,
                        credentials={"access_token": sandbox.access_token},
                    ),
                    Principal(seller_id=seller.id),
                )
                uow.commit()

            relay_log = RecordingHandler()
            outbox_logger = logging.getLogger(outbox.__name__)
            outbox_logger.addHandler(relay_log)
            stack.callback(outbox_logger.removeHandler, relay_log)
            engine = SyncEngine(container=container)
            stack.callback(setattr, dramatiq.broker, "global_broker", previous_broker)
            engine.start_relay()
            stack.callback(engine.stop)
            client = stack.enter_context(TestClient(create_app(container=container)))
            hub = Deployment(
                container=container,
                engine=engine,
                client=client,
                sandbox=sandbox,
                queue_prefix=prefix,
                worker_broker_url=broker_url,
                logs=tmp_path,
                relay_log=relay_log,
                proxy=proxy,
            )
            stack.callback(_stop_all, hub.workers)  # first out: no worker outlives its queues
            return hub

        yield build


def _stop_all(workers: list[HubProcess]) -> None:
    for worker in workers:
        worker.stop()


def assert_every_order_once(hub: Deployment, gids: list[str]) -> None:
    imported = hub.order_ids()
    duplicates = [gid for gid, n in Counter(imported).items() if n > 1]
    assert not duplicates, f"orders imported twice: {duplicates}"
    assert sorted(imported) == sorted(gids), hub.diagnostics()
    assert hub.statuses() == Counter({"handled": len(gids)}), hub.diagnostics()
    assert dead_letters(RABBITMQ_URL, hub.queue_prefix) == {}, hub.diagnostics()


# ---------------------------------------------------------------------------------------------
# 1. SIGKILL mid-batch
# ---------------------------------------------------------------------------------------------


def test_a_worker_killed_mid_batch_loses_nothing_once_a_new_worker_runs(
    deploy: Callable[..., Deployment],
) -> None:
    hub = deploy()
    hub.sandbox.latency_seconds = 0.4  # each event holds a worker thread inside a Shopify call
    gids = hub.add_orders(12, "KILL")
    first = hub.start_worker(threads=2)
    hub.wait_for_consumer(first)

    hub.deliver(gids, "evt-kill")
    # Mid-batch: some events handled and acked, at least one inside its Shopify call (attempt
    # counted and committed, import not yet), more prefetched and unacked in the dead worker.
    wait_until(
        lambda: hub.handled() >= 2 and bool(hub.in_flight()),
        30,
        "the first worker mid-batch",
        hub.diagnostics,
    )
    first.kill()
    killed_mid_call = hub.in_flight()  # the process is dead: these stopped inside their call
    handled_by_first = hub.handled()
    assert killed_mid_call, "no event was in flight when the worker died"
    assert 0 < handled_by_first < len(gids), hub.diagnostics()

    second = hub.start_worker(threads=2)
    wait_until(lambda: hub.handled() == len(gids), 40, "every event handled", hub.diagnostics)

    assert_every_order_once(hub, gids)
    attempts = hub.attempts()
    # The events killed mid-call were redelivered by RabbitMQ and run again by the new worker.
    assert all(attempts[event_id] >= 2 for event_id in killed_mid_call), (attempts, killed_mid_call)
    assert second.alive()


# ---------------------------------------------------------------------------------------------
# 2. Dropped broker connections
# ---------------------------------------------------------------------------------------------


def test_a_network_outage_on_every_broker_connection_loses_no_message(
    deploy: Callable[..., Deployment],
) -> None:
    """The proxy resets every connection (relay and worker) and refuses new ones while webhooks
    keep arriving; the ingress never needs the broker, the relay's failed publishes are sent
    again later, and the worker reconnects on its own."""
    hub = deploy(through_proxy=True)
    proxy = hub.proxy
    assert proxy is not None
    hub.sandbox.latency_seconds = 0.2
    before, during, after = (
        hub.add_orders(10, "BEFORE"),
        hub.add_orders(6, "DURING"),
        hub.add_orders(4, "AFTER"),
    )
    worker = hub.start_worker(threads=2)
    hub.wait_for_consumer(worker)

    hub.deliver(before, "evt-before")
    wait_until(lambda: hub.handled() >= 3, 30, "events flowing", hub.diagnostics)
    assert hub.handled() < len(before), "the drop must come while events are in flight"
    relay_before = hub.relay_connections()
    assert relay_before, "the relay has published over its own connection"

    with proxy.outage() as dropped:
        dropped_at = time.monotonic()
        assert dropped >= 2, f"expected the relay's and the worker's connections, got {dropped}"
        hub.deliver(during, "evt-during")  # answered 200: ingress writes the outbox only
        # The relay tried to publish them and could not (Dramatiq gave up after its attempts).
        wait_until(lambda: bool(hub.relay_failures()), 10, "a failed relay pass", hub.diagnostics)
        # The outage outlasts Dramatiq's consumer restart delay, so the worker's first
        # reconnects are refused too and it has to keep trying.
        wait_until(
            lambda: time.monotonic() - dropped_at > CONSUMER_RESTART_DELAY_SECS + 1,
            CONSUMER_RESTART_DELAY_SECS + 5,
            "the outage outlasting the worker's first reconnect",
        )
    assert proxy.refused >= 1, "reconnects met the outage"
    failure = hub.relay_failures()[0].exc_info
    assert failure is not None
    # Dramatiq's connection error, or, when the reset lands mid-connect on a loaded host, pika's
    # own ValueError about the socket (it checks getpeername() after connecting).
    socket_reset = issubclass(failure[0], ValueError) and "socket" in str(failure[1])
    assert issubclass(failure[0], dramatiq.errors.BrokerConnectionError) or socket_reset, failure
    hub.deliver(after, "evt-after")

    everything = before + during + after
    # The relay sends the rows it could not publish again once their outbox lease (30 s) runs
    # out: that wait is most of this test's time.
    wait_until(lambda: hub.handled() == len(everything), 50, "every event handled", hub.diagnostics)
    assert_every_order_once(hub, everything)
    relay_after = hub.relay_connections()
    assert relay_after, "the relay publishes again"
    # Over a new connection: with several publisher threads a closed connection may linger
    # in Dramatiq's set, but some connection is open and was not among the closed ones.
    assert any(getattr(c, "is_open", False) for c in relay_after - relay_before), (
        "over a new connection"
    )
    assert hub.workers == [worker], "no second worker was needed"
    assert worker.alive(), "the same worker process reconnected by itself"


def test_rabbitmq_closing_our_connections_loses_no_message(
    deploy: Callable[..., Deployment],
) -> None:
    """RabbitMQ itself closes every connection of this test (CONNECTION_FORCED), the relay's and
    the worker's, while events flow; both reconnect and nothing is lost."""
    unusable = rabbitmqctl_usable()
    if unusable:
        if REQUIRE_SERVICES:
            pytest.fail(f"{unusable}; HUB_TEST_REQUIRE_SERVICES=1 requires it")
        pytest.skip(unusable)
    hub = deploy(through_proxy=True)  # the proxy tells which broker-side peers are ours
    assert hub.proxy is not None
    hub.sandbox.latency_seconds = 0.5  # rabbitmqctl takes about a second: keep work in flight
    before, after = hub.add_orders(16, "BEFORE"), hub.add_orders(6, "AFTER")
    worker = hub.start_worker(threads=2)
    hub.wait_for_consumer(worker)

    hub.deliver(before, "evt-before")
    wait_until(lambda: hub.handled() >= 2, 30, "events flowing", hub.diagnostics)
    relay_before = hub.relay_connections()
    assert relay_before, "the relay has published over its own connection"
    closed = close_connections_from_ports(hub.proxy.upstream_ports())
    assert closed >= 2, f"expected the relay's and the worker's connections, closed {closed}"
    assert hub.handled() < len(before), "the close must come while events are in flight"
    hub.deliver(after, "evt-after")

    everything = before + after
    wait_until(lambda: hub.handled() == len(everything), 50, "every event handled", hub.diagnostics)
    assert_every_order_once(hub, everything)
    relay_after = hub.relay_connections()
    assert relay_after, "the relay publishes again"
    # Over a new connection: with several publisher threads a closed connection may linger
    # in Dramatiq's set, but some connection is open and was not among the closed ones.
    assert any(getattr(c, "is_open", False) for c in relay_after - relay_before), (
        "over a new connection"
    )
    assert hub.workers == [worker], "no second worker was needed"
    assert worker.alive(), "the same worker process reconnected by itself"
