"""`hub prune`: delete handled webhook events, finished jobs' attempts and published outbox rows
kept past their retention (``HUB_RETENTION_*_DAYS``), in batches of short transactions."""

from __future__ import annotations

import typer

from cli.output import hub, json_option, print_fields, print_json
from hub.infrastructure.clock import utcnow
from sync.application.retention import Retention, prune
from sync.infrastructure.pruning import PRUNE_BATCH


def prune_command(
    events_days: int | None = typer.Option(
        None,
        "--events-days",
        min=0,
        help="Keep handled and rejected events this many days (default HUB_RETENTION_EVENTS_DAYS;"
        " 0 keeps them).",
    ),
    attempts_days: int | None = typer.Option(
        None,
        "--attempts-days",
        min=0,
        help="Keep finished jobs' attempts this many days (default HUB_RETENTION_ATTEMPTS_DAYS;"
        " 0 keeps them).",
    ),
    outbox_days: int | None = typer.Option(
        None,
        "--outbox-days",
        min=0,
        help="Keep published outbox rows this many days (default HUB_RETENTION_OUTBOX_DAYS;"
        " 0 keeps them).",
    ),
    batch: int = typer.Option(
        PRUNE_BATCH, "--batch", min=1, max=100_000, help="Rows deleted per transaction."
    ),
    as_json: bool = json_option(),
) -> None:
    """Delete what has been kept long enough: handled and rejected webhook events, attempts of
    finished jobs, published outbox rows. Unhandled events, queued or running jobs' attempts and
    unpublished messages are never deleted. Safe beside the scheduler, which prunes hourly."""
    with hub() as container:
        configured = Retention.from_settings(container.settings)
        retention = Retention(
            events_days=configured.events_days if events_days is None else events_days,
            attempts_days=configured.attempts_days if attempts_days is None else attempts_days,
            outbox_days=configured.outbox_days if outbox_days is None else outbox_days,
        )
        report = prune(container.engine, retention, utcnow(), batch=batch)
    document = {
        **report.as_dict(),
        "kept_days": {
            "events": retention.events_days,
            "attempts": retention.attempts_days,
            "outbox": retention.outbox_days,
        },
    }
    if as_json:
        print_json(document)
        return
    print_fields({key: value for key, value in document.items() if key != "complete"})
    typer.echo(report.summary())
