"""`hub buyers`: what we hold about a buyer, and removing it (a data request, an erasure)."""

from __future__ import annotations

from typing import Any

import typer

from cli.output import explain, fail, hub, json_option, print_json, print_table
from hub.bootstrap import Container

app = typer.Typer(help="Buyer data: export, redact.", no_args_is_help=True)
ORDER_COLUMNS = ["id", "shop_id", "external_number", "placed_at", "status", "name", "email"]
EVENT_COLUMNS = ["id", "marketplace", "shop_id", "topic", "status", "received_at", "redacted"]


def _email_option() -> Any:
    return typer.Option(..., "--email", help="The buyer's email (any case).")


def _shop_option() -> Any:
    return typer.Option(None, "--shop", help="Only this shop's orders and events (default: all).")


def _order_option() -> Any:
    return typer.Option(
        None,
        "--order",
        help="Also a marketplace order id of theirs, as the hub stores it (repeatable).",
    )


def _check_shop(container: Container, shop: int | None, what: str) -> None:
    if shop is None:
        return
    with container.uow() as uow:
        found = uow.shops.get(shop)
    if found is None:
        fail(f"{what}: shop {shop} does not exist; see `hub shops list`")


@app.command("export")
def export(
    email: str = _email_option(),
    shop: int | None = _shop_option(),
    order: list[str] | None = _order_option(),
    as_json: bool = json_option(),
) -> None:
    """Everything stored about a buyer (a data request).

    Their orders with lines, address and fulfillments, and the webhook events that mention
    them; `--json` prints the whole document to hand over.
    """
    from sync.application.privacy import export_buyer

    what = f"buyer {email} not exported"
    with hub() as container, explain(what):
        _check_shop(container, shop, what)
        document = export_buyer(container, shop, email, order_ids=list(order or []))
    if as_json:
        print_json(document)
        return
    orders = [
        {**row, "name": row["customer"]["name"], "email": row["customer"]["email"]}
        for row in document["orders"]
    ]
    typer.echo(f"orders of {email}:")
    print_table(orders, ORDER_COLUMNS, empty="  none")
    typer.echo("events that mention them:")
    events = [{**row, "redacted": row["body_redacted"]} for row in document["events"]]
    print_table(events, EVENT_COLUMNS, empty="  none")
    typer.echo("`--json` prints the whole document (addresses, lines, fulfillments)")


@app.command("redact")
def redact(
    email: str = _email_option(),
    shop: int | None = _shop_option(),
    order: list[str] | None = _order_option(),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
    as_json: bool = json_option(),
) -> None:
    """Remove a buyer's personal data for good (an erasure request).

    Name, email and address on their orders (lines, totals, fulfillments and the country
    stay), the bodies of webhook events that mention them, their email in job error texts,
    and exports made for them. Cached order documents are replaced.
    """
    from sync.application.privacy import redact_buyer

    where = f"shop {shop}" if shop is not None else "every shop"
    what = f"buyer {email} not redacted"
    with hub() as container:
        _check_shop(container, shop, what)
        if not yes and not typer.confirm(
            f"remove the personal data of {email} from {where}? this cannot be undone"
        ):
            fail(f"{what}: not confirmed; nothing changed")
        with explain(what):
            report = redact_buyer(container, shop, email, order_ids=list(order or []))
    if as_json:
        print_json(report.as_dict())
        return
    typer.echo(f"buyer {email} redacted in {where}: {report.summary()}")
