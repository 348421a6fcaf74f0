"""`hub sellers`: the tenants and their API keys."""

from __future__ import annotations

from collections import Counter

import typer

from cli.output import explain, hub, json_option, print_json, print_table

app = typer.Typer(help="Sellers and their API keys.", no_args_is_help=True)


@app.command("add")
def add(name: str) -> None:
    """Create a seller and print its API key (shown once)."""
    from hub.application.sellers import create_seller

    with hub() as container, explain(f"seller {name!r} not created"), container.uow() as uow:
        seller, issued = create_seller(uow, name)
        uow.commit()
    typer.echo(f"seller {seller.id} {seller.name!r}")
    typer.echo(f"api key: {issued.key}")


@app.command("list")
def list_sellers(as_json: bool = json_option()) -> None:
    """Every seller with its number of shops."""
    with hub() as container, container.uow() as uow:
        sellers = uow.sellers.list()
        shops = Counter(shop.seller_id for shop in uow.shops.list(None))
    rows = [
        {"id": s.id, "name": s.name, "shops": shops[s.id or 0], "created_at": s.created_at}
        for s in sellers
    ]
    if as_json:
        print_json(rows)
        return
    print_table(
        rows,
        ["id", "name", "shops", "created_at"],
        empty="no sellers yet; create one with `hub sellers add NAME`",
    )
