"""What the demo measures and checks: the hub's rows (read directly from its database) against
what the buyers placed and what each sandbox stores.

The stock a marketplace should show is computed afresh from the blanks' on-hand and reserved
counts (``sync.infrastructure.pushes.quantities``, the push's own rule), never taken from what
the hub last pushed.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select

from cli.demo_world import PlacedOrder
from cli.sandboxes import Marketplaces
from hub.infrastructure.bindings import BINDINGS, STATES, VARIANTS
from hub.infrastructure.orders import FULFILLMENTS, LINES, ORDERS
from hub.infrastructure.outbound import OPERATIONS, OUTBOX, PUSH_ACTORS, TRIGGERS
from hub.infrastructure.tables import table_of
from sync.domain.policies import FULFILLMENT_PUSH, IMAGES_LISTING, STOCK_BATCH
from sync.infrastructure import operations as ops
from sync.infrastructure.pushes import quantities
from sync.infrastructure.tables import InboundEventRow
from sync.worker.runtime import SyncRuntime

SAMPLE_SECONDS = 0.1
EVENTS = table_of(InboundEventRow)


@dataclass(frozen=True)
class ShopView:
    id: int
    marketplace: str
    buffer: int
    maximum: int


@dataclass(frozen=True)
class BoundItem:
    """One binding and the stock item it names on its marketplace."""

    binding_id: int
    shop_id: int
    marketplace: str
    sku: str
    listing_id: str | None
    item_id: str


def percentile(values: Sequence[float], share: float) -> float | None:
    """Nearest-rank percentile; None when there is nothing to rank."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, round(share * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def _epoch(moment: datetime) -> float:
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


class Observer:
    """Reads of the hub's database and the sandboxes, scoped to this run's shops."""

    def __init__(
        self,
        runtime: SyncRuntime,
        world: Marketplaces,
        shops: dict[str, ShopView],
        since: datetime,
    ) -> None:
        self.runtime = runtime
        self.engine = runtime.container.engine
        self.world = world
        self.shops = shops
        self.shop_ids = [shop.id for shop in shops.values()]
        self.marketplace_of = {shop.id: name for name, shop in shops.items()}
        self.since = since  # operations without a shop (renders) count from here
        self.items: list[BoundItem] = []

    # --- bindings and stock ------------------------------------------------------------------

    def load_bindings(self) -> list[BoundItem]:
        with self.engine.connect() as db:
            rows = db.execute(
                select(
                    BINDINGS.c.id,
                    BINDINGS.c.shop_id,
                    BINDINGS.c.external_listing_id,
                    BINDINGS.c.external_variant_id,
                    BINDINGS.c.external_inventory_item_id,
                    VARIANTS.c.sku,
                )
                .join(VARIANTS, VARIANTS.c.id == BINDINGS.c.variant_id)
                .where(BINDINGS.c.shop_id.in_(self.shop_ids))
                .order_by(BINDINGS.c.id)
            ).all()
        items: list[BoundItem] = []
        for row in rows:
            marketplace = self.marketplace_of[row.shop_id]
            item_id = self.runtime.connector(marketplace).stock_item_id(
                listing_id=row.external_listing_id,
                variant_id=row.external_variant_id,
                inventory_item_id=row.external_inventory_item_id,
                sku=row.sku,
            )
            if item_id is not None:
                items.append(
                    BoundItem(
                        row.id, row.shop_id, marketplace, row.sku, row.external_listing_id, item_id
                    )
                )
        self.items = items
        return items

    def wanted(self) -> dict[int, int]:
        """Per binding, what its shop should show now, from the blanks."""
        found: dict[int, int] = {}
        with self.engine.connect() as db:
            for shop in self.shops.values():
                found.update(quantities(db, shop.id, shop.buffer, shop.maximum))
        return found

    def remote(self, item: BoundItem) -> int | None:
        return self.world.stock(item.marketplace, item.item_id)

    def stock_mismatches(self) -> list[dict[str, Any]]:
        wanted = self.wanted()
        found = []
        for item in self.items:
            remote = self.remote(item)
            if remote != wanted.get(item.binding_id):
                found.append(
                    {
                        "marketplace": item.marketplace,
                        "sku": item.sku,
                        "item": item.item_id,
                        "hub": wanted.get(item.binding_id),
                        "marketplace_shows": remote,
                    }
                )
        return found

    def price_mismatches(self) -> list[dict[str, Any]]:
        """Bound listings whose marketplace price is not the price the hub decided (or that
        have no decided price although every shop has a rule and every variant a cost)."""
        with self.engine.connect() as db:
            decided = dict(
                db.execute(
                    select(BINDINGS.c.id, BINDINGS.c.listed_price).where(
                        BINDINGS.c.shop_id.in_(self.shop_ids)
                    )
                ).all()
            )
        found = []
        for item in self.items:
            wanted = decided.get(item.binding_id)
            shows = self.world.price(item.marketplace, item.item_id, item.sku)
            if wanted is None or shows != wanted:
                found.append(
                    {
                        "marketplace": item.marketplace,
                        "sku": item.sku,
                        "item": item.item_id,
                        "hub": None if wanted is None else str(wanted),
                        "marketplace_shows": None if shows is None else str(shows),
                    }
                )
        return found

    def prices_pushed(self, db: Connection) -> int:
        """Listings whose price the hub has written."""
        return int(
            db.execute(
                select(func.count()).where(
                    BINDINGS.c.shop_id.in_(self.shop_ids), BINDINGS.c.last_pushed_price.is_not(None)
                )
            ).scalar_one()
        )

    # --- the hub's work, counted -------------------------------------------------------------

    def in_scope(self) -> Any:
        return or_(
            OPERATIONS.c.shop_id.in_(self.shop_ids),
            and_(OPERATIONS.c.shop_id.is_(None), OPERATIONS.c.created_at >= self.since),
        )

    def operation_counts(self, db: Connection) -> Counter[tuple[str, int | None, str]]:
        """(kind, shop, status) -> operations."""
        rows = db.execute(
            select(OPERATIONS.c.kind, OPERATIONS.c.shop_id, OPERATIONS.c.status, func.count())
            .where(self.in_scope())
            .group_by(OPERATIONS.c.kind, OPERATIONS.c.shop_id, OPERATIONS.c.status)
        ).all()
        return Counter({(kind, shop, status): n for kind, shop, status, n in rows})

    def hub_orders(self, db: Connection) -> list[Any]:
        return list(
            db.execute(
                select(
                    ORDERS.c.id,
                    ORDERS.c.shop_id,
                    ORDERS.c.external_id,
                    ORDERS.c.status,
                    ORDERS.c.created_at,
                ).where(ORDERS.c.shop_id.in_(self.shop_ids))
            ).all()
        )

    def progress(self) -> dict[str, Any]:
        with self.engine.connect() as db:
            counts = self.operation_counts(db)
            imported = db.execute(
                select(func.count()).where(ORDERS.c.shop_id.in_(self.shop_ids))
            ).scalar_one()
            shipped = self._fulfillment_count(db)
        pushes = {
            name: counts[(STOCK_BATCH, shop.id, ops.SUCCEEDED)] for name, shop in self.shops.items()
        }
        return {
            "imported": imported,
            "stock_pushes": pushes,
            "shipped": shipped,
            "tracking_pushed": sum(
                n
                for (kind, _, status), n in counts.items()
                if kind == FULFILLMENT_PUSH and status == ops.SUCCEEDED
            ),
            "images_pushed": sum(
                n
                for (kind, _, status), n in counts.items()
                if kind == IMAGES_LISTING and status == ops.SUCCEEDED
            ),
        }

    def _fulfillment_count(self, db: Connection) -> int:
        return int(
            db.execute(
                select(func.count())
                .select_from(FULFILLMENTS.join(ORDERS, ORDERS.c.id == FULFILLMENTS.c.order_id))
                .where(ORDERS.c.shop_id.in_(self.shop_ids))
            ).scalar_one()
        )

    def backlog(self) -> dict[str, int]:
        """What keeps the hub from being drained; all zero when it is."""
        with self.engine.connect() as db:
            unpublished = db.execute(
                select(func.count()).where(OUTBOX.c.published_at.is_(None))
            ).scalar_one()
            active = db.execute(
                select(func.count()).where(
                    self.in_scope(), OPERATIONS.c.status.in_((ops.QUEUED, ops.RUNNING))
                )
            ).scalar_one()
            triggers = db.execute(
                select(func.count()).where(TRIGGERS.c.shop_id.in_(self.shop_ids))
            ).scalar_one()
            due = db.execute(
                select(func.count())
                .select_from(STATES.join(BINDINGS, BINDINGS.c.id == STATES.c.binding_id))
                .where(
                    BINDINGS.c.shop_id.in_(self.shop_ids),
                    STATES.c.kind.in_([kind.value for kind in PUSH_ACTORS]),
                    STATES.c.desired_version > STATES.c.pushed_version,
                )
            ).scalar_one()
            events = db.execute(
                select(func.count()).where(
                    EVENTS.c.shop_id.in_(self.shop_ids), EVENTS.c.status == "received"
                )
            ).scalar_one()
            unshipped = db.execute(
                select(func.count()).where(
                    ORDERS.c.shop_id.in_(self.shop_ids),
                    ORDERS.c.status.in_(("received", "in_production")),
                )
            ).scalar_one()
        return {
            "outbox_unpublished": unpublished,
            "operations_active": active,
            "push_triggers": triggers,
            "bindings_due": due,
            "events_unhandled": events,
            "orders_unshipped": unshipped,
        }

    def webhook_latencies(self, placed: Iterable[PlacedOrder]) -> list[float]:
        """Seconds from the first webhook delivery to the order existing in the hub."""
        with self.engine.connect() as db:
            created = {
                (self.marketplace_of[row.shop_id], row.external_id): _epoch(row.created_at)
                for row in self.hub_orders(db)
            }
        found = []
        for order in placed:
            at = created.get((order.marketplace, order.external_id))
            if at is not None and order.delivered_at is not None:
                found.append(max(0.0, at - order.delivered_at))
        return found


class StockLatency:
    """How long a change of what a shop should show takes to reach the marketplace, sampled
    every ``SAMPLE_SECONDS``: from the first sample where the hub's value moved to the first
    where the marketplace shows that value or a later one of the hub's. A change the
    marketplace showed at once (a sale there moved both) is not counted."""

    def __init__(self, observer: Observer) -> None:
        self.observer = observer
        self.samples: list[float] = []
        self.by_marketplace: dict[str, list[float]] = {name: [] for name in observer.shops}
        self.errors = 0
        self._last: dict[int, int] = {}
        self._pending: dict[int, list[tuple[float, int]]] = {}  # (since, value) per binding
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-stock-latency", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            try:
                self.sample()
            except Exception:  # a busy database: the next sample tries again
                self.errors += 1

    def sample(self) -> None:
        now = time.monotonic()
        wanted = self.observer.wanted()
        for item in self.observer.items:
            value = wanted.get(item.binding_id)
            if value is None:
                continue
            remote = self.observer.remote(item)
            previous = self._last.get(item.binding_id)
            self._last[item.binding_id] = value
            pending = self._pending.setdefault(item.binding_id, [])
            if previous is not None and value != previous and remote != value:
                pending.append((now, value))
            reached = [i for i, (_, shown) in enumerate(pending) if shown == remote]
            if remote == value:
                reached.append(len(pending) - 1)
            if pending and reached:
                last = max(reached)
                waited = [now - since for since, _ in pending[: last + 1]]
                self.samples.extend(waited)
                self.by_marketplace[item.marketplace].extend(waited)
                del pending[: last + 1]


@dataclass
class Report:
    orders_requested: int
    orders_placed: int
    orders_imported: int
    duplicate_orders: int
    missing_orders: int
    unexpected_orders: int
    orders_with_wrong_lines: int
    stock_mismatches: int
    stock_pushes: dict[str, int]
    prices_pushed: int
    price_mismatches: int
    fulfillments_shipped: int
    fulfillments_pushed: int
    duplicate_tracking_writes: int
    images_pushed: int
    bound_listings: int
    listings_without_images: int
    failed_operations: int
    webhook_to_order_p50_ms: float | None
    webhook_to_order_p95_ms: float | None
    stock_to_marketplace_p50_ms: float | None
    stock_to_marketplace_p95_ms: float | None
    stock_to_marketplace_p95_ms_by_marketplace: dict[str, float | None]
    drained: bool
    drain_s: float
    elapsed_s: float
    chaos: bool
    rate: float
    worker_restarts: int
    webhooks: dict[str, int]
    marketplace_errors: dict[str, dict[str, int]]
    backlog: dict[str, int]
    mismatch_details: list[dict[str, Any]] = field(default_factory=list)
    failed_details: list[dict[str, Any]] = field(default_factory=list)
    missing_details: list[str] = field(default_factory=list)
    checks: dict[str, bool] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(self.checks.values())

    def judge(self) -> None:
        self.checks = {
            "every order placed": self.orders_placed == self.orders_requested,
            "no missing orders": self.missing_orders == 0,
            "no duplicate orders": self.duplicate_orders == 0 and self.unexpected_orders == 0,
            "orders imported with their lines": self.orders_with_wrong_lines == 0,
            "no stock mismatches": self.stock_mismatches == 0,
            "prices pushed": self.prices_pushed > 0,
            "no price mismatches": self.price_mismatches == 0,
            "no duplicate tracking writes": self.duplicate_tracking_writes == 0,
            "no failed operations": self.failed_operations == 0,
            "every shipped fulfillment pushed": (
                self.fulfillments_pushed == self.fulfillments_shipped
            ),
            "every shop got a stock push": all(n >= 1 for n in self.stock_pushes.values()),
            "images pushed to every bound listing": self.images_pushed >= self.bound_listings,
            "drained within 60 s": self.drained,
        }

    def as_dict(self) -> dict[str, Any]:
        document = asdict(self)
        document["ok"] = self.ok
        return document


def build_report(
    observer: Observer,
    placed: Sequence[PlacedOrder],
    *,
    requested: int,
    latency: StockLatency,
    drained: bool,
    drain_s: float,
    elapsed_s: float,
    chaos: bool,
    rate: float,
    worker_restarts: int,
    webhooks: dict[str, int],
    backlog: dict[str, int],
) -> Report:
    world = observer.world
    with observer.engine.connect() as db:
        orders = observer.hub_orders(db)
        counts = observer.operation_counts(db)
        failed = db.execute(
            select(
                OPERATIONS.c.id, OPERATIONS.c.kind, OPERATIONS.c.shop_id, OPERATIONS.c.last_error
            )
            .where(observer.in_scope(), OPERATIONS.c.status == ops.FAILED)
            .limit(20)
        ).all()
        units = _units(db, [row.id for row in orders])
        prices_pushed = observer.prices_pushed(db)
        shipments = db.execute(
            select(ORDERS.c.shop_id, ORDERS.c.external_id, FULFILLMENTS.c.tracking_number)
            .join(ORDERS, ORDERS.c.id == FULFILLMENTS.c.order_id)
            .where(ORDERS.c.shop_id.in_(observer.shop_ids))
        ).all()
        listings = db.execute(
            select(BINDINGS.c.shop_id, BINDINGS.c.external_listing_id)
            .where(BINDINGS.c.shop_id.in_(observer.shop_ids))
            .distinct()
        ).all()
    name = observer.marketplace_of
    held = Counter((name[row.shop_id], row.external_id) for row in orders)
    wanted = {(order.marketplace, order.external_id): order for order in placed}
    missing = sorted(f"{m} {e}" for m, e in set(wanted) - set(held))
    wrong_lines = sum(
        1
        for row in orders
        if (name[row.shop_id], row.external_id) in wanted
        and units.get(row.id) != wanted[(name[row.shop_id], row.external_id)].units
    )
    remote = _remote_tracking(world)
    pushed = sum(
        1
        for row in shipments
        if any(
            row.tracking_number in (written or "")
            for written in remote.get((name[row.shop_id], row.external_id), [])
        )
    )
    hub_shipments = Counter((name[row.shop_id], row.external_id) for row in shipments)
    duplicate_writes = sum(
        max(0, len(numbers) - hub_shipments[order]) for order, numbers in remote.items()
    )
    without_images = sum(
        1
        for row in listings
        if row.external_listing_id is None
        or not _remote_images(world, name[row.shop_id], row.external_listing_id)
    )
    mismatches = observer.stock_mismatches()
    price_mismatches = observer.price_mismatches()
    webhook = observer.webhook_latencies(placed)
    report = Report(
        orders_requested=requested,
        orders_placed=len(placed),
        orders_imported=len(held),
        duplicate_orders=sum(held.values()) - len(held),
        missing_orders=len(missing),
        unexpected_orders=len(set(held) - set(wanted)),
        orders_with_wrong_lines=wrong_lines,
        stock_mismatches=len(mismatches),
        prices_pushed=prices_pushed,
        price_mismatches=len(price_mismatches),
        stock_pushes={
            marketplace: counts[(STOCK_BATCH, shop.id, ops.SUCCEEDED)]
            for marketplace, shop in observer.shops.items()
        },
        fulfillments_shipped=len(shipments),
        fulfillments_pushed=pushed,
        duplicate_tracking_writes=duplicate_writes,
        images_pushed=sum(
            n
            for (kind, _, status), n in counts.items()
            if kind == IMAGES_LISTING and status == ops.SUCCEEDED
        ),
        bound_listings=len(listings),
        listings_without_images=without_images,
        failed_operations=sum(n for (_, _, status), n in counts.items() if status == ops.FAILED),
        webhook_to_order_p50_ms=_ms(percentile(webhook, 0.50)),
        webhook_to_order_p95_ms=_ms(percentile(webhook, 0.95)),
        stock_to_marketplace_p50_ms=_ms(percentile(latency.samples, 0.50)),
        stock_to_marketplace_p95_ms=_ms(percentile(latency.samples, 0.95)),
        stock_to_marketplace_p95_ms_by_marketplace={
            name: _ms(percentile(samples, 0.95)) for name, samples in latency.by_marketplace.items()
        },
        drained=drained,
        drain_s=round(drain_s, 1),
        elapsed_s=round(elapsed_s, 1),
        chaos=chaos,
        rate=rate,
        worker_restarts=worker_restarts,
        webhooks=webhooks,
        marketplace_errors={name: answers.errors() for name, answers in world.answers.items()},
        backlog=backlog,
        mismatch_details=(mismatches + price_mismatches)[:20],
        failed_details=[
            {"id": row.id, "kind": row.kind, "shop_id": row.shop_id, "error": row.last_error}
            for row in failed
        ],
        missing_details=missing[:20],
    )
    report.judge()
    return report


def _units(db: Connection, order_ids: list[int]) -> dict[int, dict[str, int]]:
    found: dict[int, dict[str, int]] = {}
    for start in range(0, len(order_ids), 500):
        rows = db.execute(
            select(LINES.c.order_id, LINES.c.sku, LINES.c.quantity).where(
                LINES.c.order_id.in_(order_ids[start : start + 500])
            )
        ).all()
        for row in rows:
            per_sku = found.setdefault(row.order_id, {})
            per_sku[row.sku or ""] = per_sku.get(row.sku or "", 0) + row.quantity
    return found


def _remote_tracking(world: Marketplaces) -> dict[tuple[str, str], list[str | None]]:
    """What each tracking write to a marketplace order carried (the number, or a note's text
    with it), one entry per write."""
    found: dict[tuple[str, str], list[str | None]] = {}
    for write in list(world.shopify.fulfillment_writes):
        for tracking in write["tracking_info"] or [{}]:
            found.setdefault(("shopify", write["order_id"]), []).append(tracking.get("number"))
    for etsy in list(world.etsy.tracking_writes):
        found.setdefault(("etsy", str(etsy.receipt_id)), []).append(etsy.tracking_code)
    for woo in list(world.woo.tracking_writes):
        number = woo.get("tracking_number") or woo.get("text")
        found.setdefault(("woocommerce", str(woo["order_id"])), []).append(number)
    return found


def _remote_images(world: Marketplaces, marketplace: str, listing_id: str) -> int:
    if marketplace == "shopify":
        return len(world.shopify.media(listing_id))
    if marketplace == "woocommerce":
        return len(world.woo.product_json(int(listing_id))["images"])
    return len(world.etsy.images(int(listing_id)))


def render(report: Report) -> str:
    """The report as the terminal shows it."""
    pushes = ", ".join(f"{name} {n}" for name, n in report.stock_pushes.items())

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f} ms"

    lines = [
        "",
        "marketplace-hub demo report" + (" (chaos)" if report.chaos else ""),
        f"  orders            placed {report.orders_placed}/{report.orders_requested}, "
        f"imported {report.orders_imported}, missing {report.missing_orders}, "
        f"duplicate {report.duplicate_orders}, unexpected {report.unexpected_orders}, "
        f"wrong lines {report.orders_with_wrong_lines}",
        "  webhooks          " + ", ".join(f"{k} {v}" for k, v in report.webhooks.items()),
        f"  stock             mismatches {report.stock_mismatches}; pushes {pushes}",
        f"  prices            pushed {report.prices_pushed} listings' prices, "
        f"mismatches {report.price_mismatches}",
        f"  tracking          shipped {report.fulfillments_shipped}, pushed "
        f"{report.fulfillments_pushed}, duplicate writes {report.duplicate_tracking_writes}",
        f"  images            pushed {report.images_pushed} for {report.bound_listings} bound "
        f"listings ({report.listings_without_images} without images)",
        f"  operations        failed {report.failed_operations}; worker restarts "
        f"{report.worker_restarts}; marketplaces answered "
        + ", ".join(
            f"{name} {errors['429']}x429 {errors['5xx']}x5xx"
            for name, errors in report.marketplace_errors.items()
        ),
        f"  latency           webhook->order p50 {ms(report.webhook_to_order_p50_ms)}, "
        f"p95 {ms(report.webhook_to_order_p95_ms)}; stock->marketplace p50 "
        f"{ms(report.stock_to_marketplace_p50_ms)}, p95 {ms(report.stock_to_marketplace_p95_ms)} ("
        + ", ".join(
            f"{name} {ms(value)}"
            for name, value in report.stock_to_marketplace_p95_ms_by_marketplace.items()
        )
        + ")",
        f"  time              drained {'yes' if report.drained else 'NO'} in {report.drain_s} s "
        f"after the last order; {report.elapsed_s} s in all",
    ]
    if not report.drained:
        lines.append(f"  still to do       {report.backlog}")
    for detail in report.mismatch_details:
        lines.append(f"  mismatch          {detail}")
    for detail in report.failed_details:
        lines.append(f"  failed            {detail}")
    for order in report.missing_details:
        lines.append(f"  missing           {order}")
    lines.append("")
    lines.extend(
        f"  [{'ok' if passed else 'FAIL'}] {name}" for name, passed in report.checks.items()
    )
    lines.append("")
    lines.append("PASSED" if report.ok else "FAILED")
    return "\n".join(lines)
