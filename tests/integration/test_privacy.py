"""Buyer data on both storage backends: the export holds everything we keep about a buyer, and
a redaction (on request, per shop, or by retention) leaves it nowhere: not on orders, not in
stored webhook bodies (rejected ones included), not in error texts, not in exports, and not in
the cached order documents the API serves."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any, cast

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from hub.api.app import create_app
from hub.application import orders, shops
from hub.application.orders import CreateFulfillment, create_fulfillment
from hub.bootstrap import Container
from hub.domain.errors import InvalidInput
from hub.domain.orders import REDACTED, FulfillmentLine, ImportLine, ImportOrder
from hub.domain.shops import Marketplace
from hub.infrastructure.clock import utcnow
from hub.infrastructure.outbound import OPERATIONS
from hub.infrastructure.tables import OrderRow, table_of
from sync.application import privacy
from sync.infrastructure import events
from sync.infrastructure import operations as ops
from sync.infrastructure.events import EVENTS, IncomingEvent
from sync.worker.runtime import SyncRuntime
from sync.worker.scheduler import Scheduler
from tests.conftest import ADMIN_KEY
from tests.factories import ADMIN, T0, World, later

ORDER_TABLE = table_of(OrderRow)
ADA = "ada@example.com"
BOB = "bob@example.com"
SHOP_DOMAIN = "acme.myshopify.com"
HEADERS = {"Authorization": f"Bearer {ADMIN_KEY}"}


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def import_for(world: World, external_id: str, email: str, *, shop_id: int | None = None) -> int:
    with world.container.uow() as uow:
        outcome = orders.import_order(
            uow,
            ImportOrder(
                shop_id=shop_id or world.shop_id,
                external_id=external_id,
                external_number=f"#{external_id}",
                external_status="paid",
                external_updated_at=T0,
                placed_at=T0,
                currency="USD",
                total=Decimal("20.00"),
                paid=True,
                customer_name=email.split("@")[0].title(),
                customer_email=email,
                shipping_address={"name": "Someone", "line1": "1 Road", "country": "FR"},
                lines=(ImportLine("L1", 1, Decimal("20.00"), sku="SUN-M", title="Sunrise tee"),),
            ),
        )
        uow.commit()
    assert outcome.order.id is not None
    return outcome.order.id


def store(
    container: Container,
    key: str,
    body: dict[str, Any] | bytes,
    *,
    resource_id: str | None = None,
    shop: str = SHOP_DOMAIN,
    topic: str = "orders/updated",
) -> int:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    stored = events.store_event(
        container.engine,
        IncomingEvent(
            marketplace="shopify",
            event_key=key,
            topic=topic,
            body=raw,
            resource_id=resource_id,
            shop_reference=shop,
        ),
    )
    assert stored.id is not None
    return stored.id


def event_rows(container: Container) -> dict[int, Any]:
    with container.engine.connect() as db:
        return {row.id: row for row in db.execute(select(EVENTS))}


def order_row(container: Container, order_id: int) -> Any:
    with container.engine.connect() as db:
        return db.execute(select(ORDER_TABLE).where(ORDER_TABLE.c.id == order_id)).one()


def texts(container: Container) -> list[str]:
    with container.engine.connect() as db:
        errors = [row.error for row in db.execute(select(ops.ATTEMPTS.c.error))]
        errors += [row.last_error for row in db.execute(select(OPERATIONS.c.last_error))]
    return [text for text in errors if text]


def fulfillment_operation(world: World, order_id: int) -> int:
    with world.container.uow() as uow:
        order = uow.orders.get(order_id)
        assert order is not None
        create_fulfillment(
            uow,
            CreateFulfillment(
                order_id=order_id,
                carrier="DHL",
                tracking_number=f"TRACK-{order_id}",
                tracking_url=None,
                lines=(FulfillmentLine(order.lines[0].id or 0, order.lines[0].quantity),),
            ),
            ADMIN,
        )
        uow.commit()
    with world.container.engine.connect() as db:
        found = ops.list_operations(db, kind="fulfillment.push")
    return next(op.id for op in found if op.payload["order_id"] == order_id)


@pytest.fixture
def world(container: Container) -> World:
    return World(container)


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container=container)) as test_client:
        yield test_client


# --------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------


def test_the_export_holds_the_buyers_orders_with_lines_address_fulfillments_and_events(
    world: World, container: Container
) -> None:
    ada_id = world.import_order("5001").order.id or 0
    bob_id = import_for(world, "6001", BOB)
    fulfillment_operation(world, ada_id)
    by_order = store(container, "e-order", {"id": 5001, "note": "no email"}, resource_id="5001")
    by_email = store(container, "e-mail", {"customer": {"email": "Ada@Example.com"}})
    rejected = store(container, "e-rej", {"email": ADA}, shop="stranger.myshopify.com")
    store(container, "e-bob", {"email": BOB}, resource_id="6001")

    document = privacy.export_buyer(container, world.shop_id, "ADA@example.com")

    assert [order["id"] for order in document["orders"]] == [ada_id]
    order = document["orders"][0]
    assert order["customer"] == {"name": "Ada", "email": ADA}
    assert order["shipping_address"] == {"city": "Leeds", "country": "GB"}
    assert [(line["sku"], line["quantity"]) for line in order["lines"]] == [("SUN-M", 2)]
    assert [(f["carrier"], f["tracking_number"]) for f in order["fulfillments"]] == [
        ("DHL", f"TRACK-{ada_id}")
    ]
    assert order["fulfillments"][0]["lines"][0]["quantity"] == 2
    assert {event["id"] for event in document["events"]} == {by_order, by_email, rejected}
    assert json.loads(json.dumps(document)) == document  # JSON-able as it is
    assert bob_id not in [order["id"] for order in document["orders"]]


def test_an_export_by_order_id_finds_orders_whatever_their_email(
    world: World, container: Container
) -> None:
    bob_id = import_for(world, "6001", BOB)
    document = privacy.export_buyer(container, None, None, order_ids=["6001"])
    assert [order["id"] for order in document["orders"]] == [bob_id]


def test_a_buyer_must_be_named(container: Container) -> None:
    with pytest.raises(InvalidInput):
        privacy.export_buyer(container, None, " ")
    with pytest.raises(InvalidInput):
        privacy.redact_buyer(container, None, None)


# --------------------------------------------------------------------------------------------
# Redaction of one buyer
# --------------------------------------------------------------------------------------------


def test_redacting_a_buyer_removes_their_data_everywhere_and_nothing_else(
    world: World, container: Container, client: TestClient
) -> None:
    ada_id = world.import_order("5001").order.id or 0
    bob_id = import_for(world, "6001", BOB)
    operation_id = fulfillment_operation(world, ada_id)
    with container.engine.begin() as db:
        ops.record_attempt(
            db, operation_id, ok=False, duration_ms=5, error=f"422: {ADA.upper()} is invalid"
        )
        ops.record_attempt(db, operation_id, ok=False, duration_ms=5, error=f"422: {BOB} bad")
        ops.finish(db, operation_id, ops.FAILED, error=f"gave up on {ADA}")
    by_order = store(container, "e-order", {"id": 5001}, resource_id="5001")
    by_email = store(container, "e-mail", {"contact_email": ADA}, resource_id="other")
    rejected = store(container, "e-rej", {"email": ADA}, shop="stranger.myshopify.com")
    malformed = store(container, "e-bad", b"{not json " + ADA.encode())
    bobs = store(container, "e-bob", {"email": BOB}, resource_id="6001")
    waiting = store(  # a compliance request not handled yet keeps its body until it is
        container, "e-req", {"customer": {"email": ADA}}, topic="customers/data_request"
    )
    with container.engine.begin() as db:
        events.mark(db, by_order, events.HANDLED)
    before = event_rows(container)
    cached = client.get(f"/orders/{ada_id}", headers=HEADERS)
    assert client.get(f"/orders/{ada_id}", headers=HEADERS).headers["x-cache"] == "hit"
    assert cached.json()["customer"]["email"] == ADA

    report = privacy.redact_buyer(container, world.shop_id, ADA)

    assert report.as_dict() == {"orders": 1, "events": 4, "error_texts": 2, "exports": 0}
    ada = order_row(container, ada_id)
    assert (ada.customer_name, ada.customer_email, ada.shipping_address) == (
        REDACTED,
        None,
        {"country": "GB"},
    )
    assert ada.buyer_redacted_at is not None
    assert ada.version == cached.json()["version"] + 1
    assert order_row(container, bob_id).customer_email == BOB
    after = event_rows(container)
    for event_id in (by_order, by_email, rejected, malformed):
        assert bytes(after[event_id].body) == privacy.REDACTED_BODY
        kept = ("event_key", "status", "topic", "resource_id", "shop_id", "received_at")
        assert [getattr(after[event_id], c) for c in kept] == [
            getattr(before[event_id], c) for c in kept
        ]
    assert after[rejected].status == events.REJECTED
    assert bytes(after[bobs].body) == bytes(before[bobs].body)
    assert bytes(after[waiting].body) == bytes(before[waiting].body)
    remaining = texts(container)
    assert not any(ADA in text.lower() for text in remaining)
    assert f"422: {BOB} bad" in remaining
    assert f"gave up on {privacy.REDACTED_EMAIL}" in remaining
    # The cached document was replaced: the next read answers the redacted order.
    fresh = client.get(f"/orders/{ada_id}", headers=HEADERS)
    assert fresh.headers["x-cache"] == "miss"
    assert fresh.json()["customer"] == {"name": REDACTED, "email": None}
    assert fresh.json()["shipping_address"] == {"country": "GB"}
    assert fresh.json()["lines"][0]["quantity"] == 2  # production data stays

    again = privacy.redact_buyer(container, world.shop_id, ADA)
    assert again.as_dict() == {"orders": 0, "events": 0, "error_texts": 0, "exports": 0}


def test_a_redacted_order_stays_redacted_when_the_marketplace_sends_it_again(
    world: World, container: Container
) -> None:
    ada_id = world.import_order("5001").order.id or 0
    privacy.redact_buyer(container, world.shop_id, ADA)
    outcome = world.import_order("5001", quantity=1, updated=later(5))
    assert outcome.applied
    row = order_row(container, ada_id)
    assert (row.customer_name, row.customer_email) == (REDACTED, None)
    assert orders_quantity(container, ada_id) == 1  # the update itself was applied


def orders_quantity(container: Container, order_id: int) -> int:
    with container.uow() as uow:
        order = uow.orders.get(order_id)
    assert order is not None
    return order.lines[0].quantity


def test_order_ids_alone_redact_those_orders_and_only_in_the_shop_given(
    world: World, container: Container
) -> None:
    bob_id = import_for(world, "6001", BOB)
    with container.uow() as uow:
        other = shops.create_shop(
            uow,
            shops.CreateShop(
                seller_id=world.seller_id,
                marketplace=Marketplace.SHOPIFY,
                external_id="other.myshopify.com",
                name="Other",
            ),
            ADMIN,
        )
        uow.commit()
    elsewhere = import_for(world, "6001", BOB, shop_id=other.id)

    report = privacy.redact_buyer(container, world.shop_id, None, order_ids=["6001"])

    assert report.orders == 1
    assert order_row(container, bob_id).customer_email is None
    assert order_row(container, elsewhere).customer_email == BOB


def test_an_export_made_for_the_buyer_is_redacted_with_them(
    world: World, container: Container
) -> None:
    world.import_order("5001")
    document = privacy.export_buyer(container, world.shop_id, ADA)
    mine = privacy.store_export(
        container,
        world.shop_id,
        "privacy.export:test:1",
        {"email_sha256": privacy.Buyer(ADA).email_sha256, "order_ids": []},
        document,
    )
    theirs = privacy.store_export(
        container,
        world.shop_id,
        "privacy.export:test:2",
        {"email_sha256": privacy.Buyer(BOB).email_sha256, "order_ids": []},
        {"orders": []},
    )
    assert (
        privacy.store_export(container, world.shop_id, "privacy.export:test:1", {}, {}) == mine
    )  # the same key is the same job

    assert privacy.redact_buyer(container, world.shop_id, ADA).exports == 1

    with container.engine.connect() as db:
        redacted, kept = ops.get(db, mine), ops.get(db, theirs)
    assert redacted is not None
    assert kept is not None
    assert redacted.kind == privacy.EXPORT_KIND
    assert redacted.result is not None
    assert redacted.result["redacted"] is True
    assert ADA not in json.dumps(redacted.result)
    assert kept.result == {"orders": []}


# --------------------------------------------------------------------------------------------
# Redaction of a shop
# --------------------------------------------------------------------------------------------


def test_redacting_a_shop_removes_the_data_of_all_its_buyers_and_no_other_shops(
    world: World, container: Container
) -> None:
    ada_id = world.import_order("5001").order.id or 0
    bob_id = import_for(world, "6001", BOB)
    with container.uow() as uow:
        other = shops.create_shop(
            uow,
            shops.CreateShop(
                seller_id=world.seller_id,
                marketplace=Marketplace.SHOPIFY,
                external_id="other.myshopify.com",
                name="Other",
            ),
            ADMIN,
        )
        uow.commit()
    elsewhere = import_for(world, "7001", ADA, shop_id=other.id)
    operation_id = fulfillment_operation(world, ada_id)
    with container.engine.begin() as db:
        ops.record_attempt(db, operation_id, ok=False, duration_ms=1, error=f"no {BOB} here")
    mine = store(container, "e-1", {"email": BOB}, resource_id="6001")
    plain = store(container, "e-2", {"id": 1}, resource_id="1")
    theirs = store(container, "e-3", {"email": ADA}, shop="other.myshopify.com")

    report = privacy.redact_shop(container, world.shop_id)

    assert (report.orders, report.events, report.error_texts) == (2, 2, 1)
    assert order_row(container, ada_id).buyer_redacted_at is not None
    assert order_row(container, bob_id).buyer_redacted_at is not None
    assert order_row(container, elsewhere).customer_email == ADA
    rows = event_rows(container)
    assert bytes(rows[mine].body) == bytes(rows[plain].body) == privacy.REDACTED_BODY
    assert bytes(rows[theirs].body) != privacy.REDACTED_BODY
    assert f"no {privacy.REDACTED_EMAIL} here" in texts(container)
    assert privacy.redact_shop(container, world.shop_id).as_dict() == {
        "orders": 0,
        "events": 0,
        "error_texts": 0,
        "exports": 0,
    }


# --------------------------------------------------------------------------------------------
# Retention
# --------------------------------------------------------------------------------------------


def age(container: Container, table: Any, row_id: int, days: int, *columns: str) -> None:
    when = utcnow() - timedelta(days=days)
    with container.engine.begin() as db:
        db.execute(update(table).where(table.c.id == row_id).values(**dict.fromkeys(columns, when)))


def test_retention_redacts_only_what_is_older_than_the_cutoff(
    world: World, container: Container
) -> None:
    old_order = world.import_order("5001").order.id or 0
    new_order = import_for(world, "6001", BOB)
    age(container, ORDER_TABLE, old_order, 400, "updated_at")
    old_events = [
        store(container, "old-1", {"email": ADA}, resource_id="5001"),
        store(container, "old-2", {"email": BOB}, shop="stranger.myshopify.com"),  # rejected
    ]
    with container.engine.begin() as db:
        events.mark(db, old_events[0], events.HANDLED)
    new_event = store(container, "new-1", {"email": BOB}, resource_id="6001")
    new_rejected = store(container, "new-2", {"email": BOB}, shop="stranger.myshopify.com")
    for event_id in old_events:
        age(container, EVENTS, event_id, 400, "received_at")
    operation_id = fulfillment_operation(world, new_order)
    with container.engine.begin() as db:
        ops.record_attempt(db, operation_id, ok=False, duration_ms=1, error=f"old {BOB}")
        ops.record_attempt(db, operation_id, ok=False, duration_ms=1, error=f"new {BOB}")
    with container.engine.connect() as db:
        attempt_ids = [row.id for row in db.execute(select(ops.ATTEMPTS.c.id))]
    age(container, ops.ATTEMPTS, attempt_ids[0], 400, "created_at")
    old_export = privacy.store_export(container, world.shop_id, "x:old", {}, {"email": ADA})
    new_export = privacy.store_export(container, world.shop_id, "x:new", {}, {"email": BOB})
    age(container, OPERATIONS, old_export, 40, "updated_at")
    now = utcnow()

    report = privacy.redact_expired(
        container, now - timedelta(days=365), exports_older_than=now - timedelta(days=30)
    )

    assert report.as_dict() == {"orders": 1, "events": 2, "error_texts": 1, "exports": 1}
    assert report.complete
    assert order_row(container, old_order).customer_email is None
    assert order_row(container, new_order).customer_email == BOB
    rows = event_rows(container)
    assert all(bytes(rows[i].body) == privacy.REDACTED_BODY for i in old_events)
    assert rows[old_events[1]].status == events.REJECTED
    assert bytes(rows[new_event].body) != privacy.REDACTED_BODY
    assert bytes(rows[new_rejected].body) != privacy.REDACTED_BODY
    assert f"old {privacy.REDACTED_EMAIL}" in texts(container)
    assert f"new {BOB}" in texts(container)
    with container.engine.connect() as db:
        exports = {op.id: op.result for op in ops.list_operations(db, kind=privacy.EXPORT_KIND)}
    assert (exports[old_export] or {}).get("redacted") is True
    assert exports[new_export] == {"email": BOB}


def test_a_rejected_compliance_request_is_redacted_at_any_age(container: Container) -> None:
    rejected = store(
        container,
        "c-1",
        {"shop_domain": "gone.myshopify.com", "customer": {"email": ADA}},
        shop="gone.myshopify.com",
        topic="customers/redact",
    )
    report = privacy.redact_expired(container, None)
    assert report.events == 1
    assert bytes(event_rows(container)[rejected].body) == privacy.REDACTED_BODY


def test_a_bounded_retention_run_leaves_the_rest_for_the_next(
    world: World, container: Container
) -> None:
    ids = [import_for(world, f"70{n}", f"buyer{n}@example.com") for n in range(3)]
    for order_id in ids:
        age(container, ORDER_TABLE, order_id, 400, "updated_at")
    cutoff = utcnow() - timedelta(days=365)

    first = privacy.redact_expired(container, cutoff, budget=1)
    assert (first.orders, first.complete) == (1, False)
    rest = privacy.redact_expired(container, cutoff)
    assert (rest.orders, rest.complete) == (2, True)


def test_the_scheduler_runs_retention_once_a_day_with_the_configured_age(
    world: World, container: Container
) -> None:
    container.settings.buyer_data_retention_days = 30
    old_order = world.import_order("5001").order.id or 0
    age(container, ORDER_TABLE, old_order, 31, "updated_at")
    scheduler = Scheduler(cast(SyncRuntime, SimpleNamespace(container=container)))
    now = utcnow()

    first = scheduler.redact_expired_buyer_data(now)
    assert first is not None
    assert first.orders == 1
    assert scheduler.redact_expired_buyer_data(now + timedelta(hours=23)) is None
    later_run = scheduler.redact_expired_buyer_data(now + timedelta(hours=25))
    assert later_run is not None
    assert later_run.orders == 0


def test_retention_off_keeps_buyer_data(world: World, container: Container) -> None:
    container.settings.buyer_data_retention_days = 0
    old_order = world.import_order("5001").order.id or 0
    age(container, ORDER_TABLE, old_order, 4000, "updated_at")
    scheduler = Scheduler(cast(SyncRuntime, SimpleNamespace(container=container)))
    report = scheduler.redact_expired_buyer_data()
    assert report is not None
    assert report.orders == 0
    assert order_row(container, old_order).customer_email == ADA
