"""`hub bindings`: which of our variants is which listing in a shop."""

from __future__ import annotations

import time
from typing import Any

import typer

from cli.output import (
    ADMIN,
    RELAY_NOTE,
    explain,
    fail,
    hub,
    json_option,
    print_json,
    print_table,
)
from cli.shops import not_found_hint
from hub.bootstrap import Container
from hub.domain.errors import DomainError
from hub.domain.ports import UnitOfWork
from hub.domain.shops import Shop, ShopStatus
from sync.infrastructure import operations as ops

app = typer.Typer(help="Our variants <-> a shop's listings.", no_args_is_help=True)
POLL_SECONDS = 0.5


def active_shop(uow: UnitOfWork, shop_id: int, what: str) -> Shop:
    """The shop, or exit 1: unknown, or not active (its jobs would do nothing)."""
    from hub.application.shops import load_shop

    with explain(what, not_found_hint):
        shop = load_shop(uow, shop_id, ADMIN)
    if shop.status is ShopStatus.PAUSED:
        fail(f"{what}: shop {shop_id} is paused; resume it first with `hub shops resume {shop_id}`")
    if shop.status is not ShopStatus.ACTIVE:
        fail(
            f"{what}: shop {shop_id} is {shop.status.value}; connect it again "
            "(`hub shops add` with fresh credentials) before syncing it"
        )
    return shop


def variant_for_sku(uow: UnitOfWork, shop: Shop, sku: str, what: str) -> int:
    """Our variant with the SKU in the shop's seller's catalog, or exit 1."""
    found = uow.catalog.variants_by_sku(shop.seller_id, [sku]).get(sku)
    if not found:
        fail(
            f"{what}: seller {shop.seller_id} has no variant with SKU {sku!r}; add the product "
            "first (`hub catalog import FILE` or POST /products)"
        )
    return found[0]


@app.command("list")
def list_bindings(
    shop: int = typer.Option(..., "--shop", help="The shop's id."),
    as_json: bool = json_option(),
) -> None:
    """The shop's bindings with the quantity each should show and its push versions."""
    from hub.application import bindings

    what = f"no bindings listed for shop {shop}"
    with hub() as container, explain(what, not_found_hint), container.uow() as uow:
        views = bindings.list_bindings(uow, shop, ADMIN)
    rows: list[dict[str, Any]] = [
        {
            "variant_id": view.binding.variant_id,
            "sku": view.sku,
            "listing": view.binding.external_listing_id,
            "remote_variant": view.binding.external_variant_id,
            "inventory_item": view.binding.external_inventory_item_id,
            "available": view.available_quantity,
            "push": {
                kind.value: {"desired": state.desired_version, "pushed": state.pushed_version}
                for kind, state in view.binding.push_states.items()
            },
            "last_pushed_quantity": view.binding.last_pushed_quantity,
        }
        for view in views
    ]
    if as_json:
        print_json(rows)
        return
    for row in rows:
        row["due"] = ",".join(
            kind for kind, state in row["push"].items() if state["desired"] > state["pushed"]
        )
    print_table(
        rows,
        ["variant_id", "sku", "listing", "remote_variant", "available", "due"],
        empty=f"shop {shop} has no bindings; `hub bindings auto --shop {shop}` binds by SKU",
    )


@app.command("auto")
def auto(
    shop: int = typer.Option(..., "--shop", help="The shop's id."),
    wait: bool = typer.Option(False, help="Wait for the job and print its report."),
    timeout: float = typer.Option(300, min=0, help="Seconds --wait waits at most."),
    as_json: bool = typer.Option(False, "--json", help="With --wait: the report as JSON."),
) -> None:
    """Bind the shop's listings to our variants by SKU, as a job (catalog.pull)."""
    with hub() as container:
        with container.uow() as uow:
            active_shop(uow, shop, f"shop {shop} not scanned")
        with container.engine.begin() as db:
            job_id = ops.request_catalog_pull(db, shop, "cli")
        if not wait:
            typer.echo(f"shop {shop}: listing scan queued as job {job_id}; {RELAY_NOTE}")
            typer.echo(f"see `hub jobs show {job_id}` for its report")
            return
        typer.echo(f"shop {shop}: listing scan queued as job {job_id}; waiting", err=True)
        job = wait_for_job(container, job_id, timeout)
    if job.status == ops.FAILED:
        fail(
            f"job {job_id} (catalog scan of shop {shop}) failed: {job.last_error}; "
            f"fix the cause, then `hub jobs retry {job_id}`"
        )
    if as_json:
        print_json(job.result or {})
        return
    print_binding_report(job.result or {})


def wait_for_job(container: Container, job_id: int, timeout: float) -> ops.Operation:
    """Poll the job until it finishes; exit 1 when ``timeout`` passes first."""
    deadline = time.monotonic() + timeout
    while True:
        with container.engine.connect() as db:
            job = ops.get(db, job_id)
        assert job is not None
        if job.status in ops.FINISHED:
            return job
        if time.monotonic() >= deadline:
            fail(
                f"job {job_id} is still {job.status} after {timeout:g}s; is a worker running "
                f"(`hub run`, or `hub relay` with `hub worker`)? Check later with "
                f"`hub jobs show {job_id}`"
            )
        time.sleep(POLL_SECONDS)


def print_binding_report(report: dict[str, Any]) -> None:
    bound = report.get("bound", [])
    typer.echo(f"bound {len(bound)}, already bound {report.get('already_bound', 0)}")
    for item in bound:
        typer.echo(f"  + {item['sku']} -> listing {item['listing_id']}")
    for conflict in report.get("conflicts", []):
        typer.echo(f"  ! {conflict['sku']}: {conflict['reason']}")
    unknown = [item["sku"] for item in report.get("unknown_skus", [])]
    if unknown:
        typer.echo(f"  ? SKUs we do not have: {', '.join(unknown)}")
    missing = report.get("missing_sku", [])
    if missing:
        typer.echo(f"  ? {len(missing)} listing variant(s) without a SKU")


@app.command("set")
def set_binding(
    shop: int = typer.Option(..., "--shop", help="The shop's id."),
    sku: str = typer.Option(..., "--sku", help="Our variant's SKU."),
    listing: str = typer.Option(..., "--listing", help="The marketplace's listing/product id."),
    variant: str | None = typer.Option(None, "--variant", help="Their variant id."),
    inventory_item: str | None = typer.Option(
        None, "--inventory-item", help="Their inventory item id (Shopify)."
    ),
) -> None:
    """Bind our variant (by SKU) to a listing by hand; its stock, price and images are queued."""
    from hub.application.bindings import BindingSpec, put_bindings
    from hub.application.shops import load_shop

    what = f"SKU {sku!r} not bound in shop {shop}"
    with hub() as container, explain(what, not_found_hint), container.uow() as uow:
        found = load_shop(uow, shop, ADMIN)
        variant_id = variant_for_sku(uow, found, sku, what)
        put_bindings(
            uow,
            shop,
            [BindingSpec(variant_id, listing, variant, inventory_item)],
            ADMIN,
        )
        uow.commit()
    typer.echo(
        f"shop {shop}: SKU {sku!r} (variant {variant_id}) bound to listing {listing}"
        + (f" variant {variant}" if variant else "")
        + f"; its pushes are queued: {RELAY_NOTE}"
    )


@app.command("unset")
def unset_binding(
    shop: int = typer.Option(..., "--shop", help="The shop's id."),
    sku: str = typer.Option(..., "--sku", help="Our variant's SKU."),
) -> None:
    """Remove a binding: the listing is left as it is and no longer pushed."""
    from hub.application.bindings import delete_binding
    from hub.application.shops import load_shop

    def hint(error: DomainError) -> str:
        if "binding" in error.message:
            return f"see `hub bindings list --shop {shop}`"
        return not_found_hint(error)

    what = f"SKU {sku!r} not unbound in shop {shop}"
    with hub() as container, explain(what, hint), container.uow() as uow:
        found = load_shop(uow, shop, ADMIN)
        variant_id = variant_for_sku(uow, found, sku, what)
        delete_binding(uow, shop, variant_id, ADMIN)
        uow.commit()
    typer.echo(f"shop {shop}: SKU {sku!r} unbound; its listing is no longer pushed")
