"""A priced world for the pricing tests: the factories' seller and Shopify shop, both variants
costed and bound there, and an Etsy shop with both bound too (Shopify carries price in
``price``, Etsy in ``listing``)."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from hub.application import bindings, catalog, pricing, shops
from hub.bootstrap import Container
from hub.domain.catalog import Binding, BlankUsage
from hub.domain.shops import Marketplace
from hub.infrastructure.bindings import BINDINGS, STATES
from tests.factories import World

# EUR from USD at 0.92, +10%, fees 6.5% + 0.20, prices ending in .99:
# SUN-M 20.00 USD (cost 8.00) -> 20.99 EUR, floor 8.09; SUN-STICKER 3.50 (cost 1.00) -> 3.99,
# floor 1.20.
RULE = pricing.PriceRuleSpec(
    currency="EUR",
    base_currency="USD",
    conversion_rate=Decimal("0.92"),
    markup_percent=Decimal("10"),
    fee_percent=Decimal("6.5"),
    fee_fixed=Decimal("0.20"),
    rounding="to_99",
)

Versions = dict[tuple[str, str, str], int]  # (shop, sku, kind) -> desired version


class PricedWorld(World):
    def __init__(self, container: Container, *, sticker_cost: str | None = "1.00") -> None:
        super().__init__(container)
        self.set_catalog(sticker_cost=sticker_cost)
        with container.uow() as uow:
            etsy = shops.create_shop(
                uow,
                shops.CreateShop(
                    seller_id=self.seller_id,
                    marketplace=Marketplace.ETSY,
                    external_id="acme-etsy",
                    name="Acme on Etsy",
                ),
                self.principal,
            )
            self.etsy_id = etsy.id or 0
            bindings.put_bindings(
                uow, self.shop_id, [bindings.BindingSpec(self.sticker_id, "prod-2")], self.principal
            )
            bindings.put_bindings(
                uow,
                self.etsy_id,
                [
                    bindings.BindingSpec(self.variant_id, "listing-1"),
                    bindings.BindingSpec(self.sticker_id, "listing-1"),
                ],
                self.principal,
            )
            uow.commit()

    def set_catalog(
        self,
        *,
        sun_price: str = "20.00",
        sun_cost: str | None = "8.00",
        sticker_price: str = "3.50",
        sticker_cost: str | None = "1.00",
    ) -> None:
        with self.container.uow() as uow:
            spec = self.spec(sun_price, sun_cost, sticker_price, sticker_cost)
            catalog.update_product(uow, self.product.id or 0, spec, self.principal)
            uow.commit()

    def spec(
        self, sun_price: str, sun_cost: str | None, sticker_price: str, sticker_cost: str | None
    ) -> catalog.ProductSpec:
        return catalog.ProductSpec(
            seller_id=self.seller_id,
            title="Sunrise tee",
            variants=(
                catalog.VariantSpec(
                    sku="SUN-M",
                    price=Decimal(sun_price),
                    blanks=(BlankUsage(self.tee_id, 1), BlankUsage(self.ink_id, 2)),
                    cost=Decimal(sun_cost) if sun_cost else None,
                ),
                catalog.VariantSpec(
                    sku="SUN-STICKER",
                    price=Decimal(sticker_price),
                    cost=Decimal(sticker_cost) if sticker_cost else None,
                ),
            ),
        )

    def set_rule(self, spec: pricing.PriceRuleSpec = RULE, *, shop_id: int | None = None) -> None:
        with self.container.uow() as uow:
            pricing.set_price_rule(uow, shop_id or self.shop_id, self.principal, spec)
            uow.commit()

    def binding(self, shop_id: int, variant_id: int) -> Binding:
        with self.container.uow() as uow:
            found = uow.bindings.find(shop_id, variant_id)
        assert found is not None
        return found

    def listed(self, shop_id: int | None = None) -> dict[str, Decimal | None]:
        """SKU -> listed price in the shop (Shopify by default)."""
        return {
            sku: self.binding(shop_id or self.shop_id, variant_id).listed_price
            for sku, variant_id in (("SUN-M", self.variant_id), ("SUN-STICKER", self.sticker_id))
        }

    def versions(self) -> Versions:
        names = {self.shop_id: "shopify", self.etsy_id: "etsy"}
        skus = {self.variant_id: "SUN-M", self.sticker_id: "SUN-STICKER"}
        with self.container.engine.connect() as db:
            rows = db.execute(
                select(
                    BINDINGS.c.shop_id,
                    BINDINGS.c.variant_id,
                    STATES.c.kind,
                    STATES.c.desired_version,
                ).join(STATES, STATES.c.binding_id == BINDINGS.c.id)
            )
            return {
                (names[row.shop_id], skus[row.variant_id], row.kind): row.desired_version
                for row in rows
            }


def moved(before: Versions, after: Versions) -> set[tuple[str, str, str]]:
    """The (shop, sku, kind) whose desired version rose, each by exactly one."""
    risen = {key for key, version in after.items() if version != before.get(key)}
    assert all(after[key] == before[key] + 1 for key in risen), (before, after)
    return risen
