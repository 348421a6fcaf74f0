"""Webhook ingress: verify, store once, answer in milliseconds.

The raw body is read as a stream with a byte counter (Content-Length may be absent) and the
connector verifies its signature over exactly those bytes. Only a failed signature gets 401: a
verified body is always stored and answered 200, as rejected with the reason when it cannot be
used, because a 4xx makes marketplaces disable the subscription. Ingress never talks to the
broker and never calls a marketplace: the outbox row written with the event is published by
the relay.

Failures are limited per source (``ingress_guard``): past its budget a source's failures are
answered 429 with ``Retry-After``, still verified (a verified delivery is never limited) but
with nothing else done: no database, no budget round trip, no log line (and the answer held
back a little, which slows a flood on few connections at no CPU cost). A bad signature and an
unknown WooCommerce shop do the same work: one HMAC over the body per secret slot (always two:
current and previous, dummies filling the gaps), the same one statement (or, for a held
source, none), the same budget call and the same answer.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import secrets
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from connectors import registry
from connectors.contract import (
    MarketplaceConnector,
    WebhookEnvelope,
    WebhookPing,
    WebhookRejected,
)
from hub.api.errors import error_body
from hub.api.ingress_guard import IngressGuard, SecretsSnapshot, build_guard, retry_after_header
from hub.bootstrap import Container
from hub.infrastructure.crypto import CredentialKeyError
from hub.infrastructure.db import read_only
from hub.infrastructure.tables import ShopRow, table_of
from sync.infrastructure.events import IncomingEvent, StoredEvent, store_event
from sync.infrastructure.events_async import AsyncEventStore

log = logging.getLogger(__name__)
APP_WIDE = ("shopify", "etsy")  # verified with the app's secret; the shop comes from the event
PER_SHOP = "woocommerce"  # verified with the shop's own secret; the shop comes from the path
SHOPS = table_of(ShopRow)
# How old the snapshot of WooCommerce secrets that held sources are verified with may get.
SNAPSHOT_MAX_AGE_SECONDS = 2.0
UNVERIFIED = "webhook signature did not verify"

Secrets = tuple[str | None, ...]
# The connector's resolver for the request being served on the per-shop endpoint.
_REQUEST_RESOLVER: ContextVar[Callable[[str], Secrets]] = ContextVar(
    "webhook_secrets", default=lambda _site: ()
)
# Verifying against these when the shop is unknown, or has no previous secret, does the same
# work as a real check, so an unknown shop id, a shop mid-rotation and a bad signature cannot be
# told apart by their answer or its timing. Random per process; they never leave it.
_DUMMY_SECRET = secrets.token_hex(32)
_DUMMY_PREVIOUS = secrets.token_hex(32)


def _request_secrets(site: str) -> Secrets:
    return _REQUEST_RESOLVER.get()(site)


def secret_slots(found: Secrets | None) -> Secrets:
    """Always two secrets (current, previous), dummies filling the gaps: as many HMACs for a
    known shop, with or without a rotation under way, as for an unknown one."""
    current, previous = (*(found or ()), None, None)[:2]
    return (current or _DUMMY_SECRET, previous or _DUMMY_PREVIOUS)


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


class ShopSecrets:
    """WooCommerce shops' webhook secrets: one shop fresh from the database (one statement),
    or all of them for the snapshot held sources are verified with."""

    def __init__(self, container: Container) -> None:
        self._container = container
        self._engine = read_only(container.engine)
        # Decrypting the same blob again gives the same document: the snapshot reuses it.
        self._decrypted: dict[int, tuple[str, Secrets | None]] = {}
        # Decrypted when the shop is unknown, so both cases pay for one decryption.
        self._dummy_token = container.cipher.encrypt({"webhook_secret": _DUMMY_SECRET})

    def lookup(self, shop_id: int) -> Secrets | None:
        with self._engine.connect() as db:
            row = db.execute(
                select(SHOPS.c.marketplace, SHOPS.c.credentials).where(SHOPS.c.id == shop_id)
            ).first()
        if row is None or not row.credentials:
            self._container.cipher.decrypt(self._dummy_token)
            return None
        found = self._secrets(self._container.cipher.decrypt(row.credentials))
        return found if row.marketplace == PER_SHOP else None

    def load_all(self) -> dict[int, Secrets]:
        with self._engine.connect() as db:
            rows = db.execute(
                select(SHOPS.c.id, SHOPS.c.credentials).where(SHOPS.c.marketplace == PER_SHOP)
            ).all()
        decrypted: dict[int, tuple[str, Secrets | None]] = {}
        for row in rows:
            if not row.credentials:
                continue
            cached = self._decrypted.get(row.id)
            if cached is None or cached[0] != row.credentials:
                try:
                    document = self._container.cipher.decrypt(row.credentials)
                except CredentialKeyError:  # that shop's deliveries fail; the others' do not
                    log.warning("shop %s: credentials cannot be decrypted", row.id)
                    continue
                cached = (row.credentials, self._secrets(document))
            decrypted[row.id] = cached
        self._decrypted = decrypted
        return {shop_id: found for shop_id, (_, found) in decrypted.items() if found}

    @staticmethod
    def _secrets(credentials: Mapping[str, Any]) -> Secrets | None:
        current = credentials.get("webhook_secret")
        previous = credentials.get("webhook_secret_previous")
        return (current, previous) if current else None


@dataclasses.dataclass
class WebhookIngress:
    """What the webhook routes keep per app: the failure guard and the WooCommerce secrets."""

    guard: IngressGuard
    shop_secrets: ShopSecrets
    snapshot: SecretsSnapshot[int, Secrets]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Runs inside the app's own lifespan (FastAPI merges a router's): the container is there."""
    container: Container = app.state.container
    shop_secrets = ShopSecrets(container)
    app.state.webhook_ingress = WebhookIngress(
        guard=build_guard(container.settings),
        shop_secrets=shop_secrets,
        snapshot=SecretsSnapshot(shop_secrets.load_all, max_age=SNAPSHOT_MAX_AGE_SECONDS),
    )
    try:
        yield
    finally:
        await app.state.webhook_ingress.guard.aclose()


router = APIRouter(tags=["webhooks"], lifespan=lifespan)


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
    ingress: WebhookIngress = request.app.state.webhook_ingress
    source = ingress.guard.source(request)
    body = await read_body(request, container.settings.max_body_bytes)
    connectors: WebhookConnectors = request.app.state.webhook_connectors
    try:
        connector = connectors.get(marketplace)
    except registry.UnknownMarketplace:
        raise HTTPException(404, f"no connector installed for {marketplace!r}") from None
    try:
        envelope = connector.verify_webhook(body, request.headers)
    except WebhookRejected:
        return await refuse(request, source)
    return _answer(await store(request, incoming_event(marketplace, body, envelope)))


async def refuse(request: Request, source: str) -> JSONResponse:
    """The answer to a failed verification: 401, or 429 once the source is over its budget."""
    ingress: WebhookIngress = request.app.state.webhook_ingress
    wait = await ingress.guard.failed(source)
    if wait <= 0:
        raise HTTPException(401, UNVERIFIED)
    await ingress.guard.hold_back(wait)
    return JSONResponse(
        error_body(
            "too_many_failures",
            "too many webhook requests from this source failed verification; retry later",
        ),
        status_code=429,
        headers={"Retry-After": retry_after_header(wait)},
    )


def verify_for_shop(
    connector: MarketplaceConnector,
    body: bytes,
    headers: Mapping[str, str],
    lookup: Callable[[], Secrets | None],
) -> tuple[WebhookEnvelope, bool]:
    """Verify a per-shop delivery; the shop's secrets are looked up only once the connector
    asks for them (an activation ping or an unsigned body needs none). Returns the envelope
    and whether the shop was known."""
    known: list[bool] = []

    def resolve(_site: str) -> Secrets:
        found = lookup()
        known.append(found is not None)
        return secret_slots(found)

    token = _REQUEST_RESOLVER.set(resolve)
    try:
        envelope = connector.verify_webhook(body, headers)
    finally:
        _REQUEST_RESOLVER.reset(token)
    return envelope, all(known) and bool(known)


@router.post("/webhooks/woocommerce/{shop_id}")
async def receive_shop_webhook(shop_id: int, request: Request) -> JSONResponse:
    """WooCommerce signs with each shop's own secret. An unknown shop id and a bad signature
    get the same 401 after the same work; the unsigned activation ping gets 200, nothing kept.
    A held source is verified against the snapshot of secrets: no database round trip."""
    container: Container = request.app.state.container
    ingress: WebhookIngress = request.app.state.webhook_ingress
    source = ingress.guard.source(request)
    body = await read_body(request, container.settings.max_body_bytes)
    connector = request.app.state.webhook_connectors.get(PER_SHOP)
    try:
        if ingress.guard.holding(source):
            found = await ingress.snapshot.get(shop_id)
            envelope, known = verify_for_shop(connector, body, request.headers, lambda: found)
        else:
            envelope, known = await run_in_threadpool(
                verify_for_shop,
                connector,
                body,
                request.headers,
                lambda: ingress.shop_secrets.lookup(shop_id),
            )
    except WebhookPing:
        return JSONResponse({"status": "ping"})
    except WebhookRejected:
        return await refuse(request, source)
    if not known:  # cannot happen (nobody has the dummy secrets), but never store it
        return await refuse(request, source)
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
