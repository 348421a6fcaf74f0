"""`hub buyers export` and `hub buyers redact` on the embedded defaults."""

from __future__ import annotations

import json

from sqlalchemy import select

from hub.bootstrap import Container
from hub.domain.orders import REDACTED
from hub.infrastructure.tables import OrderRow, table_of
from sync.application.privacy import REDACTED_BODY
from sync.infrastructure import events
from tests.factories import World
from tests.integration.conftest import hub, ok

ORDERS = table_of(OrderRow)
ADA = "ada@example.com"


def seed(container: Container) -> tuple[World, int, int]:
    world = World(container)
    order_id = world.import_order("5001").order.id or 0
    event = events.store_event(
        container.engine,
        events.IncomingEvent(
            marketplace="shopify",
            event_key="evt-1",
            topic="orders/create",
            body=json.dumps({"id": 5001, "email": ADA}).encode(),
            resource_id="5001",
            shop_reference="acme.myshopify.com",
        ),
    )
    assert event.id is not None
    return world, order_id, event.id


def customer(container: Container, order_id: int) -> tuple[str | None, str | None]:
    with container.engine.connect() as db:
        row = db.execute(select(ORDERS).where(ORDERS.c.id == order_id)).one()
    return row.customer_name, row.customer_email


def test_export_prints_the_buyers_orders_and_events(hub_db: Container) -> None:
    world, order_id, event_id = seed(hub_db)

    table = ok(hub("buyers", "export", "--email", "ADA@example.com")).stdout
    assert "#5001" in table
    assert ADA in table
    assert "orders/create" in table

    document = json.loads(
        ok(hub("buyers", "export", "--email", ADA, "--shop", str(world.shop_id), "--json")).stdout
    )
    assert [order["id"] for order in document["orders"]] == [order_id]
    assert document["orders"][0]["shipping_address"] == {"city": "Leeds", "country": "GB"}
    assert [event["id"] for event in document["events"]] == [event_id]


def test_export_of_an_unknown_buyer_is_empty_and_of_an_unknown_shop_fails(
    hub_db: Container,
) -> None:
    seed(hub_db)
    document = json.loads(ok(hub("buyers", "export", "--email", "x@y.example", "--json")).stdout)
    assert (document["orders"], document["events"]) == ([], [])
    failed = hub("buyers", "export", "--email", ADA, "--shop", "999")
    assert failed.exit_code == 1
    assert "shop 999 does not exist" in failed.output


def test_redact_asks_first_and_changes_nothing_when_refused(hub_db: Container) -> None:
    _, order_id, _ = seed(hub_db)
    refused = hub("buyers", "redact", "--email", ADA, input="n\n")
    assert refused.exit_code == 1
    assert "not confirmed" in refused.output
    assert customer(hub_db, order_id) == ("Ada", ADA)

    ok(hub("buyers", "redact", "--email", ADA, input="y\n"))
    assert customer(hub_db, order_id) == (REDACTED, None)


def test_redact_with_yes_removes_the_buyer_everywhere(hub_db: Container) -> None:
    world, order_id, event_id = seed(hub_db)
    result = ok(hub("buyers", "redact", "--email", ADA, "--shop", str(world.shop_id), "--yes"))
    assert "1 orders, 1 events" in result.stdout
    assert customer(hub_db, order_id) == (REDACTED, None)
    with hub_db.engine.connect() as db:
        event = events.load_event(db, event_id)
    assert event is not None
    assert event.body == REDACTED_BODY
    again = json.loads(ok(hub("buyers", "redact", "--email", ADA, "--yes", "--json")).stdout)
    assert again == {"orders": 0, "events": 0, "error_texts": 0, "exports": 0}
    assert json.loads(ok(hub("buyers", "export", "--email", ADA, "--json")).stdout)["orders"] == []
