"""Shopify webhook deliveries: verify the HMAC over the raw body, then read the envelope.

Shopify signs each HTTPS delivery with base64(HMAC-SHA256(raw body, app client secret)) in
``X-Shopify-Hmac-Sha256``; after a secret rotation it can take up to an hour before the new
secret is used, so the previous one is accepted too
(https://shopify.dev/docs/apps/build/webhooks/verify-deliveries). Duplicates carry the same
``X-Shopify-Event-Id`` (https://shopify.dev/docs/apps/build/webhooks/ignore-duplicates);
header names are case-insensitive (https://shopify.dev/docs/apps/build/webhooks/delivery-structure).

Only a missing or wrong signature is a rejection (answer 401, store nothing). Once the
signature verifies, the delivery is Shopify's and is never rejected: a body that is not a JSON
object yields an envelope with ``payload=None`` (the caller stores it as rejected and answers
200, so Shopify does not disable the subscription), and a missing id header falls back to the
body's SHA-256 as the event key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from connectors.contract import WebhookEnvelope, WebhookRejected
from connectors.http import decode_json
from connectors.shopify.mappers import ShopifyPayloadError, timestamp

MARKETPLACE = "shopify"
HMAC_HEADER = "x-shopify-hmac-sha256"
EVENT_ID_HEADER = "x-shopify-event-id"
WEBHOOK_ID_HEADER = "x-shopify-webhook-id"
TOPIC_HEADER = "x-shopify-topic"
SHOP_DOMAIN_HEADER = "x-shopify-shop-domain"
TRIGGERED_AT_HEADER = "x-shopify-triggered-at"
APP_UNINSTALLED = "app/uninstalled"


def signature(body: bytes, secret: str | bytes) -> str:
    """What Shopify puts in ``X-Shopify-Hmac-Sha256`` for ``body`` (tests and sandboxes sign
    with it too)."""
    key = secret.encode() if isinstance(secret, str) else secret
    return base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode("ascii")


def verify_signature(
    body: bytes, headers: Mapping[str, str], secrets: Iterable[str | bytes | None]
) -> None:
    """Raise ``WebhookRejected`` unless one of ``secrets`` signed exactly ``body``.

    Every configured secret is compared in constant time, whichever matches, so the timing
    tells nothing; the error never says which secret was tried or what was expected.
    """
    keys = [secret for secret in secrets if secret]
    if not keys:
        raise WebhookRejected(
            "shopify webhook: no client secret is configured to verify it; "
            "set the app's client_secret",
            marketplace=MARKETPLACE,
        )
    sent = lowercase(headers).get(HMAC_HEADER, "").strip()
    if not sent:
        raise WebhookRejected(
            "shopify webhook: the X-Shopify-Hmac-Sha256 header is missing",
            marketplace=MARKETPLACE,
        )
    given = sent.encode("utf-8", "replace")
    matches = [hmac.compare_digest(signature(body, key).encode("ascii"), given) for key in keys]
    if not any(matches):
        raise WebhookRejected(
            "shopify webhook: the signature does not match the body", marketplace=MARKETPLACE
        )


def read_envelope(body: bytes, headers: Mapping[str, str]) -> WebhookEnvelope:
    """The envelope of a verified delivery; never raises for a verified body."""
    found = lowercase(headers)
    topic = found.get(TOPIC_HEADER, "").strip()
    shop_domain = found.get(SHOP_DOMAIN_HEADER, "").strip()
    payload = _payload(body)
    return WebhookEnvelope(
        event_key=_event_key(found, body),
        topic=topic,
        shop_reference=shop_domain or _payload_shop_domain(payload),
        resource_id=_resource_id(topic, shop_domain, payload),
        occurred_at=_occurred_at(found.get(TRIGGERED_AT_HEADER)),
        payload=payload,
    )


def verify_webhook(
    body: bytes, headers: Mapping[str, str], secrets: Iterable[str | bytes | None]
) -> WebhookEnvelope:
    """Verify, then read: the one entry point the connector delegates to."""
    verify_signature(body, headers, secrets)
    return read_envelope(body, headers)


def lowercase(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers by lower-cased name: HTTP/2 lowercases them, frameworks vary."""
    return {name.lower(): value for name, value in headers.items()}


def _event_key(found: Mapping[str, str], body: bytes) -> str:
    for header in (EVENT_ID_HEADER, WEBHOOK_ID_HEADER):
        value = found.get(header, "").strip()
        if value:
            return value
    return "sha256:" + hashlib.sha256(body).hexdigest()


def _payload(body: bytes) -> dict[str, Any] | None:
    try:
        document = decode_json(body)
    except ValueError:  # invalid JSON or invalid UTF-8
        return None
    return document if isinstance(document, dict) else None


def _resource_id(topic: str, shop_domain: str, payload: Mapping[str, Any] | None) -> str | None:
    if topic == APP_UNINSTALLED:
        return shop_domain or _payload_shop_domain(payload) or None
    if payload is None:
        return None
    gid = payload.get("admin_graphql_api_id")
    if isinstance(gid, str) and gid:
        return gid
    raw = payload.get("id")
    if isinstance(raw, bool) or raw is None:
        return None
    return str(raw)


def _payload_shop_domain(payload: Mapping[str, Any] | None) -> str:
    """The shop's myshopify domain from an ``app/uninstalled`` (shop) payload, if present."""
    value = payload.get("myshopify_domain") if payload else None
    return value if isinstance(value, str) else ""


def _occurred_at(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return timestamp(value, what="X-Shopify-Triggered-At")
    except ShopifyPayloadError:
        return None
