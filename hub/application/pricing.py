"""Price rules per shop and the listed price of every binding they derive.

A binding's ``listed_price`` is the price we decided for that listing: what a price push sends
(the kinds in ``PRICE_KINDS``; the push compares it with ``last_pushed_price``). It is derived
from our base price (the variant's retail ``price`` and its ``cost``, in the product's currency)
by the shop's rule (``hub.domain.pricing``), and re-derived in the same transaction as whatever
changes an input:

- a rule change (``set_price_rule``) is *refused* when any bound variant would list below its
  margin floor, naming every such variant with the numbers;
- a rate change (``set_conversion_rate``) and a cost or retail change (``reprice_variants``) are
  not refused: a binding whose new price would break the floor keeps its listed price and gets
  ``price_review`` set with the numbers; the others are repriced;
- a new binding in a shop with a rule gets its price at once (``initial_prices``).

Only bindings whose listed price changed are bumped (unchanged prices are not pushed), except by
``resync_prices``, which bumps every binding with a listed price.

Bindings the rule cannot price are left without a listed price (nothing is pushed for them) and
reported: ``no_cost`` when the variant has no cost yet, ``skipped`` when its base price does not
fit the rule. The rule converts from one base currency; a variant of a product priced in another
currency is skipped with the reason (and ``price_review`` set), never converted at the wrong rate
and never a reason to refuse the rule for the shop's other variants.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import StrEnum

from hub.application.shops import load_shop
from hub.domain.catalog import Binding
from hub.domain.errors import InvalidInput, NotFound
from hub.domain.ports import UnitOfWork
from hub.domain.pricing import (
    MarginFloorBroken,
    PriceQuote,
    PriceRule,
    Rounding,
    ShopPriceRule,
    VariantPrice,
    decide_price,
    minor_unit,
    quote,
)
from hub.domain.sellers import Principal
from hub.domain.shops import PRICE_KINDS

# Money columns are NUMERIC(20, 6): six decimal places, fourteen integer digits. A value finer
# than that is refused here rather than rounded by the database.
STORED_PLACES = 6
_STORED_UNIT = Decimal(1).scaleb(-STORED_PLACES)
_STORED_LIMIT = Decimal(10) ** 14


class PriceStatus(StrEnum):
    """What a preview says of one binding."""

    UNCHANGED = "unchanged"  # the rule's price is the current one
    WILL_CHANGE = "will_change"  # the rule's price differs from the current one
    BELOW_FLOOR = "below_floor"  # the rule's price breaks the floor: the current one is kept
    NO_COST = "no_cost"  # the variant has no cost: no price is derived
    NO_RULE = "no_rule"  # the shop has no price rule
    SKIPPED = "skipped"  # the rule cannot price this variant (see the reason)


@dataclass(frozen=True)
class PriceRuleSpec:
    """A rule as a seller states it; ``rule()`` checks it."""

    currency: str
    base_currency: str
    conversion_rate: Decimal
    markup_percent: Decimal = Decimal(0)
    markup_fixed: Decimal = Decimal(0)
    fee_percent: Decimal = Decimal(0)
    fee_fixed: Decimal = Decimal(0)
    rounding: str = Rounding.NONE.value

    def rule(self) -> PriceRule:
        try:
            rounding = Rounding(self.rounding)
        except ValueError:
            raise InvalidInput(
                f"rounding {self.rounding!r}: use one of {', '.join(r.value for r in Rounding)}"
            ) from None
        rule = PriceRule(
            currency=self.currency,
            base_currency=self.base_currency,
            conversion_rate=self.conversion_rate,
            markup_percent=self.markup_percent,
            markup_fixed=self.markup_fixed,
            fee_percent=self.fee_percent,
            fee_fixed=self.fee_fixed,
            rounding=rounding,
        )
        _check_storable(rule)
        return rule


@dataclass
class RepriceReport:
    """What a change did to the bindings it reached."""

    changed: list[int] = field(default_factory=list)  # binding ids with a new listed price
    flagged: list[int] = field(default_factory=list)  # binding ids left for review
    queued: int = 0  # bindings whose price push was queued
    unchanged: int = 0
    no_cost: int = 0
    skipped: int = 0

    def merge(self, other: RepriceReport) -> None:
        self.changed += other.changed
        self.flagged += other.flagged
        self.queued += other.queued
        self.unchanged += other.unchanged
        self.no_cost += other.no_cost
        self.skipped += other.skipped


@dataclass(frozen=True)
class PriceRuleChange:
    rule: ShopPriceRule
    report: RepriceReport


@dataclass(frozen=True)
class PricePreviewRow:
    """One binding: the price it has (``current``: the listed price, else the last pushed one)
    and the one the shop's rule gives now (``new``), with its floor, in ``currency``."""

    binding_id: int
    variant_id: int
    sku: str
    currency: str | None
    current: Decimal | None
    last_pushed: Decimal | None
    new: Decimal | None
    floor: Decimal | None
    status: PriceStatus
    reason: str | None


# --- use cases ----------------------------------------------------------------------------------


def get_price_rule(uow: UnitOfWork, shop_id: int, principal: Principal) -> ShopPriceRule:
    load_shop(uow, shop_id, principal)
    return _stored_rule(uow, shop_id)


def set_price_rule(
    uow: UnitOfWork, shop_id: int, principal: Principal, spec: PriceRuleSpec
) -> PriceRuleChange:
    """Store the shop's rule and reprice its bindings; refused (``MarginFloorBroken``, naming
    every variant with its price, floor, cost, rate and fees) when any price would break its
    floor. The caller commits."""
    load_shop(uow, shop_id, principal)
    uow.lock(_shop_lock(shop_id))
    rule = spec.rule()
    bindings = uow.bindings.for_shop(shop_id)
    evaluations = _evaluate(bindings, uow.catalog.variant_prices(_variant_ids(bindings)), rule)
    broken = [e.quote for e in evaluations if e.quote is not None and e.quote.below_floor]
    if broken:
        raise MarginFloorBroken(broken)
    stored = _save_rule(uow, shop_id, rule)
    report = _apply(uow, evaluations, keep_old_below_floor=False)
    return PriceRuleChange(stored, report)


def set_conversion_rate(
    uow: UnitOfWork, shop_id: int, principal: Principal, rate: Decimal
) -> PriceRuleChange:
    """Change only the rule's rate. Not refused: a binding whose new price would break its floor
    keeps its listed price and is flagged for review; the others are repriced."""
    load_shop(uow, shop_id, principal)
    uow.lock(_shop_lock(shop_id))
    current = _stored_rule(uow, shop_id)
    rule = replace(current.rule, conversion_rate=rate)  # the rule's own checks run again
    _check_storable(rule)
    bindings = uow.bindings.for_shop(shop_id)
    evaluations = _evaluate(bindings, uow.catalog.variant_prices(_variant_ids(bindings)), rule)
    stored = _save_rule(uow, shop_id, rule)
    return PriceRuleChange(stored, _apply(uow, evaluations, keep_old_below_floor=True))


def reprice_variants(uow: UnitOfWork, variant_ids: Iterable[int]) -> RepriceReport:
    """After a variant's retail price or cost changed, in the same transaction: reprice its
    bindings in every shop with a rule. A change that would break the floor keeps the listed
    price and flags the binding for review."""
    ids = sorted(set(variant_ids))
    report = RepriceReport()
    for shop_id in sorted({b.shop_id for b in uow.bindings.for_variants(ids)}):
        uow.lock(_shop_lock(shop_id))  # one order for every writer
    # Read again under the locks: a rule or binding changed meanwhile is seen as committed.
    bindings = uow.bindings.for_variants(ids)
    by_shop: dict[int, list[Binding]] = defaultdict(list)
    for binding in bindings:
        by_shop[binding.shop_id].append(binding)
    rules = uow.prices.for_shops(by_shop)
    if not rules:
        return report
    variants = uow.catalog.variant_prices(_variant_ids(bindings))
    for shop_id in sorted(rules):
        evaluations = _evaluate(by_shop[shop_id], variants, rules[shop_id].rule)
        report.merge(_apply(uow, evaluations, keep_old_below_floor=True))
    return report


def initial_prices(
    uow: UnitOfWork, shop_id: int, variant_ids: Iterable[int]
) -> dict[int, tuple[Decimal | None, str | None]]:
    """(listed price, review note) per variant for new bindings in the shop; empty when the shop
    has no rule. A price below the floor is not listed (there is no old one to keep) and the
    binding is flagged instead. Two queries, whatever the number of variants."""
    stored = uow.prices.get(shop_id)
    if stored is None:
        return {}
    ids = sorted(set(variant_ids))
    found: dict[int, tuple[Decimal | None, str | None]] = {}
    for evaluation in _evaluate_variants(ids, uow.catalog.variant_prices(ids), stored.rule):
        found[evaluation.variant_id] = _decided(evaluation, None, keep_old_below_floor=True)
    return found


def preview_prices(
    uow: UnitOfWork,
    shop_id: int,
    principal: Principal,
    proposed: PriceRuleSpec | None = None,
) -> list[PricePreviewRow]:
    """Per binding of the shop, by SKU: the current price (listed, else last pushed) and the one
    the shop's rule gives, or the one ``proposed`` would give (a rule not stored: what setting
    it would do, refusal included). Writes nothing."""
    load_shop(uow, shop_id, principal)
    rule = proposed.rule() if proposed is not None else None
    if rule is None:
        stored = uow.prices.get(shop_id)
        rule = stored.rule if stored is not None else None
    bindings = uow.bindings.for_shop(shop_id)
    variants = uow.catalog.variant_prices(_variant_ids(bindings))
    rows: list[PricePreviewRow] = []
    if rule is None:
        for binding in bindings:
            found = variants.get(binding.variant_id)
            rows.append(
                _row(
                    binding,
                    found.sku if found else "",
                    None,
                    PriceStatus.NO_RULE,
                    f"shop {shop_id} has no price rule; set one to derive prices",
                )
            )
    else:
        kept = "this rule would be refused" if proposed else "the current price is kept"
        rows = [_preview(e, rule, kept) for e in _evaluate(bindings, variants, rule)]
    return sorted(rows, key=lambda row: (row.sku, row.binding_id))


def resync_prices(uow: UnitOfWork, shop_id: int, principal: Principal) -> RepriceReport:
    """Reprice the shop's bindings as after a rate change, then queue a price push for every
    binding with a listed price, changed or not."""
    load_shop(uow, shop_id, principal)
    uow.lock(_shop_lock(shop_id))
    stored = _stored_rule(uow, shop_id)
    bindings = uow.bindings.for_shop(shop_id)
    evaluations = _evaluate(
        bindings, uow.catalog.variant_prices(_variant_ids(bindings)), stored.rule
    )
    report = _apply(uow, evaluations, keep_old_below_floor=True, bump=False)
    report.queued = _bump(uow, [b for b in bindings if b.listed_price is not None])
    return report


# --- the work -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Evaluation:
    """One variant under one rule: its quote, or why there is none."""

    variant_id: int
    sku: str
    binding: Binding | None = None
    quote: PriceQuote | None = None
    no_cost: bool = False
    skipped: str | None = None


def _evaluate(
    bindings: Sequence[Binding], variants: Mapping[int, VariantPrice], rule: PriceRule
) -> list[_Evaluation]:
    return [
        replace(e, binding=binding)
        for binding, e in zip(
            bindings,
            _evaluate_variants([b.variant_id for b in bindings], variants, rule),
            strict=True,
        )
    ]


def _evaluate_variants(
    variant_ids: Sequence[int], variants: Mapping[int, VariantPrice], rule: PriceRule
) -> list[_Evaluation]:
    found: list[_Evaluation] = []
    for variant_id in variant_ids:
        variant = variants.get(variant_id)
        if variant is None:
            found.append(_Evaluation(variant_id, "", skipped=f"variant {variant_id} is gone"))
        elif variant.cost is None:
            found.append(_Evaluation(variant_id, variant.sku, no_cost=True))
        else:
            try:
                found.append(
                    _Evaluation(variant_id, variant.sku, quote=quote(variant.base(), rule))
                )
            except InvalidInput as error:  # another base currency; a retail price of 0
                found.append(_Evaluation(variant_id, variant.sku, skipped=error.message))
    return found


def _decided(
    e: _Evaluation, old_price: Decimal | None, *, keep_old_below_floor: bool
) -> tuple[Decimal | None, str | None]:
    """The listed price and review note an evaluation leads to."""
    if e.quote is None:
        return None, e.skipped  # no cost: nothing derived, nothing to review
    if not keep_old_below_floor:
        return e.quote.price, None  # a rule change: the caller refused broken rules already
    decision = decide_price(old_price, e.quote)
    return decision.price, decision.reason


def _apply(
    uow: UnitOfWork,
    evaluations: Iterable[_Evaluation],
    *,
    keep_old_below_floor: bool,
    bump: bool = True,
) -> RepriceReport:
    """Store the new listed prices and review notes; bump the bindings whose price changed."""
    report = RepriceReport()
    to_save: list[Binding] = []
    repriced: list[Binding] = []
    for e in evaluations:
        binding = e.binding
        assert binding is not None
        assert binding.id is not None
        price, review = _decided(e, binding.listed_price, keep_old_below_floor=keep_old_below_floor)
        if e.no_cost:
            report.no_cost += 1
        elif e.skipped is not None:
            report.skipped += 1
        if review is not None:
            report.flagged.append(binding.id)
        changed = price != binding.listed_price
        if changed or review != binding.price_review:
            binding.listed_price, binding.price_review = price, review
            to_save.append(binding)
        if changed and price is not None:
            report.changed.append(binding.id)
            repriced.append(binding)
        elif e.quote is not None:
            report.unchanged += 1
    # Push state before binding rows, in binding order: the lock order of every writer (a
    # finished push locks its state rows, then writes its bindings' last pushed values).
    if bump:
        report.queued = _bump(uow, repriced)
    uow.bindings.save_prices(sorted(to_save, key=lambda binding: binding.id or 0))
    return report


def _bump(uow: UnitOfWork, bindings: Iterable[Binding]) -> int:
    """Queue a price push for the bindings (one bump per shop); how many bindings."""
    by_shop: dict[int, list[int]] = defaultdict(list)
    for binding in bindings:
        by_shop[binding.shop_id].append(binding.variant_id)
    for shop_id in sorted(by_shop):
        uow.bindings.bump(PRICE_KINDS, shop_id=shop_id, variant_ids=by_shop[shop_id])
    return sum(len(ids) for ids in by_shop.values())


def _preview(e: _Evaluation, rule: PriceRule, kept: str) -> PricePreviewRow:
    binding = e.binding
    assert binding is not None
    if e.no_cost:
        return _row(
            binding,
            e.sku,
            None,
            PriceStatus.NO_COST,
            f"variant {e.variant_id} (sku {e.sku}) has no cost; set it (PUT /products/{{id}}) "
            "to derive a price",
        )
    if e.quote is None:
        return _row(binding, e.sku, None, PriceStatus.SKIPPED, e.skipped)
    current = _current(binding)
    if e.quote.below_floor:
        status = PriceStatus.BELOW_FLOOR
        reason: str | None = f"{e.quote.explain()}; {kept}"
    else:
        status = PriceStatus.UNCHANGED if e.quote.price == current else PriceStatus.WILL_CHANGE
        reason = binding.price_review
    return _row(binding, e.sku, e.quote, status, reason, currency=rule.currency)


def _row(
    binding: Binding,
    sku: str,
    priced: PriceQuote | None,
    status: PriceStatus,
    reason: str | None,
    *,
    currency: str | None = None,
) -> PricePreviewRow:
    assert binding.id is not None
    return PricePreviewRow(
        binding_id=binding.id,
        variant_id=binding.variant_id,
        sku=sku,
        currency=currency,
        current=_places(_current(binding), currency),
        last_pushed=_places(binding.last_pushed_price, currency),
        new=priced.price if priced else None,
        floor=priced.floor if priced else None,
        status=status,
        reason=reason,
    )


def _places(amount: Decimal | None, currency: str | None) -> Decimal | None:
    """The amount written with the currency's places (14 -> 14.00) when that is exact."""
    if amount is None or currency is None:
        return amount
    padded = amount.quantize(minor_unit(currency))
    return padded if padded == amount else amount


def _current(binding: Binding) -> Decimal | None:
    return binding.listed_price if binding.listed_price is not None else binding.last_pushed_price


def _save_rule(uow: UnitOfWork, shop_id: int, rule: PriceRule) -> ShopPriceRule:
    old = uow.prices.get(shop_id)
    return uow.prices.save(ShopPriceRule(shop_id, rule, version=old.version + 1 if old else 1))


def _stored_rule(uow: UnitOfWork, shop_id: int) -> ShopPriceRule:
    stored = uow.prices.get(shop_id)
    if stored is None:
        raise NotFound(
            f"shop {shop_id} has no price rule; set one with PUT /shops/{shop_id}/price-rule "
            f"or `hub prices set-rule --shop {shop_id}`"
        )
    return stored


def _shop_lock(shop_id: int) -> str:
    # The bindings' own lock: a binding created while the rule changes is priced by one of them.
    return f"shop-bindings:{shop_id}"


def _variant_ids(bindings: Iterable[Binding]) -> list[int]:
    return [binding.variant_id for binding in bindings]


def _check_storable(rule: PriceRule) -> None:
    for name in ("conversion_rate", "markup_percent", "markup_fixed", "fee_percent", "fee_fixed"):
        check_storable(getattr(rule, name), name)


def check_storable(value: Decimal, name: str) -> None:
    """Refuse an amount the hub cannot store exactly (more than six decimal places)."""
    if abs(value) >= _STORED_LIMIT:
        raise InvalidInput(f"{name} {value:f}: out of range; use less than {_STORED_LIMIT:,}")
    if value != value.quantize(_STORED_UNIT):
        raise InvalidInput(
            f"{name} {value:f}: the hub stores at most {STORED_PLACES} decimal places; "
            f"round it (e.g. {value.quantize(_STORED_UNIT):f})"
        )
