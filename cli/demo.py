"""The demo: the hub on the embedded defaults with a catalog, shops and orders to look at."""

from __future__ import annotations

import os
import secrets
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import typer

from hub.application import bindings, catalog, orders, shops, stock
from hub.application.sellers import create_seller, issue_api_key
from hub.bootstrap import Container, bootstrap
from hub.domain.catalog import BlankUsage
from hub.domain.orders import ImportLine, ImportOrder
from hub.domain.ports import UnitOfWork
from hub.domain.sellers import Principal
from hub.domain.shops import Marketplace
from hub.infrastructure.migrations import upgrade
from hub.settings import Settings

DEMO_SELLER = "Demo Prints Co."
ADMIN = Principal(seller_id=None, is_admin=True)
SIZES = ("S", "M", "L")
SAMPLE_ORDERS = 24


def run(*, port: int | None, seed_only: bool) -> None:
    admin_key = os.environ.get("HUB_ADMIN_API_KEY") or "hub_admin_" + secrets.token_urlsafe(24)
    os.environ["HUB_ADMIN_API_KEY"] = admin_key
    settings = Settings()
    container = bootstrap(settings)
    try:
        upgrade(container.engine, schema=settings.db_schema)
        seller_key = seed(container)
    finally:
        container.close()
    url = f"http://{settings.host}:{port or settings.port}"
    typer.echo("")
    typer.echo(f"marketplace-hub demo at {url}  (API docs: {url}/docs)")
    typer.echo(f"  seller API key: {seller_key}")
    typer.echo(f"  admin API key:  {admin_key}")
    typer.echo(f"  try: curl -H 'Authorization: Bearer {seller_key}' {url}/orders")
    typer.echo("")
    if seed_only:
        return
    import uvicorn

    from hub.api.app import create_app

    uvicorn.run(
        create_app(settings), host=settings.host, port=port or settings.port, access_log=False
    )


def seed(container: Container) -> str:
    """Seed once; later runs only issue a fresh seller key (keys are stored hashed)."""
    with container.uow() as uow:
        existing = next((s for s in uow.sellers.list() if s.name == DEMO_SELLER), None)
        if existing is not None and existing.id is not None:
            key = issue_api_key(uow, existing.id).key
            uow.commit()
            return key
        seller, issued = create_seller(uow, DEMO_SELLER)
        assert seller.id is not None
        _seed_catalog(uow, seller.id)
        uow.commit()
    return issued.key


def _seed_catalog(uow: UnitOfWork, seller_id: int) -> None:
    tees = {
        size: stock.create_blank(
            uow, ADMIN, code=f"TEE-WHITE-{size}", name=f"White tee {size}", on_hand=40
        )
        for size in SIZES
    }
    mug = stock.create_blank(uow, ADMIN, code="MUG-11OZ", name="Mug 11 oz", on_hand=25)
    principal = Principal(seller_id=seller_id)
    designs = [("Mountain Sunrise", "MTN"), ("Ocean Waves", "OCN")]
    products = []
    for title, code in designs:
        tee_variants = [
            catalog.VariantSpec(
                sku=f"{code}-TEE-{size}",
                price=Decimal("24.00"),
                options={"size": size, "colour": "white"},
                print_file_ref=f"print/{code.lower()}.png",
                blanks=(BlankUsage(tees[size].id or 0, 1),),
            )
            for size in SIZES
        ]
        mug_variant = catalog.VariantSpec(
            sku=f"{code}-MUG",
            price=Decimal("14.50"),
            options={"type": "mug"},
            print_file_ref=f"print/{code.lower()}-mug.png",
            blanks=(BlankUsage(mug.id or 0, 1),),
        )
        specs = (*tee_variants, mug_variant)
        products.append(
            catalog.create_product(
                uow,
                catalog.ProductSpec(
                    seller_id=seller_id, title=f"{title} tee & mug", variants=specs
                ),
                principal,
            )
        )
    demo_shops = [
        shops.create_shop(
            uow,
            shops.CreateShop(
                seller_id=seller_id,
                marketplace=marketplace,
                external_id=external_id,
                name=name,
                stock_buffer=1,
                max_listed_quantity=50,
            ),
            principal,
        )
        for marketplace, external_id, name in (
            (Marketplace.SHOPIFY, "demo-prints.myshopify.com", "Demo Prints (Shopify)"),
            (Marketplace.ETSY, "31337", "DemoPrints (Etsy)"),
            (Marketplace.WOOCOMMERCE, "shop.demo-prints.test", "Demo Prints (WooCommerce)"),
        )
    ]
    variants = [v for p in products for v in p.variants]
    for shop in demo_shops:
        assert shop.id is not None
        bindings.put_bindings(
            uow,
            shop.id,
            [
                bindings.BindingSpec(
                    variant_id=v.id or 0,
                    external_listing_id=f"{shop.marketplace.value}-listing-{v.id}",
                    external_variant_id=f"{shop.marketplace.value}-variant-{v.id}",
                )
                for v in variants[:-1]  # the last variant stays unbound: its lines wait
            ],
            principal,
        )
    start = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    for n in range(SAMPLE_ORDERS):
        shop = demo_shops[n % len(demo_shops)]
        first, second = variants[n % len(variants)], variants[(n * 3 + 1) % len(variants)]
        placed = start + timedelta(hours=5 * n)
        orders.import_order(
            uow,
            ImportOrder(
                shop_id=shop.id or 0,
                external_id=f"{shop.marketplace.value}-{1000 + n}",
                external_number=f"#{1000 + n}",
                external_status="paid" if n % 5 else "pending",
                external_updated_at=placed + timedelta(minutes=3),
                placed_at=placed,
                currency="USD",
                total=first.price + second.price * 2,
                paid=bool(n % 5),
                customer_name=f"Buyer {n}",
                customer_email=f"buyer{n}@example.com",
                shipping_address={"city": "Portland", "country": "US"},
                lines=(
                    ImportLine(
                        external_line_id=f"L{n}-1",
                        quantity=1,
                        unit_price=first.price,
                        sku=first.sku,
                        external_variant_id=f"{shop.marketplace.value}-variant-{first.id}",
                        title=first.sku,
                    ),
                    ImportLine(
                        external_line_id=f"L{n}-2",
                        quantity=2,
                        unit_price=second.price,
                        sku=second.sku,
                        title=second.sku,
                    ),
                ),
            ),
        )
