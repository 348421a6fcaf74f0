"""`hub events`: the webhooks that arrived, what became of them, and a replay."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import typer

from cli.output import RELAY_NOTE, fail, hub, json_option, print_fields, print_json, print_table
from sync.infrastructure import events

app = typer.Typer(help="Inbound webhook events: list, show, replay.", no_args_is_help=True)
COLUMNS = ["id", "marketplace", "shop_id", "topic", "resource_id", "status", "received_at"]


class EventStatus(StrEnum):
    RECEIVED = events.RECEIVED
    HANDLED = events.HANDLED
    REJECTED = events.REJECTED


@app.command("list")
def list_events(
    shop: int | None = typer.Option(None, "--shop", help="Only this shop's events."),
    status: EventStatus | None = typer.Option(None, "--status", help="Only events in this state."),
    topic: str | None = typer.Option(None, help="e.g. orders/updated."),
    limit: int = typer.Option(50, min=1, max=1000, help="At most this many, newest first."),
    as_json: bool = json_option(),
) -> None:
    """Events, newest first."""
    with hub() as container, container.engine.connect() as db:
        rows = events.list_events(
            db,
            shop_ids=None,
            shop_id=shop,
            status=status.value if status else None,
            topic=topic,
            before_id=None,
            limit=limit,
        )
    if as_json:
        print_json(rows)
        return
    print_table(rows, COLUMNS, empty="no events match")


@app.command("show")
def show(
    event_id: int,
    body: bool = typer.Option(False, "--body", help="Include the body as received."),
    as_json: bool = json_option(),
) -> None:
    """One event: its shop, topic, status, the reason it was rejected, attempts."""
    with hub() as container, container.engine.connect() as db:
        event = events.load_event(db, event_id)
    if event is None:
        fail(f"event {event_id} not shown: it does not exist; see `hub events list`")
    document: dict[str, Any] = {
        "id": event.id,
        "marketplace": event.marketplace,
        "event_key": event.event_key,
        "shop_id": event.shop_id,
        "topic": event.topic,
        "resource_id": event.resource_id,
        "status": event.status,
        "reason": event.reason,
        "attempts": event.attempts,
        "received_at": event.received_at,
        "handled_at": event.handled_at,
        "body_bytes": len(event.body),
    }
    if body:
        document["body"] = event.body.decode("utf-8", errors="replace")
    if as_json:
        print_json(document)
        return
    shown = {key: value for key, value in document.items() if key != "body"}
    print_fields(shown)
    if body:
        typer.echo(document["body"])


@app.command("replay")
def replay(event_id: int) -> None:
    """Handle an event again: set back to received and sent to its actor."""
    from sqlalchemy import text

    from sync.infrastructure.outbox import notify_channel

    what = f"event {event_id} not replayed"
    with hub() as container, container.engine.begin() as db:
        event = events.load_event(db, event_id, lock=True)
        if event is None:
            fail(f"{what}: it does not exist; see `hub events list`")
        if event.shop_id is None:
            fail(
                f"{what}: it names no known shop ({event.reason or 'no shop'}); connect the "
                "shop with `hub shops add`, then let the marketplace send it again"
            )
        events.mark(db, event_id, events.RECEIVED)
        message_id = events.requeue(db, event_id)
        if db.dialect.name == "postgresql":
            db.execute(
                text("SELECT pg_notify(:c, '')"),
                {"c": notify_channel(container.settings.db_schema)},
            )
    typer.echo(
        f"event {event_id} ({event.topic}, shop {event.shop_id}) queued again as message "
        f"{message_id}; {RELAY_NOTE}"
    )
