"""Money round trips, exactly, in every format a marketplace reads or writes.

For every amount quantized to its currency's minor unit (ISO 4217 exponent: 2 places for USD,
0 for JPY, 3 for KWD), in every currency the hub prices in:

* Shopify: a decimal string (``Decimal`` scalar), alone or as ``MoneyV2 {amount, currencyCode}``
  inside a ``MoneyBag {shopMoney, presentmentMoney}``, is read back exactly; our price strings
  (``format(d, "f")``) too.
* Etsy: ``Money {amount, divisor, currency_code}`` is exactly ``amount / divisor``; the JSON
  numbers ``encode_json`` writes (inventory prices) decode to the same Decimal.
* WooCommerce: decimal strings and JSON numbers (``decode_json``, so ``parse_float=Decimal``)
  are read exactly; the unit price ``subtotal / quantity`` is exact when the subtotal is a
  whole number of units; ``regular_price`` strings round trip.
* ``hub.domain.pricing``: ``from_minor_units(to_minor_units(x)) == x`` and back.

"Exactly" means the same number *and* the same digits (``Decimal.as_tuple``): 12.10 stays
12.10, not 12.1, so what we store, compare and show is what the marketplace sent.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from connectors.contract import PriceLevel, StockLevel
from connectors.etsy import mappers as etsy
from connectors.etsy import stock as etsy_stock
from connectors.etsy.client import encode_json
from connectors.http import decode_json
from connectors.shopify import mappers as shopify
from connectors.woocommerce import mappers as woo
from hub.domain import pricing
from hub.domain.errors import InvalidInput

PROPERTY = settings(max_examples=200)

CURRENCIES = sorted(pricing.MINOR_DIGITS)
# Connectors refuse amounts from 10**14 up (connectors.scalars.MAX_AMOUNT); pricing from 10**12.
CONNECTOR_LIMIT = 10**14
PRICING_LIMIT = 10**12


@st.composite
def amounts(
    draw: st.DrawFn, *, limit: int = CONNECTOR_LIMIT, signed: bool = True
) -> tuple[Decimal, str]:
    """``(amount, currency)``: an amount quantized to the currency's minor unit, as
    ``Decimal(units).scaleb(-places)`` (the exponent is exactly ``-places``)."""
    currency = draw(st.sampled_from(CURRENCIES))
    places = pricing.minor_digits(currency)
    bound = limit * 10**places - 1
    units = draw(
        st.one_of(
            st.integers(min_value=-bound if signed else 0, max_value=bound),
            st.sampled_from([0, 1, 10, 99, 100, 101, 1999, bound]),
        )
    )
    amount = Decimal(units).scaleb(-places)
    assert amount == amount.quantize(pricing.minor_unit(currency))
    return amount, currency


def same(read: Any, sent: Decimal) -> None:
    """Equal as numbers and written with the same digits."""
    assert isinstance(read, Decimal)
    assert read == sent
    assert read.as_tuple() == sent.as_tuple(), (read, sent)


# --------------------------------------------------------------------------------------------
# Shopify
# --------------------------------------------------------------------------------------------


@PROPERTY
@given(amounts())
@example((Decimal("0.00"), "USD"))
@example((Decimal("99999999999999.999"), "KWD"))
def test_shopify_decimal_strings(money: tuple[Decimal, str]) -> None:
    amount, _ = money
    text = shopify.money_string(amount)
    assert text == format(amount, "f")
    assert "E" not in text.upper()
    same(shopify.money(text), amount)
    # the price input of productVariantsBulkUpdate carries the same string
    level = PriceLevel(item_id="gid://shopify/ProductVariant/1", listing_id="p", price=amount)
    same(shopify.money(shopify.variants_price_input([level])[0]["price"]), amount)


def shopify_order(
    total: Decimal, presentment: Decimal, unit: Decimal, shop: str, buyer: str
) -> dict[str, Any]:
    """A minimal ``Order`` node whose money is ``MoneyBag``s of ``MoneyV2``s, as JSON gives
    them (the amounts as strings, ``Decimal`` scalar)."""

    def bag(shop_amount: Decimal, presentment_amount: Decimal) -> dict[str, Any]:
        return {
            "shopMoney": {"amount": format(shop_amount, "f"), "currencyCode": shop},
            "presentmentMoney": {"amount": format(presentment_amount, "f"), "currencyCode": buyer},
        }

    return {
        "id": "gid://shopify/Order/1",
        "name": "#1001",
        "createdAt": "2026-03-01T10:00:00Z",
        "updatedAt": "2026-03-01T10:00:00Z",
        "currentTotalPriceSet": bag(total, presentment),
        "lineItems": {
            "nodes": [
                {
                    "id": "gid://shopify/LineItem/1",
                    "currentQuantity": 1,
                    "originalUnitPriceSet": bag(unit, presentment),
                }
            ]
        },
    }


@PROPERTY
@given(amounts(), amounts(), amounts())
def test_shopify_money_bags(
    total: tuple[Decimal, str], presentment: tuple[Decimal, str], unit: tuple[Decimal, str]
) -> None:
    node = shopify_order(total[0], presentment[0], unit[0], total[1], presentment[1])
    order = shopify.map_order(node, shop_id=1)
    same(order.total, total[0])
    assert order.currency == total[1]
    same(order.total_presentment, presentment[0])
    assert order.presentment_currency == presentment[1]
    same(order.lines[0].unit_price, unit[0])
    same(order.lines[0].unit_price_presentment, presentment[0])


# --------------------------------------------------------------------------------------------
# Etsy
# --------------------------------------------------------------------------------------------


def etsy_money(amount: Decimal, currency: str) -> dict[str, Any]:
    """``Money`` as Etsy sends it: the amount in minor units over a power-of-ten divisor."""
    places = pricing.minor_digits(currency)
    return {"amount": int(amount.scaleb(places)), "divisor": 10**places, "currency_code": currency}


@PROPERTY
@given(amounts())
@example((Decimal("16.41"), "EUR"))
@example((Decimal("0.10"), "USD"))
@example((Decimal("1200"), "JPY"))
def test_etsy_money_objects(money: tuple[Decimal, str]) -> None:
    amount, currency = money
    document = etsy_money(amount, currency)
    same(etsy.money(document), amount)
    assert etsy.currency(document, what="price") == currency
    # the same Money through the JSON Etsy sends (integers stay integers)
    same(etsy.money(decode_json(encode_json(document))), amount)


@PROPERTY
@given(
    st.integers(min_value=-(10**9), max_value=10**9),
    st.sampled_from([1, 2, 4, 5, 8, 20, 25, 40, 50, 125, 1000]),
)
def test_etsy_money_with_other_divisors_is_exact_or_refused(amount: int, divisor: int) -> None:
    """The divisor is whatever Etsy says: ``amount / divisor`` exactly, or a refusal."""
    try:
        value = etsy.money({"amount": amount, "divisor": divisor, "currency_code": "USD"})
    except etsy.EtsyPayloadError:
        pytest.fail(f"{amount}/{divisor} terminates in decimal and must be read")
    assert value * divisor == amount


def terminates(fraction: Fraction) -> bool:
    """Whether the fraction has a finite decimal expansion (its denominator is 2^a 5^b)."""
    denominator = fraction.denominator
    for prime in (2, 5):
        while denominator % prime == 0:
            denominator //= prime
    return denominator == 1


@PROPERTY
@given(st.integers(min_value=-(10**9), max_value=10**9), st.sampled_from([3, 6, 7, 9, 11, 30]))
@example(3, 30)  # 0.1: a divisor that is no power of ten can still divide exactly
@example(10, 3)
def test_etsy_money_never_rounds(amount: int, divisor: int) -> None:
    """A Money that has no exact decimal value is refused, never rounded."""
    try:
        value = etsy.money({"amount": amount, "divisor": divisor, "currency_code": "USD"})
    except etsy.EtsyPayloadError:
        assert not terminates(Fraction(amount, divisor))
        return
    assert value * divisor == amount
    assert Fraction(value) == Fraction(amount, divisor)


@PROPERTY
@given(amounts(signed=False))
def test_etsy_outbound_json_numbers(money: tuple[Decimal, str]) -> None:
    """Inventory prices are written by ``encode_json`` as number tokens of their own digits,
    and read back (``decode_json``) as the same Decimal; a read Money price written back
    unchanged (``offering_price``) is that same number."""
    amount, currency = money
    body = encode_json({"price": amount, "products": [{"offerings": [{"price": amount}]}]})
    decoded = decode_json(body)
    token = body.decode().split('"price":', 1)[1].split(",", 1)[0]
    assert token == format(amount, "f")
    if pricing.minor_digits(currency) == 0:
        assert decoded["price"] == amount  # "1200" decodes as the int 1200
    else:
        same(decoded["price"], amount)
    read = etsy_stock.offering_price(etsy_money(amount, currency), what="price")
    same(read, amount)
    assert encode_json(read) == format(amount, "f").encode()


# --------------------------------------------------------------------------------------------
# WooCommerce
# --------------------------------------------------------------------------------------------


@PROPERTY
@given(amounts())
@example((Decimal("29.35"), "USD"))
def test_woocommerce_strings_and_numbers(money: tuple[Decimal, str]) -> None:
    amount, currency = money
    text = format(amount, "f")
    same(woo.money(text), amount)
    same(woo.money(f" {text} "), amount)
    # a JSON number (a line's price, or a total a plugin sends unquoted): exact via decode_json
    number = decode_json(('{"price": ' + text + "}").encode())["price"]
    assert woo.money(number) == amount
    if pricing.minor_digits(currency) > 0:  # "1200" decodes as the int 1200, "12.00" exactly
        same(woo.money(number), amount)
    same(woo.exact_amount(woo.money(text), currency), amount)
    # outbound: regular_price as WooCommerce documents it, a decimal string
    same(woo.money(woo.price_text(amount)), amount)
    level = StockLevel(item_id="93:95", quantity=1, price=amount)
    same(woo.money(woo.batch_requests([level])[93][0]["regular_price"]), amount)


@PROPERTY
@given(amounts(limit=10**11, signed=False), st.integers(min_value=1, max_value=999))
@example((Decimal("10.00"), "USD"), 3)
def test_woocommerce_unit_price_is_exact(money: tuple[Decimal, str], quantity: int) -> None:
    """A line's unit price is ``subtotal / quantity`` at the minor unit: exact whenever the
    subtotal is a whole number of units (WooCommerce multiplies the unit price out), whether
    the subtotal comes as a string or as a JSON number."""
    unit, currency = money
    subtotal = unit * quantity
    for sent in (format(subtotal, "f"), decode_json(format(subtotal, "f").encode())):
        line = woo.map_line(
            {"id": 7, "quantity": quantity, "subtotal": sent}, currency=currency, refunded=0
        )
        same(line.unit_price, unit)


def test_minor_units_agree_between_tables() -> None:
    """WooCommerce's own table of minor units says what ``hub.domain.pricing`` says, for every
    currency the hub prices in: one wrong exponent lists a price 100 times off."""
    for currency in CURRENCIES:
        assert woo.minor_unit(currency) == pricing.minor_unit(currency), currency


# --------------------------------------------------------------------------------------------
# hub.domain.pricing: the exact bridges to integer minor units
# --------------------------------------------------------------------------------------------


@PROPERTY
@given(amounts(limit=PRICING_LIMIT))
@example((Decimal("12.34"), "USD"))
@example((Decimal("-0.001"), "KWD"))
def test_minor_units_round_trip(money: tuple[Decimal, str]) -> None:
    amount, currency = money
    units = pricing.to_minor_units(amount, currency)
    assert isinstance(units, int)
    same(pricing.from_minor_units(units, currency), amount)
    assert pricing.to_minor_units(pricing.from_minor_units(units, currency), currency) == units


@PROPERTY
@given(amounts(limit=PRICING_LIMIT), st.integers(min_value=1, max_value=9))
def test_finer_than_the_minor_unit_is_refused(money: tuple[Decimal, str], digit: int) -> None:
    amount, currency = money
    finer = amount + Decimal(digit).scaleb(-pricing.minor_digits(currency) - 1)
    with pytest.raises(InvalidInput, match="finer than the minor unit"):
        pricing.to_minor_units(finer, currency)


def test_huge_amount_is_refused_as_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        pricing.to_minor_units(Decimal("1E+999999999"), "USD")


# --------------------------------------------------------------------------------------------
# hub.domain.pricing: any Decimal, however large or fine its exponent
# --------------------------------------------------------------------------------------------

EXTREME_EXPONENT = 999_999_999  # past the default context's Emax/Emin (999999), both ways
EXTREMES = [
    "1E+999999999",
    "-1E+999999999",
    "1E-999999999",
    "-1E-999999999",
    "0E+999999999",
    "0E-999999999",
    "-0E+999999999",
    "9.99E+999999",
    "1E-1000000",
    "999999999999.999999999999999999",  # 30 digits: abs() in 28 digits rounded it to 10**12
]

extreme_decimals = st.one_of(
    st.sampled_from([Decimal(text) for text in EXTREMES]),
    st.builds(
        lambda sign, digits, exponent: Decimal((sign, tuple(digits), exponent)),
        st.integers(0, 1),
        st.lists(st.integers(0, 9), min_size=1, max_size=40),
        st.one_of(
            st.integers(-EXTREME_EXPONENT, EXTREME_EXPONENT),
            st.integers(-2 * pricing.MAX_PLACES, 2 * pricing.MAX_PLACES),
        ),
    ),
)


def refused_or_in_range(call: Callable[[], object], value: Decimal) -> None:
    """The call answers, or refuses with the domain's ``InvalidInput``: never a
    ``decimal.Overflow``/``Inexact``/``InvalidOperation`` (an ``ArithmeticError``, a 500)."""
    try:
        call()
    except InvalidInput:
        return
    assert value.is_zero() or value.copy_abs() < pricing.MAX_MAGNITUDE


def entry_points(value: Decimal, currency: str) -> list[Callable[[], object]]:
    """Every public function and constructor of ``hub.domain.pricing`` taking an amount."""
    rule = pricing.PriceRule(currency, currency, Decimal(1))
    calls: list[Callable[[], object]] = [
        lambda: pricing.to_minor_units(value, currency),
        lambda: pricing.quantize(value, currency),
        lambda: pricing.quantize_up(value, currency),
        lambda: pricing.converted(value, rule),
        lambda: pricing.margin_floor(value, rule),
        lambda: pricing.BasePrice(1, "SKU", value, value, currency),
        lambda: pricing.PriceRule(currency, "USD", value),
        lambda: pricing.PriceRule(currency, currency, Decimal(1), markup_percent=value),
        lambda: pricing.PriceRule(currency, currency, Decimal(1), markup_fixed=value),
        lambda: pricing.PriceRule(currency, currency, Decimal(1), fee_percent=value),
        lambda: pricing.PriceRule(currency, currency, Decimal(1), fee_fixed=value),
    ]
    calls.extend(
        functools.partial(pricing.round_price, value, rounding, currency)
        for rounding in pricing.Rounding
    )
    return calls


@PROPERTY
@given(extreme_decimals, st.sampled_from(CURRENCIES))
def test_any_decimal_is_priced_or_refused_as_invalid_input(value: Decimal, currency: str) -> None:
    for call in entry_points(value, currency):
        refused_or_in_range(call, value)


@PROPERTY
@given(
    st.one_of(
        st.integers(),
        st.integers(min_value=0, max_value=5000).map(lambda digits: 10**digits),
        st.integers(min_value=0, max_value=5000).map(lambda digits: -(10**digits) + 1),
    ),
    st.sampled_from(CURRENCIES),
)
def test_any_count_of_minor_units_is_converted_or_refused(units: int, currency: str) -> None:
    """``from_minor_units`` takes what ``to_minor_units`` gives back; any larger count is
    refused, never rounded by the exact context (``decimal.Inexact``)."""
    bound = int(pricing.MAX_MAGNITUDE) * 10 ** pricing.minor_digits(currency)
    if abs(units) >= bound:
        with pytest.raises(InvalidInput, match="out of range"):
            pricing.from_minor_units(units, currency)
        return
    assert pricing.to_minor_units(pricing.from_minor_units(units, currency), currency) == units
