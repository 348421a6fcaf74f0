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
unknown WooCommerce shop (an id beyond the id column's range included) do the same work: one
HMAC over the body per secret slot (always two: current and previous, dummies filling the gaps),
the same one statement (or, for a held source, none), the same budget call and the same answer.

A verified delivery whose envelope does not fit ``inbound_events`` (a key, topic or resource id
longer than its column, text the database cannot hold) is stored as rejected too, the field
named in the reason, rather than failing the insert with a 500 the marketplace would retry.
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
from sqlalchemy import String, select
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
from hub.api.params import MAX_ID
from hub.bootstrap import Container
from hub.infrastructure.crypto import CredentialKeyError
from hub.infrastructure.db import read_only
from hub.infrastructure.tables import ShopRow, table_of
from sync.infrastructure.events import EVENTS, IncomingEvent, StoredEvent, store_event
from sync.infrastructure.events_async import AsyncEventStore

log = logging.getLogger(__name__)
APP_WIDE = ("shopify", "etsy")  # verified with the app's secret; the shop comes from the event
PER_SHOP = "woocommerce"  # verified with the shop's own secret; the shop comes from the path
SHOPS = table_of(ShopRow)
# How old the snapshot of WooCommerce secrets that held sources are verified with may get.
SNAPSHOT_MAX_AGE_SECONDS = 2.0
UNVERIFIED = "webhook signature did not verify"
# What the shop-secret lookup asks the database for when the path's id cannot be a shop id
# (beyond the id column's range: PostgreSQL would refuse the statement, SQLite's driver the
# value): no shop has it, so the lookup does its usual one statement and finds nothing.
NO_SHOP_ID = 0

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
        """The shop's secrets, or None for an unknown shop. An id outside the id column's range
        (the path takes any integer) is an unknown shop found with the same work, so its answer
        is the same 401 as a bad signature's rather than a database error's 500."""
        in_range = 1 <= shop_id <= MAX_ID
        with self._engine.connect() as db:
            row = db.execute(
                select(SHOPS.c.marketplace, SHOPS.c.credentials).where(
                    SHOPS.c.id == (shop_id if in_range else NO_SHOP_ID)
                )
            ).first()
        if row is None or not row.credentials or not in_range:
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


def _column_chars(name: str) -> int:
    """How many characters an ``inbound_events`` column holds: read from the table so the
    checks below follow a migration that widens it."""
    column_type = EVENTS.c[name].type
    if not isinstance(column_type, String) or column_type.length is None:
        raise TypeError(f"inbound_events.{name} is not a bounded string column")
    return column_type.length


EVENT_KEY_CHARS = _column_chars("event_key")
TOPIC_CHARS = _column_chars("topic")
RESOURCE_ID_CHARS = _column_chars("resource_id")
# An event key that cannot be stored is replaced by this prefix and the SHA-256 of the key: a
# redelivery hashes the same, so it is still a duplicate. The prefix keeps these apart from the
# connectors' own ``sha256:`` keys, which hash the body.
HASHED_KEY_PREFIX = "key-sha256:"
CUT_MARK = "\u2026"  # ends a topic cut to fit its column: it says more was sent
# What a stored topic shows in place of what PostgreSQL text cannot hold (NUL) or the drivers
# cannot encode (lone surrogates, which JSON's \ud800 escapes produce).
REPLACEMENT = "\ufffd"
_SURROGATES = range(0xD800, 0xE000)


def _unstorable(value: str, limit: int | None) -> str | None:
    """Why ``value`` cannot go into a text column of ``limit`` characters (or into a
    comparison with one, when None), or None when it can."""
    if limit is not None and len(value) > limit:
        return f"is {len(value)} characters long, over the {limit} its column holds"
    if "\x00" in value:
        return "contains a NUL character, which the database cannot store"
    if not value.isascii() and any(ord(char) in _SURROGATES for char in value):
        return "contains a lone surrogate (not valid Unicode), which the database cannot store"
    return None


def _storable_text(value: str, limit: int) -> str:
    """``value`` cut to ``limit`` characters (marked as cut), what cannot be stored replaced."""
    if len(value) > limit:
        value = value[: limit - len(CUT_MARK)] + CUT_MARK
    return "".join(
        REPLACEMENT if char == "\x00" or ord(char) in _SURROGATES else char for char in value
    )


def _fit_to_columns(event: IncomingEvent) -> IncomingEvent:
    """The event as a row the database accepts. A field that does not fit would fail the insert
    (a 500, which the marketplace retries until it gives up on the subscription), so the
    delivery is kept, body and all, as rejected with the field named: the key hashed (still
    deduplicated), the topic cut, a resource id or shop reference left out."""
    problems: list[str] = []
    event_key, topic = event.event_key, event.topic
    resource_id, shop_reference = event.resource_id, event.shop_reference
    if why := _unstorable(event_key, EVENT_KEY_CHARS):
        problems.append(f"event_key {why} (stored as its SHA-256)")
        hashed = hashlib.sha256(event_key.encode("utf-8", "surrogatepass")).hexdigest()
        event_key = HASHED_KEY_PREFIX + hashed
    if why := _unstorable(topic, TOPIC_CHARS):
        problems.append(f"topic {why} (stored cut)")
        topic = _storable_text(topic, TOPIC_CHARS)
    if resource_id is not None and (why := _unstorable(resource_id, RESOURCE_ID_CHARS)):
        problems.append(f"resource_id {why} (not stored)")
        resource_id = None
    # Not stored, only compared with shops.external_id: any length compares (and matches no
    # shop when too long); what the database cannot hold at all matches no shop either.
    if shop_reference is not None and (why := _unstorable(shop_reference, None)):
        problems.append(f"shop reference {why} (not matched against shops)")
        shop_reference = ""
    if not problems:
        return event
    reason = "the verified delivery does not fit the event store: " + "; ".join(problems)
    return dataclasses.replace(
        event,
        event_key=event_key,
        topic=topic,
        resource_id=resource_id,
        shop_reference=shop_reference,
        rejected_reason=f"{event.rejected_reason}; {reason}" if event.rejected_reason else reason,
    )


def incoming_event(marketplace: str, body: bytes, envelope: WebhookEnvelope) -> IncomingEvent:
    """The row to store for a verified delivery. One that cannot be used is still stored (as
    rejected, with the reason): answered 200 like any verified delivery, so the marketplace
    stops retrying, and kept for inspection."""
    if envelope.payload is None:
        # Verified but unusable: keyed by the body itself, kept for inspection.
        return _fit_to_columns(
            IncomingEvent(
                marketplace=marketplace,
                event_key="sha256:" + hashlib.sha256(body).hexdigest(),
                topic=envelope.topic or "unknown",
                body=body,
                shop_reference=envelope.shop_reference,
                rejected_reason="the verified body is not a JSON object the connector can read",
            )
        )
    return _fit_to_columns(
        IncomingEvent(
            marketplace=marketplace,
            event_key=envelope.event_key,
            topic=envelope.topic,
            body=body,
            resource_id=envelope.resource_id,
            shop_reference=envelope.shop_reference,
        )
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
    A held source is verified against the snapshot of secrets: no database round trip.

    ``shop_id`` is any integer, not ``PathId``: a 422 for an id beyond the column would answer
    differently from an unknown shop and skip the failure budget; ``ShopSecrets.lookup`` takes
    such an id as an unknown shop instead."""
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
