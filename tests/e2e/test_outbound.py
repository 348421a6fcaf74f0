"""Stock and tracking out, end to end: one blank-backed variant bound in a Shopify, a WooCommerce
and an Etsy shop (each a sandbox on loopback), the hub's relay and worker running on the
StubBroker (embedded) or on PostgreSQL and Redis (services).

Shapes and behaviour follow the marketplaces' documentation as the sandboxes implement it:
Shopify ``inventorySetQuantities`` with ``changeFromQuantity`` compare-and-swap
(https://shopify.dev/docs/api/admin-graphql/latest/mutations/inventorySetQuantities) and
``fulfillmentCreate`` (https://shopify.dev/docs/api/admin-graphql/latest/mutations/fulfillmentCreate);
WooCommerce ``POST /products/batch``
(https://woocommerce.github.io/woocommerce-rest-api-docs/#batch-update-products) and its error
body ``{"code", "message", "data"}``; Etsy ``updateListingInventory``
(https://developers.etsy.com/documentation/reference#operation/updateListingInventory).
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import dramatiq
import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select, update

from connectors.etsy.sandbox import EtsySandbox
from connectors.sandbox_server import serve_in_thread
from connectors.shopify.sandbox import ShopifySandbox
from connectors.testing import Fault, FaultInjector
from connectors.woocommerce.sandbox import WooCommerceSandbox
from hub.api import media
from hub.api.app import create_app
from hub.application import bindings, catalog, orders, shops, stock
from hub.application.sellers import create_seller
from hub.bootstrap import bootstrap, media_url_secret
from hub.domain.catalog import BlankUsage
from hub.domain.orders import FulfillmentLine
from hub.domain.sellers import Principal
from hub.domain.shops import Marketplace, PushKind
from hub.infrastructure.outbound import OPERATIONS, OUTBOX
from hub.settings import Settings
from sync.application import fulfillment_out
from sync.infrastructure import operations as ops
from sync.infrastructure.storage import build_object_store
from sync.worker.engine import SyncEngine
from sync.worker.scheduler import Scheduler
from tests.conftest import ADMIN_KEY, Backend, embedded_backend, services_backend
from tests.e2e.conftest import wait_until
from tests.e2e.rabbitmq_support import delete_queues, require_rabbitmq, unique_queue_prefix

ADMIN = Principal(seller_id=None, is_admin=True)
SKU = "OUT-TEE-M"
SHOPIFY_SECRET = "shpss_out_secret"
ETSY_KEYSTRING = "etsy-out-keystring"
ETSY_SECRET = "etsy-out-shared-secret"
WOO_SITE = "https://prints.example.com"
WOO_KEY, WOO_SECRET = "ck_out", "cs_out"
AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}


@dataclass
class Outbound:
    engine: SyncEngine
    client: TestClient
    shopify: ShopifySandbox
    woo: WooCommerceSandbox
    woo_faults: FaultInjector
    etsy: EtsySandbox
    blank_id: int
    variant_id: int
    shop_ids: dict[str, int]
    shopify_item: str
    shopify_product: str
    woo_product: int
    woo_item: str
    etsy_listing: int
    seller: Principal
    product_id: int

    def remote_image_counts(self) -> dict[str, int]:
        return {
            "shopify": len(self.shopify.media(self.shopify_product)),
            "woocommerce": len(self.woo.product_json(self.woo_product)["images"]),
            "etsy": len(self.etsy.images(self.etsy_listing)),
        }

    def remote_levels(self) -> dict[str, int | None]:
        return {
            "shopify": self.shopify.stock(self.shopify_item),
            "woocommerce": self.woo.stock(self.woo_item),
            "etsy": self.etsy.stock(self.etsy_listing, SKU),
        }

    def set_on_hand(self, on_hand: int) -> None:
        with self.engine.container.uow() as uow:
            stock.set_on_hand(uow, ADMIN, self.blank_id, on_hand=on_hand)
            uow.commit()

    def operations(self, kind: str | None = None) -> list[ops.Operation]:
        with self.engine.container.engine.connect() as db:
            return ops.list_operations(db, kind=kind, limit=1000)


@pytest.fixture(params=["embedded", "services", "rabbitmq"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Embedded (SQLite, StubBroker), services (PostgreSQL, Redis, StubBroker) and the whole
    production set (PostgreSQL, Redis, RabbitMQ with its own queue prefix)."""
    if request.param == "embedded":
        yield embedded_backend(tmp_path)
        return
    if request.param == "services":
        yield from services_backend(request)
        return
    url = require_rabbitmq()
    prefix = unique_queue_prefix()
    previous = dramatiq.broker.global_broker  # SyncEngine sets the global broker
    try:
        yield from services_backend(request, broker_url=url, broker_queue_prefix=prefix)
    finally:
        delete_queues(url, prefix)
        if previous is not None:
            dramatiq.set_broker(previous)


@pytest.fixture
def outbound(backend: Backend) -> Iterator[Outbound]:
    shopify = ShopifySandbox(client_secret=SHOPIFY_SECRET, restore_rate=100_000)
    woo = WooCommerceSandbox(site=WOO_SITE, consumer_key=WOO_KEY, consumer_secret=WOO_SECRET)
    woo_faults = FaultInjector(woo.app)
    etsy = EtsySandbox(keystring=ETSY_KEYSTRING, shared_secret=ETSY_SECRET)
    etsy_shop = etsy.add_shop()
    product = shopify.add_product("Tee", [{"sku": SKU, "price": Decimal("20.00"), "available": 3}])
    woo_product = woo.add_product("Tee", sku=SKU, price=Decimal("20.00"), stock=3)
    listing = etsy.add_listing(
        etsy_shop.shop_id, [{"sku": SKU, "price": Decimal("20.00"), "quantity": 3}]
    )
    base = backend.settings
    media_app = FastAPI()  # what marketplaces fetch images from: our signed /media URLs
    media_app.include_router(media.router)
    media_app.state.object_store = build_object_store(base)
    media_app.state.media_url_secret = media_url_secret(base)
    with (
        serve_in_thread(shopify.app) as shopify_url,
        serve_in_thread(woo_faults) as woo_url,
        serve_in_thread(etsy.app) as etsy_url,
        serve_in_thread(media_app) as media_url,
    ):
        settings = Settings(
            **{
                **base.model_dump(),
                "shopify_client_secret": SHOPIFY_SECRET,
                "etsy_keystring": ETSY_KEYSTRING,
                "etsy_shared_secret": ETSY_SECRET,
                "push_debounce_ms": 50,
                "public_base_url": media_url,
            }
        )
        container = bootstrap(settings)
        with container.uow() as uow:
            seller, _ = create_seller(uow, "Outbound seller")
            assert seller.id is not None
            owner = Principal(seller_id=seller.id)
            blank = stock.create_blank(uow, ADMIN, code="TEE-M", name="Tee M", on_hand=10)
            assert blank.id is not None
            ours = catalog.create_product(
                uow,
                catalog.ProductSpec(
                    seller_id=seller.id,
                    title="Tee",
                    variants=(
                        catalog.VariantSpec(
                            sku=SKU, price=Decimal("20.00"), blanks=(BlankUsage(blank.id, 1),)
                        ),
                    ),
                ),
                owner,
            )
            variant_id = ours.variants[0].id or 0
            shop_specs = {
                "shopify": (
                    Marketplace.SHOPIFY,
                    shopify.shop_domain,
                    shopify_url,
                    {"access_token": shopify.access_token},
                    shopify.location_id,
                ),
                "woocommerce": (
                    Marketplace.WOOCOMMERCE,
                    WOO_SITE,
                    woo_url,
                    {"consumer_key": WOO_KEY, "consumer_secret": WOO_SECRET},
                    None,
                ),
                "etsy": (
                    Marketplace.ETSY,
                    str(etsy_shop.shop_id),
                    etsy_url,
                    dict(etsy.credentials(etsy_shop.shop_id)),
                    None,
                ),
            }
            shop_ids: dict[str, int] = {}
            for name, (marketplace, external, url, credentials, location) in shop_specs.items():
                created = shops.create_shop(
                    uow,
                    shops.CreateShop(
                        seller_id=seller.id,
                        marketplace=marketplace,
                        external_id=external,
                        name=f"{name} shop",
                        api_base_url=url,
                        location_id=location,
                        credentials=credentials,
                    ),
                    owner,
                )
                shop_ids[name] = created.id or 0
            uow.commit()
        engine = SyncEngine(container=container)
        engine.start_relay()
        engine.start_worker(threads=4)
        variant = product["variants"][0]
        world = Outbound(
            engine=engine,
            client=TestClient(create_app(container=container)),
            shopify=shopify,
            woo=woo,
            woo_faults=woo_faults,
            etsy=etsy,
            blank_id=blank.id,
            variant_id=variant_id,
            shop_ids=shop_ids,
            shopify_item=variant["inventory_item_id"],
            shopify_product=product["id"],
            woo_product=int(woo_product["id"]),
            woo_item=str(woo_product["stock_item_id"]),
            etsy_listing=listing,
            seller=owner,
            product_id=ours.id or 0,
        )
        bind = {
            "shopify": bindings.BindingSpec(
                variant_id, product["id"], variant["id"], variant["inventory_item_id"]
            ),
            "woocommerce": bindings.BindingSpec(variant_id, str(woo_product["id"])),
            "etsy": bindings.BindingSpec(variant_id, str(listing)),
        }
        with world.client, container.uow() as uow:
            for name, spec in bind.items():
                bindings.put_bindings(uow, shop_ids[name], [spec], owner)
            uow.commit()
            yield world
        engine.stop()
        container.close()


def test_a_stock_change_reaches_every_bound_shop(outbound: Outbound) -> None:
    # Binding is a change too: every shop is told the blank's 10 first.
    wait_until(lambda: outbound.remote_levels() == {"shopify": 10, "woocommerce": 10, "etsy": 10})
    for on_hand in (7, 6, 5, 4):  # a burst: the shops end on the latest value
        outbound.set_on_hand(on_hand)
    wait_until(lambda: outbound.remote_levels() == {"shopify": 4, "woocommerce": 4, "etsy": 4})
    finished = {"succeeded", "superseded"}
    wait_until(lambda: {op.status for op in outbound.operations("stock.batch")} <= finished)
    batches = outbound.operations(kind="stock.batch")
    assert batches
    assert {op.shop_id for op in batches} == set(outbound.shop_ids.values())


def test_a_shopify_sale_not_yet_imported_is_never_overwritten_upward(outbound: Outbound) -> None:
    wait_until(lambda: outbound.remote_levels()["shopify"] == 10)
    outbound.shopify.set_stock(outbound.shopify_item, 9)  # a sale on Shopify, not imported yet
    outbound.set_on_hand(12)  # a delivery here: we would show 12
    wait_until(lambda: outbound.remote_levels()["woocommerce"] == 12)

    def settled() -> bool:
        ours = [op for op in outbound.operations("stock.batch") if op.shop_id == shops_id]
        return any("compare-and-swap" in (op.last_error or "") for op in ours) and all(
            op.status in ("succeeded", "superseded") for op in ours
        )

    shops_id = outbound.shop_ids["shopify"]
    wait_until(settled)
    assert outbound.remote_levels()["shopify"] == 9  # min(ours 12, theirs 9): never upward


def test_a_stale_push_pulls_orders_only_for_a_sale_not_imported_yet(outbound: Outbound) -> None:
    """A Shopify sale moves its stock before we import it. Once imported, our push expects the
    level we pushed last and is stale, but Shopify shows what we want: nothing to pull. When
    Shopify shows less than we would, a sale is missing here: the shop's orders are pulled."""
    wait_until(lambda: outbound.remote_levels()["shopify"] == 10)
    shop_id = outbound.shop_ids["shopify"]

    def pulls() -> int:
        with outbound.engine.container.engine.connect() as db:
            return int(
                db.execute(select(func.count()).where(OUTBOX.c.actor == "orders.pull")).scalar_one()
            )

    def stale_settled(count: int) -> bool:
        ours = [op for op in outbound.operations("stock.batch") if op.shop_id == shop_id]
        stale = [op for op in ours if "compare-and-swap" in (op.last_error or "")]
        return len(stale) == count and all(op.status in ("succeeded", "superseded") for op in ours)

    outbound.shopify.set_stock(outbound.shopify_item, 9)  # the sale, on Shopify...
    outbound.set_on_hand(9)  # ...and here: we would show 9 too
    wait_until(lambda: stale_settled(1))
    assert outbound.remote_levels()["shopify"] == 9
    assert pulls() == 0

    outbound.shopify.set_stock(outbound.shopify_item, 7)  # a sale we have not seen
    outbound.set_on_hand(8)
    wait_until(lambda: stale_settled(2))
    assert outbound.remote_levels()["shopify"] == 7  # never upward
    assert pulls() == 1


def test_a_429_storm_is_absorbed_and_a_permanent_400_fails_once_with_its_message(
    outbound: Outbound,
) -> None:
    wait_until(lambda: outbound.remote_levels() == {"shopify": 10, "woocommerce": 10, "etsy": 10})
    outbound.shopify.queue_429(6, retry_after=0.2)
    outbound.woo.queue_429(6, retry_after=0.2)
    outbound.set_on_hand(8)
    wait_until(lambda: outbound.remote_levels() == {"shopify": 8, "woocommerce": 8, "etsy": 8})
    assert [op for op in outbound.operations() if op.status == "failed"] == []

    refusal = {
        "code": "woocommerce_rest_invalid_product",
        "message": "Invalid product id.",
        "data": {"status": 400},
    }
    outbound.woo_faults.fail_next(Fault(400, json.dumps(refusal).encode()))
    outbound.set_on_hand(5)
    woo_shop = outbound.shop_ids["woocommerce"]

    def woo_failed() -> list[ops.Operation]:
        return [
            op
            for op in outbound.operations("stock.batch")
            if op.shop_id == woo_shop and op.status == "failed"
        ]

    wait_until(lambda: bool(woo_failed()))
    failed = woo_failed()
    assert len(failed) == 1
    assert failed[0].attempts == 1
    assert "Invalid product id." in (failed[0].last_error or "")
    # Visible and replayable through the API: the retry sends the same frozen batch again.
    listed = outbound.client.get("/jobs", params={"status": "failed"}, headers=AUTH).json()
    assert [job["id"] for job in listed["items"]] == [failed[0].id]
    retried = outbound.client.post(f"/jobs/{failed[0].id}/retry", headers=AUTH)
    assert retried.status_code == 200
    wait_until(lambda: outbound.remote_levels()["woocommerce"] == 5)
    again = outbound.client.post(f"/jobs/{failed[0].id}/retry", headers=AUTH)
    assert again.status_code == 409


def test_the_same_fulfillment_is_written_once_even_when_the_worker_dies_before_its_commit(
    outbound: Outbound, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop_id = outbound.shop_ids["shopify"]
    gid = outbound.shopify.add_order([{"sku": SKU, "quantity": 1}], currency="USD")
    Scheduler(outbound.engine.runtime).enqueue_due_pulls()
    container = outbound.engine.container

    def imported() -> int | None:
        with container.uow() as uow:
            found = uow.orders.get_by_external(shop_id, gid)
            return found.id if found else None

    wait_until(lambda: imported() is not None)
    outbound.engine.worker.stop() if outbound.engine.worker else None  # we play the worker now
    order_id = imported() or 0
    with container.uow() as uow:
        order = uow.orders.get(order_id)
        assert order is not None
        fulfillment, _ = orders.create_fulfillment(
            uow,
            orders.CreateFulfillment(
                order_id=order_id,
                carrier="UPS",
                tracking_number="1Z999",
                tracking_url=None,
                lines=(FulfillmentLine(order.lines[0].id or 0, 1),),
            ),
            ADMIN,
        )
        uow.commit()
    assert fulfillment.id is not None
    with container.uow() as uow:  # asked again: the same key, no second operation
        assert uow.outbound.push_fulfillment(shop_id, order_id, fulfillment.id) is None
        uow.commit()
    pushes = outbound.operations("fulfillment.push")
    assert len(pushes) == 1

    real_finish = ops.finish

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("worker killed between the remote write and its commit")

    monkeypatch.setattr(ops, "finish", crash)
    with pytest.raises(RuntimeError):
        fulfillment_out.push_fulfillment(outbound.engine.runtime, pushes[0].id)
    monkeypatch.setattr(ops, "finish", real_finish)
    with container.engine.begin() as db:  # the dead runner's lease runs out
        db.execute(
            update(OPERATIONS)
            .where(OPERATIONS.c.id == pushes[0].id)
            .values(lease_until=OPERATIONS.c.created_at)
        )
    fulfillment_out.push_fulfillment(outbound.engine.runtime, pushes[0].id)

    done = outbound.operations("fulfillment.push")[0]
    assert done.status == "succeeded"
    assert done.result is not None
    assert done.result["already_existed"] is True
    assert len(outbound.shopify.order_webhook_payload(gid)["fulfillments"]) == 1
    assert done.attempts == 1  # the dead run's record died with its transaction


def test_auto_binding_reports_a_listing_whose_sku_we_do_not_know_and_leaves_it_unbound(
    outbound: Outbound,
) -> None:
    outbound.shopify.add_product(
        "Mug", [{"sku": "NOBODY-KNOWS", "price": Decimal("9.00"), "available": 2}]
    )
    shop_id = outbound.shop_ids["shopify"]
    accepted = outbound.client.post(f"/shops/{shop_id}/bindings/auto", headers=AUTH)
    assert accepted.status_code == 202
    job_id = accepted.json()["id"]

    def job() -> dict[str, object]:
        found: dict[str, object] = outbound.client.get(f"/jobs/{job_id}", headers=AUTH).json()
        return found

    wait_until(lambda: job()["status"] == "succeeded")
    report = job()["result"]
    assert isinstance(report, dict)
    assert report["already_bound"] == 1
    assert report["bound"] == []
    assert [item["sku"] for item in report["unknown_skus"]] == ["NOBODY-KNOWS"]
    listed = outbound.client.get(f"/shops/{shop_id}/bindings", headers=AUTH)
    assert [b["sku"] for b in listed.json()] == [SKU]


def png(width: int, height: int, *, alpha: bool = False, seed: int = 7) -> bytes:
    """A photo-like test image (gradients and noise), PNG-encoded."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    channels = [x + 0 * y, y + 0 * x, (x + y) / 2]
    pixels = np.stack(channels, axis=-1) + rng.normal(0, 6, (height, width, 3))
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    if alpha:
        image.putalpha(Image.new("L", image.size, 128))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def upload(outbound: Outbound, body: bytes, **params: object) -> dict[str, object]:
    answer = outbound.client.post(
        f"/products/{outbound.product_id}/images",
        params=params,
        content=body,
        headers={**AUTH, "Content-Type": "application/octet-stream"},
    )
    assert answer.status_code == 201, answer.text
    found: dict[str, object] = answer.json()
    return found


def test_mockups_reach_every_shop_once_and_print_files_never(outbound: Outbound) -> None:
    """Shopify ``productCreateMedia`` takes our URL, WooCommerce sideloads ``images[].src``, Etsy
    ``uploadListingImage`` gets the bytes the connector fetched from our signed URL."""
    upload(outbound, png(1600, 1200, alpha=True, seed=1), role="print", rank=0)
    upload(outbound, png(2400, 1800), role="mockup", rank=0)
    wait_until(
        lambda: outbound.remote_image_counts() == {"shopify": 1, "woocommerce": 1, "etsy": 1}
    )
    source = outbound.shopify.media(outbound.shopify_product)[0]["original_source"]
    assert "/media/images/" in source
    assert "signature=" in source
    assert "shopify-" in source  # the Shopify rendition, not the upload and not the print file
    wait_until(lambda: {op.status for op in outbound.operations("images.listing")} == {"succeeded"})
    pushed = len(outbound.operations("images.listing"))
    assert pushed == 3

    # The same file again, and a re-push of the same list: nothing new is sent anywhere.
    upload(outbound, png(2400, 1800), role="mockup", rank=0)
    with outbound.engine.container.uow() as uow:
        for shop_id in outbound.shop_ids.values():
            uow.bindings.bump([PushKind.IMAGES], shop_id=shop_id)
        uow.commit()
    time.sleep(1.0)
    assert len(outbound.operations("images.listing")) == pushed
    assert outbound.remote_image_counts() == {"shopify": 1, "woocommerce": 1, "etsy": 1}


def test_a_broken_image_is_refused_or_fails_its_job_with_the_reason(outbound: Outbound) -> None:
    garbage = outbound.client.post(
        f"/products/{outbound.product_id}/images",
        content=b"this is not an image at all",
        headers=AUTH,
    )
    assert garbage.status_code == 422
    assert "image rejected" in garbage.json()["error"]["message"]

    whole = png(1200, 900, seed=3)
    truncated = upload(outbound, whole[: len(whole) // 2], role="mockup", rank=1)

    def failed_renders() -> list[ops.Operation]:
        return [op for op in outbound.operations("images.render") if op.status == "failed"]

    wait_until(lambda: bool(failed_renders()))
    assert "image rejected" in (failed_renders()[0].last_error or "")
    listed = outbound.client.get(f"/products/{outbound.product_id}/images", headers=AUTH).json()
    assert [(i["id"], i["status"]) for i in listed] == [(truncated["id"], "rejected")]
    assert outbound.remote_image_counts() == {"shopify": 0, "woocommerce": 0, "etsy": 0}


def test_prices_from_each_shops_rule_reach_all_three_marketplaces_and_only_changes_are_sent(
    outbound: Outbound,
) -> None:
    """The price kinds: Shopify's ``productVariantsBulkUpdate``
    (https://shopify.dev/docs/api/admin-graphql/latest/mutations/productVariantsBulkUpdate),
    Etsy's inventory offerings and WooCommerce's batch ``regular_price``, written with the
    quantity (https://developers.etsy.com/documentation/reference#operation/updateListingInventory,
    https://woocommerce.github.io/woocommerce-rest-api-docs/#batch-update-products)."""
    client = outbound.client
    wait_until(lambda: outbound.remote_levels() == {"shopify": 10, "woocommerce": 10, "etsy": 10})
    product = client.get(f"/products/{outbound.product_id}", headers=AUTH).json()
    body = {
        "seller_id": product["seller_id"],
        "title": product["title"],
        "currency": "USD",
        "variants": [
            {
                "sku": SKU,
                "price": "20.00",
                "cost": "8.00",
                "blanks": [{"blank_id": outbound.blank_id, "quantity_per_unit": 1}],
            }
        ],
    }
    assert (
        client.put(f"/products/{outbound.product_id}", json=body, headers=AUTH).status_code == 200
    )
    rules = {
        # 20.00 x 1.10 = 22.00 -> .99 = 22.99 (floor (8.00 + 0.30) / 0.971 = 8.55)
        "shopify": {
            "markup_percent": "10",
            "fee_percent": "2.9",
            "fee_fixed": "0.30",
            "rounding": "to_99",
        },
        # 20.00 x 1.15 = 23.00 -> .95 = 23.95
        "etsy": {
            "markup_percent": "15",
            "fee_percent": "6.5",
            "fee_fixed": "0.20",
            "rounding": "to_95",
        },
        # 20.00 x 1.05 + 1.00 = 22.00 -> whole = 22.00
        "woocommerce": {"markup_percent": "5", "markup_fixed": "1.00", "rounding": "whole"},
    }
    for name, rule in rules.items():
        answer = client.put(
            f"/shops/{outbound.shop_ids[name]}/price-rule",
            json={"currency": "USD", "base_currency": "USD", "conversion_rate": "1", **rule},
            headers=AUTH,
        )
        assert answer.status_code == 200, answer.text

    def remote_prices() -> dict[str, Decimal | None]:
        return {
            "shopify": outbound.shopify.variant_price(SKU),
            "woocommerce": outbound.woo.price(outbound.woo_item),
            "etsy": outbound.etsy.price(outbound.etsy_listing, SKU),
        }

    wanted = {
        "shopify": Decimal("22.99"),
        "woocommerce": Decimal("22.00"),
        "etsy": Decimal("23.95"),
    }
    wait_until(lambda: remote_prices() == wanted)
    writes = (len(outbound.shopify.price_writes), len(outbound.etsy.price_changes))
    # The same rule again, and a stock change: nothing about the price changed, so no price
    # is sent again (the listing kinds send the quantity alone).
    client.put(
        f"/shops/{outbound.shop_ids['shopify']}/price-rule",
        json={
            "currency": "USD",
            "base_currency": "USD",
            "conversion_rate": "1",
            **rules["shopify"],
        },
        headers=AUTH,
    )
    outbound.set_on_hand(6)
    wait_until(lambda: outbound.remote_levels() == {"shopify": 6, "woocommerce": 6, "etsy": 6})
    finished = {"succeeded", "superseded"}
    wait_until(lambda: {op.status for op in outbound.operations("stock.batch")} <= finished)
    assert (len(outbound.shopify.price_writes), len(outbound.etsy.price_changes)) == writes
    # A rule change reprices its shop's listings only.
    client.put(
        f"/shops/{outbound.shop_ids['etsy']}/price-rule",
        json={
            "currency": "USD",
            "base_currency": "USD",
            "conversion_rate": "1",
            **rules["etsy"],
            "markup_percent": "30",
        },
        headers=AUTH,
    )
    # 20.00 x 1.30 = 26.00 -> .95 = 26.95
    wait_until(lambda: remote_prices() == {**wanted, "etsy": Decimal("26.95")})
    assert len(outbound.shopify.price_writes) == writes[0]
