"""What the end-to-end tests share: the hub running beside a Shopify sandbox with one shop.

The hub runs its API, the outbox relay and the worker on the StubBroker (embedded) or on
PostgreSQL and Redis (services), as the ``backend`` fixture says.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from connectors.sandbox_server import serve_in_thread
from connectors.shopify.sandbox import ShopifySandbox
from hub.api.app import create_app
from hub.application import shops
from hub.application.sellers import create_seller
from hub.bootstrap import Container, bootstrap
from hub.domain.sellers import Principal
from hub.domain.shops import Marketplace
from hub.settings import Settings
from sync.worker.engine import SyncEngine
from tests.conftest import Backend

# The app's client secret: the sandbox signs webhooks with it and the hub verifies them with it.
SHOPIFY_SECRET = "shpss_e2e_secret"


@dataclass
class ShopifyHub:
    """The running hub and the sandbox playing its one Shopify shop; test modules subclass it
    with the helpers their scenarios speak in."""

    engine: SyncEngine
    client: TestClient
    sandbox: ShopifySandbox
    shop_id: int


def wait_until(condition: Callable[[], bool], seconds: float = 30.0) -> None:
    """The worker runs in threads of its own: poll for its effect instead of sleeping."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def shopify_settings(backend: Backend) -> Settings:
    """The backend's settings with the secret the sandbox signs with."""
    return Settings(**{**backend.settings.model_dump(), "shopify_client_secret": SHOPIFY_SECRET})


def add_shopify_shop(
    container: Container, sandbox: ShopifySandbox, base_url: str, seller_name: str
) -> int:
    """A new seller with the sandbox's shop, committed as a connected shop leaves them;
    returns the shop's id."""
    with container.uow() as uow:
        seller, _ = create_seller(uow, seller_name)
        assert seller.id is not None
        shop = shops.create_shop(
            uow,
            shops.CreateShop(
                seller_id=seller.id,
                marketplace=Marketplace.SHOPIFY,
                external_id=sandbox.shop_domain,
                name=f"{seller_name} shop",
                api_base_url=base_url,
                location_id=sandbox.location_id,
                credentials={"access_token": sandbox.access_token},
            ),
            Principal(seller_id=seller.id),
        )
        uow.commit()
    return shop.id or 0


@pytest.fixture
def shopify_hub(backend: Backend) -> Iterator[ShopifyHub]:
    """The hub with its relay and a two-thread worker, one shop on a fresh sandbox whose cost
    bucket never throttles (what is tested is the hub, not Shopify's quota)."""
    sandbox = ShopifySandbox(client_secret=SHOPIFY_SECRET, restore_rate=100_000)
    with serve_in_thread(sandbox.app) as base_url:
        container = bootstrap(shopify_settings(backend))
        shop_id = add_shopify_shop(container, sandbox, base_url, "E2E")
        engine = SyncEngine(container=container)
        engine.start_relay()
        engine.start_worker(threads=2)
        with TestClient(create_app(container=container)) as client:
            yield ShopifyHub(engine, client, sandbox, shop_id)
        engine.stop()
        container.close()
