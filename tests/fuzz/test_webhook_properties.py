"""Every connector's ``verify_webhook``, fed arbitrary deliveries and correctly signed ones.

Ingress (``hub/api/webhooks.py``) handles exactly three outcomes: a ``WebhookEnvelope`` (stored;
as rejected when its ``payload`` is None), ``WebhookRejected`` (401) and, on WooCommerce's
per-shop endpoint only, ``WebhookPing`` (200, nothing stored). Anything else is a 500, which
marketplaces answer by retrying and then disabling (WooCommerce) or deleting (Shopify) the
subscription. So:

* any bytes with any headers give one of those outcomes (Shopify and Etsy never a ping);
* a body signed with the configured secret (any bytes: JSON of any shape, mutated recorded
  deliveries, invalid UTF-8, JSON nested past the decoder's recursion limit) always gives an
  envelope whose fields ingress can store, and the same body signed with another secret, or
  another body under that signature, is rejected.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from connectors.contract import (
    ConnectorConfig,
    MarketplaceConnector,
    WebhookEnvelope,
    WebhookPing,
    WebhookRejected,
)
from connectors.etsy import webhooks as etsy_webhooks
from connectors.etsy.connector import EtsyConnector
from connectors.shopify import webhooks as shopify_webhooks
from connectors.shopify.connector import ShopifyConnector
from connectors.woocommerce import webhooks as woo_webhooks
from connectors.woocommerce.connector import WooCommerceConnector
from hub.api.webhooks import incoming_event
from tests.fuzz.payload_strategies import (
    bodies,
    header_values,
    headers,
    raw_payload,
)

ARBITRARY = settings(max_examples=200)
SIGNED = settings(max_examples=150)

NOW = 1772445600  # 2026-03-02T10:00:00Z
SHOPIFY_SECRET = "shopify-fuzz-secret"
SHOPIFY_PREVIOUS = "shopify-fuzz-previous"
ETSY_SECRET = "whsec_" + base64.b64encode(b"etsy-fuzz-current-key").decode()
ETSY_PREVIOUS = "whsec_" + base64.b64encode(b"etsy-fuzz-previous-key").decode()
SITE = "orbit-prints.example"
WOO_SECRET = "woo-fuzz-secret"
WOO_PREVIOUS = "woo-fuzz-previous"

SHOPIFY_HEADERS = (
    "X-Shopify-Hmac-Sha256",
    "X-Shopify-Topic",
    "X-Shopify-Shop-Domain",
    "X-Shopify-Event-Id",
    "X-Shopify-Webhook-Id",
    "X-Shopify-Triggered-At",
    "X-Shopify-API-Version",
)
ETSY_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature", "content-type")
WOO_HEADERS = (
    "X-WC-Webhook-Signature",
    "X-WC-Webhook-Source",
    "X-WC-Webhook-Topic",
    "X-WC-Webhook-Resource",
    "X-WC-Webhook-Event",
    "X-WC-Webhook-ID",
    "X-WC-Webhook-Delivery-ID",
)

SHOPIFY_SEEDS = [
    raw_payload("shopify", name)
    for name in (
        "webhook_orders_create",
        "webhook_app_uninstalled",
        "webhook_customers_data_request",
        "webhook_customers_redact",
        "webhook_shop_redact",
    )
]
SHOPIFY_BODIES = bodies(SHOPIFY_SEEDS)
# Signed bodies nest past the JSON decoder's recursion limit too: decode_json classifies them.
SHOPIFY_SIGNED_BODIES = bodies(SHOPIFY_SEEDS)
ETSY_BODIES = bodies([raw_payload("etsy", "webhook_order_paid")])
WOO_BODIES = bodies([raw_payload("woocommerce", "webhook_order_updated")])


def shopify_connector() -> ShopifyConnector:
    return ShopifyConnector(
        ConnectorConfig(
            app_credentials={
                "client_secret": SHOPIFY_SECRET,
                "client_secret_previous": SHOPIFY_PREVIOUS,
            }
        )
    )


def etsy_connector() -> EtsyConnector:
    return EtsyConnector(
        ConnectorConfig(
            app_credentials={
                "keystring": "1aa2bb33cc44dd55ee66ff77",
                "shared_secret": "fuzz",
                "webhook_secret": ETSY_SECRET,
                "webhook_secret_previous": ETSY_PREVIOUS,
            }
        ),
        clock=lambda: float(NOW),
    )


def woo_connector() -> WooCommerceConnector:
    return WooCommerceConnector(
        ConnectorConfig(),
        webhook_secrets=woo_webhooks.secrets_from_mapping({SITE: (WOO_SECRET, WOO_PREVIOUS)}),
    )


CONNECTORS: dict[str, Callable[[], MarketplaceConnector]] = {
    "shopify": shopify_connector,
    "etsy": etsy_connector,
    "woocommerce": woo_connector,
}
_BUILT: dict[str, MarketplaceConnector] = {}


def connector(marketplace: str) -> MarketplaceConnector:
    """One connector per marketplace for the module (verifying is pure: no I/O, no state)."""
    if marketplace not in _BUILT:
        _BUILT[marketplace] = CONNECTORS[marketplace]()
    return _BUILT[marketplace]


@pytest.fixture(scope="module", autouse=True)
def _close_connectors() -> Any:
    yield
    for built in _BUILT.values():
        built.close()
    _BUILT.clear()


# --------------------------------------------------------------------------------------------
# What ingress can take
# --------------------------------------------------------------------------------------------

# inbound_events columns (sync/infrastructure/tables.py): PostgreSQL refuses longer values.
EVENT_KEY_CHARS, TOPIC_CHARS, RESOURCE_ID_CHARS = 255, 100, 255


def check_envelope(marketplace: str, body: bytes, envelope: WebhookEnvelope) -> None:
    assert isinstance(envelope, WebhookEnvelope)
    assert isinstance(envelope.event_key, str)
    assert envelope.event_key.strip()
    assert isinstance(envelope.topic, str)
    assert isinstance(envelope.shop_reference, str)
    assert envelope.resource_id is None or isinstance(envelope.resource_id, str)
    assert envelope.occurred_at is None or (
        isinstance(envelope.occurred_at, datetime) and envelope.occurred_at.utcoffset() is not None
    )
    assert envelope.payload is None or isinstance(envelope.payload, Mapping)
    event = incoming_event(marketplace, body, envelope)
    assert event.body == body
    assert event.event_key


def check_storable(marketplace: str, body: bytes, envelope: WebhookEnvelope) -> None:
    """The event ingress makes of the envelope fits ``inbound_events``."""
    event = incoming_event(marketplace, body, envelope)
    assert len(event.event_key) <= EVENT_KEY_CHARS, event.event_key
    assert len(event.topic) <= TOPIC_CHARS, event.topic
    assert event.resource_id is None or len(event.resource_id) <= RESOURCE_ID_CHARS


def verify_any(marketplace: str, body: bytes, sent: Mapping[str, str]) -> None:
    """Any delivery: an envelope, a rejection, or (WooCommerce only) a ping."""
    allowed: tuple[type[Exception], ...] = (WebhookRejected,)
    if marketplace == "woocommerce":
        allowed = (WebhookRejected, WebhookPing)
    try:
        envelope = connector(marketplace).verify_webhook(body, sent)
    except allowed:
        return
    check_envelope(marketplace, body, envelope)


# --------------------------------------------------------------------------------------------
# Arbitrary deliveries
# --------------------------------------------------------------------------------------------


@ARBITRARY
@given(SHOPIFY_BODIES, headers(SHOPIFY_HEADERS))
def test_shopify_any_delivery_is_classified(body: bytes, sent: dict[str, str]) -> None:
    verify_any("shopify", body, sent)


@ARBITRARY
@given(ETSY_BODIES, headers(ETSY_HEADERS))
@example(b"{}", {"webhook-id": "a", "webhook-timestamp": "9" * 400, "webhook-signature": "v1,x"})
def test_etsy_any_delivery_is_classified(body: bytes, sent: dict[str, str]) -> None:
    verify_any("etsy", body, sent)


@ARBITRARY
@given(WOO_BODIES, headers(WOO_HEADERS))
@example(b"{}", {"X-WC-Webhook-Signature": "x", "X-WC-Webhook-Source": "https://[orbit"})
def test_woocommerce_any_delivery_is_classified(body: bytes, sent: dict[str, str]) -> None:
    verify_any("woocommerce", body, sent)


# --------------------------------------------------------------------------------------------
# Correctly signed deliveries
# --------------------------------------------------------------------------------------------

# What a marketplace puts in its headers besides the signature: any text, but no surrounding
# whitespace in the signed Etsy id (the verifier strips it, the signer would not).
tokens = st.text(
    alphabet=st.characters(
        min_codepoint=33,
        max_codepoint=255,
        exclude_categories=("Zs", "Cc"),
        exclude_characters=",",
    ),
    min_size=1,
    max_size=40,
)
DEEP_BODY = b"[" * 5000 + b"]" * 5000  # past the JSON decoder's recursion limit


def shopify_signed(body: bytes, secret: str, extra: Mapping[str, str]) -> dict[str, str]:
    return {**extra, "X-Shopify-Hmac-Sha256": shopify_webhooks.signature(body, secret)}


def etsy_signed(
    body: bytes, secret: str, webhook_id: str, timestamp: int, others: list[str]
) -> dict[str, str]:
    key = etsy_webhooks.signing_key(secret)
    mine = "v1," + etsy_webhooks.signature(key, webhook_id, str(timestamp), body)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join([*others, mine]),
    }


def woo_signed(body: bytes, secret: str, extra: Mapping[str, str]) -> dict[str, str]:
    return {
        **extra,
        "X-WC-Webhook-Source": f"https://{SITE}/",
        "X-WC-Webhook-Signature": woo_webhooks.signature(body, secret),
    }


@SIGNED
@given(
    SHOPIFY_SIGNED_BODIES,
    st.sampled_from([SHOPIFY_SECRET, SHOPIFY_PREVIOUS]),
    st.dictionaries(st.sampled_from(SHOPIFY_HEADERS[1:]), header_values),
)
@example(b"{}", SHOPIFY_SECRET, {"X-Shopify-Triggered-At": "0001-01-01T00:00:00+01:00"})
def test_shopify_signed_delivery_gives_an_envelope(
    body: bytes, secret: str, extra: dict[str, str]
) -> None:
    envelope = connector("shopify").verify_webhook(body, shopify_signed(body, secret, extra))
    check_envelope("shopify", body, envelope)
    with pytest.raises(WebhookRejected):
        connector("shopify").verify_webhook(body, shopify_signed(body, "another secret", extra))
    with pytest.raises(WebhookRejected):
        connector("shopify").verify_webhook(body + b" ", shopify_signed(body, secret, extra))


@SIGNED
@given(
    ETSY_BODIES,
    st.sampled_from([ETSY_SECRET, ETSY_PREVIOUS]),
    tokens,
    st.integers(min_value=NOW - 300, max_value=NOW + 300),
    st.lists(st.one_of(tokens, tokens.map(lambda t: "v1," + t)), max_size=2),
)
@example(DEEP_BODY, ETSY_SECRET, "msg_deep", NOW, [])
def test_etsy_signed_delivery_gives_an_envelope(
    body: bytes, secret: str, webhook_id: str, timestamp: int, others: list[str]
) -> None:
    signed = etsy_signed(body, secret, webhook_id, timestamp, others)
    envelope = connector("etsy").verify_webhook(body, signed)
    check_envelope("etsy", body, envelope)
    other_key = "whsec_" + base64.b64encode(b"another key").decode()
    with pytest.raises(WebhookRejected):
        connector("etsy").verify_webhook(
            body, etsy_signed(body, other_key, webhook_id, timestamp, others)
        )
    with pytest.raises(WebhookRejected):
        connector("etsy").verify_webhook(body + b" ", signed)
    with pytest.raises(WebhookRejected):  # a replay from outside the five minutes
        connector("etsy").verify_webhook(
            body, etsy_signed(body, secret, webhook_id, timestamp - 301 - 300, others)
        )


@SIGNED
@given(
    WOO_BODIES,
    st.sampled_from([WOO_SECRET, WOO_PREVIOUS]),
    st.dictionaries(st.sampled_from(WOO_HEADERS[2:]), header_values),
)
@example(DEEP_BODY, WOO_SECRET, {})
@example(b'{"id": 7, "date_modified_gmt": "9999-12-31T23:59:59-01:00"}', WOO_SECRET, {})
def test_woocommerce_signed_delivery_gives_an_envelope(
    body: bytes, secret: str, extra: dict[str, str]
) -> None:
    envelope = connector("woocommerce").verify_webhook(body, woo_signed(body, secret, extra))
    check_envelope("woocommerce", body, envelope)
    with pytest.raises(WebhookRejected):
        connector("woocommerce").verify_webhook(body, woo_signed(body, "another secret", extra))
    with pytest.raises(WebhookRejected):
        connector("woocommerce").verify_webhook(body + b" ", woo_signed(body, secret, extra))


def test_hmac_helpers_agree_with_the_documented_formula() -> None:
    """The signers above are the marketplaces' formulas, not the verifiers' own code paths."""
    body = raw_payload("shopify", "webhook_orders_create")
    expected = base64.b64encode(
        hmac.new(SHOPIFY_SECRET.encode(), body, hashlib.sha256).digest()
    ).decode()
    assert shopify_webhooks.signature(body, SHOPIFY_SECRET) == expected
    assert woo_webhooks.signature(body, SHOPIFY_SECRET) == expected
    key = base64.b64decode(ETSY_SECRET.removeprefix("whsec_"))
    content = b"msg_1." + str(NOW).encode() + b"." + body
    etsy_expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    assert etsy_webhooks.signature(key, "msg_1", str(NOW), body) == etsy_expected


# --------------------------------------------------------------------------------------------
# Regressions for gaps once held as strict xfails: nesting past the decoder's limit, and
# envelope fields longer than the inbound_events columns.
# --------------------------------------------------------------------------------------------


def test_shopify_signed_deeply_nested_body_gives_an_envelope() -> None:
    sent = shopify_signed(DEEP_BODY, SHOPIFY_SECRET, {"X-Shopify-Topic": "orders/create"})
    envelope = connector("shopify").verify_webhook(DEEP_BODY, sent)
    check_envelope("shopify", DEEP_BODY, envelope)
    assert envelope.payload is None


LONG = "x" * 300


@pytest.mark.parametrize(
    ("marketplace", "body", "sent"),
    [
        pytest.param(
            "shopify",
            b'{"id": 1}',
            shopify_signed(b'{"id": 1}', SHOPIFY_SECRET, {"X-Shopify-Topic": LONG}),
            id="shopify-topic-header",
        ),
        pytest.param(
            "shopify",
            b'{"id": 1}',
            shopify_signed(b'{"id": 1}', SHOPIFY_SECRET, {"X-Shopify-Event-Id": LONG}),
            id="shopify-event-id-header",
        ),
        pytest.param(
            "etsy",
            b'{"event_type": "' + LONG.encode() + b'"}',
            etsy_signed(b'{"event_type": "' + LONG.encode() + b'"}', ETSY_SECRET, "m", NOW, []),
            id="etsy-event-type",
        ),
        pytest.param(
            "woocommerce",
            b'{"id": "' + LONG.encode() + b'"}',
            woo_signed(b'{"id": "' + LONG.encode() + b'"}', WOO_SECRET, {}),
            id="woocommerce-resource-id",
        ),
    ],
)
def test_signed_delivery_fits_the_inbound_events_columns(
    marketplace: str, body: bytes, sent: dict[str, str]
) -> None:
    envelope = connector(marketplace).verify_webhook(body, sent)
    check_storable(marketplace, body, envelope)
