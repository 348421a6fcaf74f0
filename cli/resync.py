"""`hub resync`: ask the sync engine to do something again, now.

Every command writes its work (outbox messages, push triggers, jobs) in one transaction and
returns; a running relay publishes it to the workers.
"""

from __future__ import annotations

from typing import Any

import typer

from cli.bindings import active_shop, variant_for_sku
from cli.output import ADMIN, RELAY_NOTE, explain, fail, hub, parse_when, usage
from cli.shops import not_found_hint

app = typer.Typer(
    help="Pull or push again: orders, stock, prices, catalog, images.", no_args_is_help=True
)


@app.command("orders")
def orders(
    shop: int = typer.Option(..., "--shop", help="The shop's id."),
    since: str | None = typer.Option(
        None, help="Re-pull every order changed since this ISO 8601 time (default: the cursor)."
    ),
    order: str | None = typer.Option(
        None, "--order", help="Re-read only this order (the marketplace's order id)."
    ),
) -> None:
    """Pull the shop's changed orders (orders.pull), or re-read one (orders.import_one)."""
    from hub.infrastructure.clock import utcnow
    from hub.infrastructure.outbound import add_message
    from sync.application.orders_in import IMPORT_ONE_ACTOR, PULL_ACTOR, PULL_QUEUE

    if since is not None and order is not None:
        usage(
            "--since and --order do not go together: --order re-reads one order, --since "
            "re-pulls every order changed since a time"
        )
    start = parse_when(since, "--since") if since is not None else None
    if start is not None and start > utcnow():
        usage(f"--since {since} is in the future")
    if order is not None and not order.strip():
        usage("--order needs the marketplace's order id")
    with hub() as container:
        with container.uow() as uow:
            active_shop(uow, shop, f"orders of shop {shop} not resynced")
        with container.engine.begin() as db:
            if order is not None:
                message_id = add_message(
                    db, IMPORT_ONE_ACTOR, PULL_QUEUE, {"shop_id": shop, "external_id": order}
                )
                what = f"re-read of order {order}"
            else:
                payload: dict[str, Any] = {"shop_id": shop}
                if start is not None:
                    payload["since"] = start.isoformat()
                message_id = add_message(db, PULL_ACTOR, PULL_QUEUE, payload)
                what = "order pull " + (
                    f"since {start.isoformat()}" if start else "from the shop's cursor"
                )
    typer.echo(f"shop {shop}: {what} queued as message {message_id}; {RELAY_NOTE}")


@app.command("stock")
def stock(
    shop: int = typer.Option(..., "--shop", help="The shop's id."),
    sku: str | None = typer.Option(None, "--sku", help="Only this SKU (default: every binding)."),
) -> None:
    """Push the shop's quantities again (values it already shows are recorded, not re-sent)."""
    from hub.domain.shops import QUANTITY_KINDS

    what = f"stock of shop {shop} not resynced"
    with hub() as container, explain(what, not_found_hint), container.uow() as uow:
        found = active_shop(uow, shop, what)
        variants = [variant_for_sku(uow, found, sku, what)] if sku is not None else []
        bumped = uow.bindings.bump(QUANTITY_KINDS, shop_id=shop, variant_ids=variants)
        if not bumped:
            subject = (
                f"SKU {sku!r} is not bound in shop {shop}"
                if sku
                else f"shop {shop} has no bindings"
            )
            fail(
                f"{what}: {subject}; bind with `hub bindings auto --shop {shop}` or "
                "`hub bindings set`"
            )
        uow.commit()
    scope = f"SKU {sku!r}" if sku else f"{bumped} binding(s)"
    typer.echo(f"shop {shop}: stock of {scope} queued to be pushed; {RELAY_NOTE}")


@app.command("prices")
def prices(shop: int = typer.Option(..., "--shop", help="The shop's id.")) -> None:
    """Reprice the shop's bindings from its rule (as after a rate change: a price below its
    floor is kept and flagged) and push every listed price again."""
    from cli.prices import shop_hint
    from hub.application.pricing import resync_prices

    what = f"prices of shop {shop} not resynced"
    with hub() as container, explain(what, shop_hint), container.uow() as uow:
        active_shop(uow, shop, what)
        report = resync_prices(uow, shop, ADMIN)
        if not report.queued:
            fail(
                f"{what}: shop {shop} has no binding with a listed price; bind variants with a "
                f"cost (`hub bindings auto --shop {shop}`) and see `hub prices preview --shop "
                f"{shop}`"
            )
        uow.commit()
    flagged = f"; {len(report.flagged)} flagged for review" if report.flagged else ""
    typer.echo(
        f"shop {shop}: prices of {report.queued} binding(s) queued to be pushed "
        f"({len(report.changed)} repriced){flagged}; {RELAY_NOTE}"
    )


@app.command("catalog")
def catalog(shop: int = typer.Option(..., "--shop", help="The shop's id.")) -> None:
    """Scan the shop's listings again and bind them by SKU (a catalog.pull job)."""
    from sync.infrastructure import operations as ops

    with hub() as container:
        with container.uow() as uow:
            active_shop(uow, shop, f"catalog of shop {shop} not resynced")
        with container.engine.begin() as db:
            job_id = ops.request_catalog_pull(db, shop, "cli")
    typer.echo(f"shop {shop}: listing scan queued as job {job_id}; {RELAY_NOTE}")
    typer.echo(f"see `hub jobs show {job_id}` for its report")


@app.command("images")
def images(
    sku: str = typer.Option(..., "--sku", help="Our variant's SKU."),
    seller: int | None = typer.Option(None, help="The SKU's seller, when several have it."),
) -> None:
    """Push the variant's images again to every shop it is bound in."""
    from sqlalchemy import select

    from hub.domain.shops import IMAGE_KINDS
    from hub.infrastructure.catalog import VARIANTS

    what = f"images of SKU {sku!r} not resynced"
    with hub() as container, container.uow() as uow:
        query = select(VARIANTS.c.id, VARIANTS.c.seller_id).where(VARIANTS.c.sku == sku)
        if seller is not None:
            query = query.where(VARIANTS.c.seller_id == seller)
        found = uow.connection.execute(query).all()
        if not found:
            owner = f"seller {seller} has no" if seller is not None else "no seller has a"
            fail(f"{what}: {owner} variant with SKU {sku!r}; check the SKU")
        if len(found) > 1:
            sellers = ", ".join(str(row.seller_id) for row in found)
            usage(f"SKU {sku!r} belongs to sellers {sellers}; pass --seller to choose")
        bumped = uow.bindings.bump(IMAGE_KINDS, variant_ids=[found[0].id])
        if not bumped:
            fail(f"{what}: SKU {sku!r} is bound in no shop; bind it first (`hub bindings set`)")
        uow.commit()
    typer.echo(f"SKU {sku!r}: images queued for {bumped} binding(s); {RELAY_NOTE}")
