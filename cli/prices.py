"""`hub prices`: a shop's price rule, its conversion rate, and what the rule would list."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

import typer

from cli.output import (
    ADMIN,
    explain,
    hub,
    json_option,
    print_fields,
    print_json,
    print_table,
    usage,
)
from cli.shops import not_found_hint
from hub.application.pricing import RepriceReport
from hub.domain.errors import DomainError, NotFound
from hub.domain.pricing import Rounding, ShopPriceRule, quantize

app = typer.Typer(
    help="Price rules per shop: markup, fees, rounding, currency and rate; preview.",
    no_args_is_help=True,
)
NOTED = ("below_floor", "skipped")
REQUIRED = ("currency", "base_currency", "conversion_rate")
RULE_OPTIONS = frozenset(
    {
        *REQUIRED,
        "markup_percent",
        "markup_fixed",
        "fee_percent",
        "fee_fixed",
        "rounding",
    }
)


def shop_hint(error: DomainError) -> str:
    """The shops list for an unknown shop; nothing more when the message says what to do."""
    if isinstance(error, NotFound) and "no price rule" in error.message:
        return ""
    return not_found_hint(error)


def decimal_option(value: str, option: str) -> Decimal:
    """An exact decimal from the command line, or exit 2."""
    try:
        parsed = Decimal(value.strip())
    except InvalidOperation:
        usage(f"{option} {value!r} is not a decimal number, e.g. 12.50")
    if not parsed.is_finite():
        usage(f"{option} {value!r} must be a finite number")
    return parsed


def rule_fields(stored: ShopPriceRule) -> dict[str, Any]:
    rule = stored.rule
    return {
        "shop_id": stored.shop_id,
        "currency": rule.currency,
        "base_currency": rule.base_currency,
        "conversion_rate": rule.conversion_rate,
        "markup_percent": rule.markup_percent,
        "markup_fixed": quantize(rule.markup_fixed, rule.currency),
        "fee_percent": rule.fee_percent,
        "fee_fixed": quantize(rule.fee_fixed, rule.currency),
        "rounding": rule.rounding.value,
        "version": stored.version,
        "updated_at": stored.updated_at,
    }


def plain(amount: Decimal | None) -> str | None:
    return None if amount is None else format(amount, "f")


@app.command("rule")
def rule(
    shop: int = typer.Option(..., "--shop", help="The shop's id."),
    as_json: bool = json_option(),
) -> None:
    """The shop's price rule."""
    from hub.application.pricing import get_price_rule

    with (
        hub() as container,
        explain(f"no price rule shown for shop {shop}", shop_hint),
        container.uow() as uow,
    ):
        stored = get_price_rule(uow, shop, ADMIN)
    fields = rule_fields(stored)
    if as_json:
        print_json(fields)
        return
    print_fields({name: plain(v) if isinstance(v, Decimal) else v for name, v in fields.items()})


@app.command("set-rule")
def set_rule(
    shop: int = typer.Option(..., "--shop", help="The shop's id."),
    currency: str = typer.Option(..., help="The shop's currency (ISO 4217, e.g. EUR)."),
    base_currency: str = typer.Option(..., help="Our base prices' currency, e.g. USD."),
    rate: str = typer.Option(
        ..., help="Shop-currency units per base-currency unit (1 for the same currency)."
    ),
    markup_percent: str = typer.Option("0", help="Markup on our retail price, in percent."),
    markup_fixed: str = typer.Option("0", help="A fixed markup in the shop currency."),
    fee_percent: str = typer.Option("0", help="The marketplace's fee, in percent."),
    fee_fixed: str = typer.Option("0", help="The marketplace's fixed fee per order line."),
    rounding: Rounding = typer.Option(Rounding.NONE.value, help="How prices are rounded (up)."),
) -> None:
    """Set the shop's whole price rule and reprice its bindings; refused when any variant
    would sell below its margin floor (each is named with its numbers)."""
    from hub.application.pricing import PriceRuleSpec, set_price_rule

    spec = PriceRuleSpec(
        currency=currency.strip().upper(),
        base_currency=base_currency.strip().upper(),
        conversion_rate=decimal_option(rate, "--rate"),
        markup_percent=decimal_option(markup_percent, "--markup-percent"),
        markup_fixed=decimal_option(markup_fixed, "--markup-fixed"),
        fee_percent=decimal_option(fee_percent, "--fee-percent"),
        fee_fixed=decimal_option(fee_fixed, "--fee-fixed"),
        rounding=rounding.value,
    )
    with (
        hub() as container,
        explain(f"price rule of shop {shop} not set", shop_hint),
        container.uow() as uow,
    ):
        change = set_price_rule(uow, shop, ADMIN, spec)
        uow.commit()
    typer.echo(f"shop {shop}: price rule version {change.rule.version} stored")
    _report(shop, change.report)


@app.command("rate")
def rate(
    rate: str = typer.Argument(..., help="Shop-currency units per base-currency unit."),
    shop: int = typer.Option(..., "--shop", help="The shop's id."),
) -> None:
    """Change the rule's conversion rate: prices it would push below their floor are kept and
    flagged for review; the others are repriced."""
    from hub.application.pricing import set_conversion_rate

    value = decimal_option(rate, "RATE")
    with (
        hub() as container,
        explain(f"rate of shop {shop} not changed", shop_hint),
        container.uow() as uow,
    ):
        change = set_conversion_rate(uow, shop, ADMIN, value)
        uow.commit()
    stored = change.rule.rule
    typer.echo(
        f"shop {shop}: 1 {stored.base_currency} = {plain(stored.conversion_rate)} "
        f"{stored.currency} (rule version {change.rule.version})"
    )
    _report(shop, change.report)


@app.command("preview")
def preview(
    shop: int = typer.Option(..., "--shop", help="The shop's id."),
    as_json: bool = json_option(),
    currency: str | None = typer.Option(None, help="Preview with this shop currency."),
    base_currency: str | None = typer.Option(None, help="Preview with this base currency."),
    rate: str | None = typer.Option(None, help="Preview with this conversion rate."),
    markup_percent: str | None = typer.Option(None, help="Preview with this markup (%)."),
    markup_fixed: str | None = typer.Option(None, help="Preview with this fixed markup."),
    fee_percent: str | None = typer.Option(None, help="Preview with this fee (%)."),
    fee_fixed: str | None = typer.Option(None, help="Preview with this fixed fee."),
    rounding: Rounding | None = typer.Option(None, help="Preview with this rounding."),
) -> None:
    """Per SKU: the current price, the one the rule gives, its floor, and what would happen.
    With rule options: what the stored rule changed by them would list (below_floor: that rule
    would be refused). Writes nothing."""
    from hub.application.pricing import PriceRuleSpec, preview_prices

    changes: dict[str, Any] = {
        name: value
        for name, value in {
            "currency": currency.strip().upper() if currency else None,
            "base_currency": base_currency.strip().upper() if base_currency else None,
            "conversion_rate": _maybe(rate, "--rate"),
            "markup_percent": _maybe(markup_percent, "--markup-percent"),
            "markup_fixed": _maybe(markup_fixed, "--markup-fixed"),
            "fee_percent": _maybe(fee_percent, "--fee-percent"),
            "fee_fixed": _maybe(fee_fixed, "--fee-fixed"),
            "rounding": rounding.value if rounding else None,
        }.items()
        if value is not None
    }
    with (
        hub() as container,
        explain(f"no preview for shop {shop}", shop_hint),
        container.uow() as uow,
    ):
        proposed: PriceRuleSpec | None = None
        if changes:
            stored = uow.prices.get(shop)
            start: dict[str, Any] = {}
            if stored is not None:
                start = {k: v for k, v in rule_fields(stored).items() if k in RULE_OPTIONS}
            needed = [
                f"--{name.replace('_', '-')}" if name != "conversion_rate" else "--rate"
                for name in REQUIRED
                if name not in start and name not in changes
            ]
            if needed:
                usage(f"shop {shop} has no price rule to start from; give {', '.join(needed)}")
            proposed = PriceRuleSpec(**{**start, **changes})
        rows = preview_prices(uow, shop, ADMIN, proposed)
    listed: list[dict[str, Any]] = [
        {
            "sku": row.sku,
            "variant_id": row.variant_id,
            "binding_id": row.binding_id,
            "currency": row.currency,
            "current": plain(row.current),
            "last_pushed": plain(row.last_pushed),
            "new": plain(row.new),
            "floor": plain(row.floor),
            "status": row.status.value,
            "reason": row.reason,
        }
        for row in rows
    ]
    if as_json:
        print_json(listed)
        return
    print_table(
        listed,
        ["sku", "current", "new", "floor", "currency", "status"],
        empty=f"shop {shop} has no bindings; `hub bindings auto --shop {shop}` binds by SKU",
    )
    for row in listed:
        if row["status"] in NOTED and row["reason"]:
            typer.echo(f"{row['sku']}: {row['reason']}")


def _maybe(value: str | None, option: str) -> Decimal | None:
    return decimal_option(value, option) if value is not None else None


def _report(shop: int, report: RepriceReport) -> None:
    typer.echo(
        f"{len(report.changed)} binding(s) repriced (price pushes queued), "
        f"{report.unchanged} unchanged, {report.no_cost} without a cost, "
        f"{report.skipped} skipped, {len(report.flagged)} flagged for review"
    )
    if report.flagged:
        typer.echo(f"see `hub prices preview --shop {shop}` for the reasons")
