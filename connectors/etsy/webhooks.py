"""Etsy webhook deliveries: verify the Standard Webhooks signature, then read the envelope.

Etsy signs deliveries the Standard Webhooks way (https://developers.etsy.com/documentation/essentials/webhooks,
https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md):
headers ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` (space-separated
``v1,<base64>`` entries); the signed content is ``{id}.{timestamp}.{raw body}``; the key is the
base64-decoded part of the app's ``whsec_`` secret; a timestamp more than five minutes away from
now is refused against replays. The current and the previous secret are both tried, each in
constant time.

The body is only a hint: ``{event_type, resource_url, shop_id}`` where ``resource_url`` points
at the receipt (https://github.com/etsy/open-api/discussions/1509); the sync layer re-reads the
receipt. Once the signature verifies the delivery is never rejected: an unreadable body yields
an envelope with empty fields and ``payload=None`` (stored as rejected, answered 200).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

from connectors.contract import WebhookEnvelope, WebhookRejected
from connectors.http import decode_json

MARKETPLACE = "etsy"
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix, not a secret
SIGNATURE_VERSION = "v1"
TOLERANCE_SECONDS = 5 * 60
_RECEIPT_IN_URL = re.compile(r"/receipts/(\d+)")


def signing_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret: the base64-decoded part after the prefix.

    Raises ``ValueError`` (without the secret in the message) when it is not base64.
    """
    encoded = secret.strip().removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError) as error:
        raise ValueError("an Etsy webhook secret must be 'whsec_' + base64") from error
    if not key:
        raise ValueError("an Etsy webhook secret must not be empty")
    return key


def signature(key: bytes, webhook_id: str, timestamp: str, body: bytes) -> str:
    """The base64 HMAC-SHA256 of ``{id}.{timestamp}.{body}``: one ``v1`` signature."""
    content = f"{webhook_id}.{timestamp}.".encode() + body
    return base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode("ascii")


def lowercase(headers: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def _reject(reason: str) -> WebhookRejected:
    return WebhookRejected(f"etsy webhook: {reason}", marketplace=MARKETPLACE)


def _keys(secrets: Iterable[str | None]) -> list[bytes]:
    keys = []
    for secret in secrets:
        if not secret:
            continue
        try:
            keys.append(signing_key(secret))
        except ValueError as error:
            raise _reject(f"a configured webhook secret is unusable ({error})") from None
    if not keys:
        raise _reject("no webhook secret is configured; set the app's webhook_secret")
    return keys


def _timestamp(value: str, now: float) -> int:
    try:
        moment = int(value.strip())
    except ValueError:
        raise _reject("the webhook-timestamp header is not epoch seconds") from None
    # Exactly (Fraction): a 400-digit timestamp is too large for the float ``now - moment``.
    if abs(Fraction(now) - moment) > TOLERANCE_SECONDS:
        raise _reject("the webhook-timestamp is more than 5 minutes away from now (a replay?)")
    return moment


def _sent_signatures(value: str) -> list[bytes]:
    sent = []
    for entry in value.split():
        version, _, encoded = entry.partition(",")
        if version == SIGNATURE_VERSION and encoded:
            sent.append(encoded.encode("ascii", "replace"))
    return sent


def verify_signature(
    body: bytes,
    headers: Mapping[str, str],
    secrets: Iterable[str | None],
    *,
    now: float,
) -> None:
    """Raise ``WebhookRejected`` unless one configured secret signed exactly ``body``.

    Every (secret, signature) pair is compared, whichever matches first, so timing tells
    nothing; messages never include a secret or an expected signature.
    """
    keys = _keys(secrets)
    found = lowercase(headers)
    missing = [
        name for name in (ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER) if not found.get(name)
    ]
    if missing:
        raise _reject(f"the {', '.join(missing)} header is missing")
    webhook_id, stamp = found[ID_HEADER].strip(), found[TIMESTAMP_HEADER].strip()
    _timestamp(stamp, now)
    sent = _sent_signatures(found[SIGNATURE_HEADER])
    expected = [signature(key, webhook_id, stamp, body).encode("ascii") for key in keys]
    matches = [hmac.compare_digest(mine, theirs) for mine in expected for theirs in sent]
    if not any(matches):
        raise _reject("the signature does not match the body")


def read_envelope(body: bytes, headers: Mapping[str, str]) -> WebhookEnvelope:
    """The envelope of a verified delivery; never raises."""
    found = lowercase(headers)
    payload = _payload(body)
    stamp = found.get(TIMESTAMP_HEADER, "").strip()
    return WebhookEnvelope(
        event_key=found.get(ID_HEADER, "").strip() or "sha256:" + hashlib.sha256(body).hexdigest(),
        topic=_field(payload, "event_type"),
        shop_reference=_field(payload, "shop_id"),
        resource_id=_receipt_id(payload),
        occurred_at=datetime.fromtimestamp(int(stamp), tz=UTC) if stamp.isdigit() else None,
        payload=payload,
    )


def verify_webhook(
    body: bytes,
    headers: Mapping[str, str],
    secrets: Iterable[str | None],
    *,
    clock: Callable[[], float],
) -> WebhookEnvelope:
    """Verify, then read: the one entry point the connector delegates to."""
    verify_signature(body, headers, secrets, now=clock())
    return read_envelope(body, headers)


def _payload(body: bytes) -> dict[str, Any] | None:
    try:
        document = decode_json(body)
    except ValueError:  # invalid JSON or UTF-8, nested too deep, NaN (decode_json)
        return None
    return document if isinstance(document, dict) else None


def _field(payload: Mapping[str, Any] | None, key: str) -> str:
    """A top-level field (or one under ``data``) as text: shop ids come as numbers or strings."""
    for node in (payload, (payload or {}).get("data")):
        value = node.get(key) if isinstance(node, Mapping) else None
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
            return str(value).strip()
    return ""


def _receipt_id(payload: Mapping[str, Any] | None) -> str | None:
    """The receipt the event is about: ``receipt_id``, else the id in ``resource_url``."""
    direct = _field(payload, "receipt_id")
    if direct:
        return direct
    match = _RECEIPT_IN_URL.search(_field(payload, "resource_url"))
    return match.group(1) if match else None
