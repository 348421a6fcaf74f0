"""`hub catalog`: seed a seller's catalog from a JSON file."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.output import ADMIN, explain, hub, json_option, print_json, progress

app = typer.Typer(help="The catalog: blanks, products, variants.", no_args_is_help=True)


@app.command("import")
def import_file(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True),
    dry_run: bool = typer.Option(False, help="Check and report; write nothing."),
    as_json: bool = json_option(),
) -> None:
    """Create the file's missing blanks (by code) and new products (by SKU) in one
    transaction; products whose SKUs exist are skipped and reported. The format is in
    hub/application/catalog_import.py."""
    from hub.api.catalog import run_catalog_import
    from hub.application.catalog_import import parse_json

    what = f"catalog {path.name} not imported"
    with explain(what, "fix the file and import it again"):
        document = parse_json(path.read_bytes())
    with (
        hub() as container,
        explain(what),
        progress(len(document.products), "importing products") as step,
    ):
        report = run_catalog_import(container, document, ADMIN, dry_run=dry_run, progress=step)
    if as_json:
        print_json(report.as_dict())
        return
    prefix = "dry run, nothing written: " if dry_run else ""
    typer.echo(
        f"{prefix}seller {report.seller_id}: {len(report.blanks_created)} blank(s) created, "
        f"{len(report.blanks_reused)} reused; {len(report.products_created)} product(s) created, "
        f"{len(report.products_skipped)} skipped"
    )
    for skipped in report.products_skipped:
        typer.echo(f"  skipped {skipped['title']!r}: {skipped['reason']}")
    for error in report.errors:
        typer.echo(f"  error: {error}")
    if report.errors:
        raise typer.Exit(1)
