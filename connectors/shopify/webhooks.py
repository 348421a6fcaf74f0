"""Shopify webhook deliveries: verify the HMAC over the raw body, then read the envelope.
Also the other thing Shopify signs with the app's client secret: the query of the redirect
that ends an installation (``verify_query_signature``).

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

The three mandatory compliance topics come to the same endpoint, signed the same way
(https://shopify.dev/docs/apps/build/compliance/privacy-law-compliance): ``customers/data_request``
(``shop_id``, ``shop_domain``, ``orders_requested``, ``customer {id, email, phone}``,
``data_request {id}``), ``customers/redact`` (``shop_id``, ``shop_domain``,
``customer {id, email, phone}``, ``orders_to_redact``) and ``shop/redact`` (``shop_id``,
``shop_domain``), the last 48 hours after the shop uninstalled the app. Their ids are numbers;
``read_compliance_request`` turns them into the GIDs our orders are stored under.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connectors.contract import AuthorizationRejected, WebhookEnvelope, WebhookRejected
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
CUSTOMERS_DATA_REQUEST = "customers/data_request"
CUSTOMERS_REDACT = "customers/redact"
SHOP_REDACT = "shop/redact"
COMPLIANCE_TOPICS = frozenset({CUSTOMERS_DATA_REQUEST, CUSTOMERS_REDACT, SHOP_REDACT})
QUERY_HMAC = "hmac"


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


def query_message(query: Mapping[str, str]) -> str:
    """What Shopify signs in a redirect's query: every parameter but ``hmac``, sorted by name,
    as ``name=value`` joined with ``&`` (the values as decoded from the URL)."""
    return "&".join(f"{name}={query[name]}" for name in sorted(query) if name != QUERY_HMAC)


def query_signature(query: Mapping[str, str], secret: str | bytes) -> str:
    """The hex ``hmac`` Shopify adds to a redirect's query (tests sign with it too)."""
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, query_message(query).encode(), hashlib.sha256).hexdigest()


def verify_query_signature(query: Mapping[str, str], secrets: Iterable[str | bytes | None]) -> None:
    """Raise ``AuthorizationRejected`` unless one of ``secrets`` signed the query's ``hmac``.

    https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens/authorization-code-grant
    ("Verify the installation request"). Like webhooks, every configured secret is compared in
    constant time, so the previous secret still verifies during a rotation.
    """
    keys = [secret for secret in secrets if secret]
    if not keys:
        raise AuthorizationRejected(
            "shopify authorization: no client secret is configured to verify the callback; "
            "set the app's client_secret",
            marketplace=MARKETPLACE,
        )
    sent = query.get(QUERY_HMAC, "").strip().lower()
    if not sent:
        raise AuthorizationRejected(
            "shopify authorization: the callback carries no hmac", marketplace=MARKETPLACE
        )
    given = sent.encode("utf-8", "replace")
    matches = [hmac.compare_digest(query_signature(query, key).encode(), given) for key in keys]
    if not any(matches):
        raise AuthorizationRejected(
            "shopify authorization: the callback's hmac does not match its query",
            marketplace=MARKETPLACE,
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
    except ValueError:  # invalid JSON or UTF-8, nested too deep, NaN (decode_json)
        return None
    return document if isinstance(document, dict) else None


def _resource_id(topic: str, shop_domain: str, payload: Mapping[str, Any] | None) -> str | None:
    if topic in (APP_UNINSTALLED, SHOP_REDACT):
        return shop_domain or _payload_shop_domain(payload) or None
    if payload is None:
        return None
    if topic == CUSTOMERS_DATA_REQUEST:  # the request, which the export is filed under
        request = payload.get("data_request")
        return _id_text(request.get("id")) if isinstance(request, Mapping) else None
    if topic == CUSTOMERS_REDACT:  # the customer (an id, not their email)
        customer = payload.get("customer")
        found = _id_text(customer.get("id")) if isinstance(customer, Mapping) else None
        return gid("Customer", found) if found else None
    graphql_id = payload.get("admin_graphql_api_id")
    if isinstance(graphql_id, str) and graphql_id:
        return graphql_id
    raw = payload.get("id")
    if isinstance(raw, bool) or raw is None:
        return None
    return str(raw)


def _payload_shop_domain(payload: Mapping[str, Any] | None) -> str:
    """The shop's myshopify domain from an ``app/uninstalled`` (shop) payload or a compliance
    payload (``shop_domain``), if present."""
    for name in ("myshopify_domain", "shop_domain"):
        value = payload.get(name) if payload else None
        if isinstance(value, str) and value:
            return value
    return ""


@dataclass(frozen=True)
class ComplianceRequest:
    """A compliance webhook's payload, ids as the GIDs our orders and customers carry."""

    topic: str
    shop_domain: str
    shop_id: str | None  # Shopify's numeric shop id
    customer_id: str | None  # gid://shopify/Customer/<id>
    email: str | None
    phone: str | None
    order_ids: tuple[str, ...]  # gid://shopify/Order/<id>: orders_requested / orders_to_redact
    data_request_id: str | None


def read_compliance_request(topic: str, payload: Mapping[str, Any]) -> ComplianceRequest:
    """Read a compliance payload; missing or mistyped fields are left empty, never raised."""
    customer = payload.get("customer")
    customer = customer if isinstance(customer, Mapping) else {}
    request = payload.get("data_request")
    request = request if isinstance(request, Mapping) else {}
    listed = payload.get(
        "orders_requested" if topic == CUSTOMERS_DATA_REQUEST else "orders_to_redact"
    )
    order_ids = tuple(
        gid("Order", found)
        for found in (_id_text(value) for value in (listed if isinstance(listed, list) else []))
        if found
    )
    customer_id = _id_text(customer.get("id"))
    return ComplianceRequest(
        topic=topic,
        shop_domain=_payload_shop_domain(payload),
        shop_id=_id_text(payload.get("shop_id")),
        customer_id=gid("Customer", customer_id) if customer_id else None,
        email=_plain_text(customer.get("email")),
        phone=_plain_text(customer.get("phone")),
        order_ids=order_ids,
        data_request_id=_id_text(request.get("id")),
    )


def gid(kind: str, value: str) -> str:
    """The GID of a numeric REST id (a GID already is one)."""
    return value if value.startswith("gid://") else f"gid://shopify/{kind}/{value}"


def _id_text(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | str):
        text = str(value).strip()
        return text or None
    return None


def _plain_text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _occurred_at(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return timestamp(value, what="X-Shopify-Triggered-At")
    except ShopifyPayloadError:
        return None
