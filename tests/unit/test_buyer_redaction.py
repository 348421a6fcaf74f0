"""Redacting an order's buyer: personal data goes, production and accounting data stays, and no
later import brings it back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from hub.domain.errors import InvalidInput
from hub.domain.orders import REDACTED, ImportLine, ImportOrder, LineMatch, apply_import
from sync.application.privacy import REDACTED_EMAIL, Buyer, scrub_emails

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "12 St James's Square",
    "city": "London",
    "postal_code": "SW1Y 4JH",
    "country": "GB",
    "phone": "+44 20 7946 0000",
}


def command(updated: datetime = T0, email: str = "ada@example.com") -> ImportOrder:
    return ImportOrder(
        shop_id=1,
        external_id="gid://shopify/Order/1001",
        external_number="#1001",
        external_status="PAID/UNFULFILLED",
        external_updated_at=updated,
        placed_at=T0,
        currency="GBP",
        total=Decimal("40.00"),
        paid=True,
        customer_name="Ada Lovelace",
        customer_email=email,
        shipping_address=ADDRESS,
        lines=(ImportLine("L1", 2, Decimal("20.00"), sku="SUN-M", title="Sunrise tee M"),),
    )


def test_redaction_drops_name_email_address_and_phone_and_keeps_the_rest() -> None:
    order = apply_import(None, command(), seller_id=1, matches={"L1": LineMatch(7, 3)}).order
    reserved = order.reserved_by_variant()

    assert order.redact_buyer(T0) is True

    assert order.customer_name == REDACTED
    assert order.customer_email is None
    assert order.shipping_address == {"country": "GB"}
    assert order.buyer_redacted_at == T0
    assert (order.total, order.currency, order.external_number) == (
        Decimal("40.00"),
        "GBP",
        "#1001",
    )
    assert [(line.sku, line.quantity, line.unit_price) for line in order.lines] == [
        ("SUN-M", 2, Decimal("20.00"))
    ]
    assert order.reserved_by_variant() == reserved  # production goes on


def test_redacting_twice_changes_nothing() -> None:
    order = apply_import(None, command(), seller_id=1, matches={}).order
    assert order.redact_buyer(T0) is True
    assert order.redact_buyer(T0 + timedelta(days=1)) is False
    assert order.buyer_redacted_at == T0


def test_a_later_import_keeps_a_redacted_buyer_redacted() -> None:
    order = apply_import(None, command(), seller_id=1, matches={}).order
    order.redact_buyer(T0)

    newer = command(updated=T0 + timedelta(hours=1), email="ada@new.example")
    outcome = apply_import(order, newer, seller_id=1, matches={})

    assert outcome.applied
    assert outcome.order.external_updated_at == T0 + timedelta(hours=1)  # the rest is applied
    assert outcome.order.customer_name == REDACTED
    assert outcome.order.customer_email is None
    assert outcome.order.shipping_address == {"country": "GB"}


def test_an_address_without_a_country_becomes_empty() -> None:
    order = apply_import(None, command(), seller_id=1, matches={}).order
    order.shipping_address = {"city": "Leeds"}
    order.redact_buyer(T0)
    assert order.shipping_address == {}


def test_a_buyer_is_named_by_an_email_or_order_ids() -> None:
    with pytest.raises(InvalidInput):
        Buyer(None, ())
    with pytest.raises(InvalidInput):
        Buyer("   ", ("",))
    assert Buyer(" Ada@Example.COM ").email == "ada@example.com"
    assert Buyer(None, ("b", "a", "a")).order_ids == ("a", "b")


def test_email_scrubbing_replaces_every_address_and_nothing_else() -> None:
    text = "422 from shop: customer Ada.L+tees@mail.example.co.uk rejected (ref a@b)"
    assert scrub_emails(text) == f"422 from shop: customer {REDACTED_EMAIL} rejected (ref a@b)"
