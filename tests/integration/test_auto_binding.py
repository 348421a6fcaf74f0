"""Catalog binding on SQLite and on PostgreSQL + Redis: the SKU lookup, ``auto_bind`` and
``pull_catalog`` against the Shopify sandbox.

The listings come from the sandbox's ``productVariants`` connection, which follows Shopify's
documented GraphQL shape (https://shopify.dev/docs/api/admin-graphql/latest/queries/productVariants):
cursor pages of at most 100 nodes (``pageInfo { hasNextPage endCursor }``), each variant with its
``id``, ``sku``, ``product { id }`` (our listing) and ``inventoryItem { id }``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import pytest

from connectors.ratelimit import InProcessRateLimiter
from connectors.sandbox_server import serve_in_thread
from connectors.shopify.sandbox import ShopifySandbox
from hub.application import catalog, shops
from hub.application.auto_binding import auto_bind
from hub.application.sellers import create_seller
from hub.bootstrap import bootstrap
from hub.domain.auto_binding import BindingReport, RemoteVariant
from hub.domain.errors import NotFound
from hub.domain.sellers import Principal
from hub.domain.shops import Marketplace, ShopStatus
from sync.application.catalog_in import pull_catalog
from sync.application.orders_in import Retry
from sync.worker.runtime import SyncRuntime
from tests.conftest import Backend
from tests.factories import ADMIN, World


@pytest.fixture
def world(backend: Backend) -> Iterator[World]:
    container = bootstrap(backend.settings)
    yield World(container, bind=False)
    container.close()


def bindings_of(world: World, shop_id: int) -> dict[int, tuple[str | None, ...]]:
    with world.container.uow() as uow:
        return {
            b.variant_id: (
                b.external_listing_id,
                b.external_variant_id,
                b.external_inventory_item_id,
            )
            for b in uow.bindings.for_shop(shop_id)
        }


def bind_remote(world: World, remote: list[RemoteVariant]) -> BindingReport:
    with world.container.uow() as uow:
        report = auto_bind(uow, world.shop_id, remote, world.principal)
        uow.commit()
    return report


# -- variants_by_sku ------------------------------------------------------------------------


def test_variants_by_sku_finds_only_the_sellers_variants(world: World) -> None:
    with world.container.uow() as uow:
        other, _ = create_seller(uow, "Other prints")
        assert other.id is not None
        catalog.create_product(
            uow,
            catalog.ProductSpec(
                other.id, "Copy", (catalog.VariantSpec(sku="SUN-M", price=Decimal("1.00")),)
            ),
            ADMIN,
        )
        uow.commit()
    with world.container.uow() as uow:
        found = uow.catalog.variants_by_sku(world.seller_id, ["SUN-M", "SUN-STICKER", "NOPE"])
        assert found == {"SUN-M": [world.variant_id], "SUN-STICKER": [world.sticker_id]}
        assert uow.catalog.variants_by_sku(world.seller_id, []) == {}


def test_variants_by_sku_chunks_a_long_list(world: World) -> None:
    skus = [f"NOPE-{n}" for n in range(2_500)] + ["SUN-STICKER", "SUN-M", "SUN-M"]
    with world.container.uow() as uow:
        found = uow.catalog.variants_by_sku(world.seller_id, iter(skus))
    assert found == {"SUN-M": [world.variant_id], "SUN-STICKER": [world.sticker_id]}


# -- auto_bind ------------------------------------------------------------------------------


def test_auto_bind_binds_matches_and_reports_the_rest(world: World) -> None:
    world.bind()  # SUN-M -> ("prod-1", "gid-var-1", "inv-1")
    remote = [
        RemoteVariant("prod-1", "gid-var-1", "inv-1", "SUN-M", "Sunrise tee / M"),
        RemoteVariant("prod-1", "gid-var-2", "inv-2", "SUN-STICKER", "Sunrise sticker"),
        RemoteVariant("prod-2", "gid-var-3", "inv-3", "GHOST", "Ghost tee"),
        RemoteVariant("prod-3", "gid-var-4", "inv-4", None, "No SKU"),
    ]
    report = bind_remote(world, remote)
    assert [(p.sku, p.variant_id) for p in report.bound] == [("SUN-STICKER", world.sticker_id)]
    assert report.already_bound == 1
    assert [v.sku for v in report.unknown_skus] == ["GHOST"]
    assert [v.variant_id for v in report.missing_sku] == ["gid-var-4"]
    assert report.conflicts == ()
    assert bindings_of(world, world.shop_id) == {
        world.variant_id: ("prod-1", "gid-var-1", "inv-1"),
        world.sticker_id: ("prod-1", "gid-var-2", "inv-2"),
    }


def test_auto_bind_updates_changed_remote_ids_and_reports_conflicts(world: World) -> None:
    world.bind()
    version = world.stock_version()
    remote = [
        RemoteVariant("prod-9", "gid-var-9", "inv-9", "SUN-M", "Sunrise tee / M"),
        RemoteVariant("prod-1", "gid-var-2", "inv-2", "SUN-STICKER", "Sticker"),
        RemoteVariant("prod-2", "gid-var-5", "inv-5", "SUN-STICKER", "Sticker again"),
    ]
    report = bind_remote(world, remote)
    assert [(p.variant_id, p.previous) for p in report.bound] == [
        (world.variant_id, ("prod-1", "gid-var-1", "inv-1"))
    ]
    assert [(c.sku, c.our_variant_ids) for c in report.conflicts] == [
        ("SUN-STICKER", (world.sticker_id,))
    ]
    assert bindings_of(world, world.shop_id) == {world.variant_id: ("prod-9", "gid-var-9", "inv-9")}
    assert world.stock_version() == version + 1  # the new listing is told everything again


def test_auto_bind_gives_waiting_order_lines_their_binding(world: World) -> None:
    world.import_order(variant_gid="gid-var-1", sku="SUN-M", quantity=2)
    assert world.blank(world.tee_id) == (10, 0)  # unmapped: nothing reserved
    bind_remote(world, [RemoteVariant("prod-1", "gid-var-1", "inv-1", "SUN-M", "Tee")])
    assert world.blank(world.tee_id) == (10, 2)


def test_auto_bind_hides_other_sellers_shops(world: World) -> None:
    with world.container.uow() as uow, pytest.raises(NotFound):
        auto_bind(uow, world.shop_id, [], Principal(seller_id=world.seller_id + 1))


# -- pull_catalog against the sandbox -------------------------------------------------------


@dataclass
class Catalog:
    runtime: SyncRuntime
    sandbox: ShopifySandbox
    world: World
    shop_id: int
    base_url: str


def connect_shop(
    world: World, sandbox: ShopifySandbox, base_url: str, token: str, domain: str | None = None
) -> int:
    with world.container.uow() as uow:
        shop = shops.create_shop(
            uow,
            shops.CreateShop(
                seller_id=world.seller_id,
                marketplace=Marketplace.SHOPIFY,
                external_id=domain or sandbox.shop_domain,
                name="Sandbox shop",
                api_base_url=base_url,
                location_id=sandbox.location_id,
                credentials={"access_token": token},
            ),
            world.principal,
        )
        uow.commit()
    assert shop.id is not None
    return shop.id


@pytest.fixture
def shopify(backend: Backend) -> Iterator[Catalog]:
    sandbox = ShopifySandbox(restore_rate=100_000)
    with serve_in_thread(sandbox.app) as base_url:
        runtime = SyncRuntime(bootstrap(backend.settings), InProcessRateLimiter(), lambda m: None)
        try:
            world = World(runtime.container, bind=False)
            shop_id = connect_shop(world, sandbox, base_url, sandbox.access_token)
            yield Catalog(runtime, sandbox, world, shop_id, base_url)
        finally:
            runtime.close()
            runtime.container.close()


def test_pull_catalog_pages_through_listings_and_binds_by_sku(shopify: Catalog) -> None:
    sandbox, world = shopify.sandbox, shopify.world
    tee = sandbox.add_product(
        "Sunrise tee",
        [
            {"sku": "SUN-M", "price": Decimal("20.00"), "title": "M"},
            {"sku": "SUN-STICKER", "price": Decimal("3.50"), "title": "Sticker"},
        ],
    )
    sandbox.add_product("Ghost tee", [{"sku": f"GHOST-{n:03}"} for n in range(120)])
    untitled = sandbox.add_product("No SKU")  # one variant without a SKU
    report = pull_catalog(shopify.runtime, shopify.shop_id)
    assert isinstance(report, BindingReport)
    assert [(p.sku, p.variant_id) for p in report.bound] == [
        ("SUN-M", world.variant_id),
        ("SUN-STICKER", world.sticker_id),
    ]
    assert len(report.unknown_skus) == 120  # the second page was read too
    assert [v.listing_id for v in report.missing_sku] == [untitled["id"]]
    assert report.conflicts == ()
    remote_ids = [(tee["id"], v["id"], v["inventory_item_id"]) for v in tee["variants"]]
    assert bindings_of(world, shopify.shop_id) == {
        world.variant_id: remote_ids[0],
        world.sticker_id: remote_ids[1],
    }

    again = pull_catalog(shopify.runtime, shopify.shop_id)
    assert isinstance(again, BindingReport)
    assert again.bound == ()
    assert again.already_bound == 2
    assert bindings_of(world, world.shop_id) == {}  # the other shop is untouched


def test_pull_catalog_waits_when_rate_limited(shopify: Catalog) -> None:
    shopify.sandbox.add_product("Sunrise tee", [{"sku": "SUN-M"}])
    shopify.sandbox.queue_429(1, retry_after=7)
    assert pull_catalog(shopify.runtime, shopify.shop_id) == Retry(7.0)
    assert bindings_of(shopify.world, shopify.shop_id) == {}


def test_pull_catalog_marks_a_shop_whose_token_is_refused(shopify: Catalog) -> None:
    refused = connect_shop(
        shopify.world, shopify.sandbox, shopify.base_url, "shpat_revoked", "revoked.myshopify.com"
    )
    assert pull_catalog(shopify.runtime, refused) is None
    with shopify.world.container.uow() as uow:
        shop = uow.shops.get(refused)
    assert shop is not None
    assert shop.status is ShopStatus.AUTH_FAILED
    requests = shopify.sandbox.requests
    assert pull_catalog(shopify.runtime, refused) is None  # inactive now: not even tried
    assert shopify.sandbox.requests == requests


def test_pull_catalog_skips_missing_and_inactive_shops(shopify: Catalog) -> None:
    with shopify.world.container.uow() as uow:
        shop = uow.shops.get(shopify.shop_id)
        assert shop is not None
        shop.status = ShopStatus.PAUSED
        uow.shops.save(shop)
        uow.commit()
    shopify.runtime.forget_shop(shopify.shop_id)
    assert pull_catalog(shopify.runtime, shopify.shop_id) is None
    assert pull_catalog(shopify.runtime, 10_000) is None
    assert shopify.sandbox.requests == 0
