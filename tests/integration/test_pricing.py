"""Price rules and listed prices on both backends: storage, rule changes (refused below the
floor), rate and catalog changes (kept and flagged below the floor), new bindings, preview and
resync; pushes are queued only for bindings whose price changed."""

from __future__ import annotations

import re
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from hub.api.catalog import run_catalog_import
from hub.application import bindings, pricing
from hub.application.catalog_import import parse_document
from hub.bootstrap import Container
from hub.domain.errors import InvalidInput, NotFound
from hub.domain.pricing import (
    MarginFloorBroken,
    PriceRule,
    Rounding,
    ShopPriceRule,
    VariantPrice,
)
from tests.factories import ADMIN, World
from tests.integration.pricing_support import RULE, PricedWorld, moved

# EUR from USD at 0.90, no markup, fees 10% + 2.00, no rounding; with a sticker cost of 0.50:
# SUN-M 18.00 (floor 10.23), SUN-STICKER 3.15 (floor 2.73). At 0.70 the sticker's 2.45 would
# break its floor 2.62 while SUN-M's 14.00 clears 8.45.
FEE_HEAVY = pricing.PriceRuleSpec(
    currency="EUR",
    base_currency="USD",
    conversion_rate=Decimal("0.90"),
    fee_percent=Decimal("10"),
    fee_fixed=Decimal("2.00"),
)


def set_rate(world: World, rate: str, shop_id: int | None = None) -> pricing.PriceRuleChange:
    with world.container.uow() as uow:
        change = pricing.set_conversion_rate(
            uow, shop_id or world.shop_id, world.principal, Decimal(rate)
        )
        uow.commit()
    return change


def stored_rule(world: World, shop_id: int | None = None) -> ShopPriceRule | None:
    with world.container.uow() as uow:
        return uow.prices.get(shop_id or world.shop_id)


class TestStorage:
    def test_a_rule_round_trips_exactly_and_is_replaced_in_place(
        self, container: Container
    ) -> None:
        world = World(container, bind=False)
        rule = PriceRule(
            currency="JPY",
            base_currency="USD",
            conversion_rate=Decimal("151.123456"),
            markup_percent=Decimal("-12.5"),
            markup_fixed=Decimal("100"),
            fee_percent=Decimal("6.5"),
            fee_fixed=Decimal("30"),
            rounding=Rounding.WHOLE,
        )
        with container.uow() as uow:
            saved = uow.prices.save(ShopPriceRule(world.shop_id, rule, version=1))
            uow.commit()
        with container.uow() as uow:
            found = uow.prices.get(world.shop_id)
        assert found == saved
        assert str(found.rule.conversion_rate) == "151.123456"
        with container.uow() as uow:
            uow.prices.save(ShopPriceRule(world.shop_id, replace(rule, fee_fixed=Decimal(0)), 2))
            uow.commit()
        with container.uow() as uow:
            rules = uow.prices.for_shops([world.shop_id, world.shop_id + 99])
        assert list(rules) == [world.shop_id]
        assert (rules[world.shop_id].version, rules[world.shop_id].rule.fee_fixed) == (
            2,
            Decimal(0),
        )

    def test_costs_and_listed_prices_are_stored_exactly(self, container: Container) -> None:
        world = PricedWorld(container)
        with container.uow() as uow:
            product = uow.catalog.get_product(world.product.id or 0)
            prices = uow.catalog.variant_prices([world.variant_id, world.sticker_id])
            found = uow.bindings.for_variants([world.sticker_id])
            assert product is not None
            assert [v.cost for v in product.variants] == [Decimal("8.00"), Decimal("1.00")]
            for binding in found:
                binding.listed_price = Decimal("3.123456")
                binding.price_review = "look at me"
            uow.bindings.save_prices(found)
            uow.commit()
        assert prices[world.variant_id] == VariantPrice(
            world.variant_id, "SUN-M", Decimal("20.00"), Decimal("8.00"), "USD"
        )
        assert sorted(b.shop_id for b in found) == [world.shop_id, world.etsy_id]
        again = world.binding(world.etsy_id, world.sticker_id)
        assert (str(again.listed_price), again.price_review) == ("3.123456", "look at me")
        assert world.binding(world.shop_id, world.variant_id).listed_price is None


class TestSetPriceRule:
    def test_prices_every_bound_variant_and_queues_their_price_pushes(
        self, container: Container
    ) -> None:
        world = PricedWorld(container)
        before = world.versions()
        world.set_rule()
        assert world.listed() == {"SUN-M": Decimal("20.99"), "SUN-STICKER": Decimal("3.99")}
        assert world.listed(world.etsy_id) == {"SUN-M": None, "SUN-STICKER": None}
        assert moved(before, world.versions()) == {
            ("shopify", "SUN-M", "price"),
            ("shopify", "SUN-STICKER", "price"),
        }
        stored = stored_rule(world)
        assert stored is not None
        assert (stored.version, stored.rule.fee_fixed, stored.rule.rounding) == (
            1,
            Decimal("0.20"),
            Rounding.TO_99,
        )

    def test_the_same_rule_again_pushes_nothing(self, container: Container) -> None:
        world = PricedWorld(container)
        world.set_rule()
        before = world.versions()
        world.set_rule()
        assert moved(before, world.versions()) == set()
        stored = stored_rule(world)
        assert stored is not None
        assert stored.version == 2

    def test_a_rule_changing_one_price_pushes_only_that_one(self, container: Container) -> None:
        world = PricedWorld(container)
        world.set_rule(RULE, shop_id=world.etsy_id)
        before = world.versions()
        # 0.80 more lifts both past their .99; then 0.70 brings only SUN-M's 20.94 back under.
        world.set_rule(replace(RULE, markup_fixed=Decimal("0.80")), shop_id=world.etsy_id)
        assert world.listed(world.etsy_id) == {
            "SUN-M": Decimal("21.99"),
            "SUN-STICKER": Decimal("4.99"),
        }
        assert moved(before, world.versions()) == {
            ("etsy", "SUN-M", "listing"),
            ("etsy", "SUN-STICKER", "listing"),
        }
        before = world.versions()
        world.set_rule(replace(RULE, markup_fixed=Decimal("0.70")), shop_id=world.etsy_id)
        assert world.listed(world.etsy_id) == {
            "SUN-M": Decimal("20.99"),
            "SUN-STICKER": Decimal("4.99"),
        }
        assert moved(before, world.versions()) == {("etsy", "SUN-M", "listing")}

    def test_refused_below_the_floor_naming_every_variant_with_its_numbers(
        self, container: Container
    ) -> None:
        world = PricedWorld(container)
        world.set_rule()
        before = world.versions()
        cheap = replace(RULE, markup_percent=Decimal("-70"), rounding="none")
        with pytest.raises(MarginFloorBroken) as refused:
            world.set_rule(cheap)
        message = refused.value.message
        assert (
            f"variant {world.variant_id} (sku SUN-M): price 5.52 EUR is below the margin floor "
            "8.09 EUR = (cost 8 USD x rate 0.92 + fee 0.20 EUR) / (1 - fee 6.5%)" in message
        )
        assert "(sku SUN-STICKER): price 0.97 EUR is below the margin floor 1.20 EUR" in message
        assert [q.sku for q in refused.value.broken] == ["SUN-M", "SUN-STICKER"]
        stored = stored_rule(world)
        assert stored is not None
        assert (stored.version, stored.rule.markup_percent) == (1, Decimal(10))
        assert world.listed() == {"SUN-M": Decimal("20.99"), "SUN-STICKER": Decimal("3.99")}
        assert world.versions() == before

    def test_variants_without_a_cost_or_in_another_currency_get_no_price(
        self, container: Container
    ) -> None:
        world = PricedWorld(container, sticker_cost=None)
        with container.uow() as uow:
            from hub.application import catalog

            euro = catalog.create_product(
                uow,
                catalog.ProductSpec(
                    seller_id=world.seller_id,
                    title="Euro mug",
                    currency="EUR",
                    variants=(
                        catalog.VariantSpec(sku="MUG-EU", price=Decimal("9"), cost=Decimal("3")),
                    ),
                ),
                world.principal,
            )
            mug_id = euro.variants[0].id or 0
            bindings.put_bindings(
                uow, world.shop_id, [bindings.BindingSpec(mug_id, "mug")], world.principal
            )
            uow.commit()
        with container.uow() as uow:
            change = pricing.set_price_rule(uow, world.shop_id, world.principal, RULE)
            uow.commit()
        assert (len(change.report.changed), change.report.no_cost, change.report.skipped) == (
            1,
            1,
            1,
        )
        assert world.listed() == {"SUN-M": Decimal("20.99"), "SUN-STICKER": None}
        mug = world.binding(world.shop_id, mug_id)
        assert mug.listed_price is None
        assert mug.price_review is not None
        assert "base price is in EUR but the rule converts from USD" in mug.price_review
        assert change.report.flagged == [mug.id]

    @pytest.mark.parametrize(
        ("field", "value", "expected"),
        [
            ("conversion_rate", "0.1234567", "conversion_rate 0.1234567: the hub stores at most 6"),
            ("fee_percent", "100", "fee_percent 100: must be in [0, 100)"),
            ("currency", "eur", "currency 'eur' is not a known ISO 4217 code"),
            ("rounding", "to_98", "rounding 'to_98': use one of none, to_99, to_95, whole"),
        ],
    )
    def test_a_bad_rule_is_refused_with_what_is_wrong(
        self, container: Container, field: str, value: str, expected: str
    ) -> None:
        world = PricedWorld(container)
        given: Any = value if field in ("currency", "rounding") else Decimal(value)
        with pytest.raises(InvalidInput, match=re.escape(expected)):
            world.set_rule(replace(RULE, **{field: given}))
        assert stored_rule(world) is None

    def test_another_sellers_shop_does_not_exist(self, container: Container) -> None:
        world = PricedWorld(container)
        with container.uow() as uow:
            from hub.application.sellers import create_seller
            from hub.domain.sellers import Principal

            other, _ = create_seller(uow, "Other")
            uow.commit()
        with container.uow() as uow, pytest.raises(NotFound):
            pricing.set_price_rule(uow, world.shop_id, Principal(seller_id=other.id), RULE)


class TestConversionRate:
    def test_a_rate_that_breaks_a_floor_keeps_the_old_price_and_flags_the_binding(
        self, container: Container
    ) -> None:
        world = PricedWorld(container, sticker_cost="0.50")
        world.set_rule(FEE_HEAVY)
        assert world.listed() == {"SUN-M": Decimal("18.00"), "SUN-STICKER": Decimal("3.15")}
        before = world.versions()
        change = set_rate(world, "0.70")
        assert world.listed() == {"SUN-M": Decimal("14.00"), "SUN-STICKER": Decimal("3.15")}
        sticker = world.binding(world.shop_id, world.sticker_id)
        assert change.report.flagged == [sticker.id]
        assert sticker.price_review is not None
        assert "(sku SUN-STICKER): price 2.45 EUR is below the margin floor 2.62 EUR" in (
            sticker.price_review
        )
        assert "kept the listed price 3.15 EUR" in sticker.price_review
        assert moved(before, world.versions()) == {("shopify", "SUN-M", "price")}
        stored = stored_rule(world)
        assert stored is not None
        assert (stored.version, stored.rule.conversion_rate) == (2, Decimal("0.70"))

        before = world.versions()
        set_rate(world, "0.90")  # back: the sticker's 3.15 is its listed price already
        assert world.listed() == {"SUN-M": Decimal("18.00"), "SUN-STICKER": Decimal("3.15")}
        assert world.binding(world.shop_id, world.sticker_id).price_review is None
        assert moved(before, world.versions()) == {("shopify", "SUN-M", "price")}

    def test_a_rate_needs_a_rule_and_six_places_at_most(self, container: Container) -> None:
        world = PricedWorld(container)
        with pytest.raises(NotFound, match=f"shop {world.shop_id} has no price rule"):
            set_rate(world, "0.9")
        world.set_rule()
        with pytest.raises(InvalidInput, match="at most 6 decimal places"):
            set_rate(world, "0.9000001")
        with pytest.raises(InvalidInput, match="must be > 0"):
            set_rate(world, "0")


class TestRepriceOnCatalogChanges:
    def test_a_retail_change_reprices_and_pushes_only_that_variant(
        self, container: Container
    ) -> None:
        world = PricedWorld(container)
        world.set_rule()
        world.set_rule(RULE, shop_id=world.etsy_id)
        before = world.versions()
        world.set_catalog(sun_price="25.00")
        assert world.listed() == {"SUN-M": Decimal("25.99"), "SUN-STICKER": Decimal("3.99")}
        assert world.listed(world.etsy_id) == world.listed()
        assert moved(before, world.versions()) == {
            ("shopify", "SUN-M", "price"),
            ("etsy", "SUN-M", "listing"),
        }

    def test_a_cost_rise_past_the_floor_keeps_the_price_and_flags_review(
        self, container: Container
    ) -> None:
        world = PricedWorld(container)
        world.set_rule()
        before = world.versions()
        world.set_catalog(sun_cost="19.00")  # floor 18.91: 20.99 still clears it
        assert world.binding(world.shop_id, world.variant_id).price_review is None
        world.set_catalog(sun_cost="22.00")  # floor 21.87
        sun = world.binding(world.shop_id, world.variant_id)
        assert sun.listed_price == Decimal("20.99")
        assert sun.price_review is not None
        assert "price 20.99 EUR is below the margin floor 21.87 EUR" in sun.price_review
        assert moved(before, world.versions()) == set()
        world.set_catalog(sun_cost="8.00")
        assert world.binding(world.shop_id, world.variant_id).price_review is None
        assert moved(before, world.versions()) == set()  # 20.99 all along

    def test_shops_without_a_rule_are_left_alone(self, container: Container) -> None:
        world = PricedWorld(container)
        before = world.versions()
        world.set_catalog(sun_price="25.00", sun_cost="9.00")
        assert world.listed() == {"SUN-M": None, "SUN-STICKER": None}
        assert moved(before, world.versions()) == set()

    def test_imported_costs_price_new_bindings_and_flag_those_below_the_floor(
        self, container: Container
    ) -> None:
        world = PricedWorld(container)
        world.set_rule()
        document = {
            "seller_id": world.seller_id,
            "products": [
                {
                    "title": "Moon mug",
                    "variants": [
                        {"sku": "MOON-1", "price": "12.00", "cost": "4.50"},
                        {"sku": "LOSS-1", "price": Decimal("5.00"), "cost": Decimal("9.00")},
                    ],
                }
            ],
        }
        report = run_catalog_import(container, parse_document(document), ADMIN)
        with container.uow() as uow:
            product = uow.catalog.get_product(report.products_created[0]["id"])
        assert product is not None
        assert [(v.sku, v.cost) for v in product.variants] == [
            ("MOON-1", Decimal("4.50")),
            ("LOSS-1", Decimal("9.00")),
        ]
        moon, loss = (v.id or 0 for v in product.variants)
        with container.uow() as uow:
            bindings.put_bindings(
                uow,
                world.shop_id,
                [bindings.BindingSpec(moon, "moon"), bindings.BindingSpec(loss, "loss")],
                world.principal,
            )
            uow.commit()
        assert world.binding(world.shop_id, moon).listed_price == Decimal("12.99")
        flagged = world.binding(world.shop_id, loss)
        assert flagged.listed_price is None
        assert flagged.price_review is not None
        assert "price 5.99 EUR is below the margin floor 9.07 EUR" in flagged.price_review
        assert "not listed (no earlier price to keep)" in flagged.price_review

    @pytest.mark.parametrize("cost", ["-1", "1.1234567", "abc"])
    def test_an_imported_cost_must_be_storable(self, cost: str) -> None:
        document = {
            "seller_id": 1,
            "products": [{"title": "Mug", "variants": [{"sku": "M", "price": "1", "cost": cost}]}],
        }
        with pytest.raises(InvalidInput, match="cost must be a number >= 0 with at most 6"):
            parse_document(document)


class TestPreview:
    def test_lists_current_and_new_prices_and_writes_nothing(self, container: Container) -> None:
        world = PricedWorld(container, sticker_cost=None)
        with container.uow() as uow:
            rows = pricing.preview_prices(uow, world.shop_id, world.principal)
        assert [(r.sku, r.status, r.new) for r in rows] == [
            ("SUN-M", pricing.PriceStatus.NO_RULE, None),
            ("SUN-STICKER", pricing.PriceStatus.NO_RULE, None),
        ]
        world.set_rule()
        drifted = world.binding(world.shop_id, world.variant_id)
        with container.uow() as uow:  # as if the price had drifted since
            drifted.listed_price = Decimal("15.00")
            uow.bindings.save_prices([drifted])
            uow.commit()
        before = world.versions()
        with container.uow() as uow:
            rows = pricing.preview_prices(uow, world.shop_id, world.principal)
        sun, sticker = rows
        assert (sun.sku, sun.current, sun.new, sun.floor, sun.status, sun.currency) == (
            "SUN-M",
            Decimal("15.00"),
            Decimal("20.99"),
            Decimal("8.09"),
            pricing.PriceStatus.WILL_CHANGE,
            "EUR",
        )
        assert (sticker.sku, sticker.new, sticker.status) == (
            "SUN-STICKER",
            None,
            pricing.PriceStatus.NO_COST,
        )
        assert world.listed()["SUN-M"] == Decimal("15.00")
        assert world.versions() == before

    def test_a_proposed_rule_is_previewed_not_stored(self, container: Container) -> None:
        world = PricedWorld(container)
        world.set_rule()
        cheap = replace(RULE, markup_percent=Decimal("-50"))
        with container.uow() as uow:
            rows = pricing.preview_prices(uow, world.shop_id, world.principal, cheap)
        assert [(r.sku, r.current, r.new, r.status) for r in rows] == [
            ("SUN-M", Decimal("20.99"), Decimal("9.99"), pricing.PriceStatus.WILL_CHANGE),
            ("SUN-STICKER", Decimal("3.99"), Decimal("1.99"), pricing.PriceStatus.WILL_CHANGE),
        ]
        broken = replace(RULE, markup_percent=Decimal("-60"), rounding="none")
        with container.uow() as uow:
            rows = pricing.preview_prices(uow, world.shop_id, world.principal, broken)
        assert rows[0].status is pricing.PriceStatus.BELOW_FLOOR
        assert rows[0].reason is not None
        assert rows[0].reason.endswith("this rule would be refused")
        stored = stored_rule(world)
        assert stored is not None
        assert stored.rule.markup_percent == 10


class TestResync:
    def test_reprices_and_pushes_every_listed_price(self, container: Container) -> None:
        world = PricedWorld(container)
        world.set_rule()
        drifted = world.binding(world.shop_id, world.variant_id)
        with container.uow() as uow:
            drifted.listed_price = Decimal("15.00")
            uow.bindings.save_prices([drifted])
            uow.commit()
        before = world.versions()
        with container.uow() as uow:
            report = pricing.resync_prices(uow, world.shop_id, world.principal)
            uow.commit()
        assert (len(report.changed), report.queued, report.unchanged) == (1, 2, 1)
        assert world.listed() == {"SUN-M": Decimal("20.99"), "SUN-STICKER": Decimal("3.99")}
        assert moved(before, world.versions()) == {
            ("shopify", "SUN-M", "price"),
            ("shopify", "SUN-STICKER", "price"),
        }

    def test_needs_a_rule(self, container: Container) -> None:
        world = PricedWorld(container)
        with container.uow() as uow, pytest.raises(NotFound, match="has no price rule"):
            pricing.resync_prices(uow, world.shop_id, world.principal)
