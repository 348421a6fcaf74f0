"""Webhook ingress: verify, store once, answer in milliseconds.

The raw body is read as a stream with a byte counter (Content-Length may be absent) and the
connector verifies its signature over exactly those bytes. Only a failed signature gets 401: a
verified body is always stored and answered 200, as rejected with the reason when it cannot be
used, because a 4xx makes marketplaces disable the subscription. Ingress never talks to the
broker and never calls a marketplace: the outbox row written with the event is published by
the relay.
"""

from __future__ import annotations

import hashlib

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from connectors import registry
from connectors.contract import MarketplaceConnector, WebhookEnvelope, WebhookRejected
from hub.bootstrap import Container
from sync.infrastructure.events import IncomingEvent, StoredEvent, store_event
from sync.infrastructure.events_async import AsyncEventStore

router = APIRouter(tags=["webhooks"])
APP_WIDE = ("shopify", "etsy")  # verified with the app's secret; the shop comes from the event


class WebhookConnectors:
    """The connectors ingress verifies with, built once per process."""

    def __init__(self, container: Container) -> None:
        self._container = container
        self._connectors: dict[str, MarketplaceConnector] = {}

    def get(self, marketplace: str) -> MarketplaceConnector:
        found = self._connectors.get(marketplace)
        if found is None:
            config = registry.config_from_settings(marketplace, self._container.settings)
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
    if marketplace not in APP_WIDE or marketplace not in registry.discovered():
        raise HTTPException(404, f"no webhook endpoint for {marketplace!r}")
    container: Container = request.app.state.container
    body = await read_body(request, container.settings.max_body_bytes)
    connectors: WebhookConnectors = request.app.state.webhook_connectors
    try:
        envelope = connectors.get(marketplace).verify_webhook(body, request.headers)
    except WebhookRejected:
        raise HTTPException(401, "webhook signature did not verify") from None
    return _answer(await store(request, incoming_event(marketplace, body, envelope)))


async def store(request: Request, event: IncomingEvent) -> StoredEvent:
    """One round trip on the event loop (PostgreSQL), else the generic path in a thread."""
    fast: AsyncEventStore | None = request.app.state.event_store
    if fast is not None:
        return await fast.store(event)
    container: Container = request.app.state.container
    stored: StoredEvent = await run_in_threadpool(
        store_event, container.engine, event, schema=container.settings.db_schema
    )
    return stored
