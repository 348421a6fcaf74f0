"""Connecting a shop as a seller does: the marketplace's own authorization, then everything a
new shop needs (webhook subscriptions, a catalog pull, the first order backfill).

The authorization's state is single-use and short-lived; it is spent in its own commit before
the code is exchanged, so a replayed callback proves nothing even while the first is still
exchanging. No transaction is open across a marketplace call.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from connectors.contract import (
    AuthorizationCallback,
    AuthorizationRejected,
    AuthorizationStart,
    ConnectedShop,
    ConnectorError,
    ShopAuthorization,
)
from hub.bootstrap import Container
from hub.domain.addresses import SANDBOX_HINT, host_problem, url_problem
from hub.domain.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    MarketplaceUnavailable,
    NotFound,
    Unauthorized,
)
from hub.domain.onboarding import (
    ConnectOptions,
    PendingAuthorization,
    ShopConnection,
    WebhookHealth,
    backfill_warning,
    expiry,
)
from hub.domain.sellers import Principal
from hub.domain.shops import Marketplace, Shop, ShopStatus
from hub.infrastructure.clock import utcnow
from hub.infrastructure.outbound import CATALOG_QUEUE, WEBHOOKS_CHECK_ACTOR, add_message
from sync.application.orders_in import PULL_ACTOR, PULL_QUEUE
from sync.domain.policies import WEBHOOKS_CHECK
from sync.infrastructure import operations as ops

# Etsy's PKCE verifier: 43 to 128 characters of [A-Za-z0-9-._~] (RFC 7636 §4.1).
VERIFIER_BYTES = 64
STATE_BYTES = 32
WEBHOOKS_CHECK_QUEUE = CATALOG_QUEUE


@dataclass(frozen=True)
class StartConnect:
    seller_id: int
    marketplace: Marketplace
    shop: str | None  # Shopify: the myshopify domain; WooCommerce: the store URL; Etsy: unused
    api_base_url: str | None = None  # sandboxes
    options: ConnectOptions = field(default_factory=ConnectOptions)


@dataclass(frozen=True)
class ConnectStarted:
    authorization_url: str
    expires_at: datetime
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class ShopConnected:
    shop: Shop
    reconnected: bool
    catalog_job_id: int
    webhook_check_job_id: int
    backfill_days: int
    warnings: tuple[str, ...]


def callback_url(public_base_url: str, marketplace: Marketplace) -> str:
    return f"{public_base_url.rstrip('/')}/shops/connect/{marketplace.value}/callback"


def return_url(public_base_url: str, marketplace: Marketplace) -> str:
    return f"{public_base_url.rstrip('/')}/shops/connect/{marketplace.value}/return"


def webhook_address(public_base_url: str, marketplace: Marketplace, shop_id: int) -> str:
    """Where the marketplace delivers: app-wide for Shopify and Etsy (the shop is in the
    event), per shop for WooCommerce (each webhook has its own secret)."""
    base = public_base_url.rstrip("/")
    if marketplace is Marketplace.WOOCOMMERCE:
        return f"{base}/webhooks/woocommerce/{shop_id}"
    return f"{base}/webhooks/{marketplace.value}"


def start_connect(
    container: Container,
    connector: ShopAuthorization,
    principal: Principal,
    command: StartConnect,
) -> ConnectStarted:
    """Remember a new authorization under a fresh state and say where the seller goes."""
    settings = container.settings
    if not principal.can_see(command.seller_id):
        raise Forbidden("a seller key can only connect shops for its own seller")
    _check_options(command.options)
    check_shop_urls(command, allow_private_urls=settings.allow_private_urls)
    if command.marketplace is not Marketplace.ETSY and not command.shop:
        raise InvalidInput(
            f"{command.marketplace.value}: give the shop to connect "
            + (
                "(its myshopify.com domain)"
                if command.marketplace is Marketplace.SHOPIFY
                else "(the store's URL)"
            )
        )
    now = utcnow()
    state = secrets.token_urlsafe(STATE_BYTES)
    pending = PendingAuthorization(
        id=None,
        seller_id=command.seller_id,
        marketplace=command.marketplace,
        shop_hint=command.shop,
        api_base_url=command.api_base_url,
        options=command.options,
        created_at=now,
        expires_at=expiry(now, settings.authorization_ttl_minutes),
        code_verifier=(
            secrets.token_urlsafe(VERIFIER_BYTES)
            if command.marketplace is Marketplace.ETSY
            else None
        ),
    )
    try:
        url = connector.authorization_url(_start(settings.public_base_url, pending, state))
    except ConnectorError as error:  # the app is not configured for this marketplace, say
        raise InvalidInput(f"{command.marketplace.value}: {error.message}") from error
    except ValueError as error:
        raise InvalidInput(f"{command.marketplace.value}: {error}") from error
    with container.uow() as uow:
        if uow.sellers.get(command.seller_id) is None:
            raise NotFound(f"seller {command.seller_id} does not exist")
        uow.authorizations.add(pending, state)
        uow.commit()
    days = command.options.backfill_days or settings.pull_backfill_days
    warning = backfill_warning(command.marketplace, days)
    return ConnectStarted(url, pending.expires_at, (warning,) if warning else ())


def complete_connect(
    container: Container,
    connector: ShopAuthorization,
    marketplace: Marketplace,
    callback: AuthorizationCallback,
) -> ShopConnected:
    """Check the callback, spend its state, exchange, store the shop and queue its set-up."""
    settings = container.settings
    try:
        state = connector.callback_state(callback)
    except AuthorizationRejected as error:
        raise Unauthorized(f"{marketplace.value} authorization refused: {error.message}") from error
    with container.uow() as uow:
        pending = uow.authorizations.claim(state)
        if pending is None or pending.marketplace is not marketplace:
            raise Unauthorized(
                "unknown authorization state: start the connection again with `hub shops connect`"
            )
        pending.redeem(utcnow())
        uow.authorizations.save(pending)
        uow.commit()
    start = _start(settings.public_base_url, pending, state)
    try:
        connected = connector.complete_authorization(callback, start)
    except AuthorizationRejected as error:
        raise Unauthorized(f"{marketplace.value} authorization refused: {error.message}") from error
    except ConnectorError as error:
        raise MarketplaceUnavailable(
            f"{marketplace.value} did not complete the authorization: {error.message}; "
            "start the connection again"
        ) from error
    return store_connection(container, pending, connected)


def connect_with_keys(
    container: Container,
    principal: Principal,
    command: StartConnect,
    connected: ConnectedShop,
) -> ShopConnected:
    """Pasted keys (WooCommerce), already checked against the store by the caller."""
    if not principal.can_see(command.seller_id):
        raise Forbidden("a seller key can only connect shops for its own seller")
    _check_options(command.options)
    check_shop_urls(command, allow_private_urls=container.settings.allow_private_urls)
    now = utcnow()
    pending = PendingAuthorization(
        id=None,
        seller_id=command.seller_id,
        marketplace=command.marketplace,
        shop_hint=command.shop,
        api_base_url=command.api_base_url,
        options=command.options,
        created_at=now,
        expires_at=now,
        used_at=now,
    )
    return store_connection(container, pending, connected)


def store_connection(
    container: Container, pending: PendingAuthorization, connected: ConnectedShop
) -> ShopConnected:
    """The shop, new or reconnected, in one commit with the work it starts."""
    settings = container.settings
    now = utcnow()
    backfill_days = pending.options.backfill_days or settings.pull_backfill_days
    with container.uow() as uow:
        if uow.sellers.get(pending.seller_id) is None:
            raise NotFound(f"seller {pending.seller_id} does not exist")
        shop = uow.shops.find_by_external(pending.marketplace, connected.external_id)
        reconnected = shop is not None
        if shop is None:
            shop = uow.shops.add(_new_shop(pending, connected))
        else:
            if shop.seller_id != pending.seller_id:
                raise Conflict(
                    f"{pending.marketplace.value} shop {connected.external_id!r} is connected "
                    f"to another seller (shop {shop.id})"
                )
            _refresh(shop, connected)
            uow.shops.save(shop)
        assert shop.id is not None
        connection = uow.connections.get(shop.id)
        connection = replace(
            connection,
            connected_at=now,
            scopes=tuple(connected.scopes),
            webhook_status=WebhookHealth.UNCHECKED,
            webhook_detail="a check is queued",
        )
        uow.connections.save(connection)
        if pending.id is not None:
            pending.shop_id = shop.id
            uow.authorizations.save(pending)
        db = uow.connection
        webhook_job = request_webhook_check(db, shop.id, "connected")
        catalog_job = ops.request_catalog_pull(db, shop.id, "connected")
        since = now - timedelta(days=backfill_days)
        add_message(db, PULL_ACTOR, PULL_QUEUE, {"shop_id": shop.id, "since": since.isoformat()})
        uow.commit()
    warning = backfill_warning(pending.marketplace, backfill_days)
    return ShopConnected(
        shop=shop,
        reconnected=reconnected,
        catalog_job_id=catalog_job,
        webhook_check_job_id=webhook_job,
        backfill_days=backfill_days,
        warnings=(warning,) if warning else (),
    )


def request_webhook_check(db: Any, shop_id: int, reason: str) -> int:
    operation_id = ops.request_operation(
        db,
        kind=WEBHOOKS_CHECK,
        shop_id=shop_id,
        key=f"webhooks:{shop_id}:{secrets.token_hex(8)}",
        payload={"shop_id": shop_id, "reason": reason},
        actor=WEBHOOKS_CHECK_ACTOR,
        queue=WEBHOOKS_CHECK_QUEUE,
    )
    assert operation_id is not None  # a fresh key never conflicts
    return operation_id


def connection_of(container: Container, shop_id: int) -> ShopConnection:
    with container.uow() as uow:
        return uow.connections.get(shop_id)


def _start(public_base_url: str, pending: PendingAuthorization, state: str) -> AuthorizationStart:
    return AuthorizationStart(
        state=state,
        redirect_uri=callback_url(public_base_url, pending.marketplace),
        shop_hint=pending.shop_hint,
        code_verifier=pending.code_verifier,
        api_base_url=pending.api_base_url,
        return_url=return_url(public_base_url, pending.marketplace),
    )


def _new_shop(pending: PendingAuthorization, connected: ConnectedShop) -> Shop:
    shop = Shop(
        id=None,
        seller_id=pending.seller_id,
        marketplace=pending.marketplace,
        external_id=connected.external_id,
        name=pending.options.name or connected.name,
        stock_buffer=pending.options.stock_buffer,
        api_base_url=connected.api_base_url,
        location_id=connected.location_id,
        credentials=_credentials(pending.marketplace, connected, {}),
    )
    if pending.options.max_listed_quantity is not None:
        shop.max_listed_quantity = pending.options.max_listed_quantity
    return shop


def _refresh(shop: Shop, connected: ConnectedShop) -> None:
    """A reconnect: new credentials, the shop active again; the seller's tuning is kept."""
    shop.credentials = _credentials(shop.marketplace, connected, shop.credentials)
    shop.api_base_url = connected.api_base_url
    shop.location_id = connected.location_id or shop.location_id
    shop.status = ShopStatus.ACTIVE


def _credentials(
    marketplace: Marketplace, connected: ConnectedShop, previous: dict[str, Any]
) -> dict[str, Any]:
    """The marketplace's credentials, plus our own webhook secret where deliveries are signed
    per subscription (WooCommerce); a reconnect keeps it, so deliveries in flight verify."""
    credentials = dict(connected.credentials)
    if marketplace is Marketplace.WOOCOMMERCE:
        credentials["webhook_secret"] = previous.get("webhook_secret") or secrets.token_urlsafe(32)
    return credentials


def check_shop_urls(command: StartConnect, *, allow_private_urls: bool) -> None:
    """``InvalidInput`` when ``api_base_url`` or the shop's address (Shopify's domain,
    WooCommerce's store URL) names a loopback, private or other non-public address, or the
    URL is not https, and HUB_ALLOW_PRIVATE_URLS does not allow it. Names are resolved and
    checked again on every connection by the connectors' outbound guard; this is the early,
    clear answer. Callers that reach the store before ``connect_with_keys`` (pasted keys)
    should call it first."""
    if command.api_base_url is not None:
        problem = url_problem(
            command.api_base_url, allow_private=allow_private_urls, what="api_base_url"
        )
        if problem is not None:
            raise InvalidInput(problem)
    host = _shop_host(command.shop)
    if host:
        problem = host_problem(host, allow_private=allow_private_urls)
        if problem is not None:
            raise InvalidInput(
                f"shop {command.shop!r} is refused: {problem}; the hub only calls public "
                f"addresses ({SANDBOX_HINT})"
            )


def _shop_host(shop: str | None) -> str | None:
    """The host of a shop domain or store URL (``shop.example.com``, ``https://x.test/wp``)."""
    if not shop or not shop.strip():
        return None
    text = shop.strip()
    try:
        return urlsplit(text if "//" in text else f"//{text}").hostname
    except ValueError:
        return None  # not a URL at all: the connector says what it expects


def _check_options(options: ConnectOptions) -> None:
    if options.stock_buffer < 0:
        raise InvalidInput("stock_buffer cannot be negative")
    if options.max_listed_quantity is not None and options.max_listed_quantity < 0:
        raise InvalidInput("max_listed_quantity cannot be negative")
    if options.backfill_days is not None and options.backfill_days < 0:
        raise InvalidInput("backfill_days cannot be negative")
