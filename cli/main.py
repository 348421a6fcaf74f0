"""The `hub` command: run the API, migrate, manage sellers, and the demo."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from cli import bindings, buyers, catalog, events, jobs, prices, resync, sellers, shops
from cli import demo as demo_module
from cli import secrets as secrets_commands
from cli.output import fail, load_settings
from cli.prune import prune_command

if TYPE_CHECKING:
    from hub.settings import Settings

app = typer.Typer(
    help="marketplace-hub: orders in, stock, images and tracking out.", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
keys_app = typer.Typer(help="Credential encryption keys.", no_args_is_help=True)
connectors_app = typer.Typer(help="Marketplace connectors (plugins).", no_args_is_help=True)
images_app = typer.Typer(help="Product images.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(sellers.app, name="sellers")
app.add_typer(shops.app, name="shops")
app.add_typer(buyers.app, name="buyers")
app.add_typer(bindings.app, name="bindings")
app.add_typer(prices.app, name="prices")
app.add_typer(resync.app, name="resync")
app.add_typer(jobs.app, name="jobs")
app.add_typer(events.app, name="events")
app.add_typer(catalog.app, name="catalog")
app.add_typer(keys_app, name="keys")
app.add_typer(secrets_commands.app, name="secrets")
app.add_typer(connectors_app, name="connectors")
app.add_typer(images_app, name="images")
app.command("prune")(prune_command)


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Bind address (default HUB_HOST)."),
    port: int | None = typer.Option(None, help="Port (default HUB_PORT)."),
    workers: int = typer.Option(1, help="uvicorn worker processes."),
) -> None:
    """Run the HTTP API under uvicorn."""
    import uvicorn

    settings = load_settings()
    uvicorn.run(
        "hub.api.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_level=settings.log_level.lower(),
        access_log=False,
        proxy_headers=False,  # HUB_TRUSTED_PROXIES alone decides whose X-Forwarded-For counts
    )


def _logged_settings() -> Settings:
    """The settings, with the hub's JSON logs (redacted) configured for this process."""
    from hub.infrastructure.logs import configure_logging

    settings = load_settings()
    configure_logging(settings.log_level)
    return settings


def _wait_for_signal() -> None:
    """Block until SIGINT or SIGTERM: the process's orderly end."""
    import signal
    import threading

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()


@app.command()
def worker(
    threads: int | None = typer.Option(None, help="Actor threads (default HUB_WORKER_THREADS)."),
    queues: list[str] | None = typer.Option(
        None, "--queue", help="Consume only this queue (repeatable), e.g. --queue images."
    ),
    skipped: list[str] | None = typer.Option(
        None, "--skip-queue", help="Consume every queue but this one (repeatable)."
    ),
) -> None:
    """Consume the broker's queues (one process; run more processes to scale out)."""
    from sync.worker.broker import QUEUES
    from sync.worker.engine import SyncEngine

    unknown = sorted((set(queues or ()) | set(skipped or ())) - set(QUEUES))
    if unknown:
        typer.echo(f"unknown queue {', '.join(unknown)}; queues are {', '.join(QUEUES)}", err=True)
        raise typer.Exit(2)
    if skipped:
        queues = [queue for queue in (queues or QUEUES) if queue not in skipped]
    engine = SyncEngine(_logged_settings())
    engine.start_worker(threads, queues)
    typer.echo(f"worker running with {threads or engine.settings.worker_threads} threads")
    try:
        _wait_for_signal()
    finally:
        engine.stop()


@app.command()
def relay() -> None:
    """Publish outbox rows to the broker (woken by LISTEN/NOTIFY on PostgreSQL)."""
    from sync.worker.engine import SyncEngine

    engine = SyncEngine(_logged_settings())
    engine.start_relay()
    typer.echo("outbox relay running")
    try:
        _wait_for_signal()
    finally:
        engine.stop()


@app.command()
def scheduler() -> None:
    """Schedule order pulls and sweeps; one leader among many through a Redis lock."""
    from sync.worker.engine import SyncEngine

    engine = SyncEngine(_logged_settings())
    engine.start_scheduler()
    typer.echo("scheduler running")
    try:
        _wait_for_signal()
    finally:
        engine.stop()


@app.command()
def run(
    port: int | None = typer.Option(None, help="Port (default HUB_PORT)."),
) -> None:
    """API, relay, worker and scheduler in one process: the embedded way to run everything."""
    import uvicorn

    from hub.api.app import create_app
    from hub.infrastructure.migrations import upgrade
    from sync.worker.engine import SyncEngine

    engine = SyncEngine(_logged_settings())
    if engine.settings.is_sqlite:
        upgrade(engine.container.engine)
    engine.recover()
    engine.start_relay()
    engine.start_worker()
    engine.start_scheduler()
    try:
        uvicorn.run(
            create_app(container=engine.container),
            host=engine.settings.host,
            port=port or engine.settings.port,
            access_log=False,
            log_config=None,  # the hub's JSON logs, not uvicorn's own
            proxy_headers=False,  # HUB_TRUSTED_PROXIES alone decides whose X-Forwarded-For counts
        )
    finally:
        engine.stop()


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    from alembic.util import CommandError

    from hub.bootstrap import bootstrap
    from hub.infrastructure.migrations import upgrade

    container = bootstrap(load_settings())
    try:
        upgrade(container.engine, revision, schema=container.settings.db_schema)
    except CommandError as error:
        fail(f"database not upgraded to {revision}: {error}; `hub db upgrade` goes to the newest")
    finally:
        container.close()
    typer.echo(f"database at {revision}")


@images_app.command("add")
def images_add(
    product_id: int,
    path: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True),
    role: str = typer.Option("mockup", help="mockup (pushed to marketplaces) or print (never)."),
    rank: int = typer.Option(0, min=0, help="Order among the product's mockups (0 first)."),
    variant: int | None = typer.Option(None, help="Only for this variant of the product."),
) -> None:
    """Store an image for a product and queue its renditions (rendered by a worker)."""
    from hub.bootstrap import bootstrap
    from hub.domain.errors import DomainError
    from hub.domain.sellers import Principal
    from sync.application.image_uploads import accept_image, spool
    from sync.infrastructure.storage import build_object_store

    container = bootstrap(load_settings())
    try:
        size = path.stat().st_size
        if size > container.settings.max_upload_bytes:
            typer.echo(
                f"{path} is {size} bytes, over HUB_MAX_UPLOAD_BYTES "
                f"({container.settings.max_upload_bytes})",
                err=True,
            )
            raise typer.Exit(1)
        with path.open("rb") as handle:
            image = accept_image(
                container,
                build_object_store(container.settings),
                spool(handle),
                product_id=product_id,
                variant_id=variant,
                role=role,
                rank=rank,
                principal=Principal(seller_id=None, is_admin=True),
            )
    except DomainError as error:
        typer.echo(f"image not added to product {product_id}: {error.message}", err=True)
        raise typer.Exit(1) from error
    finally:
        container.close()
    typer.echo(
        f"image {image.id} of product {product_id}: {image.role} rank {image.rank}, "
        f"{image.width}x{image.height}, sha256 {image.source_sha256[:12]}; rendering queued"
    )


@keys_app.command("generate")
def keys_generate() -> None:
    """Print a new Fernet key for HUB_SECRET_KEYS (put it first; keep old keys after it)."""
    from cryptography.fernet import Fernet

    typer.echo(Fernet.generate_key().decode())


@connectors_app.command("list")
def connectors_list(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Every installed connector with its capabilities."""
    import json

    from connectors import registry

    settings = load_settings()
    found: dict[str, dict[str, object]] = {}
    for name, entry in sorted(registry.discovered().items()):
        connector = registry.create(name, registry.config_from_settings(name, settings))
        try:
            found[name] = {"entry_point": entry.value, **connector.capabilities.as_dict()}
        finally:
            connector.close()
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    for name, caps in found.items():
        typer.echo(
            f"{name:<12} push={','.join(caps['push_kinds'])}  "  # type: ignore[arg-type]
            f"batch={caps['stock_batch_size']}  rate_limit={caps['rate_limit']}  "
            f"webhooks={caps['webhook_management']}  ({caps['entry_point']})"
        )


@app.command()
def demo(
    orders: int = typer.Option(200, min=1, help="Orders the simulated buyers place."),
    rate: float = typer.Option(5.0, min=0.1, help="Orders placed per second."),
    chaos: bool = typer.Option(
        False,
        help="5xx and 429 bursts from the marketplaces; lost, duplicated and reordered "
        "webhooks; one worker restart halfway.",
    ),
    json_path: Path | None = typer.Option(None, "--json", help="Also write the report here."),
    port: int | None = typer.Option(None, help="API port (default: a free one)."),
    serve: bool = typer.Option(
        False, help="After the report, keep the hub and the sandboxes running until Ctrl-C."
    ),
) -> None:
    """The hub (on the HUB_* settings, embedded by default) against the three marketplace
    sandboxes: buyers order, the hub imports, ships and pushes stock, images and tracking;
    then a report. Exits 1 when a check fails."""
    options = demo_module.DemoOptions(
        orders=orders, rate=rate, chaos=chaos, json_path=json_path, port=port, serve=serve
    )
    raise typer.Exit(demo_module.run(options, wait_for_exit=_wait_for_signal))


@app.command()
def sandbox(
    host: str = typer.Option("127.0.0.1", help="Address to bind."),
    shopify_port: int = typer.Option(0, help="Shopify's port (0: a free one)."),
    etsy_port: int = typer.Option(0, help="Etsy's port (0: a free one)."),
    woocommerce_port: int = typer.Option(0, help="WooCommerce's port (0: a free one)."),
) -> None:
    """The three marketplace simulators with the demo catalog listed: prints their URLs and
    credentials, serves until Ctrl-C."""
    from cli import sandboxes

    ports = {"shopify": shopify_port, "etsy": etsy_port, "woocommerce": woocommerce_port}
    world = sandboxes.Marketplaces(sandboxes.new_run_id())
    world.list_catalog()
    with world.serve(host, ports):
        typer.echo(sandboxes.describe(world))
        _wait_for_signal()


if __name__ == "__main__":
    app()
