"""WooCommerce webhook deliveries: find the shop's secret, verify the HMAC, read the envelope.

WooCommerce signs each delivery with base64(HMAC-SHA256(raw body, the webhook's secret)) in
``X-WC-Webhook-Signature``; the body is ``trim(wp_json_encode(payload))`` and the other headers
are ``X-WC-Webhook-Source`` (the site URL), ``-Topic``, ``-Resource``, ``-Event``, ``-ID`` and
``-Delivery-ID`` (``WC_Webhook::deliver``, class-wc-webhook.php). The secret belongs to the
webhook, so to one shop, not to our app: the shop is found from ``X-WC-Webhook-Source`` before
anything is verified, through a resolver the hub provides (see ``WebhookSecrets``).

``X-WC-Webhook-Delivery-ID`` is ``wp_hash(webhook id . time())``: not stable across
re-deliveries, so it is no event id. The event key is a SHA-256 over (site, resource, event,
resource id, ``date_modified_gmt``, SHA-256 of the body): only byte-identical deliveries of the
same change collapse.

When a webhook is saved as active, WooCommerce first POSTs an unsigned ping whose form body is
``webhook_id=<id>`` and activates the webhook only if the answer is exactly 200
(``WC_Webhook::deliver_ping``). It is not an event: ``WebhookPing`` is raised so the ingress
answers 200 and stores nothing. Any other unsigned body is rejected.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from connectors import contract
from connectors.contract import WebhookEnvelope, WebhookRejected
from connectors.http import decode_json
from connectors.woocommerce.mappers import WooCommercePayloadError, gmt_timestamp

MARKETPLACE = "woocommerce"
SIGNATURE_HEADER = "x-wc-webhook-signature"
SOURCE_HEADER = "x-wc-webhook-source"
TOPIC_HEADER = "x-wc-webhook-topic"
RESOURCE_HEADER = "x-wc-webhook-resource"
EVENT_HEADER = "x-wc-webhook-event"
WEBHOOK_ID_HEADER = "x-wc-webhook-id"
DELIVERY_ID_HEADER = "x-wc-webhook-delivery-id"
PING_TOPIC = "ping"
_PING_BODY = re.compile(rb"\s*webhook_id=(\d+)\s*")
_DEFAULT_PORTS = {"http": 80, "https": 443}

# Site (normalized with ``normalize_site``) -> the shop's webhook secrets, current first.
WebhookSecrets = Callable[[str], Sequence[str | None]]


class WebhookPing(contract.WebhookPing):
    """WooCommerce's activation ping: answer exactly 200 and store nothing.

    Not a ``WebhookRejected`` (a 401 would keep the webhook from activating), not an event.
    """

    def __init__(self, webhook_id: str) -> None:
        super().__init__(
            f"woocommerce webhook {webhook_id}: activation ping",
            webhook_id=webhook_id,
            marketplace=MARKETPLACE,
        )


def normalize_site(url: str) -> str:
    """A site URL as the shop reference: lower-cased host, non-default port, path without a
    trailing slash; no scheme, query or fragment. ``https://Shop.Example.com/`` and
    ``shop.example.com`` are both ``shop.example.com``; ``https://example.com/store/`` is
    ``example.com/store``. Shops' ``external_id`` must be stored in this form. Text that is no
    URL at all (``https://[shop``, a host ``urlsplit`` refuses) is ``""``, like an empty one."""
    text = url.strip()
    try:
        parts = urlsplit(text if "//" in text else f"//{text}")
    except ValueError:  # an unbalanced "[" (IPv6), characters NFKC turns into URL syntax
        return ""
    host = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is not None and port != _DEFAULT_PORTS.get(parts.scheme.lower()):
        host = f"{host}:{port}"
    return host + parts.path.rstrip("/")


def secrets_from_mapping(mapping: Mapping[str, Any]) -> WebhookSecrets:
    """A resolver over ``{site: secret | (current, previous)}``; keys are normalized."""
    table: dict[str, tuple[str | None, ...]] = {}
    for site, value in mapping.items():
        values = (value,) if isinstance(value, str) else tuple(value)
        table[normalize_site(site)] = values

    def resolve(site: str) -> Sequence[str | None]:
        return table.get(site, ())

    return resolve


def signature(body: bytes, secret: str | bytes) -> str:
    """What WooCommerce puts in ``X-WC-Webhook-Signature`` for ``body``."""
    key = secret.encode() if isinstance(secret, str) else secret
    return base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode("ascii")


def ping_webhook_id(body: bytes) -> str | None:
    """The webhook id of an activation ping body (``webhook_id=<n>``), else None."""
    match = _PING_BODY.fullmatch(body)
    return match.group(1).decode("ascii") if match else None


def lowercase(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers by lower-cased name: HTTP/2 lowercases them, frameworks vary."""
    return {name.lower(): value for name, value in headers.items()}


def verify_signature(
    body: bytes, found: Mapping[str, str], secrets_for: WebhookSecrets | None
) -> str:
    """Raise unless one of the source site's secrets signed exactly ``body``; return the site.

    An unsigned ping raises ``WebhookPing``. Every secret of the site is compared in constant
    time, whichever matches; no error says which secret was tried or what was expected.
    """
    sent = found.get(SIGNATURE_HEADER, "").strip()
    if not sent:
        webhook_id = ping_webhook_id(body)
        if webhook_id is not None:
            raise WebhookPing(webhook_id)
        raise _rejected("the X-WC-Webhook-Signature header is missing")
    source = found.get(SOURCE_HEADER, "").strip()
    if not source:
        raise _rejected("the X-WC-Webhook-Source header is missing: the shop is unknown")
    site = normalize_site(source)
    if not site:
        raise _rejected("the X-WC-Webhook-Source header is not a site URL: the shop is unknown")
    keys = [secret for secret in (secrets_for(site) if secrets_for else ()) if secret]
    if not keys:
        raise _rejected(f"no webhook secret is known for site {site!r}")
    given = sent.encode("utf-8", "replace")
    matches = [hmac.compare_digest(signature(body, key).encode("ascii"), given) for key in keys]
    if not any(matches):
        raise _rejected(f"the signature does not match the body (site {site!r})")
    return site


def read_envelope(body: bytes, found: Mapping[str, str], site: str) -> WebhookEnvelope:
    """The envelope of a verified delivery; never raises for a verified body."""
    payload = _payload(body)
    resource = found.get(RESOURCE_HEADER, "").strip()
    event = found.get(EVENT_HEADER, "").strip()
    topic = found.get(TOPIC_HEADER, "").strip() or (f"{resource}.{event}" if resource else "")
    resource_id = _resource_id(payload)
    modified = _text_field(payload, "date_modified_gmt")
    return WebhookEnvelope(
        event_key=event_key(site, resource, event, resource_id, modified, body),
        topic=topic,
        shop_reference=site,
        resource_id=resource_id,
        occurred_at=_occurred_at(modified or _text_field(payload, "date_created_gmt")),
        payload=payload,
    )


def verify_webhook(
    body: bytes, headers: Mapping[str, str], secrets_for: WebhookSecrets | None
) -> WebhookEnvelope:
    """Verify, then read: the one entry point the connector delegates to."""
    found = lowercase(headers)
    site = verify_signature(body, found, secrets_for)
    return read_envelope(body, found, site)


def event_key(
    site: str,
    resource: str,
    event: str,
    resource_id: str | None,
    date_modified_gmt: str | None,
    body: bytes,
) -> str:
    """SHA-256 over the delivery's identity and its exact bytes (see the module docstring)."""
    parts: Iterable[str] = (
        site,
        resource,
        event,
        resource_id or "",
        date_modified_gmt or "",
        hashlib.sha256(body).hexdigest(),
    )
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
    return f"wc:{digest}"


def _rejected(reason: str) -> WebhookRejected:
    return WebhookRejected(f"woocommerce webhook: {reason}", marketplace=MARKETPLACE)


def _payload(body: bytes) -> dict[str, Any] | None:
    try:
        document = decode_json(body)
    except ValueError:  # invalid JSON or UTF-8, nested too deep, NaN (decode_json)
        return None
    return document if isinstance(document, dict) else None


def _resource_id(payload: Mapping[str, Any] | None) -> str | None:
    raw = payload.get("id") if payload else None
    if isinstance(raw, bool) or not isinstance(raw, int | str) or raw in ("", 0):
        return None
    return str(raw)


def _text_field(payload: Mapping[str, Any] | None, key: str) -> str | None:
    value = payload.get(key) if payload else None
    return value if isinstance(value, str) and value else None


def _occurred_at(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return gmt_timestamp(value, what="date_modified_gmt")
    except WooCommercePayloadError:
        return None
