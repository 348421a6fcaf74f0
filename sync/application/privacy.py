"""Buyer data: what we hold about a buyer, handing it over, and removing it everywhere it lives.

Buyer data lives in four places:

* orders: the buyer's name, email and shipping address (with its phone);
* stored webhook events: the raw bodies marketplaces sent, whatever became of them (handled,
  still received, rejected);
* error texts: a marketplace's message kept in an attempt or an operation may quote an email;
* cached order documents: the bytes the API serves for ``GET /orders/{id}``.

Redacting a buyer replaces the order's buyer fields with a marker (lines, totals, fulfillments
and the destination country stay: production and accounting need them) and bumps the order's
version, so the unit of work tombstones its cached document after the commit; blanks the bodies
of the events that mention the buyer (the rows, statuses and keys stay, the body becomes
``REDACTED_BODY``); and takes the email out of error texts. Everything is idempotent and done in
batches, each in its own short transaction. An order once redacted stays so: a later import
keeps its buyer fields empty.

Shopify's mandatory compliance webhooks arrive as ordinary events and are handled here
(https://shopify.dev/docs/apps/build/compliance/privacy-law-compliance):
``customers/data_request`` files an export as a ``privacy.export`` job for the operator,
``customers/redact`` redacts the buyer, ``shop/redact`` every buyer of the shop.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Connection, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import OperationalError

from connectors.shopify import webhooks as shopify_webhooks
from hub.application.orders import save_order
from hub.bootstrap import Container
from hub.domain.errors import InvalidInput
from hub.domain.orders import Fulfillment, Order
from hub.domain.shops import Marketplace, Shop
from hub.infrastructure.clock import utcnow
from hub.infrastructure.db import read_only
from hub.infrastructure.orders import OrderRef, SqlOrderRepository
from hub.infrastructure.outbound import OPERATIONS
from hub.settings import Settings
from sync.infrastructure import events
from sync.infrastructure.events import EVENTS
from sync.infrastructure.operations import ATTEMPTS, SUCCEEDED, VICTIM_SQLSTATES

T = TypeVar("T")

EXPORT_KIND = "privacy.export"  # a sync_operations kind: the export answering a data request
REDACTED_BODY = b'{"redacted":true}'  # what a redacted event's body becomes
REDACTED_EMAIL = "[redacted email]"
EMAIL = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
COMPLIANCE_TOPICS = shopify_webhooks.COMPLIANCE_TOPICS
# Compliance requests still waiting to be handled keep their bodies until they are.
NOT_PENDING = or_(
    EVENTS.c.status != events.RECEIVED, EVENTS.c.topic.not_in(sorted(COMPLIANCE_TOPICS))
)
ORDER_BATCH = 100  # orders per transaction (each one row-locked until the commit)
ROW_BATCH = 500  # events or texts per statement or transaction
VICTIM_RETRIES = 5


@dataclass(frozen=True)
class Buyer:
    """Who to look for: their email (any case), and/or the marketplace ids of their orders."""

    email: str | None = None
    order_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        email = (self.email or "").strip().lower() or None
        object.__setattr__(self, "email", email)
        object.__setattr__(self, "order_ids", tuple(sorted({i for i in self.order_ids if i})))
        if email is None and not self.order_ids:
            raise InvalidInput("name the buyer: an email or the ids of their orders")

    @property
    def email_sha256(self) -> str | None:
        return hashlib.sha256(self.email.encode()).hexdigest() if self.email else None

    def needles(self) -> tuple[bytes, ...]:
        """The email as raw bodies may carry it: plain, or JSON-escaped (non-ASCII)."""
        if self.email is None:
            return ()
        escaped = json.dumps(self.email)[1:-1]
        return tuple({self.email.encode(), escaped.encode()})


@dataclass
class Redaction:
    """What a redaction changed (zero everywhere when it ran before: it is idempotent)."""

    orders: int = 0
    events: int = 0
    error_texts: int = 0
    exports: int = 0
    complete: bool = True  # False: a bounded run (the scheduler's) left work for the next one

    def as_dict(self) -> dict[str, Any]:
        return {
            "orders": self.orders,
            "events": self.events,
            "error_texts": self.error_texts,
            "exports": self.exports,
        }

    def summary(self) -> str:
        return (
            f"{self.orders} orders, {self.events} events, {self.error_texts} error texts and "
            f"{self.exports} exports redacted"
        )


@dataclass(frozen=True)
class EventHit:
    """A stored event that mentions the buyer: by the order it is about, or by their email."""

    id: int
    marketplace: str
    shop_id: int | None
    topic: str
    event_key: str
    resource_id: str | None
    status: str
    received_at: datetime
    redacted: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "marketplace": self.marketplace,
            "shop_id": self.shop_id,
            "topic": self.topic,
            "event_key": self.event_key,
            "resource_id": self.resource_id,
            "status": self.status,
            "received_at": self.received_at.isoformat(),
            "body_redacted": self.redacted,
        }


@dataclass
class _Budget:
    """At most ``rows`` rows per kind of work in one call; ``None``: no bound."""

    rows: int | None = None
    exhausted: bool = False

    def next_batch(self, done: int, size: int) -> int:
        """How many rows the next batch may take after ``done``; 0 once the budget is spent."""
        if self.rows is None:
            return size
        left = self.rows - done
        if left <= 0:
            self.exhausted = True
            return 0
        return min(size, left)


# ---------------------------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------------------------


def export_buyer(
    container: Container,
    shop_id: int | None,
    email: str | None,
    *,
    order_ids: Collection[str] = (),
) -> dict[str, Any]:
    """Everything we hold about one buyer, as a JSON-able document: their orders (lines,
    address, fulfillments) and the stored events that mention them. Reads only."""
    buyer = Buyer(email, tuple(order_ids))
    with read_only(container.engine).connect() as db:
        repository = SqlOrderRepository(db)
        refs = repository.find_buyer_orders(
            shop_id=shop_id, email=buyer.email, external_ids=buyer.order_ids
        )
        orders = repository.read_many([ref.id for ref in refs])
        shipments = repository.fulfillments_of([ref.id for ref in refs])
    hits = buyer_events(container, shop_id, buyer, refs)
    return {
        "generated_at": utcnow().isoformat(),
        "shop_id": shop_id,
        "buyer": {"email": buyer.email, "order_ids": list(buyer.order_ids)},
        "orders": [_order_document(order, shipments.get(order.id or 0, [])) for order in orders],
        "events": [hit.as_dict() for hit in hits],
    }


def _order_document(order: Order, shipments: list[Fulfillment]) -> dict[str, Any]:
    return {
        "id": order.id,
        "shop_id": order.shop_id,
        "external_id": order.external_id,
        "external_number": order.external_number,
        "external_status": order.external_status,
        "status": order.status.value,
        "placed_at": order.placed_at.isoformat(),
        "currency": order.currency,
        "total": str(order.total),
        "paid": order.paid,
        "cancelled": order.cancelled,
        "refunded": order.refunded,
        "customer": {"name": order.customer_name, "email": order.customer_email},
        "shipping_address": order.shipping_address,
        "buyer_redacted_at": (
            order.buyer_redacted_at.isoformat() if order.buyer_redacted_at else None
        ),
        "lines": [
            {
                "external_line_id": line.external_line_id,
                "sku": line.sku,
                "title": line.title,
                "quantity": line.quantity,
                "fulfilled_quantity": line.fulfilled_quantity,
                "unit_price": str(line.unit_price),
            }
            for line in order.lines
        ],
        "fulfillments": [
            {
                "id": shipment.id,
                "carrier": shipment.carrier,
                "tracking_number": shipment.tracking_number,
                "tracking_url": shipment.tracking_url,
                "created_at": shipment.created_at.isoformat() if shipment.created_at else None,
                "lines": [
                    {"order_line_id": line.order_line_id, "quantity": line.quantity}
                    for line in shipment.lines
                ],
            }
            for shipment in shipments
        ],
    }


def buyer_events(
    container: Container, shop_id: int | None, buyer: Buyer, refs: Sequence[OrderRef]
) -> list[EventHit]:
    """Events that mention the buyer: about one of their orders, or with their email in the
    body. With a shop, its events and those no shop was found for (rejected ones); a scan in
    id order, a batch at a time."""
    about = {(ref.shop_id, ref.external_id) for ref in refs}
    external_ids = {ref.external_id for ref in refs}
    needles = buyer.needles()
    hits: list[EventHit] = []
    after = 0
    while True:
        query = (
            select(
                EVENTS.c.id,
                EVENTS.c.marketplace,
                EVENTS.c.shop_id,
                EVENTS.c.topic,
                EVENTS.c.event_key,
                EVENTS.c.resource_id,
                EVENTS.c.status,
                EVENTS.c.received_at,
                EVENTS.c.body,
            )
            .where(EVENTS.c.id > after)
            .order_by(EVENTS.c.id)
            .limit(ROW_BATCH)
        )
        if shop_id is not None:
            query = query.where((EVENTS.c.shop_id == shop_id) | EVENTS.c.shop_id.is_(None))
        with read_only(container.engine).connect() as db:
            rows = db.execute(query).all()
        if not rows:
            return hits
        for row in rows:
            body = bytes(row.body)
            lowered = body.lower()
            if row.shop_id is not None:
                mentioned = (row.shop_id, row.resource_id) in about
            else:
                mentioned = row.resource_id in external_ids
            if mentioned or any(needle in lowered for needle in needles):
                hits.append(
                    EventHit(
                        id=row.id,
                        marketplace=row.marketplace,
                        shop_id=row.shop_id,
                        topic=row.topic,
                        event_key=row.event_key,
                        resource_id=row.resource_id,
                        status=row.status,
                        received_at=row.received_at,
                        redacted=body == REDACTED_BODY,
                    )
                )
        after = rows[-1].id


def store_export(
    container: Container,
    shop_id: int,
    key: str,
    payload: dict[str, Any],
    document: dict[str, Any],
) -> int:
    """File an export as a finished ``privacy.export`` job (``hub jobs show``, ``GET
    /jobs/{id}``); the same key twice is one job. Returns the job's id."""
    now = utcnow()
    with container.engine.begin() as db:
        dialect_insert = pg_insert if db.dialect.name == "postgresql" else sqlite_insert
        db.execute(
            dialect_insert(OPERATIONS)
            .values(
                kind=EXPORT_KIND,
                shop_id=shop_id,
                key=key,
                status=SUCCEEDED,
                payload=payload,
                attempts=0,
                result=document,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["key"])
        )
        found: int = db.execute(select(OPERATIONS.c.id).where(OPERATIONS.c.key == key)).scalar_one()
    return found


# ---------------------------------------------------------------------------------------------
# Redaction
# ---------------------------------------------------------------------------------------------


def redact_buyer(
    container: Container,
    shop_id: int | None,
    email: str | None,
    *,
    order_ids: Collection[str] = (),
) -> Redaction:
    """Remove one buyer's data: their orders (found by email or by the order ids given), the
    events that mention them, their email in error texts, exports made for them."""
    buyer = Buyer(email, tuple(order_ids))
    now = utcnow()
    with read_only(container.engine).connect() as db:
        refs = SqlOrderRepository(db).find_buyer_orders(
            shop_id=shop_id, email=buyer.email, external_ids=buyer.order_ids
        )
    report = Redaction()
    report.orders = _redact_orders(container, [ref.id for ref in refs if not ref.redacted], now)
    if buyer.email is not None:
        needle = buyer.email
        pattern = re.compile(re.escape(needle), re.IGNORECASE)

        def scrub(text: str) -> str:
            return pattern.sub(REDACTED_EMAIL, text)

        report.error_texts = _scrub_texts(
            container,
            ATTEMPTS.c.error,
            [func.lower(ATTEMPTS.c.error).contains(needle, autoescape=True)],
            scrub,
        ) + _scrub_texts(
            container,
            OPERATIONS.c.last_error,
            [func.lower(OPERATIONS.c.last_error).contains(needle, autoescape=True)],
            scrub,
        )
    report.exports = _redact_exports(
        container, [OPERATIONS.c.shop_id == shop_id] if shop_id is not None else [], buyer, now
    )
    # Events last, and compliance requests still waiting left alone: they need their bodies
    # to be handled, and are blanked when they are. A crash before this point leaves a
    # request's own event readable, so handling it again redoes everything.
    hits = buyer_events(container, shop_id, buyer, refs)
    report.events = redact_events(
        container, [hit.id for hit in hits if not hit.redacted and not _pending_request(hit)]
    )
    return report


def _pending_request(hit: EventHit) -> bool:
    return hit.status == events.RECEIVED and hit.topic in COMPLIANCE_TOPICS


def redact_shop(container: Container, shop_id: int) -> Redaction:
    """Remove the data of every buyer of a shop (``shop/redact``): its orders, all its events,
    emails in its jobs' error texts, its exports."""
    now = utcnow()
    report = Redaction()
    report.orders = _redact_order_scan(container, now, shop_id=shop_id)
    report.events = _redact_event_scan(container, [EVENTS.c.shop_id == shop_id, NOT_PENDING])
    shop_operations = select(OPERATIONS.c.id).where(OPERATIONS.c.shop_id == shop_id)
    report.error_texts = _scrub_texts(
        container,
        ATTEMPTS.c.error,
        [ATTEMPTS.c.operation_id.in_(shop_operations), ATTEMPTS.c.error.contains("@")],
        scrub_emails,
    ) + _scrub_texts(
        container,
        OPERATIONS.c.last_error,
        [OPERATIONS.c.shop_id == shop_id, OPERATIONS.c.last_error.contains("@")],
        scrub_emails,
    )
    report.exports = _redact_exports(container, [OPERATIONS.c.shop_id == shop_id], None, now)
    return report


def redact_expired(
    container: Container,
    older_than: datetime | None,
    *,
    exports_older_than: datetime | None = None,
    budget: int | None = None,
) -> Redaction:
    """Retention: redact orders untouched since ``older_than``, events received before it
    (whatever their status), emails in error texts written before it, and exports filed
    before ``exports_older_than``; compliance requests that could not be handled (rejected:
    their shop was unknown) at any age. ``budget`` bounds the rows of each kind per call
    (``complete`` is then False when some were left for the next call)."""
    now = utcnow()
    limit = _Budget(budget)
    report = Redaction()
    if older_than is not None:
        report.orders = _redact_order_scan(container, now, updated_before=older_than, budget=limit)
        report.events = _redact_event_scan(
            container, [EVENTS.c.received_at < older_than], budget=limit
        )
        report.error_texts = _scrub_texts(
            container,
            ATTEMPTS.c.error,
            [ATTEMPTS.c.created_at < older_than, ATTEMPTS.c.error.contains("@")],
            scrub_emails,
            budget=limit,
        ) + _scrub_texts(
            container,
            OPERATIONS.c.last_error,
            [OPERATIONS.c.updated_at < older_than, OPERATIONS.c.last_error.contains("@")],
            scrub_emails,
            budget=limit,
        )
    report.events += _redact_event_scan(
        container,
        [EVENTS.c.status == events.REJECTED, EVENTS.c.topic.in_(sorted(COMPLIANCE_TOPICS))],
        budget=limit,
    )
    if exports_older_than is not None:
        report.exports = _redact_exports(
            container, [OPERATIONS.c.updated_at < exports_older_than], None, now
        )
    report.complete = not limit.exhausted
    return report


def retention_cutoffs(settings: Settings, now: datetime) -> tuple[datetime | None, datetime]:
    """(buyer data older than this is redacted, exports older than this are redacted)."""
    days = settings.buyer_data_retention_days
    return (
        now - timedelta(days=days) if days > 0 else None,
        now - timedelta(days=settings.privacy_export_retention_days),
    )


def scrub_emails(text: str) -> str:
    return EMAIL.sub(REDACTED_EMAIL, text)


def blank_event_body(db: Connection, event_id: int) -> None:
    """Replace one event's body in the caller's transaction (a handled compliance request, an
    order event about a redacted buyer)."""
    db.execute(update(EVENTS).where(EVENTS.c.id == event_id).values(body=REDACTED_BODY))


def redact_events(container: Container, event_ids: Sequence[int]) -> int:
    """Blank the bodies of these events (rows, statuses and keys stay); the number changed."""
    changed = 0
    for chunk in _chunks(sorted(event_ids), ROW_BATCH):
        with container.engine.begin() as db:
            changed += db.execute(
                update(EVENTS)
                .where(EVENTS.c.id.in_(chunk), EVENTS.c.body != REDACTED_BODY)
                .values(body=REDACTED_BODY)
            ).rowcount
    return changed


def _redact_orders(container: Container, order_ids: Sequence[int], now: datetime) -> int:
    """Redact orders a batch per transaction; each save bumps the order's version, so the
    commit tombstones its cached document. A deadlock's victim (an import holding the same
    rows) runs its batch again: redacting twice changes nothing."""
    changed = 0
    for chunk in _chunks(sorted(order_ids), ORDER_BATCH):
        changed += _run_again_if_victim(partial(_redact_order_batch, container, chunk, now))
    return changed


def _redact_order_batch(container: Container, order_ids: Sequence[int], now: datetime) -> int:
    changed = 0
    with container.uow() as uow:
        for order_id in order_ids:
            order = uow.orders.get(order_id)
            if order is not None and order.redact_buyer(now):
                save_order(uow, order)
                changed += 1
        uow.commit()
    return changed


def _redact_order_scan(
    container: Container,
    now: datetime,
    *,
    shop_id: int | None = None,
    updated_before: datetime | None = None,
    budget: _Budget | None = None,
) -> int:
    changed = 0
    after = 0
    limit = budget or _Budget()
    while size := limit.next_batch(changed, ORDER_BATCH):
        with read_only(container.engine).connect() as db:
            ids = SqlOrderRepository(db).unredacted_order_ids(
                shop_id=shop_id, updated_before=updated_before, after_id=after, limit=size
            )
        if not ids:
            break
        changed += _redact_orders(container, ids, now)
        after = ids[-1]
    return changed


def _redact_event_scan(
    container: Container, conditions: list[ColumnElement[bool]], *, budget: _Budget | None = None
) -> int:
    """Blank every event matching ``conditions`` (in id order, a batch per transaction)."""
    changed = 0
    after = 0
    limit = budget or _Budget()
    while size := limit.next_batch(changed, ROW_BATCH):
        with container.engine.begin() as db:
            ids = list(
                db.execute(
                    select(EVENTS.c.id)
                    .where(EVENTS.c.id > after, EVENTS.c.body != REDACTED_BODY, *conditions)
                    .order_by(EVENTS.c.id)
                    .limit(size)
                ).scalars()
            )
            if not ids:
                break
            changed += db.execute(
                update(EVENTS)
                .where(EVENTS.c.id.in_(ids), EVENTS.c.body != REDACTED_BODY)
                .values(body=REDACTED_BODY)
            ).rowcount
        after = ids[-1]
    return changed


def _scrub_texts(
    container: Container,
    column: Any,
    conditions: list[ColumnElement[bool]],
    scrub: Callable[[str], str],
    *,
    budget: _Budget | None = None,
) -> int:
    """Rewrite a text column of the rows matching ``conditions`` through ``scrub``, a batch
    per transaction; a row whose text changed meanwhile (a runner recording a new error) is
    left to the next run. Timestamps stay: sweeps rely on them."""
    table = column.table
    changed = 0
    after = 0
    limit = budget or _Budget()
    while size := limit.next_batch(changed, ROW_BATCH):
        with container.engine.begin() as db:
            rows = db.execute(
                select(table.c.id, column)
                .where(table.c.id > after, column.is_not(None), *conditions)
                .order_by(table.c.id)
                .limit(size)
            ).all()
            if not rows:
                break
            for row_id, text in rows:
                scrubbed = scrub(text)
                if scrubbed != text:
                    changed += db.execute(
                        update(table)
                        .where(table.c.id == row_id, column == text)
                        .values({column.name: scrubbed})
                    ).rowcount
        after = rows[-1][0]
    return changed


def _redact_exports(
    container: Container,
    conditions: list[ColumnElement[bool]],
    buyer: Buyer | None,
    now: datetime,
) -> int:
    """Replace the result of the exports matching ``conditions`` (and made for ``buyer``, when
    given: the same email, or one of the same orders) with a redaction note."""
    changed = 0
    with container.engine.begin() as db:
        rows = db.execute(
            select(OPERATIONS.c.id, OPERATIONS.c.payload, OPERATIONS.c.result).where(
                OPERATIONS.c.kind == EXPORT_KIND, *conditions
            )
        ).all()
        for row_id, payload, result in rows:
            if result is not None and result.get("redacted"):
                continue
            if buyer is not None and not _export_is_for(payload or {}, buyer):
                continue
            changed += db.execute(
                update(OPERATIONS)
                .where(OPERATIONS.c.id == row_id)
                .values(result={"redacted": True, "redacted_at": now.isoformat()})
            ).rowcount
    return changed


def _export_is_for(payload: dict[str, Any], buyer: Buyer) -> bool:
    if buyer.email_sha256 is not None and payload.get("email_sha256") == buyer.email_sha256:
        return True
    return bool(set(payload.get("order_ids") or ()) & set(buyer.order_ids))


def _run_again_if_victim(work: Callable[[], T]) -> T:
    for attempt in range(1, VICTIM_RETRIES + 1):
        try:
            return work()
        except OperationalError as error:
            victim = getattr(error.orig, "sqlstate", None) in VICTIM_SQLSTATES
            if not victim or attempt == VICTIM_RETRIES:
                raise
            time.sleep(0.02 * attempt)
    raise AssertionError("unreachable: the last attempt returns or raises")


def _chunks(values: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


# ---------------------------------------------------------------------------------------------
# Shopify's compliance webhooks
# ---------------------------------------------------------------------------------------------


def handle_compliance_event(container: Container, event_id: int, shop: Shop) -> str:
    """Do what a compliance request asks; returns what was done (no personal data in it), for
    the event's reason. The caller blanks the event's body and marks it handled."""
    with read_only(container.engine).connect() as db:
        event = events.load_event(db, event_id)
    if event is None:
        return "the event no longer exists"
    if shop.marketplace is not Marketplace.SHOPIFY:
        return f"{event.topic} is a Shopify topic; nothing done for {shop.marketplace.value}"
    if event.body == REDACTED_BODY:
        return f"{event.topic}: the body was redacted already; nothing left to do"
    try:
        payload = json.loads(event.body)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        return f"{event.topic}: the body is not a JSON object; nothing done"
    request = shopify_webhooks.read_compliance_request(event.topic, payload)
    assert shop.id is not None
    if event.topic == shopify_webhooks.SHOP_REDACT:
        return f"shop/redact: {redact_shop(container, shop.id).summary()}"
    if request.email is None and not request.order_ids:
        return f"{event.topic}: the request names no email and no orders; nothing to do"
    if event.topic == shopify_webhooks.CUSTOMERS_REDACT:
        report = redact_buyer(container, shop.id, request.email, order_ids=request.order_ids)
        return f"customers/redact: {report.summary()}"
    document = export_buyer(container, shop.id, request.email, order_ids=request.order_ids)
    document["request"] = {
        "data_request_id": request.data_request_id,
        "customer_id": request.customer_id,
        "phone": request.phone,
        "orders_requested": list(request.order_ids),
    }
    buyer = Buyer(request.email, request.order_ids)
    job_id = store_export(
        container,
        shop.id,
        f"{EXPORT_KIND}:{shop.id}:{request.data_request_id or event.event_key}",
        {
            "shop_id": shop.id,
            "event_id": event.id,
            "data_request_id": request.data_request_id,
            "customer_id": request.customer_id,
            "order_ids": list(request.order_ids),
            "email_sha256": buyer.email_sha256,
        },
        document,
    )
    return (
        f"customers/data_request {request.data_request_id or '-'}: export filed as job "
        f"{job_id} ({len(document['orders'])} orders, {len(document['events'])} events)"
    )
