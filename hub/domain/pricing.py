"""Pricing: the retail price each shop lists a variant at, and the margin floor it must clear.

Each marketplace takes its own fees and sells in its own currency, so a seller sets a price rule per
shop on top of our base price. A rounding or conversion slip there sells at a loss, hence:

- Money is ``Decimal`` end to end, never ``float``; a float handed in is a ``TypeError``.
- Arithmetic is exact. Sums and products run in a context that traps ``Inexact`` (inputs are
  bounded so they always fit), the floor's division runs on ``Fraction``, and the only rounding is
  the one we choose: up (a ceiling) for prices, so that no rounding ever lands below the floor.
- Every price and floor is quantized to the currency's minor unit (ISO 4217 exponent: 2 places for
  USD, 0 for JPY, 3 for KWD). Formatting for a marketplace's API is the connectors' business;
  ``to_minor_units`` / ``from_minor_units`` are the exact bridges they can use.

The margin floor is the lowest price that still pays our production cost and the marketplace's
fees: ``price * (1 - fee%) - fee_fixed >= cost * rate``, i.e.
``floor = (cost * rate + fee_fixed) / (1 - fee%)`` ceiled to the minor unit. A rule change whose
price would fall below it is refused (``check_rule`` raises ``MarginFloorBroken``); a cost or rate
change that pushes an already-listed price below it keeps the old price and flags the binding for
review (``decide_price``), because silently repricing or silently selling at a loss are both worse
than asking a person.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import (
    ROUND_CEILING,
    ROUND_FLOOR,
    ROUND_HALF_UP,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
)
from enum import StrEnum
from fractions import Fraction

from hub.domain.errors import InvalidInput

# ISO 4217 minor-unit exponents of the currencies our marketplaces sell in. A code that is not here
# is refused rather than guessed: a wrong exponent lists a price 100 times off.
MINOR_DIGITS: dict[str, int] = {
    # two places
    "USD": 2, "EUR": 2, "GBP": 2, "CAD": 2, "AUD": 2, "NZD": 2, "CHF": 2, "SEK": 2, "NOK": 2,
    "DKK": 2, "PLN": 2, "CZK": 2, "HUF": 2, "RON": 2, "BGN": 2, "TRY": 2, "ILS": 2, "MXN": 2,
    "BRL": 2, "ZAR": 2, "INR": 2, "SGD": 2, "HKD": 2, "CNY": 2, "TWD": 2, "THB": 2, "MYR": 2,
    "PHP": 2, "IDR": 2, "AED": 2, "SAR": 2,
    # no minor unit
    "JPY": 0, "KRW": 0, "ISK": 0, "CLP": 0, "VND": 0, "PYG": 0, "UGX": 0, "XAF": 0, "XOF": 0,
    # three places
    "BHD": 3, "KWD": 3, "JOD": 3, "OMR": 3, "TND": 3, "IQD": 3, "LYD": 3,
}  # fmt: skip

# Bounds on every Decimal handed in. They are far beyond any real price or rate, and they keep the
# exact context below from ever having to round: the longest product we form (retail * rate *
# markup) has well under 200 significant digits.
MAX_MAGNITUDE = Decimal(10) ** 12
MAX_PLACES = 18
# A zero is refused only when its exponent is beyond this (either way): no arithmetic on bounded
# inputs makes one, and it keeps a zero's plain notation short.
ZERO_EXPONENT_LIMIT = 200

# Sums and products here must be exact; a rounded intermediate is a bug, so it raises.
_EXACT = Context(prec=200, traps=[Inexact, InvalidOperation, DivisionByZero, Overflow])
# Quantizing rounds on purpose (with the rounding mode we pass); it only must not overflow.
_QUANTIZE = Context(prec=200, traps=[InvalidOperation, DivisionByZero, Overflow])

_HUNDRED = Decimal(100)
_ONE = Decimal(1)
_ZERO = Decimal(0)


# --- currencies ---------------------------------------------------------------------------------


def minor_digits(currency: str) -> int:
    """How many decimal places the currency's minor unit has (ISO 4217 exponent)."""
    try:
        return MINOR_DIGITS[currency]
    except KeyError:
        hint = (
            f"; currency codes are upper case, did you mean {currency.upper()!r}?"
            if currency.upper() in MINOR_DIGITS
            else f"; known codes: {', '.join(sorted(MINOR_DIGITS))}"
        )
        raise InvalidInput(f"currency {currency!r} is not a known ISO 4217 code{hint}") from None


def minor_unit(currency: str) -> Decimal:
    """The smallest amount of the currency: 0.01 USD, 1 JPY, 0.001 KWD."""
    return Decimal(1).scaleb(-minor_digits(currency))


def quantize(amount: Decimal, currency: str) -> Decimal:
    """``amount`` to the currency's minor unit, halves away from zero: for showing a converted
    amount, never for setting a price (a price rounds up, see ``quantize_up``)."""
    _require_decimal(amount, "amount")
    return amount.quantize(minor_unit(currency), rounding=ROUND_HALF_UP, context=_QUANTIZE)


def quantize_up(amount: Decimal, currency: str) -> Decimal:
    """``amount`` ceiled to the currency's minor unit: the smallest amount in minor units that is
    not below it, so a floor or price never drops by rounding."""
    _require_decimal(amount, "amount")
    return amount.quantize(minor_unit(currency), rounding=ROUND_CEILING, context=_QUANTIZE)


def to_minor_units(amount: Decimal, currency: str) -> int:
    """``amount`` as an integer count of minor units (12.34 USD -> 1234, 1200 JPY -> 1200).

    Exact or refused: an amount finer than the minor unit is an error, not a silent rounding.
    """
    _require_decimal(amount, "amount")
    digits = minor_digits(currency)
    scaled = amount.scaleb(digits, context=_EXACT)
    if scaled != scaled.to_integral_value(context=_EXACT):
        raise InvalidInput(
            f"amount {_fmt(amount)} {currency} is finer than the minor unit "
            f"({digits} decimal places); quantize it first"
        )
    return int(scaled)


def from_minor_units(units: int, currency: str) -> Decimal:
    """An integer count of minor units as a Decimal with the currency's places (1234 -> 12.34).

    Bounded like every amount handed in (``to_minor_units`` of the result works): a count with
    more digits than the exact context holds would otherwise surface as ``decimal.Inexact``.
    """
    if isinstance(units, bool) or not isinstance(units, int):
        raise TypeError(f"units must be an int count of minor units, not {type(units).__name__}")
    digits = minor_digits(currency)
    bound = int(MAX_MAGNITUDE) * 10**digits  # int arithmetic: exact, no context involved
    if abs(units) >= bound:  # not echoed: a huge int has no cheap text (nor a float) form
        raise InvalidInput(
            f"units out of range: a count of {currency} minor units must be below {bound:,} "
            f"(amounts below {MAX_MAGNITUDE:,} {currency})"
        )
    return _from_units(units, digits)


def _from_units(units: int, digits: int) -> Decimal:
    """``units`` scaled down by ``digits`` places, unbounded: for the floor, which is computed
    from bounded inputs (far under the exact context's precision) but may exceed the bound."""
    return Decimal(units).scaleb(-digits, context=_EXACT)


# --- rounding rules -----------------------------------------------------------------------------


class Rounding(StrEnum):
    """How a shop's price is rounded. Every rule rounds up, so a price never ends below the
    amount the rule computed, and therefore never below a floor that amount cleared.

    - ``none``: up to the next minor unit (12.341 -> 12.35).
    - ``to_99``: the smallest amount ending in .99 that is not below it (12.00 -> 12.99,
      12.99 -> 12.99, 13.00 -> 13.99); in a 3-place currency it ends in .990.
    - ``to_95``: the same with .95.
    - ``whole``: up to the next whole unit (12.01 -> 13.00).

    ``to_99`` and ``to_95`` need cents: they are refused for a currency without two minor places
    (JPY, KRW); use ``whole`` there.
    """

    NONE = "none"
    TO_99 = "to_99"
    TO_95 = "to_95"
    WHOLE = "whole"


_ENDINGS: dict[Rounding, Decimal] = {
    Rounding.TO_99: Decimal("0.99"),
    Rounding.TO_95: Decimal("0.95"),
}


def check_rounding(rounding: Rounding, currency: str) -> None:
    """Refuse a rounding the currency cannot express (.99 in a currency without cents)."""
    digits = minor_digits(currency)
    if rounding in _ENDINGS and digits < 2:
        raise InvalidInput(
            f"rounding {rounding.value!r} needs two minor places but {currency} has {digits}; "
            f"use {Rounding.WHOLE.value!r} (or {Rounding.NONE.value!r}) for {currency}"
        )


def rounding_step(rounding: Rounding, currency: str) -> Decimal:
    """The spacing of the amounts a rounding can produce: a rounded amount is always less than one
    step above what it rounded."""
    return minor_unit(currency) if rounding is Rounding.NONE else _ONE


def round_price(amount: Decimal, rounding: Rounding, currency: str) -> Decimal:
    """The smallest amount that ``rounding`` allows and that is not below ``amount``, quantized to
    the currency's minor unit."""
    _require_decimal(amount, "amount")
    rounding = Rounding(rounding)
    check_rounding(rounding, currency)
    if rounding is Rounding.NONE:
        return quantize_up(amount, currency)
    if rounding is Rounding.WHOLE:
        whole = amount.to_integral_value(rounding=ROUND_CEILING, context=_QUANTIZE)
        return whole.quantize(minor_unit(currency), context=_EXACT)
    ending = _ENDINGS[rounding]
    candidate = _EXACT.add(
        amount.to_integral_value(rounding=ROUND_FLOOR, context=_QUANTIZE), ending
    )
    if candidate < amount:
        candidate = _EXACT.add(candidate, _ONE)
    return candidate.quantize(minor_unit(currency), context=_EXACT)


# --- base prices and rules ----------------------------------------------------------------------


@dataclass(frozen=True)
class BasePrice:
    """Our side of a variant's price, in the business's base currency: what it costs us to
    produce, and the default retail price that shop rules mark up from."""

    variant_id: int
    sku: str
    cost: Decimal
    retail: Decimal
    currency: str

    def __post_init__(self) -> None:
        minor_digits(self.currency)
        _require_money(self.cost, "cost", self.currency, allow_zero=True)
        _require_money(self.retail, "retail", self.currency, allow_zero=False)


@dataclass(frozen=True)
class PriceRule:
    """One shop's price rule: markup on our retail price, the marketplace's fees, rounding and the
    shop's currency with a configured (never live) conversion rate.

    - ``markup_percent`` may be negative, down to but excluding -100: a seller may list below our
      default retail on a marketplace where it sells cheaper; the margin floor still guards cost and
      fees, so a discount can never turn into a loss.
    - ``markup_fixed`` and ``fee_fixed`` are amounts in the shop currency, >= 0, no finer than its
      minor unit. ``fee_fixed`` is charged per order line.
    - ``fee_percent`` is the marketplace's cut in [0, 100): at 100 no price covers the cost.
    - ``conversion_rate`` is shop-currency units per one unit of ``base_currency``, > 0. The base
      currency is named so a base price in another currency is refused instead of converted at the
      wrong rate; when both currencies are the same the rate must be 1 (anything else is a markup
      in disguise: use ``markup_percent``).
    """

    currency: str
    base_currency: str
    conversion_rate: Decimal
    markup_percent: Decimal = _ZERO
    markup_fixed: Decimal = _ZERO
    fee_percent: Decimal = _ZERO
    fee_fixed: Decimal = _ZERO
    rounding: Rounding = Rounding.NONE

    def __post_init__(self) -> None:
        minor_digits(self.currency)
        minor_digits(self.base_currency)
        rate = _require_decimal(self.conversion_rate, "conversion_rate")
        if rate <= 0:
            raise InvalidInput(
                f"conversion_rate {_fmt(rate)}: must be > 0 "
                f"({self.currency} per one {self.base_currency})"
            )
        if self.currency == self.base_currency and rate != 1:
            raise InvalidInput(
                f"conversion_rate {_fmt(rate)}: {self.currency} to itself converts at 1; "
                "put a price difference in markup_percent"
            )
        markup = _require_decimal(self.markup_percent, "markup_percent")
        if markup <= -_HUNDRED:
            raise InvalidInput(
                f"markup_percent {_fmt(markup)}: must be above -100 (a discount of 100% or more "
                "gives the variant away)"
            )
        fee = _require_decimal(self.fee_percent, "fee_percent")
        if not _ZERO <= fee < _HUNDRED:
            raise InvalidInput(
                f"fee_percent {_fmt(fee)}: must be in [0, 100); at 100% no price covers the cost"
            )
        _require_money(self.markup_fixed, "markup_fixed", self.currency, allow_zero=True)
        _require_money(self.fee_fixed, "fee_fixed", self.currency, allow_zero=True)
        if not isinstance(self.rounding, Rounding):
            try:
                object.__setattr__(self, "rounding", Rounding(self.rounding))
            except ValueError:
                raise InvalidInput(
                    f"rounding {self.rounding!r}: use one of {', '.join(r.value for r in Rounding)}"
                ) from None
        check_rounding(self.rounding, self.currency)


# --- the computation ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PriceQuote:
    """What one rule makes of one variant's base price, with the inputs that explain it.

    ``price`` and ``floor`` are in ``currency``, quantized to its minor unit. ``raw`` is the exact,
    unrounded price the rule computed before rounding (kept unquantized: it is what rounding saw).
    """

    variant_id: int
    sku: str
    currency: str
    price: Decimal
    floor: Decimal
    raw: Decimal
    base_currency: str
    cost: Decimal
    conversion_rate: Decimal
    fee_percent: Decimal
    fee_fixed: Decimal

    @property
    def below_floor(self) -> bool:
        """True when listing at ``price`` would not cover cost and fees."""
        return self.price < self.floor

    def explain(self) -> str:
        """The numbers behind this quote, for an error or a review note."""
        relation = "is below" if self.below_floor else "clears"
        return (
            f"variant {self.variant_id} (sku {self.sku}): price {_fmt(self.price)} {self.currency} "
            f"{relation} the margin floor {_fmt(self.floor)} {self.currency} = "
            f"(cost {_fmt(self.cost)} {self.base_currency} x rate {_fmt(self.conversion_rate)} "
            f"+ fee {_fmt(self.fee_fixed)} {self.currency}) / (1 - fee {_fmt(self.fee_percent)}%)"
        )


def converted(amount: Decimal, rule: PriceRule) -> Decimal:
    """A base-currency amount in the shop currency at the rule's rate, exact (not quantized)."""
    _require_decimal(amount, "amount")
    return _EXACT.multiply(amount, rule.conversion_rate)


def margin_floor(cost: Decimal, rule: PriceRule) -> Decimal:
    """The smallest price in the shop currency's minor units that pays the cost and the fees:
    ``ceil((cost * rate + fee_fixed) / (1 - fee_percent / 100))``.

    The division is done on fractions so the ceiling is exact: a floor one minor unit low would
    sell at a loss of that unit on every order.
    """
    needed = Fraction(_EXACT.add(converted(cost, rule), rule.fee_fixed))
    kept = 1 - Fraction(rule.fee_percent) / 100
    scale = 10 ** minor_digits(rule.currency)
    units = -((-needed * scale) // kept)  # ceiling of needed / kept in minor units
    return _from_units(int(units), minor_digits(rule.currency))


def quote(base: BasePrice, rule: PriceRule) -> PriceQuote:
    """Price one variant under one shop rule.

    raw = retail * rate * (1 + markup_percent / 100) + markup_fixed, rounded up by the rule's
    rounding; the floor from ``margin_floor``. The quote is returned even when it is below the floor
    (``below_floor``): refusing a rule or keeping an old price is the caller's decision, see
    ``check_rule`` and ``decide_price``.
    """
    if base.currency != rule.base_currency:
        raise InvalidInput(
            f"variant {base.variant_id} (sku {base.sku}): base price is in {base.currency} but the "
            f"rule converts from {rule.base_currency}; set the rule's rate for {base.currency}"
        )
    factor = _EXACT.add(_ONE, _EXACT.divide(rule.markup_percent, _HUNDRED))
    raw = _EXACT.add(_EXACT.multiply(converted(base.retail, rule), factor), rule.markup_fixed)
    return PriceQuote(
        variant_id=base.variant_id,
        sku=base.sku,
        currency=rule.currency,
        price=round_price(raw, rule.rounding, rule.currency),
        floor=margin_floor(base.cost, rule),
        raw=raw,
        base_currency=base.currency,
        cost=base.cost,
        conversion_rate=rule.conversion_rate,
        fee_percent=rule.fee_percent,
        fee_fixed=rule.fee_fixed,
    )


class MarginFloorBroken(InvalidInput):
    """A price rule that would list one or more variants below their margin floor.

    Carries every breaking quote (not just the first), so the seller fixes the rule once.
    """

    code = "margin_floor_broken"

    def __init__(self, broken: Sequence[PriceQuote]) -> None:
        self.broken = tuple(broken)
        lines = "; ".join(q.explain() for q in self.broken)
        super().__init__(
            f"price rule refused: it would sell {len(self.broken)} variant(s) below the margin "
            f"floor: {lines}; raise markup_percent or markup_fixed (or correct the fees if "
            "they are wrong) until every price clears its floor"
        )


def check_rule(bases: Iterable[BasePrice], rule: PriceRule) -> list[PriceQuote]:
    """Quote every variant under a new or changed rule, or refuse the rule.

    Raises ``MarginFloorBroken`` naming *all* variants whose price would break the floor (in the
    order given); otherwise returns the quotes, in the same order.
    """
    quotes = [quote(base, rule) for base in bases]
    broken = [q for q in quotes if q.below_floor]
    if broken:
        raise MarginFloorBroken(broken)
    return quotes


@dataclass(frozen=True)
class PriceDecision:
    """What to list after a cost or rate change.

    ``price`` is None only when the variant has never been listed and the new quote breaks the
    floor: there is no old price to keep, so nothing should be pushed until someone reviews it.
    """

    price: Decimal | None
    needs_review: bool
    reason: str | None
    quote: PriceQuote


def decide_price(old_price: Decimal | None, new: PriceQuote) -> PriceDecision:
    """After our cost or the shop's rate changed: take the new price if it clears the floor,
    else keep the listed one and flag the binding for review.

    Unlike a rule change there is no one to refuse here (the change came from our catalogue or the
    rate table), and repricing below the floor would sell at a loss, so the old price stays until a
    person decides.
    """
    if old_price is not None:
        _require_decimal(old_price, "old_price")
    if not new.below_floor:
        return PriceDecision(price=new.price, needs_review=False, reason=None, quote=new)
    kept = (
        f"kept the listed price {_fmt(old_price)} {new.currency}"
        if old_price is not None
        else "not listed (no earlier price to keep)"
    )
    return PriceDecision(
        price=old_price,
        needs_review=True,
        reason=f"{new.explain()}; {kept}; review the price rule or the cost",
        quote=new,
    )


# --- input checks -------------------------------------------------------------------------------


def _require_decimal(value: object, name: str) -> Decimal:
    """A finite, bounded Decimal; a float is a programming error (it already lost exactness)."""
    if not isinstance(value, Decimal):
        raise TypeError(
            f"{name} must be a Decimal, not {type(value).__name__}; "
            f"build it from text, e.g. Decimal('12.50'), never from a float"
        )
    if not value.is_finite():
        raise InvalidInput(f"{name} {value}: must be a finite number")
    # Only context-free operations until the value is known to be in range: ``abs()`` or any
    # arithmetic rounds in the default context first, which raises ``decimal.Overflow`` for
    # 1E+999999999 and rounds 999999999999.999999999999999999 (30 digits) up to the bound.
    # ``copy_abs``, comparisons and the exponent never round.
    exponent = int(value.as_tuple().exponent)  # finite: never the 'n', 'N' or 'F' markers
    if value.is_zero():
        # A zero is in range whatever its places (arithmetic on bounded amounts leaves finer
        # zeros: 0.00 x 0.125 is 0.00000), but not with an absurd exponent: in plain notation,
        # as messages and marketplace payloads write amounts, 0E-999999999 is 10**9 characters.
        out_of_range = abs(exponent) > ZERO_EXPONENT_LIMIT
    else:
        out_of_range = value.copy_abs() >= MAX_MAGNITUDE or exponent < -MAX_PLACES
    if out_of_range:
        raise InvalidInput(
            f"{name} {value}: out of range; use less than {MAX_MAGNITUDE:,} "
            f"with at most {MAX_PLACES} decimal places"
        )
    return value


def _require_money(value: object, name: str, currency: str, *, allow_zero: bool) -> Decimal:
    """A non-negative (or positive) amount no finer than the currency's minor unit."""
    amount = _require_decimal(value, name)
    if amount < 0 or (amount == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise InvalidInput(f"{name} {_fmt(amount)} {currency}: must be {bound}")
    digits = minor_digits(currency)
    if amount != amount.quantize(minor_unit(currency), rounding=ROUND_FLOOR, context=_QUANTIZE):
        raise InvalidInput(
            f"{name} {_fmt(amount)} {currency}: finer than the minor unit; "
            f"{currency} has {digits} decimal places"
        )
    return amount


def _fmt(amount: Decimal | None) -> str:
    """Plain notation for messages (never 1E+1)."""
    return "-" if amount is None else format(amount, "f")


# --- what is stored -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ShopPriceRule:
    """A shop's stored rule: ``version`` counts its changes (rate changes included)."""

    shop_id: int
    rule: PriceRule
    version: int = 1
    updated_at: datetime | None = None


@dataclass(frozen=True)
class VariantPrice:
    """What pricing reads of one variant: its SKU, our retail price and cost (None when not
    known yet), in its product's currency."""

    variant_id: int
    sku: str
    retail: Decimal
    cost: Decimal | None
    currency: str

    def base(self) -> BasePrice:
        """The base price for quoting; ``InvalidInput`` when there is no cost or the amounts
        do not fit the currency (a retail price of 0, cents finer than the minor unit)."""
        if self.cost is None:
            raise InvalidInput(f"variant {self.variant_id} (sku {self.sku}): has no cost")
        return BasePrice(self.variant_id, self.sku, self.cost, self.retail, self.currency)
