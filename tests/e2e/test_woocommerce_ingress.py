"""WooCommerce's per-shop webhook endpoint: the shop's own secret, the same 401 for an unknown
shop and a bad signature, and the activation ping answered 200 with nothing stored.

Delivery headers and the activation ping follow
https://woocommerce.github.io/woocommerce-rest-api-docs/#webhooks (X-WC-Webhook-Signature is
base64 HMAC-SHA256 of the raw body with the webhook's secret).
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from connectors.woocommerce.sandbox import WooCommerceSandbox
from hub.api.app import create_app
from hub.application import shops
from hub.application.sellers import create_seller
from hub.bootstrap import Container
from hub.domain.sellers import Principal
from hub.domain.shops import Marketplace
from hub.infrastructure.tables import table_of
from sync.infrastructure.tables import InboundEventRow

EVENTS = table_of(InboundEventRow)
SECRET = "wc-shop-secret"


@pytest.fixture
def woo(container: Container) -> Iterator[tuple[TestClient, WooCommerceSandbox, int, Container]]:
    sandbox = WooCommerceSandbox(webhook_secret=SECRET)
    with container.uow() as uow:
        seller, _ = create_seller(uow, "Woo seller")
        shop = shops.create_shop(
            uow,
            shops.CreateShop(
                seller_id=seller.id or 0,
                marketplace=Marketplace.WOOCOMMERCE,
                external_id=sandbox.site,
                name="Woo",
                credentials={
                    "consumer_key": sandbox.consumer_key,
                    "consumer_secret": sandbox.consumer_secret,
                    "webhook_secret": SECRET,
                },
            ),
            Principal(seller_id=seller.id),
        )
        uow.commit()
    with TestClient(create_app(container=container)) as client:
        yield client, sandbox, shop.id or 0, container


def stored(container: Container) -> list[tuple[int | None, str]]:
    with container.engine.connect() as db:
        return [
            (r.shop_id, r.status) for r in db.execute(select(EVENTS.c.shop_id, EVENTS.c.status))
        ]


def order_webhook(
    sandbox: WooCommerceSandbox, secret: str | None = None
) -> tuple[bytes, dict[str, str]]:
    product = sandbox.add_product(
        "Tee", sku="TEE", price=Decimal("20.00"), stock=5, manage_stock=True
    )
    order_id = sandbox.add_order([{"product_id": product["id"], "quantity": 1}])
    return sandbox.signed_webhook("order.updated", sandbox.order_json(order_id), secret=secret)


def test_a_signed_delivery_is_stored_for_the_shop(
    woo: tuple[TestClient, WooCommerceSandbox, int, Container],
) -> None:
    client, sandbox, shop_id, container = woo
    body, headers = order_webhook(sandbox)
    response = client.post(f"/webhooks/woocommerce/{shop_id}", content=body, headers=headers)
    assert response.status_code == 200
    assert response.json()["status"] == "accepted"
    again = client.post(f"/webhooks/woocommerce/{shop_id}", content=body, headers=headers)
    assert again.json()["status"] == "duplicate"
    assert stored(container) == [(shop_id, "received")]


def test_an_unknown_shop_and_a_bad_signature_get_the_same_401_and_store_nothing(
    woo: tuple[TestClient, WooCommerceSandbox, int, Container],
) -> None:
    client, sandbox, shop_id, container = woo
    body, headers = order_webhook(sandbox)
    unknown = client.post(f"/webhooks/woocommerce/{shop_id + 999}", content=body, headers=headers)
    forged_body, forged_headers = order_webhook(sandbox, secret="not-the-secret")
    forged = client.post(
        f"/webhooks/woocommerce/{shop_id}", content=forged_body, headers=forged_headers
    )
    assert unknown.status_code == forged.status_code == 401
    assert unknown.json() == forged.json()
    assert stored(container) == []


def test_the_activation_ping_is_answered_200_and_stores_nothing(
    woo: tuple[TestClient, WooCommerceSandbox, int, Container],
) -> None:
    client, sandbox, shop_id, container = woo
    response = client.post(
        f"/webhooks/woocommerce/{shop_id}",
        content=f"webhook_id={sandbox.webhook_id}".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    assert stored(container) == []
