"""``GET /metrics``: Prometheus text (format 0.0.4) for the operator, admin key only.

What it reports, and where each number comes from:

* cache reads by kind and result (this process's counters);
* the outbox: unpublished rows and the age of the oldest (``hub_outbox_lag_seconds``);
* queue depths (``hub_queue_depth{source, queue}``): queued operations by kind, unpublished
  outbox messages by broker queue, queued push and pull triggers by kind, webhook events not
  handled yet, and with RabbitMQ its own ready messages per queue (``.DQ``: delayed,
  ``.XQ``: dead letters), read by a passive declare at most every ``BROKER_CACHE_SECONDS``;
* how long the oldest pending push has been due, per kind;
* webhook received -> handled, as quantiles over the last ``HUB_METRICS_WINDOW_MINUTES``;
* rate-limit waits per marketplace: counted in Redis by every process when ``HUB_CACHE_URL``
  is set, plus this process's in-process limiters;
* failed operations per shop.

Labels carry kinds, queue names, marketplaces and shop ids: never a buyer's data, a shop's
domain or a credential. One scrape is a handful of indexed or bounded queries in one read-only
transaction, run in the threadpool.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from connectors.ratelimit import DEFERRED, INLINE, PROCESS_WAITS
from hub.api.auth import admin_principal
from hub.bootstrap import Container
from hub.domain.sellers import Principal
from hub.domain.shops import Marketplace
from hub.infrastructure.clock import utcnow
from hub.infrastructure.outbound import PULL_TRIGGER_KIND, PUSH_ACTORS
from hub.settings import Settings
from sync.domain.policies import POLICIES
from sync.infrastructure.metrics import (
    PUSH_OPERATION_KINDS,
    SyncMetrics,
    broker_queue_names,
    quantile,
    read_broker_queue_depths,
    read_sync_metrics,
)
from sync.infrastructure.rate_limits import read_waits
from sync.worker.broker import QUEUES

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DEFAULT_WINDOW_MINUTES = 5  # until Settings has metrics_window_minutes
QUANTILES = (0.5, 0.95, 0.99, 1.0)
BROKER_TIMEOUT_SECONDS = 2.0
BROKER_CACHE_SECONDS = 10.0
REDIS_TIMEOUT_SECONDS = 1.0
PUSH_KINDS = tuple(sorted(kind.value for kind in PUSH_ACTORS)) + PUSH_OPERATION_KINDS
# Series reported even at 0, so dashboards and alerts never meet a missing one
KNOWN_QUEUES = {
    "operations": tuple(sorted(POLICIES)),
    "outbox": QUEUES,
    "triggers": (*sorted(kind.value for kind in PUSH_ACTORS), PULL_TRIGGER_KIND),
}
MARKETPLACES = tuple(sorted(marketplace.value for marketplace in Marketplace))
Sample = tuple[Mapping[str, str], float]


class Exposition:
    """Metric families in the text format: ``# HELP``, ``# TYPE``, then the samples."""

    def __init__(self) -> None:
        self._lines: list[str] = []

    def add(self, name: str, kind: str, help_text: str, samples: Iterable[Sample]) -> None:
        self._lines.append(f"# HELP {name} {_escape_help(help_text)}")
        self._lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            self._lines.append(f"{name}{_labels(labels)} {_number(value)}")

    def text(self) -> str:
        return "\n".join(self._lines) + "\n"


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    pairs = (f'{key}="{_label_value(str(value))}"' for key, value in labels.items())
    return "{" + ",".join(pairs) + "}"


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(round(value, 6))


class BrokerDepths:
    """RabbitMQ's ready messages per queue, read at most once per ``BROKER_CACHE_SECONDS`` and
    by one scrape at a time (the others reuse the last answer); ``None`` when unreadable."""

    def __init__(self, settings: Settings) -> None:
        assert settings.broker_url
        self._url = settings.broker_url
        self._names = broker_queue_names(settings.broker_queue_prefix, QUEUES)
        self._lock = threading.Lock()
        self._answer: dict[str, int] | None = None
        self._at = float("-inf")

    def read(self) -> dict[str, int] | None:
        if time.monotonic() - self._at < BROKER_CACHE_SECONDS:
            return self._answer
        if not self._lock.acquire(blocking=False):
            return self._answer
        try:
            try:
                found = read_broker_queue_depths(self._url, self._names, BROKER_TIMEOUT_SECONDS)
                self._answer = {self._names[name]: depth for name, depth in found.items()}
            except Exception as error:  # the broker is away: say so, keep the rest
                log.warning("broker queue depths unreadable: %s", type(error).__name__)
                self._answer = None
            self._at = time.monotonic()
        finally:
            self._lock.release()
        return self._answer


def rate_limit_waits(settings: Settings) -> dict[tuple[str, str], tuple[int, float]]:
    """This process's waits, plus every process's counted in Redis (when configured)."""
    totals = dict(PROCESS_WAITS.snapshot())
    if settings.cache_url:
        from redis import Redis

        try:
            with Redis.from_url(
                settings.cache_url,
                socket_timeout=REDIS_TIMEOUT_SECONDS,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            ) as client:
                shared = read_waits(client, settings.cache_key_prefix)
        except Exception as error:
            log.warning("shared rate-limit waits unreadable: %s", type(error).__name__)
            shared = {}
        for key, (count, seconds) in shared.items():
            before = totals.get(key, (0, 0.0))
            totals[key] = (before[0] + count, before[1] + seconds)
    return totals


def collect(container: Container, broker: BrokerDepths | None) -> str:
    """Every metric, as the text Prometheus scrapes."""
    settings = container.settings
    now = utcnow()
    window = int(getattr(settings, "metrics_window_minutes", DEFAULT_WINDOW_MINUTES))
    sync = read_sync_metrics(container.engine, now=now, window=timedelta(minutes=window))
    broker_depths = broker.read() if broker is not None else None
    out = Exposition()
    out.add(
        "hub_cache_reads_total",
        "counter",
        "Cached document reads by kind and result.",
        _cache_samples(container),
    )
    _outbox(out, sync, now)
    _queues(out, sync, broker, broker_depths)
    _pushes(out, sync, now)
    _events(out, sync, now, window)
    _waits(out, rate_limit_waits(settings))
    out.add(
        "hub_failed_operations",
        "gauge",
        "Operations failed out of budget or permanently, per shop (none: not a shop's), "
        "until retried.",
        (
            ({"shop_id": "none" if shop_id is None else str(shop_id)}, count)
            for shop_id, count in sorted(
                sync.failed_operations.items(), key=lambda item: (item[0] is None, item[0] or 0)
            )
        ),
    )
    return out.text()


def _cache_samples(container: Container) -> Iterable[Sample]:
    for name, count in sorted(container.reader.counters.items()):
        kind, _, result = name.rpartition("_")
        yield {"kind": kind, "result": result}, count


def _age(now: datetime, then: datetime | None) -> float:
    return 0.0 if then is None else max(0.0, (now - then).total_seconds())


def _outbox(out: Exposition, sync: SyncMetrics, now: datetime) -> None:
    out.add(
        "hub_outbox_pending",
        "gauge",
        "Outbox messages written and not yet published to the broker.",
        [({}, sync.outbox_pending)],
    )
    out.add(
        "hub_outbox_lag_seconds",
        "gauge",
        "Age of the oldest unpublished outbox message (0 when none).",
        [({}, _age(now, sync.outbox_oldest_at))],
    )


def _queues(
    out: Exposition,
    sync: SyncMetrics,
    broker: BrokerDepths | None,
    broker_depths: dict[str, int] | None,
) -> None:
    samples: list[Sample] = []
    for source, counts in (
        ("operations", sync.operations_queued),
        ("outbox", sync.outbox_by_queue),
        ("triggers", sync.triggers_queued),
        ("broker", broker_depths or {}),
    ):
        queues = sorted(set(KNOWN_QUEUES.get(source, ())) | set(counts))
        samples.extend(({"source": source, "queue": q}, counts.get(q, 0)) for q in queues)
    samples.append(({"source": "events", "queue": "received"}, sync.events_received))
    out.add(
        "hub_queue_depth",
        "gauge",
        "Work waiting, by source: operations (queued, by kind), outbox (unpublished, by "
        "queue), triggers (pushes and pulls queued, by kind), events (webhooks not handled "
        "yet), broker (RabbitMQ ready messages; .DQ delayed, .XQ dead letters).",
        samples,
    )
    out.add(
        "hub_operations_running",
        "gauge",
        "Operations running under a lease, by kind.",
        (
            ({"kind": kind}, sync.operations_running.get(kind, 0))
            for kind in sorted(set(KNOWN_QUEUES["operations"]) | set(sync.operations_running))
        ),
    )
    if broker is not None:
        out.add(
            "hub_broker_queues_up",
            "gauge",
            "1 when the broker's queue depths were read, 0 when the broker did not answer.",
            [({}, 0 if broker_depths is None else 1)],
        )


def _pushes(out: Exposition, sync: SyncMetrics, now: datetime) -> None:
    kinds = sorted(set(PUSH_KINDS) | set(sync.push_due_since))
    out.add(
        "hub_oldest_pending_push_seconds",
        "gauge",
        "How long the oldest pending push has been due, by kind: a queued trigger (stock, "
        "price, listing, images) since its debounce ended, a queued or running push operation "
        "(stock.batch, images.listing, fulfillment.push) since it was created; 0 when none.",
        (({"kind": kind}, _age(now, sync.push_due_since.get(kind))) for kind in kinds),
    )


def _events(out: Exposition, sync: SyncMetrics, now: datetime, window: int) -> None:
    out.add(
        "hub_oldest_unhandled_event_seconds",
        "gauge",
        "Age of the oldest webhook event stored and not handled yet (0 when none).",
        [({}, _age(now, sync.oldest_received_event_at))],
    )
    out.add(
        "hub_webhook_to_order_seconds",
        "gauge",
        f"Webhook received -> handled (order imported), over the events received in the last "
        f"{window} minutes and handled (at most the newest 10000); quantile 1 is the maximum, "
        f"NaN when there were none.",
        (({"quantile": f"{q:g}"}, quantile(sync.webhook_lags, q)) for q in QUANTILES),
    )
    out.add(
        "hub_webhook_to_order_events",
        "gauge",
        "Handled events the webhook -> order quantiles are computed over.",
        [({}, len(sync.webhook_lags))],
    )


def _waits(out: Exposition, waits: dict[tuple[str, str], tuple[int, float]]) -> None:
    marketplaces = sorted(set(MARKETPLACES) | {budget for budget, _ in waits})
    keys = [(m, outcome) for m in marketplaces for outcome in (INLINE, DEFERRED)]
    out.add(
        "hub_rate_limit_waits_total",
        "counter",
        "Rate-limit waits by marketplace and outcome: inline (a worker thread slept before "
        "sending), deferred (refused with a retry-after; the operation is re-sent later).",
        (
            ({"marketplace": m, "outcome": outcome}, waits.get((m, outcome), (0, 0.0))[0])
            for m, outcome in keys
        ),
    )
    out.add(
        "hub_rate_limit_wait_seconds_total",
        "counter",
        "Seconds of rate-limit waits: slept inline, or the retry-after of deferrals.",
        (
            ({"marketplace": m, "outcome": outcome}, waits.get((m, outcome), (0, 0.0))[1])
            for m, outcome in keys
        ),
    )


@router.get("/metrics", response_class=Response)
async def metrics(request: Request, _admin: Principal = Depends(admin_principal)) -> Response:
    """Prometheus text: cache reads, outbox, queues, pushes, webhook lag, rate-limit waits,
    failed operations (see the module's docstring)."""
    container: Container = request.app.state.container
    broker: BrokerDepths | None = getattr(request.app.state, "broker_depths", None)
    if broker is None and container.settings.broker_url:
        broker = request.app.state.broker_depths = BrokerDepths(container.settings)
    body = await run_in_threadpool(collect, container, broker)
    return Response(body, media_type=CONTENT_TYPE)
