"""`hub prices` and `hub resync prices` on the embedded defaults: each command's effect and an
error."""

from __future__ import annotations

import json
from decimal import Decimal

from typer.testing import Result

from hub.bootstrap import Container
from tests.integration.conftest import hub, ok
from tests.integration.pricing_support import PricedWorld, moved

RULE_OPTIONS = [
    "--currency",
    "eur",
    "--base-currency",
    "USD",
    "--rate",
    "0.92",
    "--markup-percent",
    "10",
    "--fee-percent",
    "6.5",
    "--fee-fixed",
    "0.20",
    "--rounding",
    "to_99",
]


def set_rule(world: PricedWorld, *extra: str) -> Result:
    return hub("prices", "set-rule", "--shop", str(world.shop_id), *RULE_OPTIONS, *extra)


class TestRule:
    def test_set_rule_stores_it_and_reprices_the_shop(self, hub_db: Container) -> None:
        world = PricedWorld(hub_db)
        before = world.versions()
        out = ok(set_rule(world)).stdout
        assert f"shop {world.shop_id}: price rule version 1 stored" in out
        assert "2 binding(s) repriced (price pushes queued)" in out
        assert world.listed() == {"SUN-M": Decimal("20.99"), "SUN-STICKER": Decimal("3.99")}
        assert moved(before, world.versions()) == {
            ("shopify", "SUN-M", "price"),
            ("shopify", "SUN-STICKER", "price"),
        }
        shown = json.loads(ok(hub("prices", "rule", "--shop", str(world.shop_id), "--json")).stdout)
        assert {k: shown[k] for k in ("currency", "conversion_rate", "fee_fixed", "version")} == {
            "currency": "EUR",
            "conversion_rate": "0.92",
            "fee_fixed": "0.20",
            "version": 1,
        }
        table = ok(hub("prices", "rule", "--shop", str(world.shop_id))).stdout
        assert "rounding         to_99" in table

    def test_set_rule_below_the_floor_fails_with_the_numbers(self, hub_db: Container) -> None:
        world = PricedWorld(hub_db)
        result = set_rule(world, "--markup-percent", "-70", "--rounding", "none")
        assert result.exit_code == 1
        assert f"price rule of shop {world.shop_id} not set: price rule refused" in result.stderr
        assert "(sku SUN-M): price 5.52 EUR is below the margin floor 8.09 EUR" in result.stderr
        assert world.listed() == {"SUN-M": None, "SUN-STICKER": None}

    def test_rule_of_a_shop_without_one_says_how_to_set_it(self, hub_db: Container) -> None:
        world = PricedWorld(hub_db)
        result = hub("prices", "rule", "--shop", str(world.shop_id))
        assert result.exit_code == 1
        assert f"`hub prices set-rule --shop {world.shop_id}`" in result.stderr
        assert "hub shops list" not in result.stderr
        unknown = hub("prices", "rule", "--shop", "999")
        assert unknown.exit_code == 1
        assert "shop 999 does not exist; see `hub shops list`" in unknown.stderr

    def test_a_malformed_amount_is_a_usage_error(self, hub_db: Container) -> None:
        world = PricedWorld(hub_db)
        result = set_rule(world, "--fee-fixed", "twenty")
        assert result.exit_code == 2
        assert "usage: --fee-fixed 'twenty' is not a decimal number" in result.stderr


class TestRate:
    def test_rate_reprices_and_flags_what_would_break_the_floor(self, hub_db: Container) -> None:
        world = PricedWorld(hub_db, sticker_cost="0.50")
        ok(
            hub(
                "prices",
                "set-rule",
                "--shop",
                str(world.shop_id),
                "--currency",
                "EUR",
                "--base-currency",
                "USD",
                "--rate",
                "0.90",
                "--fee-percent",
                "10",
                "--fee-fixed",
                "2.00",
            )
        )
        before = world.versions()
        out = ok(hub("prices", "rate", "--shop", str(world.shop_id), "0.70")).stdout
        assert f"shop {world.shop_id}: 1 USD = 0.70 EUR (rule version 2)" in out
        assert "1 binding(s) repriced" in out
        assert "1 flagged for review" in out
        assert world.listed() == {"SUN-M": Decimal("14.00"), "SUN-STICKER": Decimal("3.15")}
        assert moved(before, world.versions()) == {("shopify", "SUN-M", "price")}

    def test_rate_without_a_rule_fails(self, hub_db: Container) -> None:
        world = PricedWorld(hub_db)
        result = hub("prices", "rate", "--shop", str(world.shop_id), "0.9")
        assert result.exit_code == 1
        assert f"rate of shop {world.shop_id} not changed: shop {world.shop_id} has no price" in (
            result.stderr
        )


class TestPreview:
    def test_preview_lists_current_and_new_and_writes_nothing(self, hub_db: Container) -> None:
        world = PricedWorld(hub_db, sticker_cost=None)
        ok(set_rule(world))
        before = world.versions()
        table = ok(
            hub(
                "prices",
                "preview",
                "--shop",
                str(world.shop_id),
                "--markup-percent",
                "-60",
                "--rounding",
                "none",
            )
        ).stdout
        lines = table.splitlines()
        assert lines[0].split() == ["sku", "current", "new", "floor", "currency", "status"]
        assert lines[1].split() == ["SUN-M", "20.99", "7.36", "8.09", "EUR", "below_floor"]
        assert lines[2].split() == ["SUN-STICKER", "-", "-", "-", "-", "no_cost"]
        assert lines[3].startswith("SUN-M: variant")
        assert lines[3].endswith("this rule would be refused")
        rows = json.loads(
            ok(hub("prices", "preview", "--shop", str(world.shop_id), "--json")).stdout
        )
        assert [(r["sku"], r["current"], r["new"], r["status"]) for r in rows] == [
            ("SUN-M", "20.99", "20.99", "unchanged"),
            ("SUN-STICKER", None, None, "no_cost"),
        ]
        assert world.versions() == before
        shown = json.loads(ok(hub("prices", "rule", "--shop", str(world.shop_id), "--json")).stdout)
        assert shown["markup_percent"] == "10"

    def test_preview_options_without_a_rule_need_the_currency_and_rate(
        self, hub_db: Container
    ) -> None:
        world = PricedWorld(hub_db)
        result = hub("prices", "preview", "--shop", str(world.shop_id), "--fee-percent", "5")
        assert result.exit_code == 2
        assert "give --currency, --base-currency, --rate" in result.stderr


class TestResyncPrices:
    def test_resync_queues_every_listed_price(self, hub_db: Container) -> None:
        world = PricedWorld(hub_db)
        ok(set_rule(world))
        before = world.versions()
        out = ok(hub("resync", "prices", "--shop", str(world.shop_id))).stdout
        assert f"shop {world.shop_id}: prices of 2 binding(s) queued to be pushed" in out
        assert moved(before, world.versions()) == {
            ("shopify", "SUN-M", "price"),
            ("shopify", "SUN-STICKER", "price"),
        }

    def test_resync_without_listed_prices_fails(self, hub_db: Container) -> None:
        world = PricedWorld(hub_db, sticker_cost=None)
        ok(
            hub(
                "prices",
                "set-rule",
                "--shop",
                str(world.etsy_id),
                *RULE_OPTIONS[:6],
            )
        )
        with hub_db.uow() as uow:  # the one costed variant loses its cost: nothing is listed
            from hub.application import catalog

            catalog.update_product(
                uow, world.product.id or 0, world.spec("20.00", None, "3.50", None), world.principal
            )
            uow.commit()
        result = hub("resync", "prices", "--shop", str(world.etsy_id))
        assert result.exit_code == 1
        assert f"shop {world.etsy_id} has no binding with a listed price" in result.stderr
