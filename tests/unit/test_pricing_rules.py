"""The pricing domain: currencies, rounding rules, the margin floor and what a change decides."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.domain.errors import InvalidInput
from hub.domain.pricing import (
    MINOR_DIGITS,
    BasePrice,
    MarginFloorBroken,
    PriceQuote,
    PriceRule,
    Rounding,
    check_rule,
    decide_price,
    from_minor_units,
    margin_floor,
    minor_digits,
    minor_unit,
    quantize,
    quantize_up,
    quote,
    round_price,
    rounding_step,
    to_minor_units,
)

D = Decimal


def base(cost: str = "10.00", retail: str = "19.99", *, currency: str = "USD") -> BasePrice:
    return BasePrice(
        variant_id=17, sku="TEE-BLK-M", cost=D(cost), retail=D(retail), currency=currency
    )


def rule(**overrides: Any) -> PriceRule:
    fields: dict[str, Any] = {
        "currency": "USD",
        "base_currency": "USD",
        "conversion_rate": D(1),
        "markup_percent": D(0),
        "markup_fixed": D(0),
        "fee_percent": D(0),
        "fee_fixed": D(0),
        "rounding": Rounding.NONE,
    }
    fields.update(overrides)
    return PriceRule(**fields)


class TestCurrencies:
    @pytest.mark.parametrize(
        ("currency", "digits"),
        [("USD", 2), ("EUR", 2), ("CZK", 2), ("JPY", 0), ("KRW", 0), ("KWD", 3), ("TND", 3)],
    )
    def test_minor_digits_follow_iso_4217(self, currency: str, digits: int) -> None:
        assert minor_digits(currency) == digits
        assert minor_unit(currency) == D(1).scaleb(-digits)

    def test_unknown_code_is_refused_with_the_code(self) -> None:
        with pytest.raises(InvalidInput, match="'XYZ' is not a known ISO 4217 code"):
            minor_digits("XYZ")

    def test_lower_case_code_suggests_the_upper_case_one(self) -> None:
        with pytest.raises(InvalidInput, match="did you mean 'USD'"):
            minor_digits("usd")

    def test_quantize_rounds_half_up_and_quantize_up_ceils(self) -> None:
        assert quantize(D("12.345"), "USD") == D("12.35")
        assert quantize(D("12.344"), "USD") == D("12.34")
        assert quantize(D("1234.5"), "JPY") == D("1235")
        assert quantize(D("1.2345"), "KWD") == D("1.235")
        assert quantize_up(D("12.341"), "USD") == D("12.35")
        assert quantize_up(D("12.340"), "USD") == D("12.34")
        assert quantize_up(D("1234.01"), "JPY") == D("1235")

    def test_minor_units_are_exact_both_ways(self) -> None:
        assert to_minor_units(D("12.34"), "USD") == 1234
        assert to_minor_units(D("12.3"), "USD") == 1230
        assert to_minor_units(D("1200"), "JPY") == 1200
        assert to_minor_units(D("1.234"), "KWD") == 1234
        assert from_minor_units(1234, "USD") == D("12.34")
        assert str(from_minor_units(1234, "KWD")) == "1.234"
        assert str(from_minor_units(1200, "JPY")) == "1200"

    def test_minor_units_refuse_an_amount_finer_than_the_unit(self) -> None:
        with pytest.raises(InvalidInput, match=r"12\.345 USD is finer than the minor unit"):
            to_minor_units(D("12.345"), "USD")
        with pytest.raises(InvalidInput, match="finer than the minor unit"):
            to_minor_units(D("1200.5"), "JPY")

    def test_floats_are_a_type_error_everywhere(self) -> None:
        with pytest.raises(TypeError, match="never from a float"):
            quantize(12.5, "USD")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="never from a float"):
            to_minor_units(12.5, "USD")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            from_minor_units(12.5, "USD")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="cost must be a Decimal"):
            BasePrice(1, "A", 10.0, D("20"), "USD")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="conversion_rate must be a Decimal"):
            rule(conversion_rate=1.0)


class TestRounding:
    @pytest.mark.parametrize(
        ("amount", "expected"),
        [("12.00", "12.99"), ("12.99", "12.99"), ("13.00", "13.99"), ("12.991", "13.99"),
         ("0.01", "0.99"), ("12.5", "12.99")],
    )  # fmt: skip
    def test_to_99_is_the_smallest_99_ending_not_below(self, amount: str, expected: str) -> None:
        assert round_price(D(amount), Rounding.TO_99, "USD") == D(expected)

    @pytest.mark.parametrize(
        ("amount", "expected"),
        [("12.00", "12.95"), ("12.95", "12.95"), ("12.96", "13.95"), ("13.00", "13.95")],
    )
    def test_to_95_is_the_smallest_95_ending_not_below(self, amount: str, expected: str) -> None:
        assert round_price(D(amount), Rounding.TO_95, "EUR") == D(expected)

    def test_whole_ceils_to_a_unit_and_keeps_the_currency_places(self) -> None:
        assert str(round_price(D("12.01"), Rounding.WHOLE, "USD")) == "13.00"
        assert str(round_price(D("12.00"), Rounding.WHOLE, "USD")) == "12.00"
        assert str(round_price(D("1234.2"), Rounding.WHOLE, "JPY")) == "1235"
        assert str(round_price(D("1.001"), Rounding.WHOLE, "KWD")) == "2.000"

    def test_none_ceils_to_the_minor_unit(self) -> None:
        assert str(round_price(D("12.341"), Rounding.NONE, "USD")) == "12.35"
        assert str(round_price(D("1234.01"), Rounding.NONE, "JPY")) == "1235"
        assert str(round_price(D("1.2341"), Rounding.NONE, "KWD")) == "1.235"

    def test_three_place_currency_ends_in_990_and_950(self) -> None:
        assert str(round_price(D("4.5"), Rounding.TO_99, "KWD")) == "4.990"
        assert str(round_price(D("4.991"), Rounding.TO_99, "KWD")) == "5.990"
        assert str(round_price(D("4.5"), Rounding.TO_95, "BHD")) == "4.950"

    @pytest.mark.parametrize("rounding", [Rounding.TO_99, Rounding.TO_95])
    def test_99_and_95_are_refused_without_cents_and_say_what_to_use(
        self, rounding: Rounding
    ) -> None:
        with pytest.raises(InvalidInput, match="JPY has 0; use 'whole'"):
            round_price(D("1200"), rounding, "JPY")
        with pytest.raises(InvalidInput, match="KRW has 0; use 'whole'"):
            rule(currency="KRW", conversion_rate=D("1350"), rounding=rounding)


class TestRuleValidation:
    def test_rounding_given_as_text_becomes_the_enum(self) -> None:
        assert rule(rounding="to_99").rounding is Rounding.TO_99

    def test_unknown_rounding_is_refused(self) -> None:
        with pytest.raises(InvalidInput, match="rounding 'to_49'"):
            rule(rounding="to_49")

    @pytest.mark.parametrize("fee", ["-1", "100", "150"])
    def test_fee_percent_must_be_in_0_to_100(self, fee: str) -> None:
        with pytest.raises(InvalidInput, match=r"fee_percent .*\[0, 100\)"):
            rule(fee_percent=D(fee))

    def test_negative_markup_is_a_discount_down_to_but_excluding_100(self) -> None:
        assert rule(markup_percent=D("-99.9")).markup_percent == D("-99.9")
        with pytest.raises(InvalidInput, match="markup_percent -100: must be above -100"):
            rule(markup_percent=D(-100))

    def test_rate_must_be_positive(self) -> None:
        with pytest.raises(InvalidInput, match="conversion_rate 0: must be > 0"):
            rule(currency="EUR", conversion_rate=D(0))

    def test_same_currency_converts_at_one(self) -> None:
        with pytest.raises(InvalidInput, match="USD to itself converts at 1"):
            rule(conversion_rate=D("1.1"))

    def test_fixed_amounts_are_not_negative_nor_finer_than_the_minor_unit(self) -> None:
        with pytest.raises(InvalidInput, match=r"fee_fixed -0\.30 USD: must be >= 0"):
            rule(fee_fixed=D("-0.30"))
        with pytest.raises(InvalidInput, match=r"markup_fixed 0\.5 JPY: finer than the minor unit"):
            rule(currency="JPY", conversion_rate=D(150), markup_fixed=D("0.5"))

    def test_base_price_checks_its_amounts(self) -> None:
        with pytest.raises(InvalidInput, match="retail 0 USD: must be > 0"):
            base(retail="0")
        with pytest.raises(InvalidInput, match=r"cost 1\.005 USD: finer than the minor unit"):
            base(cost="1.005")
        with pytest.raises(InvalidInput, match="cost NaN: must be a finite number"):
            base(cost="NaN")
        with pytest.raises(InvalidInput, match="out of range"):
            base(retail="1E+20")

    def test_a_base_price_in_another_currency_is_refused(self) -> None:
        with pytest.raises(InvalidInput, match="base price is in EUR but the rule converts from"):
            quote(base(currency="EUR"), rule())


class TestQuote:
    def test_usd_with_markup_fees_and_99(self) -> None:
        q = quote(
            base("10.00", "19.99"),
            rule(
                markup_percent=D(10),
                markup_fixed=D("1.00"),
                fee_percent=D("6.5"),
                fee_fixed=D("0.20"),
                rounding=Rounding.TO_99,
            ),
        )
        assert q.raw == D("22.989")  # 19.99 * 1.10 + 1.00
        assert q.price == D("22.99")
        assert q.floor == D("10.91")  # (10.00 + 0.20) / 0.935 = 10.9090.. ceiled
        assert not q.below_floor

    def test_converted_to_jpy_with_whole_rounding(self) -> None:
        q = quote(
            base("10.00", "19.99"),
            rule(
                currency="JPY",
                conversion_rate=D("151.37"),
                markup_percent=D(15),
                fee_percent=D(10),
                fee_fixed=D(30),
                rounding=Rounding.WHOLE,
            ),
        )
        assert q.raw == D("3479.769245")  # 19.99 * 151.37 * 1.15
        assert str(q.price) == "3480"
        assert str(q.floor) == "1716"  # (1513.7 + 30) / 0.9 = 1715.22.. ceiled
        assert q.currency == "JPY"

    def test_converted_to_kwd_three_places(self) -> None:
        q = quote(
            base("10.00", "19.99"),
            rule(
                currency="KWD",
                conversion_rate=D("0.3071"),
                fee_percent=D(5),
                fee_fixed=D("0.050"),
                rounding=Rounding.TO_99,
            ),
        )
        assert str(q.price) == "6.990"  # 19.99 * 0.3071 = 6.138929
        assert str(q.floor) == "3.286"  # (3.071 + 0.05) / 0.95 = 3.28526.. ceiled

    def test_rounding_can_lift_a_raw_price_over_the_floor(self) -> None:
        q = quote(base("10.00", "11.05"), rule(fee_percent=D(10), rounding=Rounding.TO_99))
        assert q.raw < q.floor == D("11.12")
        assert q.price == D("11.99")
        assert not q.below_floor

    def test_a_floor_of_the_exact_minor_unit_is_not_raised(self) -> None:
        # (9.00 + 0.00) / (1 - 0.10) = 10.00 exactly: the floor is 10.00, not 10.01
        assert margin_floor(D("9.00"), rule(fee_percent=D(10))) == D("10.00")


class TestCheckRule:
    def test_returns_the_quotes_when_every_variant_clears_the_floor(self) -> None:
        bases = [base(), BasePrice(18, "MUG-WHT", D("4.00"), D("12.00"), "USD")]
        quotes = check_rule(bases, rule(fee_percent=D(5)))
        assert [q.sku for q in quotes] == ["TEE-BLK-M", "MUG-WHT"]

    def test_refusal_names_every_breaking_variant_and_the_numbers(self) -> None:
        bases = [
            base("12.00", "19.99"),
            BasePrice(18, "MUG-WHT", D("4.00"), D("30.00"), "USD"),
            BasePrice(19, "CAP-RED", D("9.00"), D("12.00"), "USD"),
        ]
        new_rule = rule(
            currency="EUR",
            conversion_rate=D("0.92"),
            markup_percent=D(-40),
            fee_percent=D("6.5"),
            fee_fixed=D("0.20"),
            rounding=Rounding.TO_99,
        )
        with pytest.raises(MarginFloorBroken) as caught:
            check_rule(bases, new_rule)
        error = caught.value
        assert error.code == "margin_floor_broken"
        assert isinstance(error, InvalidInput)  # the API answers 422
        assert [q.sku for q in error.broken] == ["TEE-BLK-M", "CAP-RED"]  # all, in order
        message = str(error)
        assert "2 variant(s)" in message
        # tee: 19.99 * 0.92 * 0.6 = 11.03448 -> 11.99; floor (11.04 + 0.20) / 0.935 = 12.021..
        assert (
            "variant 17 (sku TEE-BLK-M): price 11.99 EUR is below the margin floor 12.03 EUR"
            in (message)
        )
        assert "(cost 12.00 USD x rate 0.92 + fee 0.20 EUR) / (1 - fee 6.5%)" in message
        # cap: 12.00 * 0.92 * 0.6 = 6.624 -> 6.99; floor (8.28 + 0.20) / 0.935 = 9.069..
        assert "variant 19 (sku CAP-RED): price 6.99 EUR is below the margin floor 9.07 EUR" in (
            message
        )
        assert "MUG-WHT" not in message  # 16.99 clears its floor of 4.15


class TestDecidePrice:
    def test_a_new_price_that_clears_the_floor_is_taken(self) -> None:
        decision = decide_price(D("22.99"), quote(base("11.00"), rule(rounding=Rounding.TO_99)))
        assert decision.price == D("19.99")
        assert not decision.needs_review
        assert decision.reason is None

    def test_a_cost_rise_past_the_floor_keeps_the_old_price_and_flags_review(self) -> None:
        new = quote(base("19.00", "19.99"), rule(fee_percent=D(10), rounding=Rounding.TO_99))
        assert new.below_floor  # floor 21.12 > 19.99
        decision = decide_price(D("24.99"), new)
        assert decision.price == D("24.99")
        assert decision.needs_review
        assert decision.reason is not None
        assert "sku TEE-BLK-M" in decision.reason
        assert "price 19.99 USD is below the margin floor 21.12 USD" in decision.reason
        assert "kept the listed price 24.99 USD" in decision.reason

    def test_a_rate_change_past_the_floor_keeps_the_old_price(self) -> None:
        # The fixed fee is in the shop currency, so a weaker rate squeezes the margin.
        shop = {"currency": "GBP", "fee_percent": D(15), "fee_fixed": D("2.00")}
        listed = quote(base("14.00", "19.99"), rule(conversion_rate=D("0.79"), **shop))
        assert (listed.price, listed.floor) == (D("15.80"), D("15.37"))
        new = quote(base("14.00", "19.99"), rule(conversion_rate=D("0.65"), **shop))
        assert (new.price, new.floor) == (D("13.00"), D("13.06"))
        decision = decide_price(listed.price, new)
        assert decision.needs_review
        assert decision.price == listed.price

    def test_never_listed_and_below_the_floor_lists_nothing(self) -> None:
        decision = decide_price(None, quote(base("19.00", "19.99"), rule(fee_percent=D(10))))
        assert decision.price is None
        assert decision.needs_review
        assert decision.reason is not None
        assert "not listed" in decision.reason


# --- properties ---------------------------------------------------------------------------------

CURRENCIES = st.sampled_from(["USD", "EUR", "GBP", "JPY", "KRW", "KWD", "BHD", "CZK"])
PROPERTY = settings(max_examples=300, deadline=None)


def _amounts(places: int, low: str = "0", high: str = "100000") -> st.SearchStrategy[Decimal]:
    return st.decimals(
        min_value=D(low), max_value=D(high), places=places, allow_nan=False, allow_infinity=False
    )


@st.composite
def money(draw: st.DrawFn, currency: str, low: str = "0", high: str = "10000") -> Decimal:
    return draw(_amounts(minor_digits(currency), low, high))


@st.composite
def roundings_for(draw: st.DrawFn, currency: str) -> Rounding:
    allowed = [r for r in Rounding if minor_digits(currency) >= 2 or r in _NO_CENTS_ROUNDINGS]
    return draw(st.sampled_from(allowed))


_NO_CENTS_ROUNDINGS = (Rounding.NONE, Rounding.WHOLE)


@st.composite
def pricing_cases(draw: st.DrawFn) -> tuple[BasePrice, PriceRule]:
    base_currency = draw(st.sampled_from(["USD", "EUR", "KWD", "JPY"]))
    currency = draw(CURRENCIES)
    rate = (
        D(1)
        if currency == base_currency
        else draw(_amounts(6, "0.000001", "2000").filter(lambda r: r > 0))
    )
    the_base = BasePrice(
        variant_id=draw(st.integers(1, 10**6)),
        sku=draw(st.text("ABCDEFGH-0123456789", min_size=1, max_size=12)),
        cost=draw(money(base_currency, "0", "500")),
        retail=draw(money(base_currency, "1", "1000")),
        currency=base_currency,
    )
    the_rule = PriceRule(
        currency=currency,
        base_currency=base_currency,
        conversion_rate=rate,
        markup_percent=draw(_amounts(3, "-99.999", "300")),
        markup_fixed=draw(money(currency, "0", "50")),
        fee_percent=draw(_amounts(3, "0", "60")),
        fee_fixed=draw(money(currency, "0", "20")),
        rounding=draw(roundings_for(currency)),
    )
    return the_base, the_rule


def _quantized_to(amount: Decimal, currency: str) -> bool:
    return amount.as_tuple().exponent == -minor_digits(currency)


def _covers_cost(price: Decimal, q: PriceQuote) -> bool:
    """The floor inequality, on exact fractions: price * (1 - fee%) - fee_fixed >= cost * rate."""
    kept = 1 - Fraction(q.fee_percent) / 100
    return Fraction(price) * kept - Fraction(q.fee_fixed) >= Fraction(q.cost) * Fraction(
        q.conversion_rate
    )


class TestRoundingProperties:
    @PROPERTY
    @given(data=st.data(), currency=CURRENCIES, amount=_amounts(6, "0", "1000000"))
    def test_never_below_and_less_than_one_step_above(
        self, data: st.DataObject, currency: str, amount: Decimal
    ) -> None:
        rounding = data.draw(roundings_for(currency))
        rounded = round_price(amount, rounding, currency)
        assert isinstance(rounded, Decimal)
        assert amount <= rounded < amount + rounding_step(rounding, currency)
        assert _quantized_to(rounded, currency)
        assert round_price(rounded, rounding, currency) == rounded  # idempotent

    @PROPERTY
    @given(currency=st.sampled_from(["USD", "EUR", "KWD", "BHD"]), amount=_amounts(6))
    def test_99_and_95_land_on_their_ending(self, currency: str, amount: Decimal) -> None:
        for rounding, ending in ((Rounding.TO_99, D("0.99")), (Rounding.TO_95, D("0.95"))):
            rounded = round_price(amount, rounding, currency)
            assert rounded - int(rounded) == ending

    @PROPERTY
    @given(currency=CURRENCIES, amount=_amounts(6, "-100000", "100000"))
    def test_quantize_is_half_up_and_quantize_up_is_the_ceiling(
        self, currency: str, amount: Decimal
    ) -> None:
        unit = minor_unit(currency)
        nearest = quantize(amount, currency)
        assert abs(nearest - amount) <= unit / 2
        assert _quantized_to(nearest, currency)
        up = quantize_up(amount, currency)
        assert amount <= up < amount + unit
        assert _quantized_to(up, currency)


class TestFloorProperties:
    @PROPERTY
    @given(case=pricing_cases())
    def test_quote_is_exact_decimal_quantized_to_the_shop_currency(
        self, case: tuple[BasePrice, PriceRule]
    ) -> None:
        the_base, the_rule = case
        q = quote(the_base, the_rule)
        for value in (q.price, q.floor, q.raw):
            assert type(value) is Decimal
        assert _quantized_to(q.price, the_rule.currency)
        assert _quantized_to(q.floor, the_rule.currency)
        assert q.price >= q.raw
        assert q.below_floor == (q.price < q.floor)

    @PROPERTY
    @given(case=pricing_cases())
    def test_floor_is_the_smallest_minor_unit_amount_that_covers_cost_and_fees(
        self, case: tuple[BasePrice, PriceRule]
    ) -> None:
        the_base, the_rule = case
        q = quote(the_base, the_rule)
        assert _covers_cost(q.floor, q)
        assert not _covers_cost(q.floor - minor_unit(the_rule.currency), q)

    @PROPERTY
    @given(case=pricing_cases())
    def test_a_rule_is_refused_or_every_price_covers_cost_and_fees(
        self, case: tuple[BasePrice, PriceRule]
    ) -> None:
        the_base, the_rule = case
        if quote(the_base, the_rule).below_floor:
            with pytest.raises(MarginFloorBroken) as caught:
                check_rule([the_base], the_rule)
            (broken,) = caught.value.broken
            assert broken.variant_id == the_base.variant_id
            assert f"sku {the_base.sku}" in str(caught.value)
            assert not _covers_cost(broken.price, broken)
        else:
            quotes = check_rule([the_base], the_rule)
            assert all(q.price >= q.floor and _covers_cost(q.price, q) for q in quotes)

    @PROPERTY
    @given(case=pricing_cases(), old_units=st.integers(1, 10**7))
    def test_a_decision_lists_a_covering_price_or_keeps_the_old_one_for_review(
        self, case: tuple[BasePrice, PriceRule], old_units: int
    ) -> None:
        the_base, the_rule = case
        old = from_minor_units(old_units, the_rule.currency)
        new = quote(the_base, the_rule)
        decision = decide_price(old, new)
        if decision.needs_review:
            assert new.below_floor
            assert decision.price == old
        else:
            assert decision.price == new.price
            assert decision.price is not None
            assert _covers_cost(decision.price, new)


class TestMinorUnitProperties:
    @PROPERTY
    @given(
        currency=st.sampled_from(sorted(MINOR_DIGITS)), units=st.integers(-(10**12) + 1, 10**12 - 1)
    )
    def test_units_round_trip_exactly(self, currency: str, units: int) -> None:
        amount = from_minor_units(units, currency)
        assert type(amount) is Decimal
        assert _quantized_to(amount, currency)
        assert to_minor_units(amount, currency) == units

    @PROPERTY
    @given(data=st.data(), currency=CURRENCIES)
    def test_amounts_round_trip_exactly(self, data: st.DataObject, currency: str) -> None:
        amount = data.draw(money(currency, "-100000", "100000"))
        units = to_minor_units(amount, currency)
        assert type(units) is int
        assert from_minor_units(units, currency) == amount
