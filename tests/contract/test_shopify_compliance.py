"""Shopify's mandatory compliance webhooks as the connector reads them.

The payloads in ``payloads/shopify/webhook_{customers_data_request,customers_redact,shop_redact}
.json`` are the examples of https://shopify.dev/docs/apps/build/compliance/privacy-law-compliance
field by field: ``shop_id``, ``shop_domain``, ``customer {id, email, phone}``,
``orders_requested`` / ``orders_to_redact``, ``data_request {id}``. They come to the ordinary
webhook endpoint, signed like every delivery; a bad signature must be answered 401.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.contract import ConnectorConfig, WebhookRejected
from connectors.shopify.connector import ShopifyConnector
from connectors.shopify.webhooks import (
    COMPLIANCE_TOPICS,
    read_compliance_request,
    read_envelope,
    signature,
)

PAYLOADS = Path(__file__).parent / "payloads" / "shopify"
SECRET = "compliance-secret"
SHOP_DOMAIN = "{shop}.myshopify.com"  # as in the documented examples


def raw(name: str) -> bytes:
    return (PAYLOADS / f"{name}.json").read_bytes()


def headers(body: bytes, topic: str, *, secret: str = SECRET) -> dict[str, str]:
    return {
        "X-Shopify-Hmac-Sha256": signature(body, secret),
        "X-Shopify-Topic": topic,
        "X-Shopify-Shop-Domain": SHOP_DOMAIN,
        "X-Shopify-API-Version": "2026-04",
        "X-Shopify-Webhook-Id": f"webhook-{topic}",
        "X-Shopify-Event-Id": f"event-{topic}",
    }


@pytest.fixture
def connector() -> Iterator[ShopifyConnector]:
    instance = ShopifyConnector(ConnectorConfig(app_credentials={"client_secret": SECRET}))
    yield instance
    instance.close()


def test_the_three_topics_are_the_documented_ones() -> None:
    """The topic names of https://shopify.dev/docs/apps/build/compliance/privacy-law-compliance."""
    assert {"customers/data_request", "customers/redact", "shop/redact"} == COMPLIANCE_TOPICS


def test_a_data_request_is_read_with_the_orders_as_gids(connector: ShopifyConnector) -> None:
    """customers/data_request per https://shopify.dev/docs/apps/build/compliance/privacy-law-compliance:
    the envelope is filed under the data request's id; the orders requested become the GIDs our
    orders are stored under."""
    body = raw("webhook_customers_data_request")
    envelope = connector.verify_webhook(body, headers(body, "customers/data_request"))
    assert envelope.topic == "customers/data_request"
    assert envelope.shop_reference == SHOP_DOMAIN
    assert envelope.resource_id == "9999"
    assert envelope.payload is not None
    request = read_compliance_request(envelope.topic, envelope.payload)
    assert request.shop_id == "954889"
    assert request.shop_domain == SHOP_DOMAIN
    assert request.customer_id == "gid://shopify/Customer/191167"
    assert request.email == "john@example.com"
    assert request.phone == "555-625-1199"
    assert request.data_request_id == "9999"
    assert request.order_ids == (
        "gid://shopify/Order/299938",
        "gid://shopify/Order/280263",
        "gid://shopify/Order/220458",
    )


def test_a_customer_redaction_is_read(connector: ShopifyConnector) -> None:
    """customers/redact per https://shopify.dev/docs/apps/build/compliance/privacy-law-compliance:
    the event names the customer by id (not by email); ``orders_to_redact`` are read."""
    body = raw("webhook_customers_redact")
    envelope = connector.verify_webhook(body, headers(body, "customers/redact"))
    assert envelope.resource_id == "gid://shopify/Customer/191167"
    assert envelope.payload is not None
    request = read_compliance_request(envelope.topic, envelope.payload)
    assert request.email == "john@example.com"
    assert request.data_request_id is None
    assert request.order_ids == (
        "gid://shopify/Order/299938",
        "gid://shopify/Order/280263",
        "gid://shopify/Order/220458",
    )


def test_a_shop_redaction_is_read(connector: ShopifyConnector) -> None:
    """shop/redact per https://shopify.dev/docs/apps/build/compliance/privacy-law-compliance
    (sent 48 hours after the shop uninstalled the app): only the shop."""
    body = raw("webhook_shop_redact")
    envelope = connector.verify_webhook(body, headers(body, "shop/redact"))
    assert envelope.resource_id == SHOP_DOMAIN
    assert envelope.payload is not None
    request = read_compliance_request(envelope.topic, envelope.payload)
    assert (request.shop_id, request.email, request.order_ids) == ("954889", None, ())


def test_the_shop_comes_from_the_payload_when_the_header_is_missing() -> None:
    """``shop_domain`` is in every compliance payload
    (https://shopify.dev/docs/apps/build/compliance/privacy-law-compliance)."""
    body = raw("webhook_shop_redact")
    found = headers(body, "shop/redact")
    del found["X-Shopify-Shop-Domain"]
    envelope = read_envelope(body, found)
    assert envelope.shop_reference == SHOP_DOMAIN
    assert envelope.resource_id == SHOP_DOMAIN


def test_a_compliance_webhook_with_a_bad_signature_is_rejected(
    connector: ShopifyConnector,
) -> None:
    """ "If a mandatory compliance webhook sends a request with an invalid Shopify HMAC header,
    then the app must return a 401" (https://shopify.dev/docs/apps/build/compliance/privacy-law-compliance);
    a rejection is what the endpoint answers 401 for."""
    body = raw("webhook_customers_redact")
    with pytest.raises(WebhookRejected):
        connector.verify_webhook(body, headers(body, "customers/redact", secret="forged"))


def test_mistyped_fields_are_left_empty_not_raised() -> None:
    """A verified delivery is never refused: odd fields read as absent."""
    request = read_compliance_request(
        "customers/redact",
        {
            "shop_domain": 5,
            "customer": "x",
            "orders_to_redact": [True, None, "gid://shopify/Order/7"],
        },
    )
    assert request.shop_domain == ""
    assert request.customer_id is None
    assert request.email is None
    assert request.order_ids == ("gid://shopify/Order/7",)
