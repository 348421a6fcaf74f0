"""The conformance suite every connector passes, and the fault injector it drives.

A marketplace's tests provide a ``MarketplaceDouble`` (its sandbox behind a ``FaultInjector``)
and a connector factory, then subclass ``ConnectorConformance``. Each check is also a plain
function, so the suite can be pointed at deliberately broken connectors to prove it catches them.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

import pytest

from connectors.contract import (
    AuthError,
    FulfillmentLineRef,
    FulfillmentRequest,
    MarketplaceConnector,
    NotFound,
    PermanentError,
    RateLimited,
    ShopContext,
    StockLevel,
    TransientError,
    WebhookRejected,
)
from hub.domain.orders import ImportOrder

MAX_PAGES = 10_000
FAULT_REPEATS = 5  # more than the quick retries, so a retried fault still surfaces
WRONG_SECRET = "a-secret-nobody-configured"  # noqa: S105

# ---------------------------------------------------------------------------------------------
# Fault injection: an ASGI wrapper in front of any sandbox.
# ---------------------------------------------------------------------------------------------

ASGIApp = Callable[..., Any]


@dataclass
class Fault:
    status: int = 500
    body: bytes = b'{"errors": "injected"}'
    headers: dict[str, str] = field(default_factory=dict)
    hang_seconds: float = 0.0  # > client timeout: a timeout


class FaultInjector:
    """Answers the next queued requests with faults, then passes through to the sandbox."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.queue: list[Fault] = []

    def fail_next(self, fault: Fault, times: int = 1) -> None:
        self.queue.extend([fault] * times)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not self.queue:
            await self.app(scope, receive, send)
            return
        fault = self.queue.pop(0)
        if fault.hang_seconds:
            await asyncio.sleep(fault.hang_seconds)
        headers = [(b"content-type", b"application/json")] + [
            (k.lower().encode(), v.encode()) for k, v in fault.headers.items()
        ]
        await send({"type": "http.response.start", "status": fault.status, "headers": headers})
        await send({"type": "http.response.body", "body": fault.body})


# ---------------------------------------------------------------------------------------------
# What a marketplace's tests provide.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeededListing:
    sku: str
    listing_id: str
    variant_id: str | None
    stock_item_id: str  # the id StockLevel.item_id takes for this marketplace


@dataclass(frozen=True)
class SeededOrder:
    external_id: str
    line_ids: tuple[str, ...]
    total: Decimal
    unit_prices: tuple[Decimal, ...]


class MarketplaceDouble(Protocol):
    faults: FaultInjector

    def shop(self) -> ShopContext: ...
    def add_listing(self, sku: str, price: Decimal, available: int) -> SeededListing: ...
    def add_order(
        self,
        lines: Sequence[tuple[SeededListing, int, Decimal]],
        *,
        updated_at: datetime,
        total: Decimal,
    ) -> SeededOrder: ...
    def touch_order(self, external_id: str, updated_at: datetime) -> None: ...
    def stock_of(self, listing: SeededListing) -> int: ...
    def fulfillment_writes(self) -> int: ...
    def stock_batch_sample(self) -> Sequence[str]:
        """Well-formed item ids (seeded or not) that exercise the marketplace's batching rule:
        several groups, interleaved, at least one larger than ``stock_batch_size``."""
        ...

    def stock_batch_key(self, item_id: str) -> Hashable:
        """The marketplace's rule, said independently of the connector: items with equal keys
        may share one ``set_stock_levels`` call, items with different keys never."""
        ...

    def throttled_fault(self) -> Fault:
        """How this marketplace says 'rate limited' when it does not use 429 (else a 429)."""
        ...

    def signed_webhook(
        self, payload: dict[str, Any], *, secret: str
    ) -> tuple[bytes, dict[str, str]]: ...

    current_secret: str
    previous_secret: str


# ---------------------------------------------------------------------------------------------
# The checks: plain functions raising AssertionError.
# ---------------------------------------------------------------------------------------------


def scan_all(
    connector: MarketplaceConnector,
    shop: ShopContext,
    since: datetime,
    between_pages: Callable[[int], None] = lambda _n: None,
) -> list[ImportOrder]:
    """Page through every order changed since ``since``; call ``between_pages`` after each."""
    seen: list[ImportOrder] = []
    cursor: str | None = None
    for page_number in range(MAX_PAGES):
        page = connector.list_orders_changed(shop, since=since, cursor=cursor)
        seen.extend(page.orders)
        if page.orders:
            assert page.high_water_mark == max(o.external_updated_at for o in page.orders)
        between_pages(page_number)
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor
    raise AssertionError("the scan never ended")


def check_pagination_complete(connector: MarketplaceConnector, double: MarketplaceDouble) -> None:
    """Every order appears across page boundaries, runs of equal updated_at included, and an
    order updated mid-scan is still seen (possibly twice: import is idempotent)."""
    listing = double.add_listing("CONF-PAGE", Decimal("10.00"), 100)
    base = datetime(2026, 3, 1, tzinfo=UTC)
    seeded = [
        double.add_order(
            [(listing, 1, Decimal("10.00"))],
            updated_at=base + timedelta(minutes=n // 4),  # runs of four equal timestamps
            total=Decimal("10.00"),
        )
        for n in range(45)
    ]
    touched = seeded[1].external_id

    def touch_once(page_number: int) -> None:
        if page_number == 0:
            double.touch_order(touched, base + timedelta(days=1))

    orders = scan_all(connector, double.shop(), base - timedelta(seconds=1), touch_once)
    ids = [order.external_id for order in orders]
    missing = {s.external_id for s in seeded} - set(ids)
    assert not missing, f"orders never returned: {sorted(missing)}"
    # A stream sorted by update time shows the touched order again in this scan; one that is
    # not (WooCommerce) shows it in the next scan. Either way the next scan sees only it.
    again = scan_all(connector, double.shop(), base + timedelta(hours=12))
    assert [o.external_id for o in again] == [touched], "a later scan sees only what changed"
    assert again[0].external_updated_at >= base + timedelta(days=1)


def check_money_exact(connector: MarketplaceConnector, double: MarketplaceDouble) -> None:
    """Amounts survive as exact decimals: 0.10 + 0.20 is 0.30, not 0.30000000000000004."""
    listing = double.add_listing("CONF-MONEY", Decimal("0.10"), 100)
    seeded = double.add_order(
        [(listing, 3, Decimal("0.10")), (listing, 1, Decimal("1234567.89"))],
        updated_at=datetime(2026, 4, 1, tzinfo=UTC),
        total=Decimal("1234568.19"),
    )
    order = connector.get_order(double.shop(), seeded.external_id)
    assert order.total == Decimal("1234568.19")
    assert str(order.total) in ("1234568.19", "1234568.190", "1234568.1900")
    assert [line.unit_price for line in order.lines] == [Decimal("0.10"), Decimal("1234567.89")]
    assert all(isinstance(line.unit_price, Decimal) for line in order.lines)
    assert [line.quantity for line in order.lines] == [3, 1]


def check_listings_discovered(connector: MarketplaceConnector, double: MarketplaceDouble) -> None:
    wanted = {f"CONF-LIST-{n}" for n in range(7)}
    for sku in sorted(wanted):
        double.add_listing(sku, Decimal("5.00"), 1)
    found: set[str] = set()
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        page = connector.list_listings(double.shop(), cursor=cursor)
        found |= {v.sku for v in page.variants if v.sku}
        cursor = page.next_cursor
        if cursor is None:
            break
    assert wanted <= found, f"listings not discovered: {sorted(wanted - found)}"


def check_stock_push_idempotent(connector: MarketplaceConnector, double: MarketplaceDouble) -> None:
    listing = double.add_listing("CONF-STOCK", Decimal("5.00"), 9)
    level = StockLevel(listing.stock_item_id, quantity=4, expected_quantity=9)
    connector.set_stock_levels(double.shop(), [level], idempotency_key="conf-stock-1")
    connector.set_stock_levels(double.shop(), [level], idempotency_key="conf-stock-1")
    assert double.stock_of(listing) == 4
    assert connector.read_stock_levels(double.shop(), [listing.stock_item_id]) == {
        listing.stock_item_id: 4
    }


def check_stock_batches(connector: MarketplaceConnector, double: MarketplaceDouble) -> None:
    """``stock_batches`` splits levels into groups that follow the marketplace's rule (one key
    per group, as few groups per key as the batch size allows), each at most the batch size,
    every level exactly once in input order, the same groups every time; and each group is
    taken by one ``set_stock_levels`` call."""
    size = connector.capabilities.stock_batch_size
    assert connector.stock_batches([]) == [], "no levels, no calls"
    ids = list(double.stock_batch_sample())
    levels = [StockLevel(item_id, quantity=n) for n, item_id in enumerate(ids)]  # all distinct
    groups = connector.stock_batches(levels)
    assert groups == connector.stock_batches(list(levels)), "the same input gave other groups"
    flat = [level for group in groups for level in group]
    assert Counter(flat) == Counter(levels), "every level must appear in exactly one group"
    assert all(1 <= len(group) <= size for group in groups), (
        f"group sizes {sorted({len(group) for group in groups})} break the batch size {size}"
    )
    by_key: dict[Hashable, list[list[StockLevel]]] = {}
    for group in groups:
        keys = {double.stock_batch_key(level.item_id) for level in group}
        assert len(keys) == 1, f"one group mixes items that cannot share a call: {keys}"
        by_key.setdefault(keys.pop(), []).append(group)
    wanted: dict[Hashable, list[StockLevel]] = {}
    for level in levels:
        wanted.setdefault(double.stock_batch_key(level.item_id), []).append(level)
    assert set(by_key) == set(wanted)
    for key, key_levels in wanted.items():
        calls = by_key[key]
        assert len(calls) == math.ceil(len(key_levels) / size), (
            f"{len(key_levels)} items of {key!r} took {len(calls)} calls at {size} per call"
        )
        assert [level for group in calls for level in group] == key_levels, "input order lost"
    seeded = [double.add_listing(f"CONF-BATCH-{n}", Decimal("5.00"), 9) for n in range(3)]
    pushed = [StockLevel(listing.stock_item_id, quantity=n + 2) for n, listing in enumerate(seeded)]
    for number, group in enumerate(connector.stock_batches(pushed)):
        connector.set_stock_levels(double.shop(), group, idempotency_key=f"conf-batch-{number}")
    assert [double.stock_of(listing) for listing in seeded] == [2, 3, 4]


def check_fulfillment_written_once(
    connector: MarketplaceConnector, double: MarketplaceDouble
) -> None:
    listing = double.add_listing("CONF-SHIP", Decimal("5.00"), 9)
    seeded = double.add_order(
        [(listing, 2, Decimal("5.00"))],
        updated_at=datetime(2026, 5, 1, tzinfo=UTC),
        total=Decimal("10.00"),
    )
    request = FulfillmentRequest(
        order_external_id=seeded.external_id,
        lines=(FulfillmentLineRef(seeded.line_ids[0], 2),),
        carrier="UPS",
        tracking_number="1ZCONF0001",
        tracking_url="https://track.example/1ZCONF0001",
    )
    before = double.fulfillment_writes()
    first = connector.create_fulfillment(double.shop(), request)
    second = connector.create_fulfillment(double.shop(), request)
    assert not first.already_existed
    assert second.already_existed
    assert second.external_id == first.external_id
    assert double.fulfillment_writes() == before + 1


ERROR_CASES: tuple[tuple[str, Fault, type[Exception]], ...] = (
    ("401", Fault(401, b'{"errors": "Invalid API key or access token"}'), AuthError),
    ("403", Fault(403, b'{"errors": "Forbidden"}'), AuthError),
    ("404", Fault(404, b'{"errors": "Not Found"}'), NotFound),
    ("422", Fault(422, b'{"errors": {"quantity": ["is invalid"]}}'), PermanentError),
    ("429", Fault(429, b'{"errors": "Too many requests"}', {"Retry-After": "30"}), RateLimited),
    (
        "500",
        Fault(500, b'{"errors": "Internal Server Error"}', {"Retry-After": "30"}),
        TransientError,
    ),
)


def _expect(error: type[Exception], what: str, call: Callable[[], object]) -> Exception:
    try:
        call()
    except error as raised:
        return raised
    except Exception as other:
        raise AssertionError(
            f"{what}: raised {type(other).__name__}, expected {error.__name__}"
        ) from other
    raise AssertionError(f"{what}: raised nothing, expected {error.__name__}")


def check_error_classification(
    connector: MarketplaceConnector, double: MarketplaceDouble, *, timeout_fault: Fault
) -> None:
    """Each failure arrives as its error class, the body read before the status."""
    shop, since = double.shop(), datetime(2026, 1, 1, tzinfo=UTC)

    def pull() -> object:
        return connector.list_orders_changed(shop, since=since)

    cases: list[tuple[str, Fault, type[Exception]]] = [
        *ERROR_CASES,
        ("timeout", timeout_fault, TransientError),
        # Last: a throttled answer leaves the shared limiter waiting for the budget to restore.
        ("throttled body", double.throttled_fault(), RateLimited),
    ]
    for name, fault, expected in cases:
        double.faults.queue.clear()
        double.faults.fail_next(fault, times=FAULT_REPEATS)
        raised = _expect(expected, name, pull)
        if isinstance(raised, RateLimited):
            assert raised.retry_after is not None, f"{name}: RateLimited without retry_after"
            assert raised.retry_after > 0, f"{name}: retry_after must be positive"
    double.faults.queue.clear()


def check_webhook_verification(connector: MarketplaceConnector, double: MarketplaceDouble) -> None:
    payload = {
        "id": 820982911946154508,
        "admin_graphql_api_id": "gid://shopify/Order/820982911946154508",
    }
    body, headers = double.signed_webhook(payload, secret=double.current_secret)
    envelope = connector.verify_webhook(body, headers)
    assert envelope.event_key
    assert envelope.shop_reference == double.shop().external_id

    with pytest.raises(WebhookRejected):
        connector.verify_webhook(body.replace(b"8209", b"8208"), headers)
    wrong_body, wrong_headers = double.signed_webhook(payload, secret=WRONG_SECRET)
    with pytest.raises(WebhookRejected):
        connector.verify_webhook(wrong_body, wrong_headers)
    for name in list(headers):
        if "hmac" in name.lower() or "signature" in name.lower():
            stripped = {k: v for k, v in headers.items() if k != name}
            with pytest.raises(WebhookRejected):
                connector.verify_webhook(body, stripped)
    rotated_body, rotated_headers = double.signed_webhook(payload, secret=double.previous_secret)
    assert connector.verify_webhook(rotated_body, rotated_headers).event_key


ALL_CHECKS: dict[str, Callable[[MarketplaceConnector, MarketplaceDouble], None]] = {
    "pagination_complete": check_pagination_complete,
    "money_exact": check_money_exact,
    "listings_discovered": check_listings_discovered,
    "stock_push_idempotent": check_stock_push_idempotent,
    "stock_batches": check_stock_batches,
    "fulfillment_written_once": check_fulfillment_written_once,
    "webhook_verification": check_webhook_verification,
}


class ConnectorConformance:
    """Subclass with fixtures ``connector`` and ``double``; pytest runs every check."""

    timeout_fault = Fault(200, b"{}", hang_seconds=2.0)

    def test_pagination_complete(
        self, connector: MarketplaceConnector, double: MarketplaceDouble
    ) -> None:
        check_pagination_complete(connector, double)

    def test_money_exact(self, connector: MarketplaceConnector, double: MarketplaceDouble) -> None:
        check_money_exact(connector, double)

    def test_listings_discovered(
        self, connector: MarketplaceConnector, double: MarketplaceDouble
    ) -> None:
        check_listings_discovered(connector, double)

    def test_stock_push_idempotent(
        self, connector: MarketplaceConnector, double: MarketplaceDouble
    ) -> None:
        check_stock_push_idempotent(connector, double)

    def test_stock_batches(
        self, connector: MarketplaceConnector, double: MarketplaceDouble
    ) -> None:
        check_stock_batches(connector, double)

    def test_fulfillment_written_once(
        self, connector: MarketplaceConnector, double: MarketplaceDouble
    ) -> None:
        check_fulfillment_written_once(connector, double)

    def test_error_classification(
        self, connector: MarketplaceConnector, double: MarketplaceDouble
    ) -> None:
        check_error_classification(connector, double, timeout_fault=self.timeout_fault)

    def test_webhook_verification(
        self, connector: MarketplaceConnector, double: MarketplaceDouble
    ) -> None:
        check_webhook_verification(connector, double)
