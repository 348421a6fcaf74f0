"""Prices ride along with quantities on Etsy's ``listing`` push kind: one
``updateListingInventory`` read-modify-write sets both (``StockLevel.price``; None leaves the
remote price as it is).

Etsy's offering ``price`` in that write is a number, "a float equal to amount divided by
divisor as specified in the Money resource" (updateListingInventory,
https://developers.etsy.com/documentation/reference#operation/updateListingInventory; the same
text in the generated SDK docs, e.g. etsy-python-sdk ``docs/ShopListingInventoryApi.md``, found
with the code search), while reads give ``Money {amount, divisor}``. The update "fails if the
supplied values for product sku, offering quantity, and/or price are incompatible with values
in ``*_on_property_*`` fields" (same page; https://github.com/etsy/open-api/issues/159: varying
prices need ``price_on_property``).

The sandbox parses the body's numbers as written (never through a binary float) and refuses a
price that is not a whole number of ``1/divisor``, so a connector that wrote ``19.99`` as
``19.990000000000002`` fails here; ``inventory_writes[n]["raw"]`` holds the bytes as sent.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest

from connectors.contract import PermanentError, ShopContext, StockLevel
from connectors.etsy.client import encode_json
from connectors.etsy.connector import EtsyConnector
from connectors.etsy.sandbox import PriceChange
from connectors.etsy.stock import stock_item_id
from tests.contract.etsy_double import (
    KEYSTRING,
    SHARED_SECRET,
    EtsyDouble,
    etsy_double,
    make_connector,
)

SIZES = ("S", "M", "L")
SIZE_PROPERTY = 100


@pytest.fixture
def double() -> Iterator[EtsyDouble]:
    with etsy_double() as built:
        yield built


@pytest.fixture
def connector() -> Iterator[EtsyConnector]:
    built = make_connector()
    yield built
    built.close()


def single(double: EtsyDouble, sku: str, price: str, quantity: int, state: str = "active") -> int:
    return double.sandbox.add_listing(
        double.seeded.shop_id,
        [{"sku": sku, "price": Decimal(price), "quantity": quantity}],
        title=f"Listing {sku}",
        state=state,
    )


def sized(double: EtsyDouble, price: str = "20.00", *, price_varies: bool = True) -> int:
    """A tee in three sizes whose quantity (and, unless told, price) varies by size."""
    products = [
        {
            "sku": f"TEE-{size}",
            "price": Decimal(price),
            "quantity": 5,
            "property_values": [
                {
                    "property_id": SIZE_PROPERTY,
                    "property_name": "Size",
                    "scale_id": 17,
                    "value_ids": [3000 + index],
                    "values": [size],
                }
            ],
        }
        for index, size in enumerate(SIZES)
    ]
    return double.sandbox.add_listing(
        double.seeded.shop_id,
        products,
        title="Sized tee",
        quantity_on_property=[SIZE_PROPERTY],
        sku_on_property=[SIZE_PROPERTY],
        price_on_property=[SIZE_PROPERTY] if price_varies else [],
    )


def raw_prices(double: EtsyDouble, write: int = -1) -> list[str]:
    """The price number tokens exactly as the connector sent them."""
    return re.findall(r'"price":\s*([^,}\]]+)', double.sandbox.inventory_writes[write]["raw"])


class TestQuantityAndPriceInOneWrite:
    def test_a_level_with_a_price_sets_both_in_one_write(
        self, double: EtsyDouble, connector: EtsyConnector
    ) -> None:
        listing_id = single(double, "P-1", "12.50", 3)
        item = stock_item_id(str(listing_id))
        connector.set_stock_levels(
            double.shop(), [StockLevel(item, 7, price=Decimal("14.99"))], idempotency_key="p1"
        )
        assert double.sandbox.calls_by_listing[listing_id] == 2  # one read, one write
        assert len(double.sandbox.inventory_writes) == 1
        assert double.sandbox.state_changes == []
        assert double.sandbox.stock(listing_id) == 7
        assert double.sandbox.price(listing_id) == Decimal("14.99")
        assert raw_prices(double) == ["14.99"]
        assert double.sandbox.price_changes == [
            PriceChange(listing_id, "P-1", Decimal("12.50"), Decimal("14.99"))
        ]

    def test_a_price_only_change_is_written_and_then_not_again(
        self, double: EtsyDouble, connector: EtsyConnector
    ) -> None:
        listing_id = single(double, "P-2", "12.50", 3)
        level = StockLevel(stock_item_id(str(listing_id)), 3, price=Decimal("13.00"))
        connector.set_stock_levels(double.shop(), [level], idempotency_key="p2")
        assert len(double.sandbox.inventory_writes) == 1
        assert double.sandbox.price(listing_id) == Decimal("13.00")
        assert double.sandbox.stock(listing_id) == 3
        connector.set_stock_levels(double.shop(), [level], idempotency_key="p2-again")
        assert len(double.sandbox.inventory_writes) == 1  # equal now: nothing to write

    def test_no_price_leaves_the_remote_price_as_it_is(
        self, double: EtsyDouble, connector: EtsyConnector
    ) -> None:
        listing_id = single(double, "P-3", "12.50", 3)
        connector.set_stock_levels(
            double.shop(), [StockLevel(stock_item_id(str(listing_id)), 8)], idempotency_key="p3"
        )
        assert double.sandbox.stock(listing_id) == 8
        assert double.sandbox.price(listing_id) == Decimal("12.50")
        assert raw_prices(double) == ["12.50"]  # written back as read: 1250 of 100
        assert double.sandbox.price_changes == []

    def test_a_price_change_on_a_listing_that_cannot_sell_keeps_its_state(
        self, double: EtsyDouble, connector: EtsyConnector
    ) -> None:
        """Zero for an inactive listing writes nothing, unless a price changes: then the price
        is written and the listing stays inactive."""
        listing_id = single(double, "P-4", "12.50", 2, state="inactive")
        item = stock_item_id(str(listing_id))
        connector.set_stock_levels(double.shop(), [StockLevel(item, 0)], idempotency_key="p4a")
        assert double.sandbox.inventory_writes == []
        connector.set_stock_levels(
            double.shop(), [StockLevel(item, 0, price=Decimal("9.00"))], idempotency_key="p4b"
        )
        assert len(double.sandbox.inventory_writes) == 1
        assert double.sandbox.price(listing_id) == Decimal("9.00")
        assert double.sandbox.listing_state(listing_id) == "inactive"
        assert double.sandbox.state_changes == []
        assert connector.read_stock_levels(double.shop(), [item]) == {item: 0}

    def test_zero_with_a_price_deactivates_and_keeps_the_new_price(
        self, double: EtsyDouble, connector: EtsyConnector
    ) -> None:
        listing_id = single(double, "P-5", "12.50", 2)
        connector.set_stock_levels(
            double.shop(),
            [StockLevel(stock_item_id(str(listing_id)), 0, price=Decimal("11.25"))],
            idempotency_key="p5",
        )
        assert double.sandbox.listing_state(listing_id) == "inactive"
        assert double.sandbox.offering(listing_id)["quantity"] == 1  # parked
        assert double.sandbox.price(listing_id) == Decimal("11.25")
        assert len(double.sandbox.inventory_writes) == 1


class TestExactDigits:
    @pytest.mark.parametrize(
        ("price", "token"),
        [
            (Decimal("19.99"), "19.99"),
            (Decimal("0.50"), "0.50"),
            (Decimal("1234.56"), "1234.56"),
            (Decimal("0.10"), "0.10"),
            (Decimal("45000.01"), "45000.01"),
            (Decimal("2E+1"), "20"),
        ],
    )
    def test_the_price_is_sent_as_its_own_digits_and_read_back_exactly(
        self, double: EtsyDouble, connector: EtsyConnector, price: Decimal, token: str
    ) -> None:
        listing_id = single(double, "EXACT", "3.00", 4)
        connector.set_stock_levels(
            double.shop(),
            [StockLevel(stock_item_id(str(listing_id)), 4, price=price)],
            idempotency_key=f"exact-{price}",
        )
        assert raw_prices(double) == [token]
        assert double.sandbox.price(listing_id) == price
        assert str(double.sandbox.price(listing_id)) == str(price.quantize(Decimal("0.01")))
        variants = connector.list_listings(double.shop()).variants
        assert [v.price for v in variants if v.sku == "EXACT"] == [price]

    def test_a_currency_without_minor_units(self, double: EtsyDouble) -> None:
        yen = double.sandbox.add_shop(currency="JPY", divisor=1)
        listing_id = double.sandbox.add_listing(
            yen.shop_id, [{"sku": "YEN", "price": Decimal("1200"), "quantity": 2}]
        )
        shop = ShopContext(
            shop_id=2,
            external_id=str(yen.shop_id),
            credentials=double.sandbox.credentials(yen.shop_id),
            api_base_url=double.base_url,
        )
        connector = make_connector()
        item = stock_item_id(str(listing_id))
        connector.set_stock_levels(
            shop, [StockLevel(item, 2, price=Decimal("1500"))], idempotency_key="yen"
        )
        assert raw_prices(double) == ["1500"]
        assert double.sandbox.price(listing_id) == Decimal("1500")
        with pytest.raises(PermanentError, match=r"1500\.5 has more places .*1/1"):
            connector.set_stock_levels(
                shop, [StockLevel(item, 2, price=Decimal("1500.5"))], idempotency_key="yen2"
            )
        assert len(double.sandbox.inventory_writes) == 1
        connector.close()


class TestSeveralSkus:
    def test_several_skus_with_different_prices_in_one_write(
        self, double: EtsyDouble, connector: EtsyConnector
    ) -> None:
        listing_id = sized(double)
        wanted = {
            "TEE-S": (4, Decimal("18.00")),
            "TEE-M": (0, Decimal("20.50")),
            "TEE-L": (6, Decimal("22.99")),
        }
        levels = [
            StockLevel(stock_item_id(str(listing_id), sku), quantity, price=price)
            for sku, (quantity, price) in wanted.items()
        ]
        connector.set_stock_levels(double.shop(), levels, idempotency_key="sizes")
        assert len(double.sandbox.inventory_writes) == 1
        assert double.sandbox.calls_by_listing[listing_id] == 2
        assert raw_prices(double) == ["18.00", "20.50", "22.99"]
        for sku, (quantity, price) in wanted.items():
            offering = double.sandbox.offering(listing_id, sku)
            assert (offering["quantity"], offering["is_enabled"]) == (quantity, quantity > 0)
            assert double.sandbox.price(listing_id, sku) == price
        assert [(c.sku, c.after) for c in double.sandbox.price_changes] == [
            (sku, price) for sku, (_, price) in wanted.items()
        ]
        variants = {v.sku: v.price for v in connector.list_listings(double.shop()).variants}
        assert variants == {sku: price for sku, (_, price) in wanted.items()}

    def test_one_sku_repriced_leaves_the_others_alone(
        self, double: EtsyDouble, connector: EtsyConnector
    ) -> None:
        listing_id = sized(double)
        item = stock_item_id(str(listing_id), "TEE-M")
        connector.set_stock_levels(
            double.shop(), [StockLevel(item, 5, price=Decimal("21.00"))], idempotency_key="m"
        )
        prices = {sku: double.sandbox.price(listing_id, f"TEE-{sku}") for sku in SIZES}
        assert prices == {"S": Decimal("20.00"), "M": Decimal("21.00"), "L": Decimal("20.00")}
        assert [c.sku for c in double.sandbox.price_changes] == ["TEE-M"]

    def test_the_later_level_of_a_sku_wins_and_a_priceless_one_keeps_the_price(
        self, double: EtsyDouble, connector: EtsyConnector
    ) -> None:
        listing_id = sized(double)
        item = stock_item_id(str(listing_id), "TEE-S")
        levels = [StockLevel(item, 1, price=Decimal("15.00")), StockLevel(item, 2)]
        connector.set_stock_levels(double.shop(), levels, idempotency_key="later")
        assert double.sandbox.stock(listing_id, "TEE-S") == 2
        assert double.sandbox.price(listing_id, "TEE-S") == Decimal("15.00")

    def test_a_listing_whose_price_does_not_vary_keeps_one_price(
        self, double: EtsyDouble, connector: EtsyConnector
    ) -> None:
        listing_id = sized(double, price_varies=False)
        small = stock_item_id(str(listing_id), "TEE-S")
        with pytest.raises(PermanentError, match="price does not vary by property"):
            connector.set_stock_levels(
                double.shop(), [StockLevel(small, 5, price=Decimal("25.00"))], idempotency_key="v"
            )
        assert double.sandbox.inventory_writes == []
        levels = [
            StockLevel(stock_item_id(str(listing_id), f"TEE-{size}"), 5, price=Decimal("25.00"))
            for size in SIZES
        ]
        connector.set_stock_levels(double.shop(), levels, idempotency_key="all")
        assert {double.sandbox.price(listing_id, f"TEE-{s}") for s in SIZES} == {Decimal("25")}
        assert len(double.sandbox.inventory_writes) == 1


class TestRefusedBeforeSending:
    def test_a_too_precise_price_is_refused_before_any_call(
        self, double: EtsyDouble, connector: EtsyConnector
    ) -> None:
        listing_id = single(double, "PRECISE", "12.50", 3)
        item = stock_item_id(str(listing_id))
        connector.set_stock_levels(double.shop(), [StockLevel(item, 4)], idempotency_key="warm")
        double.sandbox.reset_counters()  # the inventory is cached now (read or written < 1 min)
        with pytest.raises(PermanentError, match=r"19\.999 has more places .*1/100"):
            connector.set_stock_levels(
                double.shop(), [StockLevel(item, 5, price=Decimal("19.999"))], idempotency_key="x"
            )
        assert double.sandbox.requests == 0
        assert double.sandbox.price(listing_id) == Decimal("12.50")
        assert double.sandbox.stock(listing_id) == 4

    def test_cold_the_divisor_is_read_and_nothing_is_written(
        self, double: EtsyDouble, connector: EtsyConnector
    ) -> None:
        """The divisor is Etsy's (Money), never assumed: a cold push reads it, then refuses."""
        listing_id = sized(double)
        levels = [
            StockLevel(stock_item_id(str(listing_id), "TEE-S"), 1, price=Decimal("10.00")),
            StockLevel(stock_item_id(str(listing_id), "TEE-M"), 1, price=Decimal("10.005")),
        ]
        with pytest.raises(PermanentError, match="TEE-M"):
            connector.set_stock_levels(double.shop(), levels, idempotency_key="cold")
        assert double.sandbox.calls_by_listing[listing_id] == 1  # the read only
        assert double.sandbox.inventory_writes == []
        assert double.sandbox.price(listing_id, "TEE-S") == Decimal("20.00")

    @pytest.mark.parametrize("price", [Decimal("0"), Decimal("-1.00"), Decimal("NaN")])
    def test_a_price_no_currency_takes_is_refused_before_any_call(
        self, double: EtsyDouble, connector: EtsyConnector, price: Decimal
    ) -> None:
        listing_id = single(double, "BAD", "12.50", 3)
        with pytest.raises(PermanentError, match="positive number"):
            connector.set_stock_levels(
                double.shop(),
                [StockLevel(stock_item_id(str(listing_id)), 3, price=price)],
                idempotency_key="bad",
            )
        assert double.sandbox.requests == 0


class TestTheSandboxChecksPricesLikeEtsy:
    def test_prices_must_be_positive_whole_minor_units_and_one_where_they_do_not_vary(
        self, double: EtsyDouble
    ) -> None:
        listing_id = sized(double, price_varies=False)
        path = f"{double.base_url}/v3/application/listings/{listing_id}/inventory"
        headers = {
            "authorization": f"Bearer {double.seeded.access_token}",
            "x-api-key": f"{KEYSTRING}:{SHARED_SECRET}",
            "content-type": "application/json",
        }

        def body(*prices: str) -> bytes:
            products = [
                {
                    "sku": f"TEE-{size}",
                    "property_values": [
                        {"property_id": SIZE_PROPERTY, "value_ids": [3000 + n], "values": [size]}
                    ],
                    "offerings": [
                        {
                            "price": Decimal(price),
                            "quantity": 1,
                            "is_enabled": True,
                            "readiness_state_id": None,
                        }
                    ],
                }
                for n, (size, price) in enumerate(zip(SIZES, prices, strict=True))
            ]
            return encode_json({"quantity_on_property": [SIZE_PROPERTY], "products": products})

        with httpx.Client(headers=headers) as client:
            refused = {
                "float": client.put(path, content=body(*["19.990000000000002"] * 3)),
                "zero": client.put(path, content=body("0", "0", "0")),
                "differ": client.put(path, content=body("1.00", "2.00", "1.00")),
            }
            assert b'"price":19.990000000000002,' in body(*["19.990000000000002"] * 3)
            assert {k: r.status_code for k, r in refused.items()} == dict.fromkeys(refused, 400)
            assert "more decimals" in refused["float"].json()["error"]
            assert "positive" in refused["zero"].json()["error"]
            assert "price_on_property" in refused["differ"].json()["error"]
            assert double.sandbox.inventory_writes == []
            written = client.put(path, content=body("19.99", "19.99", "19.99"))
        assert written.status_code == 200
        prices = {double.sandbox.price(listing_id, f"TEE-{size}") for size in SIZES}
        assert prices == {Decimal("19.99")}

    def test_receipts_keep_their_own_prices(
        self, double: EtsyDouble, connector: EtsyConnector
    ) -> None:
        """A price change affects new orders only."""
        listing_id = single(double, "RCPT", "12.50", 5)
        receipt_id = double.sandbox.add_receipt(
            double.seeded.shop_id,
            [{"listing_id": listing_id, "sku": "RCPT", "quantity": 2, "price": Decimal("12.50")}],
        )
        connector.set_stock_levels(
            double.shop(),
            [StockLevel(stock_item_id(str(listing_id)), 5, price=Decimal("15.00"))],
            idempotency_key="r",
        )
        order = connector.get_order(double.shop(), str(receipt_id))
        assert [line.unit_price for line in order.lines] == [Decimal("12.50")]
        assert double.sandbox.price(listing_id) == Decimal("15.00")


class TestEncodeJson:
    def test_decimals_are_number_tokens_of_their_own_digits(self) -> None:
        document = {
            "products": [{"sku": "Ä", "offerings": [{"price": Decimal("0.50"), "q": 1}]}],
            "flags": [True, False, None],
            "big": Decimal("1234567890123456789.01"),
            "tiny": Decimal("1E-7"),
        }
        assert (
            encode_json(document)
            == (
                '{"products":[{"sku":"Ä","offerings":[{"price":0.50,"q":1}]}],'
                '"flags":[true,false,null],"big":1234567890123456789.01,"tiny":0.0000001}'
            ).encode()
        )

    @pytest.mark.parametrize(
        "value", [Decimal("NaN"), Decimal("Infinity"), float("nan"), {1: "x"}, object()]
    )
    def test_what_json_cannot_say_is_refused(self, value: object) -> None:
        with pytest.raises((TypeError, ValueError)):
            encode_json({"price": value})
