"""`hub shops`: connect a seller's store, list, check and pause shops."""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

import typer

from cli.output import (
    ADMIN,
    duration,
    explain,
    hub,
    json_option,
    print_json,
    print_table,
    usage,
)
from hub.bootstrap import Container
from hub.domain.errors import DomainError, NotFound
from hub.domain.shops import Marketplace, Shop, ShopStatus

app = typer.Typer(
    help="Shop connections: connect, add, list, status, pause, resume.", no_args_is_help=True
)
LIST_HINT = "see `hub shops list` for the shops there are"


def not_found_hint(error: DomainError) -> str:
    return LIST_HINT if isinstance(error, NotFound) else ""


def shop_summary(shop: Shop) -> dict[str, Any]:
    """What may be shown of a shop: never its credentials, only which keys it has."""
    return {
        "id": shop.id,
        "seller_id": shop.seller_id,
        "marketplace": shop.marketplace.value,
        "external_id": shop.external_id,
        "name": shop.name,
        "status": shop.status.value,
        "stock_buffer": shop.stock_buffer,
        "max_listed_quantity": shop.max_listed_quantity,
        "api_base_url": shop.api_base_url,
        "location_id": shop.location_id,
        "credential_keys": sorted(shop.credentials),
        "created_at": shop.created_at,
    }


def _credentials(pairs: list[str], env_prefix: str | None) -> dict[str, str]:
    if pairs and env_prefix:
        usage("give credentials with --credential or with --credentials-env, not both")
    if env_prefix:
        found = {
            name[len(env_prefix) :].lower(): value
            for name, value in os.environ.items()
            if name.startswith(env_prefix) and len(name) > len(env_prefix)
        }
        if not found:
            usage(
                f"--credentials-env {env_prefix}: no environment variable starts with "
                f"{env_prefix!r}; export e.g. {env_prefix}ACCESS_TOKEN"
            )
        return found
    credentials: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not key:
            usage(f"--credential {pair!r}: give KEY=VALUE, or KEY alone to paste the value")
        if not sep:  # pasted at a hidden prompt: never in shell history or the process list
            value = typer.prompt(f"{key}", hide_input=True)
        credentials[key] = value
    return credentials


@app.command("add")
def add(
    seller: int = typer.Option(..., "--seller", help="The seller who owns the shop."),
    marketplace: Marketplace = typer.Option(..., case_sensitive=False),
    external_id: str = typer.Option(
        ...,
        "--external-id",
        help="Shopify: the myshopify domain; Etsy: the shop id; WooCommerce: the site URL.",
    ),
    name: str = typer.Option(..., help="A name for people."),
    api_base_url: str | None = typer.Option(None, help="Override for sandboxes and tests."),
    location_id: str | None = typer.Option(None, help="Shopify location to stock from."),
    stock_buffer: int = typer.Option(0, min=0, help="Units held back from every listing."),
    max_listed_quantity: int | None = typer.Option(None, min=0, help="Cap on listed quantity."),
    credential: list[str] | None = typer.Option(
        None,
        "--credential",
        help="KEY=VALUE, or KEY alone to paste the value at a hidden prompt (repeatable).",
    ),
    credentials_env: str | None = typer.Option(
        None,
        "--credentials-env",
        metavar="PREFIX",
        help="Read every PREFIX<KEY> environment variable, e.g. HUB_SHOP_CREDENTIAL_ "
        "reads HUB_SHOP_CREDENTIAL_ACCESS_TOKEN as access_token.",
    ),
) -> None:
    """Connect a seller's store; its credentials are stored encrypted and never printed."""
    from hub.application.shops import CreateShop, create_shop

    credentials = _credentials(list(credential or []), credentials_env)
    what = f"{marketplace.value} shop {external_id!r} not added"
    with hub() as container, explain(what, _add_hint), container.uow() as uow:
        shop = create_shop(
            uow,
            CreateShop(
                seller_id=seller,
                marketplace=marketplace,
                external_id=external_id,
                name=name,
                stock_buffer=stock_buffer,
                max_listed_quantity=max_listed_quantity,
                api_base_url=api_base_url,
                location_id=location_id,
                credentials=credentials,
            ),
            ADMIN,
            allow_private_urls=container.settings.allow_private_urls,
        )
        uow.commit()
    stored = (
        f"credentials stored encrypted ({', '.join(sorted(credentials))})"
        if credentials
        else "no credentials given: calls to the marketplace will be refused"
    )
    typer.echo(
        f"shop {shop.id} added: {marketplace.value} {external_id!r} ({name}) for seller "
        f"{seller}; {stored}"
    )
    typer.echo(f"next: `hub bindings auto --shop {shop.id}` binds its listings to ours by SKU")


@app.command("connect")
def connect(
    marketplace: Marketplace = typer.Argument(..., case_sensitive=False),
    seller: int = typer.Option(..., "--seller", help="The seller who owns the shop."),
    shop: str | None = typer.Option(
        None,
        "--shop",
        help="Shopify: the myshopify.com domain; WooCommerce: the store URL; Etsy: not needed.",
    ),
    name: str | None = typer.Option(None, help="A name for people (default: the store's)."),
    stock_buffer: int = typer.Option(0, min=0, help="Units held back from every listing."),
    max_listed_quantity: int | None = typer.Option(None, min=0, help="Cap on listed quantity."),
    backfill_days: int | None = typer.Option(
        None,
        min=0,
        help="How far back the first order pull reaches (default HUB_PULL_BACKFILL_DAYS).",
    ),
    api_base_url: str | None = typer.Option(None, help="Override for sandboxes and tests."),
    keys_env: str | None = typer.Option(
        None,
        "--keys-env",
        metavar="PREFIX",
        help="WooCommerce only: connect with pasted keys read from PREFIXCONSUMER_KEY and "
        "PREFIXCONSUMER_SECRET instead of the authorization flow.",
    ),
    as_json: bool = json_option(),
) -> None:
    """Start the marketplace's own authorization and print the URL to open in a browser signed
    in to the store; the shop is connected when the marketplace calls the hub back."""
    from connectors import registry
    from connectors.contract import AuthorizationRejected, ConnectorError, ShopAuthorization
    from hub.domain.onboarding import ConnectOptions
    from sync.application import onboarding

    command = onboarding.StartConnect(
        seller_id=seller,
        marketplace=marketplace,
        shop=shop,
        api_base_url=api_base_url,
        options=ConnectOptions(
            name=name,
            stock_buffer=stock_buffer,
            max_listed_quantity=max_listed_quantity,
            backfill_days=backfill_days,
        ),
    )
    what = f"{marketplace.value} shop not connected"
    with hub() as container, explain(what, _add_hint):
        connector = registry.create(
            marketplace.value, registry.config_from_settings(marketplace.value, container.settings)
        )
        try:
            assert isinstance(connector, ShopAuthorization)
            if keys_env is not None:
                key = os.environ.get(f"{keys_env}CONSUMER_KEY")
                secret = os.environ.get(f"{keys_env}CONSUMER_SECRET")
                connect_keys = getattr(connector, "connect_with_keys", None)
                if marketplace is not Marketplace.WOOCOMMERCE or connect_keys is None:
                    usage("--keys-env: only WooCommerce keys can be pasted")
                if not (shop and key and secret):
                    usage(
                        f"--keys-env {keys_env}: give --shop and export {keys_env}CONSUMER_KEY "
                        f"and {keys_env}CONSUMER_SECRET"
                    )
                onboarding.check_shop_urls(
                    command, allow_private_urls=container.settings.allow_private_urls
                )
                try:
                    found = connect_keys(shop, key, secret, api_base_url=api_base_url)
                except (AuthorizationRejected, ConnectorError) as error:
                    usage(f"the store refused these keys: {error.message}")
                done = onboarding.connect_with_keys(container, ADMIN, command, found)
                if as_json:
                    print_json({"shop_id": done.shop.id, "warnings": list(done.warnings)})
                    return
                typer.echo(
                    f"shop {done.shop.id} connected: {marketplace.value} "
                    f"{done.shop.external_id!r}; webhooks, a catalog pull and a "
                    f"{done.backfill_days}-day order backfill are queued"
                )
                return
            started = onboarding.start_connect(container, connector, ADMIN, command)
        finally:
            connector.close()
    if as_json:
        print_json(
            {
                "authorization_url": started.authorization_url,
                "expires_at": started.expires_at,
                "warnings": list(started.warnings),
            }
        )
        return
    typer.echo(f"open this URL in a browser signed in to the {marketplace.value} store:")
    typer.echo(f"  {started.authorization_url}")
    typer.echo(
        f"it is valid until {started.expires_at:%H:%M} UTC and works once; the shop appears in "
        "`hub shops list` when the marketplace calls the hub back"
    )
    for warning in started.warnings:
        typer.echo(f"warning: {warning}")


def _add_hint(error: DomainError) -> str:
    if isinstance(error, NotFound):
        return "see `hub sellers list`, or create one with `hub sellers add NAME`"
    return ""


@app.command("list")
def list_shops(
    seller: int | None = typer.Option(None, help="Only this seller's shops."),
    as_json: bool = json_option(),
) -> None:
    """Every shop (credentials never shown, only which keys are stored)."""
    with hub() as container, container.uow() as uow:
        rows = [shop_summary(shop) for shop in uow.shops.list(seller)]
    if as_json:
        print_json(rows)
        return
    for row in rows:
        row["credentials"] = ",".join(row["credential_keys"]) or "none"
    print_table(
        rows,
        ["id", "seller_id", "marketplace", "external_id", "name", "status", "credentials"],
        empty="no shops yet; connect one with `hub shops add`",
    )


def _set_state(shop_id: int, *, paused: bool) -> None:
    from hub.application.shops import set_shop_state

    verb = "paused" if paused else "resumed"
    what = f"shop {shop_id} not {verb}"
    with hub() as container, explain(what, not_found_hint), container.uow() as uow:
        shop = set_shop_state(uow, shop_id, ADMIN, paused=paused)
        uow.commit()
    if paused:
        typer.echo(
            f"shop {shop_id} ({shop.marketplace.value} {shop.name}) paused: no pulls or pushes "
            f"until `hub shops resume {shop_id}`"
        )
    else:
        typer.echo(
            f"shop {shop_id} ({shop.marketplace.value} {shop.name}) resumed; its stock is "
            "queued to be pushed again"
        )


@app.command("pause")
def pause(shop_id: int) -> None:
    """Stop pulling from and pushing to a shop (webhooks are still stored)."""
    _set_state(shop_id, paused=True)


@app.command("resume")
def resume(shop_id: int) -> None:
    """Resume a paused shop and queue its stock to be pushed again."""
    _set_state(shop_id, paused=False)


@app.command("status")
def status(
    shop_id: int | None = typer.Argument(None, help="One shop (default: every shop)."),
    as_json: bool = json_option(),
) -> None:
    """Per shop: last successful pull, lag (now - newest imported order update), webhook
    subscription state, failed operations."""
    from hub.application.shops import load_shop

    with hub() as container:
        with container.uow() as uow:
            if shop_id is not None:
                with explain(f"no status for shop {shop_id}", not_found_hint):
                    shops = [load_shop(uow, shop_id, ADMIN)]
            else:
                shops = uow.shops.list(None)
        rows = status_rows(container, shops)
    if as_json:
        print_json(rows)
        return
    table = [
        {
            "id": row["shop_id"],
            "shop": f"{row['marketplace']} {row['name']}",
            "status": row["status"],
            "last pull": _ago(row["last_pull_at"], row["checked_at"]),
            "lag": duration(row["lag_seconds"]),
            "webhooks": row["webhook_state"],
            "token": _expiry(row["access_expires_at"], row["checked_at"]),
            "failed jobs": row["failed_operations"],
        }
        for row in rows
    ]
    print_table(
        table,
        ["id", "shop", "status", "last pull", "lag", "webhooks", "token", "failed jobs"],
        empty="no shops yet; connect one with `hub shops add`",
    )
    for row in rows:
        for advice in _advice(row):
            typer.echo(f"shop {row['shop_id']}: {advice}")


def _expiry(when: datetime | None, now: datetime) -> str:
    """Rotating tokens (Etsy) are refreshed before each call once due; others do not expire."""
    if when is None:
        return "no expiry"
    left = (when - now).total_seconds()
    if left <= 0:
        return f"expired {duration(-left)} ago (refreshed on next call)"
    return f"expires in {duration(left)}"


def _ago(when: datetime | None, now: datetime) -> str:
    return "never" if when is None else f"{duration((now - when).total_seconds())} ago"


def _advice(row: dict[str, Any]) -> list[str]:
    shop_id = row["shop_id"]
    found: list[str] = []
    if row["status"] == ShopStatus.AUTH_FAILED.value:
        found.append("the marketplace refused its credentials; connect the shop again")
    elif row["status"] == ShopStatus.DISCONNECTED.value:
        found.append(
            "the app was uninstalled from the store; `hub shops connect` connects it again"
        )
    elif row["status"] == ShopStatus.PAUSED.value:
        found.append(f"paused; `hub shops resume {shop_id}` resumes it")
    if row["webhook_check"] in ("failing", "silent"):
        found.append(f"webhooks {row['webhook_check']}: {row['webhook_detail']}")
    if row["failed_operations"]:
        found.append(
            f"{row['failed_operations']} failed job(s); see `hub jobs failed --shop {shop_id}`"
        )
    return found


def status_rows(container: Container, shops: list[Shop]) -> list[dict[str, Any]]:
    """The health of each shop from the database (no marketplace is called)."""
    from sqlalchemy import func, select

    from hub.api.onboarding import access_expiry
    from hub.infrastructure.clock import utcnow
    from hub.infrastructure.orders import ORDERS
    from hub.infrastructure.outbound import OPERATIONS
    from sync.application.orders_in import ORDER_STREAM
    from sync.infrastructure import events
    from sync.infrastructure.cursors import CURSORS
    from sync.infrastructure.operations import FAILED

    ids = [shop.id for shop in shops if shop.id is not None]
    now = utcnow()
    with container.engine.connect() as db:
        pulls = {
            row.shop_id: row
            for row in db.execute(
                select(CURSORS.c.shop_id, CURSORS.c.position, CURSORS.c.updated_at).where(
                    CURSORS.c.stream == ORDER_STREAM, CURSORS.c.shop_id.in_(ids)
                )
            )
        }
        newest: dict[int, datetime] = {
            row[0]: row[1]
            for row in db.execute(
                select(ORDERS.c.shop_id, func.max(ORDERS.c.external_updated_at))
                .where(ORDERS.c.shop_id.in_(ids))
                .group_by(ORDERS.c.shop_id)
            )
        }
        failed: dict[int, int] = {
            row[0]: row[1]
            for row in db.execute(
                select(OPERATIONS.c.shop_id, func.count())
                .where(OPERATIONS.c.status == FAILED, OPERATIONS.c.shop_id.in_(ids))
                .group_by(OPERATIONS.c.shop_id)
            )
        }
        deliveries = {shop_id: events.last_delivery(db, shop_id) for shop_id in ids}
    with container.uow() as uow:
        connections = {shop_id: uow.connections.get(shop_id) for shop_id in ids}
    management = _webhook_management(container, {shop.marketplace.value for shop in shops})
    rows: list[dict[str, Any]] = []
    for shop in shops:
        assert shop.id is not None
        pull = pulls.get(shop.id)
        last_order = newest.get(shop.id)
        delivery = deliveries.get(shop.id)
        managed = management.get(shop.marketplace.value, "unknown")
        connection = connections[shop.id]
        rows.append(
            {
                "shop_id": shop.id,
                "marketplace": shop.marketplace.value,
                "name": shop.name,
                "status": shop.status.value,
                "checked_at": now,
                "last_pull_at": pull.updated_at if pull else None,
                "pull_cursor": pull.position if pull else None,
                "newest_order_at": last_order,
                "lag_seconds": (now - last_order).total_seconds() if last_order else None,
                "webhook_management": managed,
                "last_delivery_at": delivery,
                "webhook_state": _webhook_state(
                    shop, managed, delivery, now, connection.webhook_status.value
                ),
                "webhook_check": connection.webhook_status.value,
                "webhook_detail": connection.webhook_detail,
                "webhooks_checked_at": connection.webhooks_checked_at,
                "connected_at": connection.connected_at,
                "scopes": list(connection.scopes),
                "access_expires_at": access_expiry(shop.credentials),
                "failed_operations": failed.get(shop.id, 0),
            }
        )
    return rows


def _webhook_management(container: Container, marketplaces: set[str]) -> dict[str, str]:
    """``api`` (we manage the subscriptions) or ``manual`` (the seller or the app's portal)."""
    from connectors import registry

    found: dict[str, str] = {}
    for name in sorted(marketplaces):
        try:
            connector = registry.create(
                name, registry.config_from_settings(name, container.settings)
            )
        except registry.UnknownMarketplace:
            continue
        try:
            found[name] = connector.capabilities.webhook_management.value
        finally:
            connector.close()
    return found


def _webhook_state(
    shop: Shop, managed: str, delivery: datetime | None, now: datetime, check: str = "unchecked"
) -> str:
    if shop.marketplace is Marketplace.WOOCOMMERCE and not shop.credentials.get("webhook_secret"):
        return "no webhook_secret credential: deliveries are refused"
    if delivery is None:
        return f"{managed} ({check}): nothing received yet"
    return f"{managed} ({check}): last delivery {duration((now - delivery).total_seconds())} ago"
