"""Small builders for test data, going through the application services like real callers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hub.application import bindings, catalog, orders, shops, stock
from hub.application.sellers import create_seller
from hub.bootstrap import Container
from hub.domain.catalog import BlankUsage, Product
from hub.domain.orders import ImportLine, ImportOrder, ImportOutcome
from hub.domain.sellers import Principal
from hub.domain.shops import Marketplace, Shop

ADMIN = Principal(seller_id=None, is_admin=True)
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


class World:
    """One seller with one blank-backed product, a Shopify shop and optional binding."""

    def __init__(self, container: Container, *, on_hand: int = 10, bind: bool = True) -> None:
        self.container = container
        with container.uow() as uow:
            seller, issued = create_seller(uow, "Acme Prints")
            assert seller.id is not None
            self.seller_id = seller.id
            self.api_key = issued.key
            self.principal = Principal(seller_id=seller.id)
            tee = stock.create_blank(uow, ADMIN, code="TEE-M", name="Tee M", on_hand=on_hand)
            ink = stock.create_blank(uow, ADMIN, code="INK", name="Ink pack", on_hand=100)
            assert tee.id is not None
            assert ink.id is not None
            self.tee_id, self.ink_id = tee.id, ink.id
            self.product: Product = catalog.create_product(
                uow,
                catalog.ProductSpec(
                    seller_id=seller.id,
                    title="Sunrise tee",
                    variants=(
                        catalog.VariantSpec(
                            sku="SUN-M",
                            price=Decimal("20.00"),
                            blanks=(BlankUsage(tee.id, 1), BlankUsage(ink.id, 2)),
                        ),
                        catalog.VariantSpec(sku="SUN-STICKER", price=Decimal("3.50")),
                    ),
                ),
                self.principal,
            )
            self.variant_id = self.product.variants[0].id or 0
            self.sticker_id = self.product.variants[1].id or 0
            self.shop: Shop = shops.create_shop(
                uow,
                shops.CreateShop(
                    seller_id=seller.id,
                    marketplace=Marketplace.SHOPIFY,
                    external_id="acme.myshopify.com",
                    name="Acme",
                    credentials={"access_token": "shpat_secret"},
                ),
                self.principal,
            )
            self.shop_id = self.shop.id or 0
            uow.commit()
        if bind:
            self.bind()

    def binding_id(self) -> int:
        with self.container.uow() as uow:
            found = uow.bindings.find(self.shop_id, self.variant_id)
        assert found is not None
        assert found.id is not None
        return found.id

    def bind(self) -> None:
        with self.container.uow() as uow:
            bindings.put_bindings(
                uow,
                self.shop_id,
                [bindings.BindingSpec(self.variant_id, "prod-1", "gid-var-1", "inv-1")],
                self.principal,
            )
            uow.commit()

    def import_order(
        self,
        external_id: str = "5001",
        *,
        quantity: int = 2,
        updated: datetime = T0,
        paid: bool = True,
        cancelled: bool = False,
        variant_gid: str | None = "gid-var-1",
        sku: str | None = "SUN-M",
    ) -> ImportOutcome:
        with self.container.uow() as uow:
            outcome = orders.import_order(
                uow,
                ImportOrder(
                    shop_id=self.shop_id,
                    external_id=external_id,
                    external_number=f"#{external_id}",
                    external_status="cancelled" if cancelled else ("paid" if paid else "pending"),
                    external_updated_at=updated,
                    placed_at=T0,
                    currency="USD",
                    total=Decimal("40.00") * quantity,
                    paid=paid,
                    cancelled=cancelled,
                    customer_name="Ada",
                    customer_email="ada@example.com",
                    shipping_address={"city": "Leeds", "country": "GB"},
                    lines=(
                        ImportLine(
                            "L1",
                            quantity,
                            Decimal("20.00"),
                            sku=sku,
                            external_variant_id=variant_gid,
                            title="Sunrise tee M",
                        ),
                    ),
                ),
            )
            uow.commit()
        return outcome

    def blank(self, blank_id: int) -> tuple[int, int]:
        with self.container.uow() as uow:
            found = uow.stock.get_blank(blank_id)
        assert found is not None
        return found.on_hand, found.reserved

    def stock_version(self) -> int:
        with self.container.uow() as uow:
            found = uow.bindings.find(self.shop_id, self.variant_id)
        assert found is not None
        return max(
            state.desired_version
            for kind, state in found.push_states.items()
            if kind.value == "stock"
        )


def later(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)
