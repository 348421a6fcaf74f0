"""The demo scenario survives losing PostgreSQL, Redis and RabbitMQ, one at a time, mid-run.

The hub (API, relay, worker and scheduler in one process, as ``hub demo`` runs it) reaches each
real service through a loopback TCP proxy (``tests.support.tcp_proxy``). While the buyers order,
each proxy is cut for ``CUT_SECONDS``: every open connection is reset both ways and new ones are
refused, as when the service stops. ``GET /readyz`` is polled all along: it must answer 503 during
each cut and 200 again after it. Then the demo's own report must pass: every order imported
once, no stock mismatch, every fulfillment pushed, nothing failed, drained.

Isolation on the shared servers, as ``.ci/demo-on-services`` does it: a schema, a Redis key
prefix and a queue-name prefix of this run, removed afterwards (also on failure). The proxies
never touch anyone else's connections. Marked ``serial``: ``make test`` runs it last, alone
(about 2.5 minutes).

``HubDidNotRecover`` names a report that did not pass after the cuts (the hub lost or
dead-lettered work); any other failure is the set-up's or /readyz's.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dramatiq
import httpx
import pytest
from sqlalchemy import create_engine, text

from cli import demo
from cli.demo_hub import free_port
from hub.settings import Settings
from tests.conftest import (
    ADMIN_KEY,
    DATABASE_URL,
    REDIS_URL,
    RUN_ID,
    SECRET_KEY,
    delete_prefix,
    service_unavailable,
)
from tests.e2e.rabbitmq_support import RABBITMQ_URL, delete_queues, require_rabbitmq
from tests.support.tcp_proxy import CutMode, TcpProxy

pytestmark = [pytest.mark.services, pytest.mark.serial, pytest.mark.timeout(420)]

CUT_SECONDS = 15.0
CUT_MODE: CutMode = "refuse"  # a stopped service: connections reset, new ones refused
RATE = 4.0  # orders per second
GAP_SECONDS = 2.0  # ready again -> the next cut
READY_AGAIN_SECONDS = 30.0  # restore -> /readyz 200
POLL_SECONDS = 0.25
CUT_ORDER = ("postgresql", "redis", "rabbitmq")
# Enough orders that the buyers are still ordering when the last cut ends.
ORDERS = int(RATE * (len(CUT_ORDER) * (CUT_SECONDS + GAP_SECONDS + 8) + 10))
DEMO_LIMIT_SECONDS = 330.0


@dataclass
class Probe:
    at: float
    status: int | None  # None: no answer within the client's timeout
    body: str
    reads: tuple[str, str] = ("", "")  # what GET /orders and GET /orders/{id} answered
    seconds: tuple[float, float] = (0.0, 0.0)


@dataclass
class Cut:
    service: str
    began: float
    ended: float = 0.0
    reset: int = 0
    ready_again: float | None = None
    probes: list[Probe] = field(default_factory=list)

    def summary(self) -> str:
        statuses: dict[str, int] = {}
        for probe in self.probes:
            key = str(probe.status)
            statuses[key] = statuses.get(key, 0) + 1
        again = "never" if self.ready_again is None else f"{self.ready_again - self.ended:.1f} s"
        failing = next((p.body for p in self.probes if p.status == 503), "")
        reads = [dict(Counter(p.reads[n] for p in self.probes)) for n in range(2)]
        slowest = [max((p.seconds[n] for p in self.probes), default=0.0) for n in range(2)]
        return (
            f"{self.service}: cut {self.ended - self.began:.1f} s, {self.reset} connections "
            f"reset, /readyz during the cut {statuses}, ready again after {again}; {failing}; "
            f"GET /orders {reads[0]} (slowest {slowest[0]:.1f} s), GET /orders/{{id}} "
            f"{reads[1]} (slowest {slowest[1]:.1f} s)"
        )


class ReadinessWatch:
    """Polls /readyz every ``POLL_SECONDS`` in a thread; keeps every answer with its time, and
    what a database read (``GET /orders``) and a cached read (``GET /orders/{id}``) answered
    just after it (reported, not judged: what the API does while a service is away)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.order_id: int | None = None
        self.probes: list[Probe] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="readyz-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)

    def _run(self) -> None:
        with (
            httpx.Client(timeout=5.0) as client,
            httpx.Client(
                base_url=self.url.rsplit("/", 1)[0],
                headers={"Authorization": f"Bearer {ADMIN_KEY}"},
                timeout=5.0,
            ) as api,
        ):
            while not self._stop.wait(POLL_SECONDS):
                at = time.monotonic()
                try:
                    answer = client.get(self.url)
                    probe = Probe(at, answer.status_code, answer.text[:300])
                except httpx.HTTPError as error:
                    probe = Probe(at, None, repr(error))
                probe.reads, probe.seconds = self._reads(api)
                self.probes.append(probe)

    def _reads(self, api: httpx.Client) -> tuple[tuple[str, str], tuple[float, float]]:
        found: list[str] = []
        took: list[float] = []
        for path in ("/orders", f"/orders/{self.order_id}" if self.order_id else None):
            started = time.monotonic()
            status = "not probed"  # no order known yet
            if path is not None:
                try:
                    answer = api.get(path, params={"limit": 1} if path == "/orders" else None)
                    status = str(answer.status_code)
                    if path == "/orders" and answer.status_code == 200 and answer.json()["items"]:
                        self.order_id = self.order_id or answer.json()["items"][0]["id"]
                except httpx.HTTPError:
                    status = "no answer"
            found.append(status)
            took.append(time.monotonic() - started)
        return (found[0], found[1]), (took[0], took[1])

    def between(self, began: float, ended: float) -> list[Probe]:
        return [probe for probe in list(self.probes) if began <= probe.at <= ended]

    def ready_since(self, since: float) -> float | None:
        return next((p.at for p in list(self.probes) if p.at >= since and p.status == 200), None)


class DemoThread:
    """``hub demo`` on the given settings in a thread; its echoed lines, result and error."""

    def __init__(self, options: demo.DemoOptions, settings: Settings) -> None:
        self.options = options
        self.settings = settings
        self.lines: list[str] = []
        self.ordering = threading.Event()
        self.ordering_ended: float | None = None
        self.result: int | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="demo", daemon=True)

    def _echo(self, line: str) -> None:
        self.lines.append(line)
        if "buyers      placing" in line:
            self.ordering.set()
        elif "orders placed in" in line:
            self.ordering_ended = time.monotonic()

    def _run(self) -> None:
        try:
            self.result = demo.run(self.options, self.settings, echo=self._echo)
        except BaseException as error:  # reported by the test
            self.error = error
        finally:
            self.ordering.set()

    def start(self) -> None:
        self._thread.start()

    def join(self, seconds: float) -> bool:
        self._thread.join(seconds)
        return not self._thread.is_alive()

    def output(self) -> str:
        return "\n".join(self.lines)

    def log_path(self) -> Path | None:
        found = re.search(r"logs in (\S+)", self.output())
        return Path(found.group(1)) if found else None


def log_errors(path: Path | None, limit: int = 40) -> str:
    """The hub's warnings and errors of the run (JSON lines), pika's chatter left out, each
    distinct message once with how often it came, for a failure's message."""
    if path is None or not path.exists():
        return "(no log)"
    found: Counter[str] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("level") not in ("warning", "error", "critical"):
            continue
        if str(record.get("logger", "")).startswith("pika"):
            continue
        exception = str(record.get("exception") or "").strip().splitlines()[-1:] or [""]
        found[
            f"{record.get('logger')}: {str(record.get('message'))[:120]} {exception[0][:160]}"
        ] += 1
    lines = [f"{count:4d} x {text}" for text, count in found.most_common(limit)]
    return "\n".join(lines) or "(no warnings or errors logged)"


@pytest.fixture
def proxies() -> Iterator[dict[str, TcpProxy]]:
    """One proxy per real service; skipped (failed under HUB_TEST_REQUIRE_SERVICES=1) when a
    service does not answer."""
    from redis import Redis

    try:
        engine = create_engine(DATABASE_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as db:
            db.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as error:
        service_unavailable(f"PostgreSQL at {DATABASE_URL}", error)
    try:
        client = Redis.from_url(REDIS_URL, socket_connect_timeout=3)
        client.ping()
        client.close()
    except Exception as error:
        service_unavailable(f"Redis at {REDIS_URL}", error)
    require_rabbitmq()
    running = {
        "postgresql": TcpProxy.to_url(DATABASE_URL, 5432, name="proxy-postgresql"),
        "redis": TcpProxy.to_url(REDIS_URL, 6379, name="proxy-redis"),
        "rabbitmq": TcpProxy.to_url(RABBITMQ_URL, 5672, name="proxy-rabbitmq"),
    }
    for proxy in running.values():
        proxy.start()
    try:
        yield running
    finally:
        for proxy in running.values():
            proxy.close()


@pytest.fixture
def hub_settings(proxies: dict[str, TcpProxy], tmp_path: Path) -> Iterator[Settings]:
    """The hub's settings through the proxies, in a schema, key prefix and queue prefix of this
    run; all three removed afterwards over direct connections."""
    run_id = f"hub_faults_{RUN_ID}_{uuid.uuid4().hex[:6]}"
    settings = Settings(
        data_dir=tmp_path / "var",
        database_url=proxies["postgresql"].url(DATABASE_URL),
        db_schema=run_id,
        cache_url=proxies["redis"].url(REDIS_URL),
        cache_key_prefix=f"{run_id}:",
        broker_url=proxies["rabbitmq"].url(RABBITMQ_URL),
        broker_queue_prefix=f"{run_id}.",
        secret_keys=SECRET_KEY,
        admin_api_key=ADMIN_KEY,
        allow_private_urls=True,  # the sandboxes listen on loopback
    )
    previous = dramatiq.broker.global_broker  # the demo's engine sets the global broker
    try:
        yield settings
    finally:
        engine = create_engine(DATABASE_URL)
        with engine.begin() as db:
            db.execute(text(f'DROP SCHEMA IF EXISTS "{run_id}" CASCADE'))
        engine.dispose()
        delete_prefix(REDIS_URL, f"{run_id}:")
        delete_queues(RABBITMQ_URL, f"{run_id}.")
        if previous is not None:
            dramatiq.set_broker(previous)


class HubDidNotRecover(AssertionError):
    """The cuts are done and /readyz behaved, but the demo's report did not pass."""


def cut_one(proxy: TcpProxy, service: str, watch: ReadinessWatch) -> Cut:
    cut = Cut(service, began=time.monotonic())
    cut.reset = proxy.cut(CUT_MODE)
    time.sleep(CUT_SECONDS)
    cut.ended = time.monotonic()
    proxy.restore()
    cut.probes = watch.between(cut.began, cut.ended)
    deadline = cut.ended + READY_AGAIN_SECONDS
    while time.monotonic() < deadline:
        cut.ready_again = watch.ready_since(cut.ended)
        if cut.ready_again is not None:
            break
        time.sleep(POLL_SECONDS)
    return cut


def test_the_demo_survives_postgresql_redis_and_rabbitmq_each_cut_for_15_s(
    proxies: dict[str, TcpProxy], hub_settings: Settings
) -> None:
    port = free_port("127.0.0.1")
    report_path = hub_settings.data_dir / "faults-report.json"
    options = demo.DemoOptions(orders=ORDERS, rate=RATE, json_path=report_path, port=port)
    run = DemoThread(options, hub_settings)
    watch = ReadinessWatch(f"http://127.0.0.1:{port}/readyz")
    cuts: list[Cut] = []
    run.start()
    try:
        assert run.ordering.wait(120), "the demo's set-up did not finish:\n" + run.output()
        if run.error is not None or run.result is not None:
            raise AssertionError(f"the demo ended before ordering: {run.error!r}\n{run.output()}")
        watch.start()
        deadline = time.monotonic() + 20
        while watch.order_id is None and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)  # a few orders in, with every service up
        for service in CUT_ORDER:
            cuts.append(cut_one(proxies[service], service, watch))
            time.sleep(GAP_SECONDS)
        assert run.join(DEMO_LIMIT_SECONDS), "the demo did not end:\n" + run.output()
    finally:
        watch.stop()
        for proxy in proxies.values():
            proxy.restore()
    story = "\n".join(cut.summary() for cut in cuts)
    context = f"{story}\n\n{run.output()}\n\nhub errors:\n{log_errors(run.log_path())}"
    if run.error is not None:
        raise AssertionError(f"the demo raised {run.error!r}\n{context}") from run.error

    for cut in cuts:
        assert cut.ended - cut.began >= CUT_SECONDS, cut.summary()
        assert cut.reset > 0, f"nothing was connected through the {cut.service} proxy\n{context}"
        assert any(p.status == 503 for p in cut.probes), f"/readyz never said 503\n{context}"
        assert cut.ready_again is not None, f"/readyz never ready again\n{context}"
        assert run.ordering_ended is None or cut.ended <= run.ordering_ended, (
            f"the buyers had stopped before the {cut.service} cut ended\n{context}"
        )
    print(story)  # what the API answered during each cut: shown with -rP or -s
    report: dict[str, Any] = json.loads(report_path.read_text())
    wrong = {
        name: report[name]
        for name in (
            "missing_orders",
            "duplicate_orders",
            "unexpected_orders",
            "orders_with_wrong_lines",
            "stock_mismatches",
            "duplicate_tracking_writes",
            "failed_operations",
        )
        if report[name] != 0
    }
    if report["orders_imported"] != ORDERS:
        wrong["orders_imported"] = report["orders_imported"]
    if report["fulfillments_pushed"] != report["fulfillments_shipped"]:
        wrong["fulfillments_pushed"] = report["fulfillments_pushed"]
    failed_checks = [name for name, passed in report["checks"].items() if not passed]
    if wrong or failed_checks or run.result != 0:
        raise HubDidNotRecover(
            f"after the cuts: {wrong}, failed checks {failed_checks}, "
            f"left to do {report['backlog']}\n{context}"
        )
