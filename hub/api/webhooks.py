"""Webhook ingress: verify, store once, answer in milliseconds.

The raw body is read as a stream with a byte counter (Content-Length may be absent) and the
connector verifies its signature over exactly those bytes. Only a failed signature gets 401: a
verified body is always stored and answered 200, as rejected with the reason when it cannot be
used, because a 4xx makes marketplaces disable the subscription. Ingress never talks to the
broker and never calls a marketplace: the outbox row written with the event is published by
the relay.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
from contextvars import ContextVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from connectors import registry
from connectors.contract import (
    MarketplaceConnector,
    WebhookEnvelope,
    WebhookPing,
    WebhookRejected,
)
from hub.bootstrap import Container
from sync.infrastructure.events import IncomingEvent, StoredEvent, store_event
from sync.infrastructure.events_async import AsyncEventStore

router = APIRouter(tags=["webhooks"])
APP_WIDE = ("shopify", "etsy")  # verified with the app's secret; the shop comes from the event


PER_SHOP = "woocommerce"  # verified with the shop's own secret; the shop comes from the path
# The secrets of the shop whose per-shop endpoint is being served, for the connector's resolver.
_REQUEST_SECRETS: ContextVar[tuple[str | None, ...]] = ContextVar("webhook_secrets", default=())
# Verifying against this when the shop is unknown does the same work as a real check, so an
# unknown shop id and a bad signature cannot be told apart by their answer or its timing.
_DUMMY_SECRET = secrets.token_hex(32)


def _request_secrets(_site: str) -> tuple[str | None, ...]:
    return _REQUEST_SECRETS.get()


class WebhookConnectors:
    """The connectors ingress verifies with, built once per process."""

    def __init__(self, container: Container) -> None:
        self._container = container
        self._connectors: dict[str, MarketplaceConnector] = {}

    def get(self, marketplace: str) -> MarketplaceConnector:
        found = self._connectors.get(marketplace)
        if found is None:
            config = registry.config_from_settings(marketplace, self._container.settings)
            if marketplace == PER_SHOP:
                config = dataclasses.replace(config, webhook_secrets=_request_secrets)
            found = registry.create(marketplace, config)
            self._connectors[marketplace] = found
        return found

    def close(self) -> None:
        for connector in self._connectors.values():
            connector.close()


async def read_body(request: Request, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"webhook body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def incoming_event(marketplace: str, body: bytes, envelope: WebhookEnvelope) -> IncomingEvent:
    if envelope.payload is None:
        # Verified but unusable: keyed by the body itself, kept for inspection.
        return IncomingEvent(
            marketplace=marketplace,
            event_key="sha256:" + hashlib.sha256(body).hexdigest(),
            topic=envelope.topic or "unknown",
            body=body,
            shop_reference=envelope.shop_reference,
            rejected_reason="the verified body is not a JSON object the connector can read",
        )
    return IncomingEvent(
        marketplace=marketplace,
        event_key=envelope.event_key,
        topic=envelope.topic,
        body=body,
        resource_id=envelope.resource_id,
        shop_reference=envelope.shop_reference,
    )


def _answer(stored: StoredEvent) -> JSONResponse:
    if stored.id is None:
        return JSONResponse({"status": "duplicate"})
    return JSONResponse(
        {"status": "accepted" if stored.status == "received" else "rejected", "event_id": stored.id}
    )


@router.post("/webhooks/{marketplace}", include_in_schema=True)
async def receive_webhook(marketplace: str, request: Request) -> JSONResponse:
    if marketplace not in APP_WIDE:
        raise HTTPException(404, f"no webhook endpoint for {marketplace!r}")
    container: Container = request.app.state.container
    body = await read_body(request, container.settings.max_body_bytes)
    connectors: WebhookConnectors = request.app.state.webhook_connectors
    try:
        connector = connectors.get(marketplace)
    except registry.UnknownMarketplace:
        raise HTTPException(404, f"no connector installed for {marketplace!r}") from None
    try:
        envelope = connector.verify_webhook(body, request.headers)
    except WebhookRejected:
        raise HTTPException(401, "webhook signature did not verify") from None
    return _answer(await store(request, incoming_event(marketplace, body, envelope)))


def _shop_secrets(container: Container, shop_id: int) -> tuple[str | None, ...] | None:
    with container.uow() as uow:
        shop = uow.shops.get(shop_id)
    if shop is None or shop.marketplace.value != PER_SHOP:
        return None
    current = shop.credentials.get("webhook_secret")
    previous = shop.credentials.get("webhook_secret_previous")
    return (current, previous) if current else None


@router.post("/webhooks/woocommerce/{shop_id}")
async def receive_shop_webhook(shop_id: int, request: Request) -> JSONResponse:
    """WooCommerce signs with each shop's own secret. An unknown shop id and a bad signature
    get the same 401 after the same work; the unsigned activation ping gets 200, nothing kept."""
    container: Container = request.app.state.container
    body = await read_body(request, container.settings.max_body_bytes)
    known = await run_in_threadpool(_shop_secrets, container, shop_id)
    connectors: WebhookConnectors = request.app.state.webhook_connectors
    token = _REQUEST_SECRETS.set(known or (_DUMMY_SECRET,))
    try:
        envelope = connectors.get(PER_SHOP).verify_webhook(body, request.headers)
    except WebhookPing:
        return JSONResponse({"status": "ping"})
    except WebhookRejected:
        raise HTTPException(401, "webhook signature did not verify") from None
    finally:
        _REQUEST_SECRETS.reset(token)
    if known is None:
        raise HTTPException(401, "webhook signature did not verify")
    event = dataclasses.replace(incoming_event(PER_SHOP, body, envelope), shop_id=shop_id)
    return _answer(await store(request, event))


async def store(request: Request, event: IncomingEvent) -> StoredEvent:
    """One round trip on the event loop (PostgreSQL), else the generic path in a thread."""
    fast: AsyncEventStore | None = request.app.state.event_store
    if fast is not None:
        return await fast.store(event)
    container: Container = request.app.state.container
    stored: StoredEvent = await run_in_threadpool(store_event, container.engine, event)
    return stored
