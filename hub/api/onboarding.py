"""Connecting shops through each marketplace's authorization, and the callbacks completing it.

The callbacks are the fourth kind of authentication (beside API keys, webhook signatures and
signed media URLs): they carry no API key, and prove themselves only by a single-use state we
issued (plus Shopify's ``hmac`` and Etsy's PKCE exchange). Anything else gets 401.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any, cast

from fastapi import APIRouter, Depends, Request, status
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from connectors import registry
from connectors.contract import (
    AuthorizationCallback,
    AuthorizationRejected,
    ConnectedShop,
    ConnectorError,
    MarketplaceConnector,
    ShopAuthorization,
)
from hub.api.auth import container_of, current_principal
from hub.api.errors import ErrorOut
from hub.api.jobs import JobOut, visible_job
from hub.api.params import MAX_COUNT, ApiInput, BodyId, PathId
from hub.api.shops import ShopOut
from hub.application.shops import load_shop
from hub.bootstrap import Container
from hub.domain.errors import InvalidInput, MarketplaceUnavailable
from hub.domain.onboarding import ConnectOptions
from hub.domain.sellers import Principal
from hub.domain.shops import Marketplace
from sync.application import onboarding

router = APIRouter(tags=["shops"])
# How a callback refuses: no or a spent state, a bad hmac (401); the seller or shop changed
# meanwhile (404, 409); a malformed callback (422); the marketplace's exchange failed (502).
CALLBACK_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "The state is unknown, spent or expired."},
    404: {"model": ErrorOut, "description": "The seller is gone."},
    409: {"model": ErrorOut, "description": "The shop is connected to another seller."},
    422: {"model": ErrorOut, "description": "The callback is malformed."},
    502: {"model": ErrorOut, "description": "The marketplace's token exchange failed."},
}


class ConnectIn(ApiInput):
    marketplace: Marketplace
    seller_id: BodyId | None = Field(None, description="Required with the admin key.")
    shop: str | None = Field(
        None,
        max_length=500,
        description="Shopify: the myshopify.com domain; WooCommerce: the store URL.",
    )
    name: str | None = Field(None, max_length=255, description="Default: the store's name.")
    stock_buffer: int = Field(0, ge=0, le=MAX_COUNT)
    max_listed_quantity: int | None = Field(None, ge=0, le=MAX_COUNT)
    backfill_days: int | None = Field(
        None, ge=0, le=3650, description="How far back the first order pull reaches."
    )
    api_base_url: str | None = Field(
        None, max_length=500, description="Override for sandboxes and tests."
    )
    consumer_key: str | None = Field(
        None, description="WooCommerce keys pasted instead of the authorization flow."
    )
    consumer_secret: str | None = Field(None, description="Stored encrypted; never returned.")


class ConnectStartedOut(BaseModel):
    authorization_url: str
    expires_at: datetime
    warnings: list[str]


class ConnectedOut(BaseModel):
    shop: ShopOut
    reconnected: bool
    catalog_job_id: int
    webhook_check_job_id: int
    backfill_days: int
    warnings: list[str]


class ConnectionOut(BaseModel):
    shop_id: int
    status: str
    connected_at: datetime | None
    scopes: list[str]
    access_expires_at: datetime | None
    webhook_status: str
    webhook_detail: str | None
    webhooks_checked_at: datetime | None


class ReturnOut(BaseModel):
    marketplace: Marketplace
    success: bool
    message: str


def _query(*names: str) -> dict[str, Any]:
    """The callback's query parameters, documented: the handler reads the query itself and
    passes it whole to the connector, which names what is missing (401)."""
    return {
        "parameters": [
            {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
            for name in names
        ]
    }


class Authorizers:
    """The connectors that authorize shops, built once per process and closed with the app.

    Building one (an entry-point lookup, its HTTP clients) takes tens of milliseconds, which
    every callback would pay before its state is even checked, and which an unauthenticated
    caller could make the hub pay at will. Connectors serve any number of shops and threads
    (the worker shares them the same way), so one per marketplace is enough.
    """

    def __init__(self, container: Container) -> None:
        self._container = container
        self._connectors: dict[Marketplace, MarketplaceConnector] = {}
        # The routes run in the threadpool: without it two first requests would both build
        # one, and the connector that lost the race would never be closed.
        self._lock = threading.Lock()

    def get(self, marketplace: Marketplace) -> ShopAuthorization:
        with self._lock:
            connector = self._connectors.get(marketplace)
            if connector is None:
                name = marketplace.value
                config = registry.config_from_settings(name, self._container.settings)
                connector = registry.create(name, config)
                self._connectors[marketplace] = connector
        if not isinstance(connector, ShopAuthorization):
            raise InvalidInput(f"{marketplace.value}: this connector cannot authorize shops")
        return connector

    def close(self) -> None:
        with self._lock:
            for connector in self._connectors.values():
                connector.close()
            self._connectors.clear()


def authorizers_of(request: Request) -> Authorizers:
    authorizers: Authorizers = request.app.state.authorizers
    return authorizers


def _connected(result: onboarding.ShopConnected) -> ConnectedOut:
    return ConnectedOut(
        shop=ShopOut.of(result.shop),
        reconnected=result.reconnected,
        catalog_job_id=result.catalog_job_id,
        webhook_check_job_id=result.webhook_check_job_id,
        backfill_days=result.backfill_days,
        warnings=list(result.warnings),
    )


@router.post(
    "/shops/connect",
    responses={
        200: {
            "description": "``authorization_url`` to open; with pasted WooCommerce keys, the "
            "connected shop."
        },
        502: {"model": ErrorOut, "description": "The store could not be reached."},
    },
)
def connect_shop(
    body: ConnectIn,
    principal: Principal = Depends(current_principal),
    container: Container = Depends(container_of),
    authorizers: Authorizers = Depends(authorizers_of),
) -> ConnectStartedOut | ConnectedOut:
    """Start the marketplace's authorization: open ``authorization_url`` in a browser signed in
    to the store. WooCommerce keys may be pasted instead (the shop is connected at once)."""
    seller_id = body.seller_id if body.seller_id is not None else principal.seller_id
    if seller_id is None:
        raise InvalidInput("seller_id: required with the admin key")
    command = onboarding.StartConnect(
        seller_id=seller_id,
        marketplace=body.marketplace,
        shop=body.shop,
        api_base_url=body.api_base_url,
        options=ConnectOptions(
            name=body.name,
            stock_buffer=body.stock_buffer,
            max_listed_quantity=body.max_listed_quantity,
            backfill_days=body.backfill_days,
        ),
    )
    connector = authorizers.get(body.marketplace)
    if body.consumer_key or body.consumer_secret:
        return _connect_with_keys(container, connector, principal, command, body)
    started = onboarding.start_connect(container, connector, principal, command)
    return ConnectStartedOut(
        authorization_url=started.authorization_url,
        expires_at=started.expires_at,
        warnings=list(started.warnings),
    )


def _connect_with_keys(
    container: Container,
    connector: ShopAuthorization,
    principal: Principal,
    command: onboarding.StartConnect,
    body: ConnectIn,
) -> ConnectedOut:
    connect = getattr(connector, "connect_with_keys", None)
    if command.marketplace is not Marketplace.WOOCOMMERCE or connect is None:
        raise InvalidInput("only WooCommerce keys can be pasted; use the authorization flow")
    if not (body.shop and body.consumer_key and body.consumer_secret):
        raise InvalidInput(
            "pasted keys need shop (the store URL), consumer_key and consumer_secret"
        )
    onboarding.check_shop_urls(command, allow_private_urls=container.settings.allow_private_urls)
    try:
        connected = cast(
            ConnectedShop,
            connect(
                body.shop,
                body.consumer_key,
                body.consumer_secret,
                api_base_url=body.api_base_url,
            ),
        )
    except AuthorizationRejected as error:
        raise InvalidInput(f"the store refused these keys: {error.message}") from error
    except ConnectorError as error:
        raise MarketplaceUnavailable(f"the store could not be reached: {error.message}") from error
    return _connected(onboarding.connect_with_keys(container, principal, command, connected))


def _complete(
    request: Request, marketplace: Marketplace, callback: AuthorizationCallback
) -> ConnectedOut:
    container = container_of(request)
    connector = authorizers_of(request).get(marketplace)
    return _connected(onboarding.complete_connect(container, connector, marketplace, callback))


@router.get(
    "/shops/connect/shopify/callback",
    responses=CALLBACK_ERRORS,
    openapi_extra=_query(
        "code", "hmac", "shop", "state", "timestamp", "host", "error", "error_description"
    ),
)
def shopify_callback(request: Request) -> ConnectedOut:
    """Shopify's redirect after the install: ``code``, ``hmac``, ``shop``, ``state``, ..."""
    callback = AuthorizationCallback(query=dict(request.query_params))
    return _complete(request, Marketplace.SHOPIFY, callback)


@router.get(
    "/shops/connect/etsy/callback",
    responses=CALLBACK_ERRORS,
    openapi_extra=_query("code", "state", "error", "error_description"),
)
def etsy_callback(request: Request) -> ConnectedOut:
    """Etsy's redirect after consent: ``code`` and ``state`` (exchanged with the PKCE
    verifier kept server-side)."""
    callback = AuthorizationCallback(query=dict(request.query_params))
    return _complete(request, Marketplace.ETSY, callback)


@router.post(
    "/shops/connect/woocommerce/callback",
    responses=CALLBACK_ERRORS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "key_id": {"type": "integer"},
                            "user_id": {"type": "string"},
                            "consumer_key": {"type": "string"},
                            "consumer_secret": {"type": "string"},
                            "key_permissions": {"type": "string"},
                        },
                    }
                }
            },
        }
    },
)
async def woocommerce_callback(request: Request) -> ConnectedOut:
    """WooCommerce posts the new keys here (JSON, server to server) before sending the seller
    back to the return page; ``user_id`` carries our state."""
    callback = AuthorizationCallback(
        query=dict(request.query_params),
        body=await request.body(),
        content_type=request.headers.get("content-type", ""),
    )
    return await run_in_threadpool(_complete, request, Marketplace.WOOCOMMERCE, callback)


@router.get("/shops/connect/{marketplace}/return")
def connect_return(marketplace: Marketplace, success: str | None = None) -> ReturnOut:
    """Where WooCommerce sends the seller's browser afterwards. It says nothing of the shop:
    the keys came in through the callback, and ``hub shops status`` shows the result."""
    ok = success == "1"
    return ReturnOut(
        marketplace=marketplace,
        success=ok,
        message=(
            "authorization granted: the shop is connected once the store's keys arrived; "
            "see `hub shops list`"
            if ok
            else "the store refused or cancelled the authorization; start again with "
            "`hub shops connect`"
        ),
    )


@router.get("/shops/{shop_id}/connection")
def shop_connection(
    shop_id: PathId,
    principal: Principal = Depends(current_principal),
    container: Container = Depends(container_of),
) -> ConnectionOut:
    """How the connection stands: scopes, token expiry, the last webhook check."""
    with container.uow() as uow:
        shop = load_shop(uow, shop_id, principal)
        connection = uow.connections.get(shop_id)
    return ConnectionOut(
        shop_id=shop_id,
        status=shop.status.value,
        connected_at=connection.connected_at,
        scopes=list(connection.scopes),
        access_expires_at=access_expiry(shop.credentials),
        webhook_status=connection.webhook_status.value,
        webhook_detail=connection.webhook_detail,
        webhooks_checked_at=connection.webhooks_checked_at,
    )


@router.post("/shops/{shop_id}/webhooks/check", status_code=status.HTTP_202_ACCEPTED)
def check_webhooks(
    shop_id: PathId,
    principal: Principal = Depends(current_principal),
    container: Container = Depends(container_of),
) -> JobOut:
    """List the shop's webhook subscriptions now, re-creating and re-enabling what is gone."""
    with container.uow() as uow:
        load_shop(uow, shop_id, principal)
    with container.engine.begin() as db:
        operation_id = onboarding.request_webhook_check(db, shop_id, "api")
    return JobOut.model_validate(visible_job(container, principal, operation_id).as_dict())


def access_expiry(credentials: dict[str, Any]) -> datetime | None:
    """When the stored access token runs out (rotating tokens: Etsy), if the credentials say."""
    for key in ("access_expires_at", "expires_at"):
        value = credentials.get(key)
        if isinstance(value, (int, float)):
            return datetime.fromtimestamp(value, tz=UTC)
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value)
            except ValueError:
                continue
    return None
