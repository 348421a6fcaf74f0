"""Orders in: handle a stored webhook event once, and pull what webhooks missed.

Every step that calls a marketplace runs with no transaction open; the import and the
bookkeeping (event handled, cursor advanced) commit together afterwards.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete

from connectors.contract import (
    AuthError,
    NotFound,
    PermanentError,
    RateLimited,
    TransientError,
)
from hub.application.orders import import_order
from hub.domain.orders import ImportOrder
from hub.domain.shops import Shop, ShopStatus
from hub.infrastructure.clock import utcnow
from hub.infrastructure.outbound import PULL_TRIGGER_KIND, TRIGGERS
from sync.application import privacy
from sync.infrastructure import cursors, events
from sync.worker.runtime import SyncRuntime, shop_context

log = logging.getLogger(__name__)

PULL_ACTOR, PULL_QUEUE = "orders.pull", "orders"
IMPORT_ONE_ACTOR = "orders.import_one"
ORDER_STREAM = "orders"
PAGES_PER_RUN = 20  # then the scan continues in a new message, so no run holds a thread long
UNINSTALL_TOPICS = frozenset({"app/uninstalled"})


def is_order_topic(topic: str) -> bool:
    lowered = topic.lower()
    return "order" in lowered or "receipt" in lowered


@dataclass(frozen=True)
class Retry:
    """The operation waits: a new message after ``seconds`` (never a Dramatiq Retry)."""

    seconds: float


def process_event(runtime: SyncRuntime, event_id: int) -> Retry | None:
    container = runtime.container
    with container.engine.begin() as db:
        event = events.begin_attempt(db, event_id)
    if event is None:
        return None  # handled already, or rejected: a duplicate message is a no-op
    shop = runtime.shop(event.shop_id) if event.shop_id else None
    if shop is None:
        with container.engine.begin() as db:
            if event.topic in privacy.COMPLIANCE_TOPICS:  # nothing to do, nothing to keep
                privacy.blank_event_body(db, event_id)
            events.mark(db, event_id, events.REJECTED, "the event's shop no longer exists")
        return None
    if event.topic in privacy.COMPLIANCE_TOPICS:
        # Once done, the request's body (the buyer's email) is blanked in the commit that
        # marks it handled.
        reason = privacy.handle_compliance_event(container, event_id, shop)
        with container.engine.begin() as db:
            privacy.blank_event_body(db, event_id)
            events.mark(db, event_id, events.HANDLED, reason)
        return None
    if event.topic in UNINSTALL_TOPICS:
        _disconnect(runtime, shop)
        _finish(runtime, event_id, events.HANDLED, None)
        return None
    if not is_order_topic(event.topic) or not event.resource_id:
        _finish(runtime, event_id, events.HANDLED, f"topic {event.topic} needs no import")
        return None
    try:
        order = runtime.connector(shop.marketplace.value).get_order(
            shop_context(shop), event.resource_id
        )
    except RateLimited as limited:
        return Retry(limited.retry_after or 1.0)
    except NotFound:
        _finish(runtime, event_id, events.HANDLED, "the order no longer exists on the marketplace")
        return None
    except AuthError as error:
        mark_shop(runtime, shop, ShopStatus.AUTH_FAILED)
        _finish(runtime, event_id, events.REJECTED, f"shop {shop.id}: {error.message}")
        return None
    except PermanentError as error:
        _finish(runtime, event_id, events.REJECTED, error.message)
        return None
    except TransientError as error:
        return Retry(error.retry_after or 5.0)
    with container.uow() as uow:
        # Handled in the importing commit, marked first: the shared stock rows the import
        # touches last stay locked only until the commit.
        events.mark(uow.connection, event_id, events.HANDLED)
        outcome = import_order(uow, order, shop=shop)
        if outcome.order.buyer_redacted_at is not None:  # its buyer asked to be forgotten
            privacy.blank_event_body(uow.connection, event_id)
        uow.commit()
    return None


def _finish(runtime: SyncRuntime, event_id: int, status: str, reason: str | None) -> None:
    with runtime.container.engine.begin() as db:
        events.mark(db, event_id, status, reason)


def mark_shop(runtime: SyncRuntime, shop: Shop, status: ShopStatus) -> None:
    runtime.forget_shop(shop.id or 0)
    with runtime.container.uow() as uow:
        fresh = uow.shops.get(shop.id or 0)
        if fresh is not None:
            fresh.status = status
            uow.shops.save(fresh)
            uow.commit()


def _disconnect(runtime: SyncRuntime, shop: Shop) -> None:
    mark_shop(runtime, shop, ShopStatus.DISCONNECTED)


def import_one_order(runtime: SyncRuntime, shop_id: int, external_id: str) -> Retry | None:
    """Re-read one order from its marketplace and import it (an operator's resync, a hint)."""
    with runtime.container.uow() as uow:
        shop = uow.shops.get(shop_id)
    if shop is None or shop.status is not ShopStatus.ACTIVE:
        return None
    try:
        order = runtime.connector(shop.marketplace.value).get_order(shop_context(shop), external_id)
    except RateLimited as limited:
        return Retry(limited.retry_after or 1.0)
    except TransientError as error:
        return Retry(error.retry_after or 5.0)
    except NotFound:
        return None
    except AuthError:
        mark_shop(runtime, shop, ShopStatus.AUTH_FAILED)
        return None
    with runtime.container.uow() as uow:
        import_order(uow, order, shop=shop)
        uow.commit()
    return None


def pull_orders(
    runtime: SyncRuntime,
    shop_id: int,
    *,
    page_cursor: str | None = None,
    since: str | None = None,
    scan_high: str | None = None,
) -> Retry | None:
    """Pull pages of changed orders; continue in a new message after ``PAGES_PER_RUN`` pages.

    Sorted streams advance the cursor after each committed page; unsorted ones (WooCommerce)
    only after the whole scan is committed, to the newest update seen.
    """
    container, settings = runtime.container, runtime.container.settings
    with container.uow() as uow:
        if page_cursor is None:  # a new scan covers every pull queued until now
            uow.connection.execute(
                delete(TRIGGERS).where(
                    TRIGGERS.c.kind == PULL_TRIGGER_KIND, TRIGGERS.c.shop_id == shop_id
                )
            )
        shop = uow.shops.get(shop_id)
        uow.commit()
    if shop is None or shop.status is not ShopStatus.ACTIVE:
        return None
    connector = runtime.connector(shop.marketplace.value)
    sorted_stream = connector.capabilities.orders_sorted_by_update
    start = _parse(since) or _scan_start(
        runtime, shop_id, settings.pull_overlap_minutes, settings.pull_backfill_days
    )
    high = _parse(scan_high)
    context = shop_context(shop)
    for _ in range(PAGES_PER_RUN):
        try:
            page = connector.list_orders_changed(context, since=start, cursor=page_cursor)
        except RateLimited as limited:
            _continue(runtime, shop_id, page_cursor, start, high, limited.retry_after or 1.0)
            return None
        except AuthError:
            mark_shop(runtime, shop, ShopStatus.AUTH_FAILED)
            return None
        except TransientError as error:
            _continue(runtime, shop_id, page_cursor, start, high, error.retry_after or 5.0)
            return None
        except PermanentError as error:
            # A page the marketplace answered but we cannot read: retrying now gives the same
            # answer. The cursor stays where it is, so nothing is skipped; the next scheduled
            # pull reads the page again (and webhooks still bring single orders in).
            log.error(
                "order pull stopped: the marketplace's page is unreadable",
                extra={"shop_id": shop_id, "reason": str(error)},
            )
            return None
        if page.high_water_mark is not None:
            high = max(high, page.high_water_mark) if high else page.high_water_mark
        _import_page(runtime, shop, page.orders, high if sorted_stream else None)
        if page.next_cursor is None:
            if not sorted_stream and high is not None:
                with container.engine.begin() as db:
                    cursors.advance(db, shop_id, ORDER_STREAM, high)
            return None
        page_cursor = page.next_cursor
    _continue(runtime, shop_id, page_cursor, start, high, 0)
    return None


def _import_page(
    runtime: SyncRuntime, shop: Shop, orders: tuple[ImportOrder, ...], advance_to: datetime | None
) -> None:
    """One short transaction per order, then the cursor in its own.

    A whole page in one transaction holds the row locks of every blank its orders reserve
    until the last order is in, and webhook imports of the same orders take them in another
    order: after an outage, when both work off a backlog at once, they deadlock. The cursor
    moves only after every order of the page is committed, so a crash in between re-reads the
    page and the imports, idempotent by external id, change nothing.
    """
    for order in orders:
        with runtime.container.uow() as uow:
            import_order(uow, order, shop=shop)
            uow.commit()
    if advance_to is not None:
        with runtime.container.engine.begin() as db:
            cursors.advance(db, shop.id or 0, ORDER_STREAM, advance_to)


def _scan_start(
    runtime: SyncRuntime, shop_id: int, overlap_minutes: int, backfill_days: int
) -> datetime:
    with runtime.container.engine.connect() as db:
        position = cursors.position(db, shop_id, ORDER_STREAM)
    if position is None:
        return utcnow() - timedelta(days=backfill_days)
    return position - timedelta(minutes=overlap_minutes)


def _continue(
    runtime: SyncRuntime,
    shop_id: int,
    page_cursor: str | None,
    since: datetime,
    high: datetime | None,
    delay: float,
) -> None:
    payload: dict[str, Any] = {
        "shop_id": shop_id,
        "page_cursor": page_cursor,
        "since": since.isoformat(),
        "scan_high": high.isoformat() if high else None,
    }
    runtime.send(PULL_ACTOR, PULL_QUEUE, payload, delay_seconds=delay)


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
